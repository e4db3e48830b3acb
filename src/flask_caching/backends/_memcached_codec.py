"""Values as memcached items: the bytes *and* the flags, for every client library.

memcached stores a 32-bit ``flags`` word beside each item's bytes. Released
Flask-Caching leaves both to pylibmc, which writes (measured on pylibmc 1.6.3):

=============================  =====  ===============================================
value                          flags  bytes
=============================  =====  ===============================================
``bytes`` (and subclasses)     0      the bytes
``str`` (and subclasses)       16     UTF-8
``bool``                       2      ``b"1"`` / ``b"0"``
``int`` (and subclasses)       4      decimal (so the server's ``incr`` works)
anything else (None included)  1      ``pickle.dumps(value, pickle.HIGHEST_PROTOCOL)``
=============================  =====  ===============================================

Flag 8 marks zlib-compressed bytes (pylibmc and python-memcached write it only when
asked to compress). Our clients never interpret an item themselves: each driver
hands the backend an :class:`Item` (bytes, flags) and takes one back, and a
:class:`Codec` built for the backend's serializer turns values into items and back.

* Under the default :class:`~flask_caching.serializers.PickleSerializer` the codec
  writes exactly the table above, so ours on any client shares a cache with released
  Flask-Caching on pylibmc, and reads every flag pylibmc or python-memcached writes.
  Items with flags 0 are bytes and come back as bytes, even when they look like a
  pickle or a number (released Flask-Caching reads them so). Entries this project
  wrote before (flags 0, pickled) therefore read as their bytes: clear the cache
  when upgrading from it.
* Under any other serializer (``json``, ``pickle-signed``, an object of yours) the
  serializer owns the bytes: a value is stored as its output with flags 0, an
  ``int`` as decimal with flags 4 (``incr`` and released Flask-Caching read it as
  the number). Reading accepts only those two forms; an item flagged pickled,
  compressed, text or anything else is a miss, never unpickled or inflated. The
  serializer is called as ``dumps_for(name, value)`` / ``loads_for(name, data)``
  when it has them, ``name`` being the key prefix + the cache key (before any
  hashing), so the signed serializer binds each item to the key it belongs to.
"""

from __future__ import annotations

import logging
import pickle
import typing as t
import zlib

from ..serializers import PickleSerializer, Serializer, dumps_for, loads_for

__all__ = [
    "FLAG_BOOL",
    "FLAG_BYTES",
    "FLAG_INFLATED",
    "FLAG_INT",
    "FLAG_PICKLE",
    "FLAG_TEXT",
    "FLAG_ZLIB",
    "INFLATE_LIMIT",
    "MISS",
    "Codec",
    "Item",
    "OwnedCodec",
    "PylibmcCodec",
    "codec_for",
    "pylibmc_item",
]

logger = logging.getLogger("flask_caching")

FLAG_BYTES = 0
FLAG_PICKLE = 1
#: pylibmc's "integer" flag; pylibmc writes ``bool`` with it, python-memcached ``int``
FLAG_BOOL = 2
FLAG_INT = 4
FLAG_ZLIB = 8
FLAG_TEXT = 16
#: not a memcached flag (those are 32 bits): set by the pylibmc driver on a zlib
#: item that libmemcached's client already inflated, before any Python hook runs
FLAG_INFLATED = 1 << 32
#: the largest value a compressed item may inflate to (bytes); larger is a miss
INFLATE_LIMIT = 64 * 1024 * 1024

#: what :meth:`Codec.load` returns for an item that is not a value (a miss)
MISS: t.Any = object()


class Item(t.NamedTuple):
    """One memcached item as stored: its bytes and its flags word."""

    data: bytes
    flags: int


