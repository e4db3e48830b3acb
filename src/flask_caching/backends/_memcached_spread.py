"""``SpreadSASLMemcachedCache``: values larger than one memcached item, stored the way
released Flask-Caching 2.5.1 stores them; import it from :mod:`.memcache`.

**The format (2.5.1's).** ``set(key, value)`` pickles the value with protocol 2 and
cuts the pickle into ``chunksize``-byte pieces stored as plain bytes items (flags 0)
under ``key.0``, ``key.1``, ... (each then prefixed like any key); more than
``maxchunk`` pieces raise ``ValueError``. ``get(key)`` reads ``key.0`` to
``key.<maxchunk - 1>`` in one request, joins the pieces and unpickles. With
``chunk=False`` both use the single item under ``key`` instead, as ``set_many``,
``add`` and ``inc`` always do (released Flask-Caching inherits those from cachelib).
So a key holds its value in one of two forms: *chunks* or a *plain* item.

**What ours adds, without changing a stored byte:**

* every read (``get``, ``get_many``, ``has``, the decorators) looks at both forms in
  one request; chunks win when ``key.0`` exists (as 2.5.1's ``get`` reads them);
* only the *leading* run of chunks is joined: a missing middle chunk leaves a cut
  pickle, which (like any value that does not load) is a miss, never a join of the
  rest;
* each write removes what would shadow or corrupt it: ``set`` expires the plain item
  and chunk ``n`` after its ``n`` chunks (a read stops there, so chunks of an older,
  longer value are never joined), ``set_many``/``add`` expire ``key.0``. Removal is a
  write of an already-expired empty item, sent without waiting for replies ahead of
  the write itself: one round trip. (A binary-protocol ``delete`` of a missing key
  is answered with an error even when no reply is asked for.) Released
  Flask-Caching leaves such chunks; a shorter pickle it writes over a longer one
  still reads right, since unpickling stops at the pickle's end;
* ``delete`` and ``delete_many`` remove both forms and every chunk key;
* **ours only**: under a serializer of ours other than pickle (``json``,
  ``pickle-signed``) the chunks hold that serializer's bytes and are read only by
  it: nothing is ever unpickled. Released Flask-Caching cannot read those values.
  The serializer sees the whole joined value with the base key's name (prefix +
  key), so ``pickle-signed`` binds it to that key: chunks copied under another key,
  or mixed with another value's chunks, do not verify.
"""

from __future__ import annotations

import logging
import pickle
import typing as t
from collections.abc import Mapping

from ..serializers import PickleSerializer, dumps_for, loads_for
from ._memcached import Driver, Item, check_positive
from ._memcached_codec import FLAG_BYTES, MISS
from ._memcached_sasl import SASLMemcachedCache
from ._pylibmc_driver import PylibmcDriver, _retry_unstarted_auth
from .base import Timeout, iteritems_wrapper

__all__ = ["DEFAULT_CHUNKSIZE", "DEFAULT_MAXCHUNK", "SpreadSASLMemcachedCache"]

logger = logging.getLogger("flask_caching")

#: released Flask-Caching's defaults: ``chunksize`` fits memcached's 1 MB items
DEFAULT_CHUNKSIZE = 1048448
DEFAULT_MAXCHUNK = 32
#: the pickle protocol released Flask-Caching spreads values with
SPREAD_PROTOCOL = 2
#: an expiry memcached reads as a unix time long past: the item is gone at once
EXPIRED = 30 * 24 * 60 * 60 + 1
_GONE = Item(b"", FLAG_BYTES)


class Names(t.NamedTuple):
    """The memcached keys of one cache key: its plain item and its chunks, and the
    name its value is bound to (prefix + key, see ``MemcachedCache._bound_name``)."""

    plain: str
    chunks: list[str]
    bound: str


@_retry_unstarted_auth
def _expire_unanswered(driver: PylibmcDriver, gone: dict[str, Item]) -> None:
    """Send expired items with noreply (retried like the SASL driver's requests
    when libmemcached failed to start authenticating)."""
    if driver._quiet:  # the user asked for noreply on every write already
        driver.raw.set_multi(gone, time=EXPIRED)
        return
    with driver._unanswered():
        driver.raw.set_multi(gone, time=EXPIRED)


def send_expired(driver: Driver, keys: list[str], wait: bool = False) -> None:
    """Expire *keys* at once. Unless *wait*, nothing waits for pylibmc's replies:
    the request that follows on this connection carries the round trip."""
    if not keys:
        return
    gone = dict.fromkeys(keys, _GONE)
    if wait or not isinstance(driver, PylibmcDriver):
        driver.set_multi(gone, EXPIRED)
    else:
        _expire_unanswered(driver, gone)


