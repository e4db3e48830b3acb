"""memcached backends: MemcachedCache, SASLMemcachedCache, SpreadSASLMemcachedCache.

How they behave, and why:

* **Client library.** pylibmc if installed, else pymemcache, else python-memcached;
  ``CACHE_OPTIONS = {"client": "pymemcache"}`` forces one. SASL needs pylibmc.
  ``get_many`` is one request with every library, and so are ``set_many`` and
  ``delete_many``: pymemcache pipelines them; with pylibmc (libmemcached waits for
  each write's reply) every key but the last is sent with ``_noreply`` and the last
  one's reply shows the server read them all. A value over ``maximum_value_length``
  is never sent, so the one refusal noreply would hide is a server whose ``-I`` is
  below that setting (or one out of memory under ``-M``).
* **Threads.** Client objects are not thread-safe: each thread gets its own clone, or
  with ``pool_size`` a bounded pool is shared (``pool_blocking`` waits for a free one,
  otherwise a busy pool raises).
* **Failures are fast and loud.** Connect and read timeouts default to 0.5 s
  (``connect_timeout``/``timeout``) and nothing retries. Every operation that talks
  to the server (``get``, ``get_many``, ``get_dict``, ``has``, ``set``, ``add``,
  ``set_many``, ``delete``, ``delete_many``, ``inc``, ``dec``, ``clear``) raises
  :class:`~flask_caching.exceptions.BackendError` when the server fails or cannot be
  reached, with the driver's exception as its cause; the decorators catch it and run
  the function (fail open). A stored value that cannot be loaded is a miss; a value
  over ``maximum_value_length`` is not sent (``set`` returns ``False``).
  After a failure the next call tries the server again (pylibmc: the client is
  disconnected, which clears libmemcached's failure mark), so every call fails while
  the server is down and the first call after it is back succeeds.
  Library quirks: python-memcached reports most failures as misses. libmemcached
  reports a read *timeout* (a hung server) as a miss; a pylibmc read that misses
  after 90% of the timeout therefore raises. It also reads a connection the server
  has just closed (killed, restarted) as one miss before it raises, and with several
  servers ``get_many`` leaves out a dead server's keys instead of raising.
* **Keys** memcached would refuse (over 250 bytes, spaces, control or non-ASCII
  characters, a leading ``~``) are stored under ``prefix + "~h:" + sha256(key)``.
* **Values**: an ``int`` is stored as decimal text, so ``incr`` runs on the server;
  anything else goes through :attr:`~MemcachedCache.serializer` (pickle by default;
  the extension assigns the one CACHE_SERIALIZER names). A stored value that cannot
  be read is a miss.
* **Timeouts.** ``0`` never expires; a negative timeout deletes the key; more than
  30 days is sent as a unix time, as memcached requires.
* **clear()** with a key prefix deletes that prefix's keys only: it lists each
  server's keys with ``lru_crawler metadump all`` (memcached >= 1.4.31, on a
  short-lived ASCII connection) and deletes those starting with the prefix (hashed
  keys too) with ``delete_multi`` in batches; every key of a longer prefix that
  extends it goes as well. This reads the whole key list of every server, so it
  costs time on a big cache. Without a prefix it flushes the whole server. A server
  that cannot list keys (crawler off, ``-X``) is flushed whole, with a warning.
  The SASL backends always flush the whole server: SASL servers speak only the
  binary protocol, which has no key listing.
* **has()** is a ``get``: memcached has no cheaper existence test.
* **SASL** (:class:`SASLMemcachedCache`): the pylibmc wheel's bundled libsasl2 looks
  for its plugins in the wrong folder. Unless ``SASL_PATH`` is set, it is pointed at
  the system's (``/usr/lib/<multiarch>/sasl2`` etc.; Debian: libsasl2-modules) before
  pylibmc is first imported; see :func:`._pylibmc_driver.ensure_sasl_plugin_path`.
* **Forks**: a forked worker opens its own connections on first use.
"""

