"""Serializers: turn cache values into bytes and back, and decide which bytes to trust.

A backend holds one serializer with cachelib's interface: ``dumps(value) -> bytes``,
``loads(data) -> value``, and ``dump(value, f)`` / ``load(f)`` on a binary stream (used
by FileSystemCache). The extension builds it from ``CACHE_SERIALIZER`` with
:func:`resolve_serializer` at ``init_app``. What someone able to write to the cache
server can then do:

- ``"pickle"`` (default), :class:`PickleSerializer` (a subclass of cachelib's
  ``SimpleSerializer``, writing its bytes): run code in the app;
- ``"json"``, :class:`JSONSerializer`: change cached data, never run code;
- ``"pickle-signed"``, :class:`SignedPickleSerializer`: nothing, without the secret key.

The first byte names the format, so changing ``CACHE_SERIALIZER`` turns old entries into
misses instead of misreading them, and a later format can be told apart::

    b"\\x80..."  plain pickle, protocol 2+ (as released Flask-Caching writes it);
                b"!" + pickle (cachelib's Redis format) is read as well
    b"\\x01..."  signed pickle v1 (not bound to its key): refused, read as a miss
    b"\\x02..."  tagged JSON v1, UTF-8
    b"\\x03..."  signed pickle v2, bound to the cache key:
                b"\\x03" + HMAC(k, b"\\x03" + len(key) + key + pickle) + pickle

No format starts with an ASCII digit or sign: the Redis and memcached backends store
``int`` values as plain decimal bytes *outside* the serializer so that INCR/DECR
(``inc``/``dec``) keep working. Those integers are not signed, but cannot carry code.

Backends call ``dumps_for(key, value)`` / ``loads_for(key, data)`` when the serializer
has them (every :class:`BaseSerializer` does) and ``dumps`` / ``loads`` otherwise, so
the signed serializer can bind each entry to its key; the others ignore the key.

``loads`` returns the value or raises :class:`UnreadableValueError` (its subclass
:class:`UnsafeValueError` when a signature does not verify) after logging a warning on
the ``flask_caching`` logger. Backends and decorators treat either as a miss.

This module holds the default :class:`PickleSerializer` and :func:`resolve_serializer`;
the others live in :mod:`.signed_serializer` and :mod:`.json_serializer`, on the shared
:mod:`.serializer_base`. Every name stays importable from here.
"""

from __future__ import annotations

import importlib
import pickle
import typing as t
from collections.abc import Iterable

from cachelib.serializers import SimpleSerializer

from .exceptions import ConfigurationError
from .json_serializer import JSONSerializer
from .serializer_base import (
    LEGACY_REDIS,
    PICKLE_PROTOCOL,
    BaseSerializer,
    Serializer,
    UnreadableValueError,
    UnsafeValueError,
    describe,
    dumps_for,
    loads_for,
    logger,
    refused,
)
from .signed_serializer import ALGORITHMS, SignedPickleSerializer, check_algorithm

__all__ = [
    "ALGORITHMS",
    "PICKLE_PROTOCOL",
    "BaseSerializer",
    "JSONSerializer",
    "PickleSerializer",
    "Serializer",
    "SignedPickleSerializer",
    "UnreadableValueError",
    "UnsafeValueError",
    "check_algorithm",
    "dumps_for",
    "loads_for",
    "logger",
    "resolve_serializer",
]


class PickleSerializer(BaseSerializer, SimpleSerializer):
    """Plain pickle, the default: stores any picklable object.

    A subclass of cachelib's ``SimpleSerializer`` writing the same bytes (pickle
    protocol 5, cachelib's ``HIGHEST_PROTOCOL`` on every supported Python), so
    entries are shared with released Flask-Caching. Unlike cachelib's, a value that
    cannot be read raises :class:`UnreadableValueError` (logged on the
    ``flask_caching`` logger) instead of warning on the root logger. Use it only when
    nobody untrusted can write to the cache server: unpickling runs code named by
    the data.
    """

    __slots__ = ("protocol",)

    def __init__(self, protocol: int = PICKLE_PROTOCOL) -> None:
        self.protocol = protocol

    def dumps(self, value: t.Any, protocol: int | None = None) -> bytes:
        """Pickle ``value`` (with *protocol* if given, else :attr:`protocol`)."""
        return pickle.dumps(value, self.protocol if protocol is None else protocol)

    def loads(self, bvalue: bytes) -> t.Any:
        """Unpickle *bvalue*; skip a leading ``b"!"`` (cachelib's Redis marker)."""
        try:
            if bvalue[:1] == LEGACY_REDIS:
                return pickle.loads(memoryview(bvalue)[1:])
            return pickle.loads(bvalue)
        except Exception as exc:
            reason = f"{describe(bvalue)} could not be unpickled: {exc!r}"
            raise refused(UnreadableValueError, reason) from exc

    def dump(self, value: t.Any, f: t.IO[bytes], protocol: int | None = None) -> None:
        """Write ``dumps(value)`` to the binary stream *f*."""
        f.write(self.dumps(value, protocol))

    def load(self, f: t.IO[bytes]) -> t.Any:
        """Read the rest of the binary stream *f* and ``loads`` it."""
        return self.loads(f.read())