class SpreadSASLMemcachedCache(SASLMemcachedCache):
    """:class:`SASLMemcachedCache` storing large values as released Flask-Caching's
    chunks (see the module docstring for the format and what ours adds).

    :param chunksize: bytes per chunk (default 1048448, under memcached's 1 MB).
    :param maxchunk: the most chunks a value may take (default 32); a larger value
        makes ``set`` raise ``ValueError`` and ``add``/``set_many`` skip it.
    """

    def __init__(
        self,
        *args: t.Any,
        chunksize: int = DEFAULT_CHUNKSIZE,
        maxchunk: int = DEFAULT_MAXCHUNK,
        **kwargs: t.Any,
    ) -> None:
        check_positive("chunksize", chunksize, integer=True)
        check_positive("maxchunk", maxchunk, integer=True)
        super().__init__(*args, **kwargs)
        #: bytes per chunk (released Flask-Caching's attribute)
        self.chunksize = chunksize
        #: chunks read and allowed per value (released Flask-Caching's attribute)
        self.maxchunk = maxchunk

    # -- the chunk format ------------------------------------------------------

    def _names(self, key: str) -> Names:
        mapper = self._map
        chunks = [mapper(f"{key}.{n}") for n in range(self.maxchunk)]
        return Names(mapper(key), chunks, self._bound_name(key))

    def _pack(self, value: t.Any, names: Names) -> bytes | None:
        """The bytes a value is spread as: a protocol 2 pickle, as released writes,
        or under a serializer of ours its output (``None`` if it gives no bytes)."""
        serializer = self.serializer
        if type(serializer) is PickleSerializer:
            return pickle.dumps(value, SPREAD_PROTOCOL)
        payload = dumps_for(serializer, names.bound, value)
        return payload if isinstance(payload, bytes) else None

    def _unpack(self, payload: bytes, names: Names) -> t.Any:
        """The value joined chunks hold, or :data:`MISS` when it does not load."""
        serializer = self.serializer
        try:
            if type(serializer) is PickleSerializer:
                return pickle.loads(payload)
            return loads_for(serializer, names.bound, payload)
        except Exception:
            logger.debug("unreadable spread memcached value is a miss", exc_info=True)
            return MISS

    def _split(self, names: Names, payload: bytes) -> dict[str, Item]:
        """The chunk items for *payload*; ``ValueError`` past ``maxchunk``."""
        size = self.chunksize
        count = max(1, -(-len(payload) // size))
        if count > self.maxchunk:
            raise ValueError(
                f"the value takes {count} chunks of {size} bytes; "
                f"at most maxchunk={self.maxchunk} are allowed"
            )
        return {
            names.chunks[n]: Item(payload[n * size : (n + 1) * size], FLAG_BYTES)
            for n in range(count)
        }

    def _resolve(self, found: Mapping[str, Item], names: Names) -> t.Any:
        """The value stored under one key (chunks first), or :data:`MISS`."""
        parts = []
        for mkey in names.chunks:
            item = found.get(mkey)
            if item is None:
                break
            if item.flags != FLAG_BYTES:  # not a chunk anyone spread
                return MISS
            parts.append(item.data)
        if parts:
            return self._unpack(b"".join(parts), names)
        plain = found.get(names.plain)
        return MISS if plain is None else self._codec.load(plain, names.bound)

    def _read(self, keys: tuple[str, ...]) -> list[t.Any]:
        """Each key's value or :data:`MISS`, both forms read in one request."""
        every = [self._names(key) for key in keys]
        wanted = [mkey for names in every for mkey in (names.plain, *names.chunks)]
        with self._pool.reserve() as driver:
            found = driver.get_multi(list(dict.fromkeys(wanted)))
        return [self._resolve(found, names) for names in every]

    # -- reading ---------------------------------------------------------------

    def get(self, key: str, chunk: bool = True) -> t.Any:
        """The value or ``None``; ``chunk=False`` reads only the plain item."""
        if not chunk:
            return super().get(key)
        value = self._read((key,))[0]
        return None if value is MISS else value

    def get_many(self, *keys: str) -> list[t.Any]:
        """Values (``None`` for misses) in either form, in one request."""
        if not keys:
            return []
        return [None if value is MISS else value for value in self._read(keys)]

    def has(self, key: str) -> bool:
        """Whether *key* holds a readable value in either form (one request)."""
        return self._read((key,))[0] is not MISS

    # -- writing ---------------------------------------------------------------

    def set(
        self, key: str, value: t.Any, timeout: Timeout = None, chunk: bool = True
    ) -> bool:
        """Spread *value* over ``key.0``, ``key.1``, ... in one request (raises
        ``ValueError`` past ``maxchunk``); ``chunk=False`` stores one plain item."""
        if not chunk:
            return super().set(key, value, timeout)
        exptime = self._exptime(timeout)
        if exptime is None:
            self.delete(key)
            return True
        names = self._names(key)
        payload = self._pack(value, names)
        if payload is None:
            return False
        items = self._split(names, payload)
        stale = [names.plain, *names.chunks[len(items) : len(items) + 1]]
        with self._pool.reserve() as driver:
            send_expired(driver, stale)
            failed = driver.set_multi(items, exptime)
            if failed:  # never leave part of a value behind
                send_expired(driver, list(items), wait=True)
        return not failed

    def add(self, key: str, value: t.Any, timeout: Timeout = None) -> bool:
        """Store *value* only if *key* holds nothing in either form: a plain item
        (memcached ``add``, as released), or chunks when it is larger than one."""
        exptime = self._exptime(timeout)
        if exptime is None:
            return False
        names = self._names(key)
        item = self._codec.dump(value, names.bound)
        with self._pool.reserve() as driver:
            if driver.get_multi([names.plain, names.chunks[0]]):
                return False
            if item is not None and len(item.data) <= self._item_limit:
                return driver.add(names.plain, item, exptime)
            payload = self._pack(value, names)
            try:
                items = {} if payload is None else self._split(names, payload)
            except ValueError:
                return False
            return self._add_chunks(driver, names, items, exptime)

    def _add_chunks(
        self, driver: Driver, names: Names, items: dict[str, Item], exptime: int
    ) -> bool:
        """``add`` for a spread value: whoever adds chunk 0 first owns the key."""
        if not items or not driver.add(
            names.chunks[0], items[names.chunks[0]], exptime
        ):
            return False
        rest = {mkey: item for mkey, item in items.items() if mkey != names.chunks[0]}
        send_expired(driver, names.chunks[len(items) : len(items) + 1], wait=not rest)
        if rest and driver.set_multi(rest, exptime):
            send_expired(driver, list(items), wait=True)
            return False
        return True

    def set_many(
        self,
        mapping: Mapping[str, t.Any] | t.Iterable[tuple[str, t.Any]],
        timeout: Timeout = None,
    ) -> list[t.Any]:
        """Store every pair in one request: a plain item each, as released writes,
        or chunks for a value larger than one item; return the keys stored."""
        pairs = mapping if type(mapping) is dict else dict(iteritems_wrapper(mapping))
        exptime = self._exptime(timeout)
        if exptime is None:
            self.delete_many(*pairs)
            return list(pairs)
        merged: dict[str, Item] = {}
        stale: list[str] = []
        owners: list[tuple[str, t.Collection[str]]] = []
        for key, value in pairs.items():
            names = self._names(key)
            item = self._codec.dump(value, names.bound)
            if item is not None and len(item.data) <= self._item_limit:
                items = {names.plain: item}
                stale.append(names.chunks[0])
            else:
                payload = self._pack(value, names)
                try:
                    items = {} if payload is None else self._split(names, payload)
                except ValueError:
                    continue
                if not items:
                    continue
                stale += [names.plain, *names.chunks[len(items) : len(items) + 1]]
            merged.update(items)
            owners.append((key, items.keys()))
        if not merged:
            return []
        with self._pool.reserve() as driver:
            send_expired(driver, stale)
            refused = set(driver.set_multi(merged, exptime))
        return [key for key, mkeys in owners if refused.isdisjoint(mkeys)]

    def inc(self, key: str, delta: int = 1) -> int | None:
        """Add *delta* atomically (see :class:`~._memcached_atomic.AtomicOps`). A
        number stored as chunks first moves to a plain decimal item, which
        memcached's ``incr`` then counts on."""
        names = self._names(key)
        with self._pool.reserve() as driver:
            found = driver.get_multi(names.chunks)
        if names.chunks[0] in found:
            current = self._resolve(found, names)
            start = 0 if current is MISS or current is None else current
            if type(start) is not int:
                raise TypeError(f"cannot increment {key!r}: it holds {start!r}")
            with self._pool.reserve() as driver:
                moved = driver.add(
                    names.plain, self._int_item(start + delta), self._ttl()
                )
                send_expired(driver, names.chunks, wait=True)
            if moved:
                return start + delta
        return super().inc(key, delta)

    # -- deleting --------------------------------------------------------------

    def delete(self, key: str) -> bool:
        """Delete *key* in both forms, every chunk key included; ``True`` if it
        held something."""
        names = self._names(key)
        with self._pool.reserve() as driver:
            existed = bool(driver.get_multi([names.plain, names.chunks[0]]))
            send_expired(driver, [names.plain, *names.chunks], wait=True)
        return existed

    def delete_many(self, *keys: str) -> list[t.Any]:
        """Delete *keys* in both forms and all their chunk keys, in one request."""
        if keys:
            every = [self._names(key) for key in keys]
            doomed = [mkey for names in every for mkey in (names.plain, *names.chunks)]
            with self._pool.reserve() as driver:
                send_expired(driver, list(dict.fromkeys(doomed)), wait=True)
        return list(keys)