from __future__ import annotations

import logging
import math
import random
import time
import typing as t
from collections.abc import Mapping, Sequence

from ..exceptions import BackendError, ConfigurationError
from ._memcached import (
    Driver,
    NotANumber,
    PickleSerializer,
    Pool,
    Serializer,
    check_positive,
    check_servers,
    encode,
    make_dumper,
    make_loader,
)
from ._memcached_drivers import build_driver_factory
from ._memcached_keys import KeyMapper, Prefix
from ._memcached_listing import KeyListingUnsupported, list_keys
from .base import BaseCache, Timeout, iteritems_wrapper

if t.TYPE_CHECKING:
    from ._memcached_sasl import SASLMemcachedCache as SASLMemcachedCache
    from ._memcached_sasl import SpreadSASLMemcachedCache as SpreadSASLMemcachedCache

__all__ = ["MemcachedCache", "SASLMemcachedCache", "SpreadSASLMemcachedCache"]

logger = logging.getLogger("flask_caching")

#: memcached reads an expiry above this many seconds as a unix timestamp
THIRTY_DAYS = 30 * 24 * 60 * 60
#: memcached's default item size limit (``memcached -I``)
DEFAULT_ITEM_SIZE = 1024 * 1024
#: room left in each item for the key and memcached's item header
ITEM_HEADROOM = 512
#: how often ``inc``/``dec`` retry a compare-and-swap that lost a race
CAS_ATTEMPTS = 32
#: keys per ``delete_multi`` when ``clear()`` deletes a prefix's keys
CLEAR_BATCH = 500