class _StreamAdapter(BaseSerializer):
    """Give a dumps/loads-only object the stream pair FileSystemCache calls."""

    __slots__ = ("wrapped",)

    def __init__(self, wrapped: t.Any) -> None:
        self.wrapped = wrapped

    def dumps(self, value: t.Any) -> bytes:
        """Delegate to the wrapped serializer."""
        return t.cast(bytes, self.wrapped.dumps(value))

    def loads(self, data: bytes) -> t.Any:
        """Delegate to the wrapped serializer."""
        return self.wrapped.loads(data)

    def dumps_for(self, key: str, value: t.Any) -> bytes:
        """The wrapped serializer's ``dumps_for`` if it has one, else ``dumps``."""
        return t.cast(bytes, dumps_for(self.wrapped, key, value))

    def loads_for(self, key: str, data: bytes) -> t.Any:
        """The wrapped serializer's ``loads_for`` if it has one, else ``loads``."""
        return loads_for(self.wrapped, key, data)


_CHOICES = (
    "use 'pickle' (the default), 'json', 'pickle-signed', a serializer object, or an"
    " import string such as 'package.module:serializer'."
)


def _import(path: str) -> object:
    """Import ``package.module.name`` or ``package.module:name.attr``."""
    module_name, colon, attribute = path.partition(":")
    if not colon:
        module_name, _, attribute = path.rpartition(".")
    try:
        if not module_name or not attribute:
            raise ImportError("no module or attribute part")
        found: object = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except Exception as exc:
        raise ConfigurationError(
            f"CACHE_SERIALIZER={path!r} could not be imported ({exc!r}); {_CHOICES}"
        ) from exc
    return found


def resolve_serializer(
    setting: object = None,
    *,
    secret_keys: Iterable[str | bytes | None] | str | bytes = (),
    algorithm: str = "sha256",
) -> Serializer:
    """Turn a ``CACHE_SERIALIZER`` setting into a serializer object.

    ``setting`` is None or ``"pickle"`` (the default), ``"json"``, ``"pickle-signed"``,
    an object with ``dumps``/``loads`` (e.g. a cachelib serializer), a class (built
    with no arguments), or an import string naming either. ``secret_keys`` (first
    signs, all verify) and ``algorithm`` (``CACHE_SERIALIZER_ALGORITHM``) serve
    ``"pickle-signed"``; the algorithm is checked whatever the setting, so a typo fails
    at ``init_app``. Every result has ``dump``/``load`` too: others are wrapped.
    """
    checked = check_algorithm(algorithm)
    given = setting
    if setting is None:
        return PickleSerializer()
    if isinstance(setting, str):
        name = setting.strip().lower()
        if name == "pickle":
            return PickleSerializer()
        if name == "json":
            return JSONSerializer()
        if name == "pickle-signed":
            return SignedPickleSerializer(secret_keys, algorithm=checked)
        if "." not in name and ":" not in name:
            raise ConfigurationError(
                f"CACHE_SERIALIZER={given!r} is not a known serializer; {_CHOICES}"
            )
        setting = _import(setting.strip())
    if isinstance(setting, type):
        try:
            setting = setting()
        except Exception as exc:
            raise ConfigurationError(
                f"Couldn't instantiate serializer: {setting}! CACHE_SERIALIZER="
                f"{given!r} names a class that cannot be built with no arguments"
                f" ({exc!r}); pass an instance instead."
            ) from exc
    if not all(callable(getattr(setting, m, None)) for m in ("dumps", "loads")):
        raise ConfigurationError(
            f"CACHE_SERIALIZER={given!r} is not a serializer: it needs methods"
            " dumps(value) -> bytes and loads(bytes) -> value."
        )
    if all(callable(getattr(setting, m, None)) for m in ("dump", "load")):
        return t.cast(Serializer, setting)
    return _StreamAdapter(setting)
