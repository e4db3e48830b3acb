"""Cache keys as memcached keys: the prefix check and :class:`KeyMapper`.

memcached accepts keys of printable ASCII without spaces, at most
:data:`MAX_KEY_LENGTH` bytes; any other cache key is hashed, so every ``str`` key
can be stored and two keys never share a memcached key.
"""

from __future__ import annotations

import hashlib
import re
import typing as t
from collections.abc import Callable

from ..exceptions import ConfigurationError

__all__ = [
    "MAX_KEY_LENGTH",
    "MEMO_SIZE",
    "RESERVED_SUFFIX_LENGTH",
    "KeyMapper",
    "Prefix",
    "check_prefix",
]

#: memcached refuses keys longer than this many bytes
MAX_KEY_LENGTH = 250
#: the longest suffix we append to the prefix ourselves ("~h:" + a sha256 hex digest)
RESERVED_SUFFIX_LENGTH = 3 + 64
#: how many key mappings a :class:`KeyMapper` with a fixed prefix remembers
MEMO_SIZE = 2048

# A key is passed through unchanged only when memcached accepts it as it is: printable
# ASCII without spaces, and not starting with "~", which we keep for our own keys.
_PLAIN_KEY = re.compile(r"[!-}][!-~]*\Z")

Prefix: t.TypeAlias = "str | t.Callable[[], str]"


def check_prefix(prefix: str) -> str:
    """Return *prefix* if memcached keys can start with it, else raise."""
    if not isinstance(prefix, str) or (prefix and not _PLAIN_KEY.match(prefix)):
        raise ConfigurationError(
            f"CACHE_KEY_PREFIX must be printable ASCII without spaces, got {prefix!r}"
        )
    if len(prefix) > MAX_KEY_LENGTH - RESERVED_SUFFIX_LENGTH:
        raise ConfigurationError(
            f"CACHE_KEY_PREFIX is {len(prefix)} characters; memcached keys are "
            f"limited to {MAX_KEY_LENGTH} bytes, so keep the prefix at most "
            f"{MAX_KEY_LENGTH - RESERVED_SUFFIX_LENGTH} characters"
        )
    return prefix


class KeyMapper:
    """Map cache keys onto memcached keys, collision-free.

    A key that memcached accepts as it is (printable ASCII, no spaces, not starting
    with ``~``, at most 250 bytes with the prefix) is only prefixed. Every other key
    becomes ``prefix + "~h:" + sha256(key)``; since no pass-through key starts with
    ``~``, a mapped key can never equal a pass-through one. Keys beginning ``~c:`` are
    left for spread chunks (see :class:`~.memcache.SpreadSASLMemcachedCache`).
    Either way the memcached key starts with the prefix, so ``clear()`` finds it.

    *prefix* may be a callable returning the prefix (evaluated on every call).
    :attr:`map` is the mapping as a plain function; with a fixed prefix it remembers
    the last :data:`MEMO_SIZE` keys (then starts over).
    """

    __slots__ = ("_prefix", "map")

    def __init__(self, prefix: Prefix) -> None:
        self._prefix: Prefix
        #: key -> memcached key
        self.map: Callable[[str], str]
        if callable(prefix):
            self._prefix = prefix
            self.map = self._map
        else:
            self._prefix = check_prefix(prefix)
            self.map = self._memoized(self._prefix)

    @property
    def prefix(self) -> str:
        """The current prefix."""
        if callable(self._prefix):
            return check_prefix(self._prefix())
        return self._prefix

    def __call__(self, key: str) -> str:
        return self.map(key)

    def _map(self, key: str) -> str:
        if not isinstance(key, str):
            raise TypeError(f"cache keys must be str, got {type(key).__name__}")
        prefix = self.prefix
        if len(key) <= MAX_KEY_LENGTH - len(prefix) and _PLAIN_KEY.match(key):
            return prefix + key
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{prefix}~h:{digest}"

    def _memoized(self, prefix: str) -> Callable[[str], str]:
        memo: dict[str, str] = {}
        room = MAX_KEY_LENGTH - len(prefix)
        slow = self._map

        def map_key(key: str) -> str:
            try:
                return memo[key]
            except KeyError:
                pass
            except TypeError:  # unhashable, so not a str: _map says so
                return slow(key)
            # what _PLAIN_KEY accepts, with C string methods: printable ASCII
            # (0x20-0x7e) without spaces, not empty, not starting with "~"
            if (
                type(key) is str
                and 0 < len(key) <= room
                and key.isascii()
                and key.isprintable()
                and " " not in key
                and key[0] != "~"
            ):
                mapped = prefix + key
            else:
                mapped = slow(key)
            if len(memo) >= MEMO_SIZE:
                memo.clear()
            memo[key] = mapped
            return mapped

        return map_key