class MemcachedCache(BaseCache):
    """A memcached backend (see the module docstring for the behaviour in full).

    :param servers: ``"host:port"`` strings (or unix socket paths).
    :param default_timeout: seconds an entry lives when ``set`` gets no timeout.
    :param key_prefix: prepended to every key; printable ASCII, no spaces. May be
        a callable returning the prefix.
    :param client: ``"pylibmc"``, ``"pymemcache"`` or ``"memcache"``; ``None`` picks
        the first one installed.
    :param pool_size: share at most this many clients between threads; ``None``
        gives each thread its own.
    :param pool_blocking: when the pool is exhausted, wait (``True``) or raise.
    :param connect_timeout: seconds to wait for a connection.
    :param timeout: seconds to wait for a reply.
    :param maximum_value_length: the server's item size limit (``memcached -I``);
        larger values are not stored (``set`` returns ``False``) except by
        :class:`SpreadSASLMemcachedCache`, which splits them.
    :param serializer: turns values into bytes and back; see :attr:`serializer`.
    :param client_options: pylibmc behaviours, or keyword arguments of the
        pymemcache / python-memcached client.
    """

    batched_get_many = True
    #: ``clear()`` with a key prefix deletes only that prefix's keys, listed with
    #: ``lru_crawler metadump`` (ASCII protocol); ``False`` flushes the whole server
    scoped_clear: t.ClassVar[bool] = True
    #: values may span several items (:meth:`_items`); else one item per key
    _spread: t.ClassVar[bool] = False

    def __init__(
        self,
        servers: Sequence[str] | None = None,
        default_timeout: Timeout = 300,
        key_prefix: Prefix | None = None,
        *,
        client: str | None = None,
        pool_size: int | None = None,
        pool_blocking: bool = True,
        connect_timeout: float = 0.5,
        timeout: float = 0.5,
        maximum_value_length: int = DEFAULT_ITEM_SIZE,
        serializer: Serializer | None = None,
        **client_options: t.Any,
    ) -> None:
        super().__init__(default_timeout)
        self._keys = KeyMapper(key_prefix or "")
        self._map = self._keys.map
        if pool_size is not None:
            check_positive("pool_size", pool_size, integer=True)
        check_positive("connect_timeout", connect_timeout)
        check_positive("timeout", timeout)
        check_positive("maximum_value_length", maximum_value_length, integer=True)
        if maximum_value_length <= ITEM_HEADROOM:
            raise ConfigurationError(
                f"CACHE_OPTIONS maximum_value_length must exceed {ITEM_HEADROOM}"
            )
        #: the largest payload stored in one item
        self._item_limit = maximum_value_length - ITEM_HEADROOM
        self.serializer = serializer or PickleSerializer()
        self._servers = check_servers(servers)
        self._timeouts = (connect_timeout, timeout)
        self.client_name, template = self._make_driver(
            self._servers, client, connect_timeout, timeout, client_options
        )
        self._pool = Pool(template, pool_size, bool(pool_blocking))

    @property
    def serializer(self) -> Serializer:
        """Turns values into bytes and back (``dumps``/``loads``); replaceable."""
        return self._serializer

    @serializer.setter
    def serializer(self, serializer: Serializer) -> None:
        self._serializer = serializer
        #: stored bytes (or ``None``) -> the value, ``None`` for a miss or junk
        self._load = make_loader(serializer)
        #: value -> the bytes to store, ``None`` if the serializer gave up on it
        self._dump = make_dumper(serializer)

    def _make_driver(
        self,
        servers: list[str],
        client: str | None,
        connect_timeout: float,
        timeout: float,
        options: dict[str, t.Any],
    ) -> tuple[str, Driver]:
        try:
            return build_driver_factory(
                servers,
                client,
                connect_timeout=connect_timeout,
                timeout=timeout,
                options=options,
            )
        except TypeError as exc:  # an option the client library does not take
            raise ConfigurationError(f"CACHE_OPTIONS: {exc}") from exc

    #: constructor argument -> the CACHE_* setting that supplies it; a setting that
    #: is set (not ``None``) wins over the same name in CACHE_OPTIONS
    factory_settings: t.ClassVar[dict[str, str]] = {
        "servers": "CACHE_MEMCACHED_SERVERS",
        "default_timeout": "CACHE_DEFAULT_TIMEOUT",
        "key_prefix": "CACHE_KEY_PREFIX",
    }

    @property
    def _client(self) -> t.Any:
        """The library's client object that every thread's client is cloned from.

        Set pylibmc behaviours on it before the first cache operation.
        """
        return self._pool.template.raw

    def close(self) -> None:
        """Close this backend's connections (they reopen if it is used again)."""
        self._pool.close()

    # -- helpers ---------------------------------------------------------------

    def _exptime(self, timeout: Timeout) -> int | None:
        """memcached's expiry for *timeout*; ``None`` when it is already expired."""
        seconds = self._normalize_timeout(timeout)
        if seconds < 0:
            return None
        if seconds > THIRTY_DAYS:
            return int(time.time()) + seconds
        return seconds

    def _items(self, mkey: str, payload: bytes) -> dict[str, bytes] | None:
        """What to store for one value; ``None`` if it cannot be stored. Used only
        when :attr:`_spread`; otherwise a value is one item of at most the limit."""
        return {mkey: payload} if len(payload) <= self._item_limit else None

    def _fetch(self, driver: Driver, mkeys: list[str]) -> dict[str, bytes]:
        """Read stored payloads (one request here; a subclass may resolve more)."""
        return driver.get_multi(mkeys)

    # -- reading ---------------------------------------------------------------

    def get(self, key: str) -> t.Any:
        """Return the value or ``None``. Raises BackendError if the server fails."""
        mkey = self._map(key)
        with self._pool.reserve() as driver:
            raw = driver.get(mkey)
        return self._load(raw)

    def get_many(self, *keys: str) -> list[t.Any]:
        """Values for *keys* (``None`` for misses), in one request."""
        if not keys:
            return []
        mapper = self._map
        mkeys = [mapper(key) for key in keys]
        with self._pool.reserve() as driver:
            found = self._fetch(driver, mkeys).get
        load = self._load
        return [load(found(mkey)) for mkey in mkeys]

    def get_dict(self, *keys: str) -> dict[str, t.Any]:
        """``{key: value or None}`` for *keys*, in one request."""
        return dict(zip(keys, self.get_many(*keys), strict=True))

    def has(self, key: str) -> bool:
        """Whether *key* is stored (memcached has no cheaper test than a get)."""
        mkey = self._map(key)
        with self._pool.reserve() as driver:
            return driver.get(mkey) is not None

    # -- writing ---------------------------------------------------------------

    def set(self, key: str, value: t.Any, timeout: Timeout = None) -> bool:
        """Store *value*; ``False`` if it is too large or could not be dumped."""
        exptime = self._exptime(timeout)
        if exptime is None:
            self.delete(key)
            return True
        mkey = self._map(key)
        payload = self._dump(value)
        if payload is None:
            return False
        if not self._spread:
            if len(payload) > self._item_limit:
                return False
            with self._pool.reserve() as driver:
                return driver.set(mkey, payload, exptime)
        items = self._items(mkey, payload)
        if items is None:
            return False
        with self._pool.reserve() as driver:
            if len(items) == 1:
                return driver.set(mkey, items[mkey], exptime)
            failed = driver.set_multi(items, exptime)
            if failed:
                driver.delete_multi(list(items))
            return not failed

    def add(self, key: str, value: t.Any, timeout: Timeout = None) -> bool:
        """Store *value* only if *key* is absent (memcached ``add``, atomic)."""
        exptime = self._exptime(timeout)
        mkey = self._map(key)
        payload = self._dump(value)
        items = None if payload is None else self._items(mkey, payload)
        if exptime is None or items is None:
            return False
        with self._pool.reserve() as driver:
            if len(items) == 1:
                return driver.add(mkey, items[mkey], exptime)
            parts = {k: v for k, v in items.items() if k != mkey}
            if not driver.set_multi(parts, exptime):
                if driver.add(mkey, items[mkey], exptime):
                    return True
            driver.delete_multi(list(parts))
            return False

    def set_many(
        self,
        mapping: Mapping[str, t.Any] | t.Iterable[tuple[str, t.Any]],
        timeout: Timeout = None,
    ) -> list[t.Any]:
        """Store every pair with one ``set_multi``; return the keys stored."""
        pairs = mapping if type(mapping) is dict else dict(iteritems_wrapper(mapping))
        exptime = self._exptime(timeout)
        if exptime is None:
            self.delete_many(*pairs)
            return list(pairs)
        mapper, dump = self._map, self._dump
        merged: dict[str, bytes] = {}
        owners: list[tuple[str, t.Collection[str]]] = []  # key, its memcached keys
        if self._spread:
            for key, value in pairs.items():
                payload = dump(value)
                items = None if payload is None else self._items(mapper(key), payload)
                if items is not None:
                    merged.update(items)
                    owners.append((key, items.keys()))
        else:
            limit = self._item_limit
            for key, value in pairs.items():
                payload = dump(value)
                if payload is not None and len(payload) <= limit:
                    mkey = mapper(key)
                    merged[mkey] = payload
                    owners.append((key, (mkey,)))
        if not merged:
            return []
        with self._pool.reserve() as driver:
            failed = driver.set_multi(merged, exptime)
        if not failed:
            return [key for key, _ in owners]
        refused = set(failed)
        return [key for key, mkeys in owners if refused.isdisjoint(mkeys)]

    def delete(self, key: str) -> bool:
        """Delete *key*; ``True`` if it existed."""
        mkey = self._map(key)
        with self._pool.reserve() as driver:
            return driver.delete(mkey)

    def delete_many(self, *keys: str) -> list[t.Any]:
        """Delete *keys* with one ``delete_multi``; all are gone unless it raises."""
        if keys:
            mkeys = list(dict.fromkeys(self._map(key) for key in keys))
            with self._pool.reserve() as driver:
                driver.delete_multi(mkeys)
        return list(keys)

    def clear(self) -> bool:
        """Delete this prefix's keys; with no prefix, flush the whole server.

        The keys are listed on every server with ``lru_crawler metadump all`` (one
        short-lived ASCII connection each) and deleted with ``delete_multi`` in
        batches of :data:`CLEAR_BATCH`. Every key starting with the prefix goes,
        including those of a longer prefix that extends it. A key written while
        ``clear()`` runs may survive it. A server that cannot list keys (see
        :class:`~._memcached_listing.KeyListingUnsupported`) is flushed whole instead, with
        a warning; SASL backends always flush (their servers speak binary only).
        """
        prefix = self._keys.prefix
        if prefix and self.scoped_clear:
            keys = self._prefixed_keys(prefix)
            if keys is not None:
                with self._pool.reserve() as driver:
                    for start in range(0, len(keys), CLEAR_BATCH):
                        driver.delete_multi(keys[start : start + CLEAR_BATCH])
                return True
        with self._pool.reserve() as driver:
            driver.flush_all()
        return True

    def _prefixed_keys(self, prefix: str) -> list[str] | None:
        """Every server's keys under *prefix*; ``None`` if a server cannot list them."""
        connect_timeout, timeout = self._timeouts
        keys: list[str] = []
        for server in self._servers:
            try:
                keys += list_keys(
                    server, prefix, connect_timeout=connect_timeout, timeout=timeout
                )
            except KeyListingUnsupported as exc:
                logger.warning(
                    "memcached %s cannot list its keys (%s), so clear() flushes every"
                    " server whole, not only the keys of prefix %r: upgrade to"
                    " memcached >= 1.4.31 with its LRU crawler and dump commands on",
                    server,
                    exc,
                    prefix,
                )
                return None
            except OSError as exc:
                raise BackendError(
                    f"memcached {server}: listing keys for clear() failed: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        return keys

    # -- counters --------------------------------------------------------------

    def inc(self, key: str, delta: int = 1) -> int | None:
        """Add *delta* atomically; a missing key starts from 0.

        A non-negative delta on a stored non-negative decimal is memcached ``incr``
        (one request; it keeps the key's expiry; counters wrap at 2**64). Anything
        else (a negative delta or value, a value the serializer wrote) runs a
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
                        if driver.add(
                            mkey, encode(self.serializer, delta), self._ttl()
                        ):
                            return delta
                        continue  # created meanwhile: incr again
                raw, token = driver.gets(mkey)
                if raw is None:
                    if driver.add(mkey, encode(self.serializer, delta), self._ttl()):
                        return delta
                    continue
            new = self._int_value(key, raw) + delta
            with self._pool.reserve() as driver:
                if driver.cas(mkey, encode(self.serializer, new), token, self._ttl()):
                    return new
            time.sleep(random.uniform(0, 0.001 * (attempt + 1)))
        raise BackendError(f"inc({key!r}) lost {CAS_ATTEMPTS} races in a row")

    def dec(self, key: str, delta: int = 1) -> int | None:
        """Subtract *delta* atomically; a missing key starts from 0 (see ``inc``)."""
        return self.inc(key, -delta)

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
            raw, cas_token = driver.gets(mkey)
            if raw is None or self._load(raw) != token:
                return False
            return driver.cas(mkey, raw, cas_token, -1)

    def _ttl(self) -> int:
        return self._exptime(None) or 0

    def _int_value(self, key: str, raw: bytes) -> int:
        """The stored int a counter continues from (0 if unreadable)."""
        current = self._load(raw)
        if current is None:
            return 0
        if type(current) is not int:
            raise TypeError(f"cannot increment {key!r}: it holds {current!r}")
        return current


def __getattr__(name: str) -> t.Any:
    # The SASL backends subclass MemcachedCache, so they live in their own module
    # and are loaded from here on first use.
    if name in ("SASLMemcachedCache", "SpreadSASLMemcachedCache"):
        from . import _memcached_sasl

        return getattr(_memcached_sasl, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
