"""An in-process cache: cachelib's ``SimpleCache`` with a lock around every change.

The dict has cachelib's layout, ``{key: (expires, serialized_bytes)}`` (``expires`` a
whole unix second, 0 = never), and the time comes from ``cachelib.simple.time`` at each
call, so code that freezes that clock freezes this cache too. Values go through
:attr:`SimpleCache.serializer` both ways, so a caller mutating what it got back never
changes what the next caller reads, exactly as with a network backend. A serializer
with ``dumps_for``/``loads_for`` gets the key too (the signed one binds entries to it).
"""

from __future__ import annotations

import heapq
import logging
import math
import pickle
import threading
import time
import typing as t

import cachelib.simple
from cachelib import SimpleCache as _CachelibSimpleCache

from ..serializers import PickleSerializer, dumps_for, loads_for
from .base import _STDLIB_TIME, BaseCache, Timeout, deprecated_ignore_errors

if t.TYPE_CHECKING:
    from flask import Flask
    from typing_extensions import Self

__all__ = ["SimpleCache"]

logger = logging.getLogger("flask_caching")


def _now() -> float:
    # a patched cachelib.simple.time (or time.time) moves expiry
    clock = cachelib.simple.time  # type: ignore[attr-defined]
    now: float = time.time() if clock is _STDLIB_TIME else clock()
    return now


