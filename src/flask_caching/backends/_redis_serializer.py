"""The bytes the Redis backends store, and how they read them back.

The default, :class:`RedisSerializer`, writes what released Flask-Caching writes through
cachelib (so old and new instances share one Redis): an ``int`` (not a ``bool``) as
ASCII decimal, so INCRBY works on it, and anything else as ``b"!"`` + pickle. Reading it
also accepts this project's earlier format (plain pickle, a leading ``b"\\x80"``), so an
upgrade keeps its cache, and hands back bytes in no known format unchanged, as cachelib
does (another program's string, not a miss).

Any other serializer assigned to a backend (``backend.serializer = JSONSerializer()``)
sees every value but ints, which stay decimal outside it; bytes it refuses are a miss.
It is called as ``dumps_for(name, value)`` / ``loads_for(name, data)`` when it has
those, ``name`` being the Redis key (prefix + key), so the signed serializer binds
each entry to the name it is stored under.
"""

from __future__ import annotations

import logging
import pickle
import typing as t

from cachelib.serializers import RedisSerializer as _CachelibRedisSerializer

from ..serializer_base import dumps_for, loads_for

__all__ = ["RedisSerializer", "dump_value", "load_value"]

logger = logging.getLogger("flask_caching")

_PICKLE_MARK = b"!"
_LEGACY_PICKLE = b"\x80"
#: first bytes an ASCII integer may start with (what ``int(bytes)`` accepts)
_INT_START = frozenset(b"-+0123456789 \t\n\r\x0b\x0c")


class RedisSerializer(_CachelibRedisSerializer):
    """cachelib's Redis format, written the same on every cachelib we support.

    cachelib 0.9 pickled ints as well; later releases (and released Flask-Caching,
    which needs them) store them as digits, which is what this writes.
    """

    def dumps(self, value: t.Any, protocol: int = pickle.HIGHEST_PROTOCOL) -> bytes:
        """Digits for an ``int``, else ``b"!"`` + ``pickle.dumps(value, protocol)``."""
        if type(value) is int:  # not bool: True must come back as True
            return str(value).encode("ascii")
        return _PICKLE_MARK + pickle.dumps(value, protocol)

    def loads(self, value: bytes | None) -> t.Any:
        """The value stored as *value*: pickled (either mark), an int, or the bytes.

        A pickle that does not load (corrupt, or naming a class that is gone) is a
        miss: its bytes are never served as if they were the value.
        """
        if value is None:
            return None
        mark = value[:1]
        if mark == _PICKLE_MARK or mark == _LEGACY_PICKLE:
            try:
                return pickle.loads(value[1:] if mark == _PICKLE_MARK else value)
            except Exception as exc:
                logger.debug("Unreadable pickled cache entry, a miss: %r", exc)
                return None
        try:
            return int(value)
        except ValueError:
            return value  # written by someone else: theirs to interpret


def dump_value(serializer: t.Any, value: t.Any, name: str) -> bytes:
    """The bytes to store for *value* under the Redis key *name*: ints as digits,
    the rest via *serializer*."""
    if type(value) is int:
        return str(value).encode("ascii")
    if isinstance(serializer, RedisSerializer):
        return serializer.dumps(value)
    return t.cast(bytes, dumps_for(serializer, name, value))


def load_value(serializer: t.Any, data: bytes | None, name: str) -> t.Any:
    """The value *data* (stored under *name*) holds, read by *serializer*; ``None``
    for a miss."""
    if data is None:
        return None
    if isinstance(serializer, RedisSerializer):
        return serializer.loads(data)
    if data[:1] and data[0] in _INT_START:
        try:
            return int(data)
        except ValueError:
            pass
    try:
        return loads_for(serializer, name, data)
    except Exception as exc:  # our serializers raise UnreadableValueError (logged)
        logger.debug("Cache entry refused by %r, a miss: %r", serializer, exc)
        return None
