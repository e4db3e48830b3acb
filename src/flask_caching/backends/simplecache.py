"""An in-process cache: cachelib's ``SimpleCache`` with a lock around every change.

The dict has cachelib's layout, ``{key: (expires, serialized_bytes)}`` (``expires`` a
whole unix second, 0 = never), and the time comes from ``cachelib.simple.time`` at each
call, so code that freezes that clock freezes this cache too. Values go through
:attr:`SimpleCache.serializer` both ways, so a caller mutating what it got back never
changes what the next caller reads, exactly as with a network backend. A serializer
with ``dumps_for``/``loads_for`` gets the key too (the signed one binds entries to it).

Two things make it faster than cachelib's, without changing what it holds. A full
cache finds what to drop through an index (:mod:`._simple_evict`) instead of a scan.
Under the default pickle, a ``str`` read once is kept beside its pickle, so a page
is unpickled only once; that costs the memory of the string.
"""

from __future__ import annotations

import logging
import math
import pickle
import threading
import time
import typing as t

import cachelib.simple
from cachelib import SimpleCache as _CachelibSimpleCache

from ..serializers import PickleSerializer, dumps_for, loads_for
from ._simple_evict import EvictionIndex
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


class _Read(bytes):
    """Stored bytes that also hold the ``str`` they decode to: a page read twice is
    unpickled once. Still the pickle (``isinstance(data, bytes)``), so the layout
    stays cachelib's; a ``str`` is immutable, so sharing it is safe."""

    value: str


def _decoded(
    cache: dict[str, tuple[int, bytes]],
    lock: t.Any,
    key: str,
    item: tuple[int, bytes],
    value: t.Any,
) -> t.Any:
    """Remember a read ``str`` in its entry (only if the entry is still *item*)."""
    if type(value) is str:
        kept = _Read(item[1])
        kept.value = value
        with lock:
            if cache.get(key) is item:
                cache[key] = (item[0], kept)
    return value


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
        #: which entries an over-full insert drops (cachelib's rule, indexed)
        self._evict = EvictionIndex()

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
        the first to go. :class:`._simple_evict.EvictionIndex` finds them without
        a scan of the dict.
        """
        if len(self._cache) > self._threshold:
            self._evict.prune(self._cache, self._threshold, _now())

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

    def _load(self, key: str, item: tuple[int, bytes]) -> t.Any:
        """The value of a live entry, None if it cannot be read; under the default
        pickle a ``str`` is kept with its entry (:class:`_Read`)."""
        data = item[1]
        try:
            if type(self.serializer) is not PickleSerializer:
                return loads_for(self.serializer, key, data)
            if type(data) is _Read:
                return data.value
            # the default: pickle itself, skipping two calls
            return _decoded(self._cache, self._lock, key, item, pickle.loads(data))
        except Exception:
            logger.debug("SimpleCache: unreadable entry, a miss", exc_info=True)
            return None

    def get(self, key: str) -> t.Any:
        item = self._cache.get(key)
        if item is None or (item[0] and item[0] <= _now()):
            return None
        if type(item[1]) is _Read and type(self.serializer) is PickleSerializer:
            return item[1].value  # a page read before: every view hit after the first
        return self._load(key, item)

    def get_many(self, *keys: str) -> list[t.Any]:
        cache = self._cache
        now = _now()
        values: list[t.Any] = []
        for key in keys:
            item = cache.get(key)
            if item is None or (item[0] and item[0] <= now):
                values.append(None)
            else:
                values.append(self._load(key, item))
        return values

    def has(self, key: str) -> bool:
        return self._live(key, _now()) is not None

    def _encode(self, key: str, value: t.Any) -> bytes | None:
        serializer = self.serializer
        if type(serializer) is PickleSerializer:  # the default: skip two calls
            return pickle.dumps(value, serializer.protocol)
        data: bytes | None = dumps_for(serializer, key, value)
        return data

    def _put(self, key: str, data: bytes, expires: int | None) -> None:
        """Write one encoded entry (the lock held); ``None`` expiry removes it."""
        cache = self._cache
        if expires is None:
            if cache.pop(key, None) is not None:
                self._evict.removed(key)
            return
        new = key not in cache
        if new:
            self._prune()
        cache[key] = (expires, data)
        self._evict.stored(key, expires, new)

    def _store(self, key: str, value: t.Any, timeout: Timeout, only_new: bool) -> bool:
        data = self._encode(key, value)
        if data is None:  # cachelib's serializer returns None when pickling fails
            return False
        with self._lock:
            now = _now()
            if only_new and self._live(key, now) is not None:
                return False
            self._put(key, data, self._expires(timeout, now))
            return True

    def set_many(
        self, mapping: t.Mapping[str, t.Any], timeout: Timeout = None
    ) -> list[t.Any]:
        """Store every item under one hold of the lock; the keys stored.

        A subclass (or instance) with its own ``set`` gets cachelib's loop instead,
        so that ``set`` still sees every key.
        """
        if type(self).set is not SimpleCache.set or "set" in vars(self):
            return [
                key for key, value in mapping.items() if self.set(key, value, timeout)
            ]
        encoded = [(key, self._encode(key, value)) for key, value in mapping.items()]
        with self._lock:
            expires = self._expires(timeout, _now())
            done = []
            for key, data in encoded:
                if data is not None:
                    self._put(key, data, expires)
                    done.append(key)
        return done

    def set(self, key: str, value: t.Any, timeout: Timeout = None) -> bool:
        return self._store(key, value, timeout, only_new=False)

    def add(self, key: str, value: t.Any, timeout: Timeout = None) -> bool:
        return self._store(key, value, timeout, only_new=True)

    def delete(self, key: str) -> bool:
        with self._lock:
            if self._cache.pop(key, None) is None:
                return False
            self._evict.removed(key)
            return True

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
            self._evict.removed(key)
            return True

    def clear(self) -> bool:
        with self._lock:
            self._cache.clear()
            self._evict.cleared()
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
            # a negative default timeout (expires None): nothing is kept
            self._put(key, dumps_for(self.serializer, key, value), expires)
            return value

    def dec(self, key: str, delta: int = 1) -> int | None:
        return self.inc(key, -delta)
