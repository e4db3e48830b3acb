"""Cache keys as memcached keys: the prefix check and :class:`KeyMapper`.

memcached accepts keys without spaces or control characters, at most
:data:`MAX_KEY_LENGTH` bytes (UTF-8); such keys are stored as they are, as released
Flask-Caching stores them. Any other cache key is hashed, so every ``str`` key can be
stored.
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
    "RESERVED",
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

# A key is passed through unchanged when memcached (and every client library we
# drive) accepts it as it is: no spaces, no ASCII control characters, no DEL.
_PLAIN_KEY = re.compile(r"[^\x00-\x20\x7f]+\Z")

#: how our own keys start after the prefix (hashed keys, spread chunks); a key of
#: yours that starts so is hashed too, so two keys never share a memcached key
RESERVED = ("~h:", "~c:")

Prefix: t.TypeAlias = "str | t.Callable[[], str]"


def check_prefix(prefix: str) -> str:
    """Return *prefix* if memcached keys can start with it, else raise."""
    if not isinstance(prefix, str) or (prefix and not _PLAIN_KEY.match(prefix)):
        raise ConfigurationError(
            "CACHE_KEY_PREFIX must not contain spaces or control characters, "
            f"got {prefix!r}"
        )
    if _size(prefix) > MAX_KEY_LENGTH - RESERVED_SUFFIX_LENGTH:
        raise ConfigurationError(
            f"CACHE_KEY_PREFIX is {len(prefix)} characters; memcached keys are "
            f"limited to {MAX_KEY_LENGTH} bytes, so keep the prefix at most "
            f"{MAX_KEY_LENGTH - RESERVED_SUFFIX_LENGTH} characters"
        )
    return prefix


def _size(text: str) -> int:
    """Length of *text* in memcached bytes (UTF-8; lone surrogates as-is)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


class KeyMapper:
    """Map cache keys onto memcached keys, collision-free.

    A key that memcached accepts as it is (no spaces or control characters, at most
    250 bytes of UTF-8 with the prefix) is only prefixed, as released Flask-Caching
    does. Every other key becomes ``prefix + "~h:" + sha256(key)``, and spread
    chunks use ``prefix + "~c:..."`` (see
    :class:`~.memcache.SpreadSASLMemcachedCache`); a key that itself starts with
    ``~h:`` or ``~c:`` is hashed too, so no two keys share a memcached key.

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
        if (
            _PLAIN_KEY.match(key)
            and not key.startswith(RESERVED)
            and _size(key) <= MAX_KEY_LENGTH - _size(prefix)
            and not _has_surrogate(key)
        ):
            return prefix + key
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{prefix}~h:{digest}"

    def _memoized(self, prefix: str) -> Callable[[str], str]:
        memo: dict[str, str] = {}
        room = MAX_KEY_LENGTH - _size(prefix)
        slow = self._map

        def map_key(key: str) -> str:
            try:
                return memo[key]
            except KeyError:
                pass
            except TypeError:  # unhashable, so not a str: _map says so
                return slow(key)
            # the common case of what _map accepts, with C string methods:
            # printable ASCII (0x20-0x7e) without spaces, not empty
            if (
                type(key) is str
                and 0 < len(key) <= room
                and key.isascii()
                and key.isprintable()
                and " " not in key
                and not key.startswith(RESERVED)
            ):
                mapped = prefix + key
            else:
                mapped = slow(key)
            if len(memo) >= MEMO_SIZE:
                memo.clear()
            memo[key] = mapped
            return mapped

        return map_key


def _has_surrogate(text: str) -> bool:
    """True if *text* holds a lone surrogate (no client library can send it)."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
