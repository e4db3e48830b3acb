"""An in-process cache: a dict guarded by a lock, values stored serialized.

Values are serialized on the way in, so a caller mutating what it got back never
changes what the next caller reads, exactly as with a network backend.
"""

from __future__ import annotations

import threading
import time
import typing as t

from ..serializers import PickleSerializer
from .base import BaseCache, Timeout

if t.TYPE_CHECKING:
    from flask import Flask
    from typing_extensions import Self


class SimpleCache(BaseCache):
    """A thread-safe in-memory cache holding at most *threshold* entries.

    :param threshold: when exceeded, expired entries go first, then the oldest ones.
        ``0`` means unbounded.
    :param default_timeout: seconds an entry lives by default; ``0`` = forever.
    """

    batched_get_many = True

    def __init__(
        self,
        threshold: int = 500,
        default_timeout: Timeout = 300,
        ignore_errors: bool = False,
    ) -> None:
        super().__init__(default_timeout=default_timeout)
        if not isinstance(threshold, int) or threshold < 0:
            raise ValueError(f"threshold must be an int >= 0, got {threshold!r}")
        #: key -> (expiry, value or its serialized bytes, serialized?)
        self._cache: dict[str, tuple[float, t.Any, bool]] = {}
        self._threshold = threshold
        self._lock = threading.Lock()
        self.ignore_errors = ignore_errors
        self.serializer: t.Any = PickleSerializer()

    @classmethod
    def factory(
        cls,
        app: Flask,
        config: t.Mapping[str, t.Any],
        args: list[t.Any],
        kwargs: dict[str, t.Any],
    ) -> Self:
        """Map CACHE_THRESHOLD, CACHE_DEFAULT_TIMEOUT and CACHE_IGNORE_ERRORS."""
        kwargs = dict(kwargs)
        kwargs.setdefault("threshold", config["CACHE_THRESHOLD"])
        kwargs.setdefault("default_timeout", config["CACHE_DEFAULT_TIMEOUT"])
        kwargs.setdefault("ignore_errors", config["CACHE_IGNORE_ERRORS"])
        return cls(*args, **kwargs)

    def _expiry(self, timeout: Timeout) -> float | None:
        seconds = self._normalize_timeout(timeout)
        if seconds == 0:
            return 0.0
        if seconds < 0:
            return None
        return time.time() + seconds

    def _prune(self, now: float) -> None:
        # Called with the lock held, before adding one entry.
        if not self._threshold or len(self._cache) < self._threshold:
            return
        for key in [k for k, item in self._cache.items() if 0 < item[0] <= now]:
            del self._cache[key]
        overflow = len(self._cache) - self._threshold + 1
        if overflow > 0:
            # dicts keep insertion order; the first keys are the oldest writes
            for key in list(self._cache)[:overflow]:
                del self._cache[key]

    def _encode(self, value: t.Any) -> tuple[t.Any, bool]:
        """What to keep for *value*, and whether it was serialized.

        Immutable values (str, numbers, bytes, None, and tuples of them: every
        decorator entry of a string view) are kept as they are, since nobody can
        change them; anything else is serialized so callers get their own copy.
        """
        if _frozen(value):
            return value, False
        return self.serializer.dumps(value), True

    def get(self, key: str) -> t.Any:
        item = self._cache.get(key)
        if item is None or (item[0] and item[0] <= time.time()):
            return None
        if not item[2]:
            return item[1]
        try:
            return self.serializer.loads(item[1])
        except Exception:
            return None

    def get_many(self, *keys: str) -> list[t.Any]:
        # one loop with local names: this is every decorator hit's only call
        cache = self._cache
        loads = self.serializer.loads
        now = time.time()
        values: list[t.Any] = []
        for key in keys:
            item = cache.get(key)
            if item is None or (item[0] and item[0] <= now):
                values.append(None)
                continue
            if not item[2]:
                values.append(item[1])
                continue
            try:
                values.append(loads(item[1]))
            except Exception:
                values.append(None)
        return values

    def _store(self, key: str, value: t.Any, timeout: Timeout, only_new: bool) -> bool:
        expires = self._expiry(timeout)
        data, pickled = self._encode(value)
        with self._lock:
            now = time.time()
            current = self._cache.get(key)
            live = current is not None and not (0 < current[0] <= now)
            if only_new and live:
                return False
            if expires is None:
                self._cache.pop(key, None)
                return True
            if current is None:
                self._prune(now)
            else:
                del self._cache[key]  # re-insert so the order stays "oldest first"
            self._cache[key] = (expires, data, pickled)
            return True

    def set(self, key: str, value: t.Any, timeout: Timeout = None) -> bool:
        return self._store(key, value, timeout, only_new=False)

    def add(self, key: str, value: t.Any, timeout: Timeout = None) -> bool:
        return self._store(key, value, timeout, only_new=True)

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._cache.pop(key, None) is not None

    def release_lock(self, key: str, token: str) -> bool:
        """Compare the owner token and delete under the dict's lock (atomic)."""
        with self._lock:
            item = self._cache.get(key)
            if item is None:
                return False
            try:
                held = self.serializer.loads(item[1]) if item[2] else item[1]
            except Exception:
                return False
            if held != token:
                return False
            del self._cache[key]
            return True

    def has(self, key: str) -> bool:
        item = self._cache.get(key)
        return item is not None and not (0 < item[0] <= time.time())

    def clear(self) -> bool:
        with self._lock:
            self._cache.clear()
        return True

    def inc(self, key: str, delta: int = 1) -> int | None:
        with self._lock:
            item = self._cache.get(key)
            now = time.time()
            if item is None or 0 < item[0] <= now:
                expires: float = self._expiry(None) or 0.0
                value = 0
            else:
                expires, data, pickled = item
                value = self.serializer.loads(data) if pickled else data
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"cannot increment non-integer value at {key!r}")
            value += delta
            self._cache[key] = (expires, value, False)
            return value

    def dec(self, key: str, delta: int = 1) -> int | None:
        return self.inc(key, -delta)


_IMMUTABLE = frozenset({str, bytes, int, float, bool, type(None)})


def _frozen(value: t.Any) -> bool:
    """True for values no caller can change: immutable scalars and tuples of them."""
    kind = type(value)
    if kind in _IMMUTABLE:
        return True
    return kind is tuple and all(_frozen(item) for item in value)