class SimpleCache(BaseCache, _CachelibSimpleCache):
    """A thread-safe in-memory cache of about *threshold* entries.

    :param threshold: before an insert that finds more than this many entries,
        expired entries go, then those expiring soonest (cachelib's rule, so it
        holds at most ``threshold + 1``). ``0`` means cachelib's default, 500.
    :param default_timeout: seconds an entry lives by default; ``0`` = forever.
    :param ignore_delete_many_errors: see :class:`~.base.BaseCache`.
    :param ignore_errors: deprecated alias of *ignore_delete_many_errors*; warns.
    """

    batched_get_many = True

    #: cachelib's SimpleSerializer (our subclass of it); assign another to change
    #: the format: it is used for every get and set
    serializer: t.Any = PickleSerializer()

    def __init__(
        self,
        threshold: int = 500,
        default_timeout: Timeout = 300,
        ignore_delete_many_errors: bool = False,
        ignore_errors: bool | None = None,
    ) -> None:
        flag = deprecated_ignore_errors(ignore_errors, ignore_delete_many_errors)
        BaseCache.__init__(self, default_timeout, ignore_delete_many_errors=flag)
        if isinstance(threshold, bool) or not isinstance(threshold, int):
            raise ValueError(f"threshold must be an int >= 0, got {threshold!r}")
        if threshold < 0:
            raise ValueError(f"threshold must be an int >= 0, got {threshold!r}")
        self._cache: dict[str, tuple[int, bytes]] = {}
        self._threshold = threshold or 500
        self._lock = threading.RLock()

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
        kwargs.setdefault("threshold", config.get("CACHE_THRESHOLD", 500))
        kwargs.setdefault("default_timeout", config.get("CACHE_DEFAULT_TIMEOUT", 300))
        kwargs.setdefault(
            "ignore_delete_many_errors", bool(config.get("CACHE_IGNORE_ERRORS"))
        )
        return cls(*args, **kwargs)

    # -- helpers (called with the lock held where they change the dict) ------------

    def _expires(self, timeout: Timeout, now: float) -> int | None:
        """The stored expiry: 0 for never, None for "already expired"."""
        seconds = self._normalize_timeout(timeout)
        if seconds == 0:
            return 0
        if seconds < 0:
            return None
        # cachelib's whole seconds: the entry lives between seconds - 1 and seconds
        return int(now) + seconds

    def _prune(self) -> None:
        """cachelib's rule: over the threshold, drop expired, then soonest to expire.

        Unlike cachelib's, entries that never expire are neither "expired" nor
        the first to go.
        """
        if len(self._cache) <= self._threshold:
            return
        now = _now()
        for key in [k for k, (exp, _) in self._cache.items() if 0 < exp <= now]:
            del self._cache[key]
        overflow = len(self._cache) - self._threshold
        if overflow > 0:
            items = self._cache.items()
            soonest = heapq.nsmallest(
                overflow, items, key=lambda item: item[1][0] or math.inf
            )
            for key, _item in soonest:
                del self._cache[key]

    def _live(self, key: str, now: float) -> tuple[int, bytes] | None:
        item = self._cache.get(key)
        if item is None or (item[0] and item[0] <= now):
            return None
        return item

    def _loads(self, key: str, data: bytes) -> t.Any:
        try:
            return loads_for(self.serializer, key, data)
        except Exception:
            logger.debug("SimpleCache: unreadable entry, a miss", exc_info=True)
            return None

    # -- the cache interface -------------------------------------------------------

    def get(self, key: str) -> t.Any:
        # inlined (no helper calls): this is every decorator hit's only call
        item = self._cache.get(key)
        if item is None or (item[0] and item[0] <= _now()):
            return None
        try:
            if type(self.serializer) is PickleSerializer:  # the default: skip a call
                return pickle.loads(item[1])
            return loads_for(self.serializer, key, item[1])
        except Exception:
            logger.debug("SimpleCache: unreadable entry, a miss", exc_info=True)
            return None

    def get_many(self, *keys: str) -> list[t.Any]:
        cache = self._cache
        serializer = self.serializer
        default = type(serializer) is PickleSerializer
        now = _now()
        values: list[t.Any] = []
        for key in keys:
            item = cache.get(key)
            if item is None or (item[0] and item[0] <= now):
                values.append(None)
                continue
            try:
                if default:
                    values.append(pickle.loads(item[1]))
                else:
                    values.append(loads_for(serializer, key, item[1]))
            except Exception:
                logger.debug("SimpleCache: unreadable entry, a miss", exc_info=True)
                values.append(None)
        return values

    def has(self, key: str) -> bool:
        return self._live(key, _now()) is not None

    def _store(self, key: str, value: t.Any, timeout: Timeout, only_new: bool) -> bool:
        data = dumps_for(self.serializer, key, value)
        if data is None:  # cachelib's serializer returns None when pickling fails
            return False
        with self._lock:
            now = _now()
            if only_new and self._live(key, now) is not None:
                return False
            expires = self._expires(timeout, now)
            if expires is None:
                self._cache.pop(key, None)
                return True
            if key not in self._cache:
                self._prune()
            self._cache[key] = (expires, data)
            return True

    def set(self, key: str, value: t.Any, timeout: Timeout = None) -> bool:
        return self._store(key, value, timeout, only_new=False)

    def add(self, key: str, value: t.Any, timeout: Timeout = None) -> bool:
        return self._store(key, value, timeout, only_new=True)

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._cache.pop(key, None) is not None

    def acquire_lock(self, key: str, token: str, timeout: float) -> bool:
        """Take the lock as :class:`~.base.BaseCache` does, with one second more:
        expiry counts whole seconds, so the lease lasts at least *timeout*."""
        return self.add(key, token, timeout=math.ceil(timeout) + 1)

    def release_lock(self, key: str, token: str) -> bool:
        """Compare the owner token and delete under the dict's lock (atomic)."""
        with self._lock:
            item = self._live(key, _now())
            if item is None or self._loads(key, item[1]) != token:
                return False
            del self._cache[key]
            return True

    def clear(self) -> bool:
        with self._lock:
            self._cache.clear()
        return True

    def inc(self, key: str, delta: int = 1) -> int | None:
        """Add *delta* atomically; a missing key starts at 0 with the default
        timeout, an existing one keeps its expiry. A non-int value raises TypeError.
        """
        with self._lock:
            now = _now()
            item = self._live(key, now)
            if item is None:
                expires = self._expires(None, now)
                current: t.Any = 0
            else:
                expires, current = item[0], self._loads(key, item[1])
            if not isinstance(current, int) or isinstance(current, bool):
                raise TypeError(f"cannot increment non-integer value at {key!r}")
            value: int = current + delta
            if expires is None:  # a negative default timeout: nothing is kept
                self._cache.pop(key, None)
                return value
            if item is None and key not in self._cache:
                self._prune()
            self._cache[key] = (expires, dumps_for(self.serializer, key, value))
            return value

    def dec(self, key: str, delta: int = 1) -> int | None:
        return self.inc(key, -delta)