def pylibmc_item(value: t.Any) -> Item:
    """The item pylibmc writes for *value* (see the table in the module docstring)."""
    if isinstance(value, bytes):
        return Item(bytes(value), FLAG_BYTES)
    if isinstance(value, str):
        try:
            return Item(value.encode("utf-8"), FLAG_TEXT)
        except UnicodeEncodeError:  # lone surrogates: pylibmc refuses, we pickle
            pass
    elif isinstance(value, bool):
        return Item(b"1" if value else b"0", FLAG_BOOL)
    elif isinstance(value, int):
        return Item(int.__repr__(value).encode("ascii"), FLAG_INT)
    return Item(pickle.dumps(value, pickle.HIGHEST_PROTOCOL), FLAG_PICKLE)


def _inflate(data: bytes) -> bytes | None:
    """*data* decompressed, or ``None`` if it is not zlib or inflates too far."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, INFLATE_LIMIT)
    except zlib.error:
        return None
    if inflater.unconsumed_tail or not inflater.eof:
        return None
    return out


class Codec(t.Protocol):
    """Turns values into :class:`Item` objects and back for one serializer."""

    def dump(self, value: t.Any, name: str) -> Item | None:
        """The item to store under *name*, or ``None`` when it cannot be stored."""

    def load(self, item: Item, name: str) -> t.Any:
        """The value *item* (stored under *name*) holds, or :data:`MISS`."""


class PylibmcCodec:
    """pylibmc's format (the default serializer): see the module docstring."""

    def dump(self, value: t.Any, name: str) -> Item | None:
        """The item pylibmc would write for *value* (the same under every name)."""
        return pylibmc_item(value)

    def load(self, item: Item, name: str) -> t.Any:
        """Read any flags pylibmc or python-memcached write; unknown flags miss."""
        data, flags = item
        if flags & FLAG_INFLATED:
            flags &= ~(FLAG_INFLATED | FLAG_ZLIB)
        elif flags & FLAG_ZLIB:
            inflated = _inflate(data)
            if inflated is None:
                return MISS
            data, flags = inflated, flags & ~FLAG_ZLIB
        try:
            if flags == FLAG_BYTES:
                return data
            if flags == FLAG_TEXT:
                return data.decode("utf-8")
            if flags == FLAG_INT:
                return int(data)
            if flags == FLAG_BOOL:
                if data in (b"0", b"1", b"True", b"False"):
                    return data in (b"1", b"True")
                return int(data)
            if flags == FLAG_PICKLE:
                return pickle.loads(data)
        except Exception:
            logger.debug("unreadable memcached item treated as a miss", exc_info=True)
            return MISS
        logger.debug("memcached item with unknown flags %#x treated as a miss", flags)
        return MISS


class OwnedCodec:
    """A serializer of ours owns every byte: only its output and decimal ints are
    read, so no forged flag can make anything unpickle or inflate."""

    __slots__ = ("_serializer",)

    def __init__(self, serializer: Serializer) -> None:
        self._serializer = serializer

    def dump(self, value: t.Any, name: str) -> Item | None:
        """Decimal text for an ``int`` (flags 4), else the serializer's bytes."""
        if type(value) is int:
            return Item(int.__repr__(value).encode("ascii"), FLAG_INT)
        payload = dumps_for(self._serializer, name, value)
        return Item(payload, FLAG_BYTES) if isinstance(payload, bytes) else None

    def load(self, item: Item, name: str) -> t.Any:
        """The serializer's value for flags 0, an int for flags 4, else a miss."""
        data, flags = item
        try:
            if flags == FLAG_BYTES:
                return loads_for(self._serializer, name, data)
            if flags == FLAG_INT:
                return int(data)
        except Exception:
            logger.debug("unreadable memcached item treated as a miss", exc_info=True)
            return MISS
        logger.debug("memcached item flagged %#x refused by the serializer", flags)
        return MISS


def codec_for(serializer: Serializer) -> Codec:
    """pylibmc's format for the default pickle serializer, else the serializer's."""
    if type(serializer) is PickleSerializer:
        return PylibmcCodec()
    return OwnedCodec(serializer)
