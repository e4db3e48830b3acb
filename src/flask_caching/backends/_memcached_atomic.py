"""Counters and lock primitives for the memcached backends (a mixin).

``inc``/``dec`` use the server's ``incr`` where it can (a decimal item, flags 4, as
pylibmc writes ints) and a compare-and-swap loop otherwise; locks are ``add`` and a
compare-and-delete made of ``gets`` + ``cas``.
"""

from __future__ import annotations

import math
import random
import time
import typing as t

from ..exceptions import BackendError
from ._memcached import Driver, Item, NotANumber, Pool

__all__ = ["CAS_ATTEMPTS", "AtomicOps"]

#: how often ``inc``/``dec`` retry a compare-and-swap that lost a race
CAS_ATTEMPTS = 32


#: an exptime memcached reads as a unix time in 1970: the item is gone at once
EXPIRED = 30 * 24 * 3600 + 1


class AtomicOps:
    """``inc``, ``dec``, ``acquire_lock`` and ``release_lock`` for
    :class:`~.memcache.MemcachedCache`, on the attributes it defines."""

    _pool: Pool
    _map: t.Callable[[str], str]
    if t.TYPE_CHECKING:

        def _dump(self, value: t.Any, key: str) -> Item | None: ...
        def _load(self, item: Item | None, key: str) -> t.Any: ...
        def _exptime(self, timeout: t.Any) -> int | None: ...
        def add(self, key: str, value: t.Any, timeout: t.Any = None) -> bool: ...

    def inc(self, key: str, delta: int = 1) -> int | None:
        """Add *delta* atomically; a missing key starts from 0.

        A non-negative delta on a stored non-negative decimal is memcached ``incr``
        (one request; it keeps the key's expiry and flags; counters wrap at 2**64).
        Anything else (a negative delta or value, a pickled number) runs a
        compare-and-swap loop, which resets the expiry to the default timeout and
        backs off briefly when it loses a race. Losing :data:`CAS_ATTEMPTS` races in
        a row raises BackendError.
        """
        mkey = self._map(key)
        numeric = delta >= 0
        for attempt in range(CAS_ATTEMPTS):
            with self._pool.reserve() as driver:
                if numeric:
                    try:
                        value = driver.incr(mkey, delta)
                    except NotANumber:
                        numeric = False
                    else:
                        if value is not None:
                            return value
                        if self._add_int(driver, mkey, delta):
                            return delta
                        continue  # created meanwhile: incr again
                item, token = driver.gets(mkey)
                if item is None:
                    if self._add_int(driver, mkey, delta):
                        return delta
                    continue
            new = self._int_value(key, item) + delta
            with self._pool.reserve() as driver:
                if driver.cas(mkey, self._int_item(new), token, self._ttl()):
                    return new
            time.sleep(random.uniform(0, 0.001 * (attempt + 1)))
        raise BackendError(f"inc({key!r}) lost {CAS_ATTEMPTS} races in a row")

    def dec(self, key: str, delta: int = 1) -> int | None:
        """Subtract *delta* atomically; a missing key starts from 0 (see ``inc``)."""
        return self.inc(key, -delta)

    def _int_item(self, number: int) -> Item:
        item = self._dump(number, "")  # an int is decimal: bound to no key
        assert item is not None  # every codec stores an int
        return item

    def _add_int(self, driver: Driver, mkey: str, number: int) -> bool:
        return driver.add(mkey, self._int_item(number), self._ttl())

    def _ttl(self) -> int:
        return self._exptime(None) or 0

    def _int_value(self, key: str, item: Item) -> int:
        """The stored int a counter continues from (0 if unreadable)."""
        current = self._load(item, key)
        if current is None:
            return 0
        if type(current) is not int:
            raise TypeError(f"cannot increment {key!r}: it holds {current!r}")
        return current

    # -- locks (flask_caching.locks) -------------------------------------------

    def acquire_lock(self, key: str, token: str, timeout: float) -> bool:
        """memcached ``add`` with the lease rounded up plus one second: the server's
        clock ticks whole seconds, so a lease of N may otherwise end after N - 1."""
        lease = max(1, math.ceil(timeout)) + 1
        return self.add(key, token, timeout=lease)

    def release_lock(self, key: str, token: str) -> bool:
        """Compare-and-delete in one step: ``gets``, then a ``cas`` that stores the
        item already expired, which fails if anyone changed the lock meanwhile."""
        mkey = self._map(key)
        with self._pool.reserve() as driver:
            item, cas_token = driver.gets(mkey)
            if item is None or self._load(item, key) != token:
                return False
            # an absolute expiry in 1970 (past memcached's 30-day relative limit):
            # already expired; -1 does not expire an item over the binary protocol
            return driver.cas(mkey, item, cas_token, EXPIRED)
