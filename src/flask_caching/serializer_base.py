"""What every serializer shares: the format bytes, the errors, the base class.

Kept apart from :mod:`.serializers` so the signed and JSON serializers can build on
it without importing the module that picks between them (no import cycle).
"""

from __future__ import annotations

import logging
import typing as t

from .exceptions import CacheError

logger = logging.getLogger("flask_caching")

#: Readable by every supported Python. Pinned, not HIGHEST_PROTOCOL, so a newer Python
#: in a rolling deploy never writes pickles that older workers cannot read.
PICKLE_PROTOCOL = 5

#: the types ``loads`` accepts as stored bytes
BYTES_TYPES = (bytes, bytearray, memoryview)
#: first byte of each format (see :mod:`.serializers`)
SIGNED_V1 = b"\x01"
JSON_V1 = b"\x02"
SIGNED_V2 = b"\x03"
LEGACY_REDIS = b"!"
_FORMATS = {
    SIGNED_V1: "a signed pickle entry of the old format, not bound to its key",
    SIGNED_V2: "a signed pickle entry (CACHE_SERIALIZER='pickle-signed')",
    JSON_V1: "a JSON entry (CACHE_SERIALIZER='json')",
    b"\x80": "an unsigned pickle entry (CACHE_SERIALIZER='pickle')",
    LEGACY_REDIS: "an unsigned pickle entry (cachelib's Redis format)",
}


class UnreadableValueError(CacheError):
    """Stored bytes could not be turned back into a value: treat the entry as a miss.

    Raised for entries in another format (``CACHE_SERIALIZER`` changed), corrupted
    data, or pickles naming a class that no longer exists after a deploy.
    """


class UnsafeValueError(UnreadableValueError):
    """A signed entry failed verification (bad, missing or truncated signature).

    The payload was never unpickled. Treat the entry as a miss and drop it.
    """


class Serializer(t.Protocol):
    """What a backend needs from its ``serializer`` (cachelib's interface)."""

    def dumps(self, value: t.Any, /) -> bytes: ...
    def loads(self, data: bytes, /) -> t.Any: ...
    def dump(self, value: t.Any, f: t.IO[bytes], /) -> None: ...
    def load(self, f: t.IO[bytes], /) -> t.Any: ...


class BaseSerializer:
    """Base for serializers: the stream pair ``dump``/``load`` via ``dumps``/``loads``,
    and the key-aware pair ``dumps_for``/``loads_for`` that our backends call.

    Defined once so an entry has the same bytes whichever pair a backend calls. The
    key-aware pair ignores the key here; a serializer whose bytes must not be
    movable between keys (the signed one) binds them to it.
    """

    __slots__ = ()

    def dumps(self, value: t.Any) -> bytes:
        """Return the bytes to store for ``value``."""
        raise NotImplementedError

    def loads(self, data: bytes) -> t.Any:
        """Return the value stored as ``data``, or raise UnreadableValueError."""
        raise NotImplementedError

    def dumps_for(self, key: str, value: t.Any) -> bytes:
        """The bytes to store for ``value`` under ``key``; here ``dumps(value)``."""
        return self.dumps(value)

    def loads_for(self, key: str, data: bytes) -> t.Any:
        """The value stored as ``data`` under ``key``; here ``loads(data)``."""
        return self.loads(data)

    def dump(self, value: t.Any, f: t.IO[bytes]) -> None:
        """Write ``dumps(value)`` to the binary stream ``f``."""
        f.write(self.dumps(value))

    def load(self, f: t.IO[bytes]) -> t.Any:
        """Read the rest of the binary stream ``f`` and ``loads`` it."""
        return self.loads(f.read())


def dumps_for(serializer: t.Any, key: str, value: t.Any) -> t.Any:
    """``serializer.dumps_for(key, value)`` if it has one, else ``dumps(value)``.

    Backends store values through this, so serializers that know nothing of keys
    (cachelib's, an app's own) keep working; cachelib's may return ``None``.
    """
    keyed = getattr(serializer, "dumps_for", None)
    if keyed is None:
        return serializer.dumps(value)
    return keyed(key, value)


def loads_for(serializer: t.Any, key: str, data: bytes) -> t.Any:
    """``serializer.loads_for(key, data)`` if it has one, else ``loads(data)``."""
    keyed = getattr(serializer, "loads_for", None)
    if keyed is None:
        return serializer.loads(data)
    return keyed(key, data)


def describe(data: object) -> str:
    """Say what format an unreadable entry seems to be in: points at a config change."""
    if not isinstance(data, BYTES_TYPES):
        return f"a {type(data).__name__} entry (expected bytes)"
    unknown = f"an entry of {len(data)} bytes in no known format"
    return _FORMATS.get(bytes(data[:1]), unknown)


def refused(error: type[UnreadableValueError], reason: str) -> UnreadableValueError:
    """Log why an entry is ignored and return the error for the caller to raise."""
    logger.warning("Ignoring a cache entry, treated as a miss: %s", reason)
    return error(reason)
