"""memcached backends: MemcachedCache, SASLMemcachedCache, SpreadSASLMemcachedCache.

How they behave, and why:

* **Client library.** pylibmc if installed, else pymemcache, else python-memcached;
  ``CACHE_OPTIONS = {"client": "pymemcache"}`` forces one. SASL needs pylibmc.
  ``get_many``, ``set_many`` and ``delete_many`` are one request with every
  library (pylibmc: all keys but the last go with ``_noreply``; see
  :class:`._pylibmc_driver.PylibmcDriver` for what that cannot report).
* **Threads.** Client objects are not thread-safe: each thread gets its own clone, or
  with ``pool_size`` a bounded pool is shared (``pool_blocking`` waits for a free one,
  otherwise a busy pool raises).
* **Failures are fast and loud**: 0.5 s connect and read timeouts, no retries, and
  :class:`~flask_caching.exceptions.BackendError` from every operation when the
  server fails (the decorators then run the function); see :mod:`._memcached`.
* **Keys** are ``prefix + key``, as released Flask-Caching stores them; a key
  memcached would refuse (over 250 bytes of UTF-8, spaces or control characters) is
  stored under ``prefix + "~h:" + sha256(key)`` instead of failing.
* **Values** are items of bytes and flags in pylibmc's format, whatever the client
  library (str as UTF-8, int as decimal so ``incr`` runs on the server, bytes as
  they are, the rest pickled): released Flask-Caching on pylibmc and ours share a
  cache. Bytes written by other programs (flags 0) come back as bytes. Under a
  serializer other than pickle (CACHE_SERIALIZER ``json``, ``pickle-signed``) the
  serializer owns every item and no client library unpickles one; as pylibmc
  inflates a zlib item in C before we see it, a client we chose is then pymemcache
  (an explicit ``client="pylibmc"`` keeps pylibmc and that risk). See
  :mod:`._memcached_codec` for the table. An unreadable item is a miss.
* **Timeouts.** ``0`` never expires; a negative timeout deletes the key; more than
  30 days is sent as a unix time, as memcached requires.
* **clear()** flushes **every key on the server** (``flush_all``), whatever the
  prefix, as released Flask-Caching and cachelib do: memcached cannot list keys
  reliably (``lru_crawler metadump`` leaves out recently read ones), so a
  prefix-scoped clear cannot be made correct. Give apps that must not clear each
  other their own server.
* **has()** is a ``get``: memcached has no cheaper existence test.
* **SASL** (:class:`SASLMemcachedCache`) needs pylibmc; see :mod:`._memcached_sasl`.
  :class:`SpreadSASLMemcachedCache` spreads large values over several keys in
  released Flask-Caching's format; see :mod:`._memcached_spread`.
* **Forks**: a forked worker opens its own connections on first use.

Size: a few lines over the ~400 the style asks for: one class whose methods are
each small; this docstring is the backend's documentation.
"""

from __future__ import annotations

import importlib.util
import time
import typing as t
from collections.abc import Mapping, Sequence

import cachelib

from ..exceptions import ConfigurationError
from ..serializers import PickleSerializer, Serializer
from ._memcached import Driver, Item, Pool, check_positive, check_servers, logger
from ._memcached_atomic import AtomicOps
from ._memcached_codec import MISS, codec_for
from ._memcached_drivers import build_driver_factory, cachelib_client_name
from ._memcached_keys import KeyMapper, Prefix
from .base import BaseCache, Timeout, iteritems_wrapper

if t.TYPE_CHECKING:
    from ._memcached_sasl import SASLMemcachedCache as SASLMemcachedCache
    from ._memcached_spread import SpreadSASLMemcachedCache as SpreadSASLMemcachedCache

__all__ = ["MemcachedCache", "SASLMemcachedCache", "SpreadSASLMemcachedCache"]

#: memcached reads an expiry above this many seconds as a unix timestamp
THIRTY_DAYS = 30 * 24 * 60 * 60
#: memcached's default item size limit (``memcached -I``)
DEFAULT_ITEM_SIZE = 1024 * 1024
#: room left in each item for the key and memcached's item header
ITEM_HEADROOM = 512


class _CachelibBase(cachelib.MemcachedCache):
    """cachelib's MemcachedCache without its constructor, which would build a
    client of its own: ours builds its drivers itself (see MemcachedCache)."""

    def __init__(self, default_timeout: int = 300, **kwargs: t.Any) -> None:
        cachelib.base.BaseCache.__init__(self, default_timeout)


class MemcachedCache(AtomicOps, BaseCache, _CachelibBase):
    """A memcached backend on cachelib's (see the module docstring for the whole
    behaviour); ``isinstance(backend, cachelib.MemcachedCache)`` holds.

    :param servers: ``"host:port"`` strings (or unix socket paths).
    :param default_timeout: seconds an entry lives when ``set`` gets no timeout.
    :param key_prefix: prepended to every key (no spaces or control characters).
        May be a callable returning the prefix.
    :param pool_size: share at most this many clients between threads; ``None``
        gives each thread its own.
    :param pool_blocking: when the pool is exhausted, wait (``True``) or raise.
    :param ignore_delete_many_errors: accepted for compatibility; ``delete_many``
        is one request that either deletes every key or raises.
    :param client: ``"pylibmc"``, ``"pymemcache"`` or ``"memcache"``; ``None`` picks
        the first one installed (cachelib's ``memcache_client_lib`` also works).
    :param connect_timeout: seconds to wait for a connection.
    :param timeout: seconds to wait for a reply.
    :param maximum_value_length: the server's item size limit (``memcached -I``);
        larger values are not stored (``set`` returns ``False``);
        :class:`SpreadSASLMemcachedCache` splits them instead.
    :param serializer: see :attr:`serializer`.
    :param client_options: pylibmc behaviours, or keyword arguments of the
        pymemcache / python-memcached client.
    """

    batched_get_many = True
    #: ``clear()`` flushes the whole server (no prefix-scoped clear on memcached)
    scoped_clear: t.ClassVar[bool] = False

    def __init__(
        self,
        servers: Sequence[str] | None = None,
        default_timeout: Timeout = 300,
        key_prefix: Prefix | None = None,
        pool_size: int | None = None,
        pool_blocking: bool = True,
        ignore_delete_many_errors: bool = False,
        *,
        client: str | None = None,
        connect_timeout: float = 0.5,
        timeout: float = 0.5,
        maximum_value_length: int = DEFAULT_ITEM_SIZE,
        serializer: Serializer | None = None,
        **client_options: t.Any,
    ) -> None:
        BaseCache.__init__(
            self, default_timeout, ignore_delete_many_errors=ignore_delete_many_errors
        )
        self.key_prefix = key_prefix
        client = cachelib_client_name(client, client_options)
        #: the client was picked for us, with no options of its own: another may
        #: stand in for it (see the serializer setter)
        self._client_chosen = client is None and not client_options
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
        """Turns values into bytes and back (``dumps``/``loads``); replaceable.

        The default pickle serializer stores items in pylibmc's format (released
        Flask-Caching's); any other owns the bytes of every item it writes and
        reads nothing else (see :mod:`._memcached_codec`).
        """
        return self._serializer

    @serializer.setter
    def serializer(self, serializer: Serializer) -> None:
        self._serializer = serializer
        #: values <-> items, given the name an item is bound to (see _bound_name)
        self._codec = codec_for(serializer)
        if not isinstance(serializer, PickleSerializer):
            self._leave_pylibmc()

    def _leave_pylibmc(self) -> None:
        """Under one of our serializers nothing but it may decode an item, and
        pylibmc inflates items flagged zlib in C, before any hook of ours (a small
        forged item can become hundreds of MB). So a client we picked ourselves is
        pymemcache then, when it is installed; an explicit ``client="pylibmc"``
        keeps pylibmc (and that risk: see the module docstring)."""
        if getattr(self, "client_name", None) != "pylibmc":
            return
        if not getattr(self, "_client_chosen", False):
            return
        if importlib.util.find_spec("pymemcache") is None:
            return
        old = self._pool
        self.client_name, template = self._make_driver(
            self._servers, "pymemcache", *self._timeouts, {}
        )
        self._pool = Pool(template, old.size, old.blocking)
        old.close()
        logger.info(
            "%s: the serializer is not pickle, so pymemcache is used instead of "
            "pylibmc (pylibmc inflates zlib-flagged items before any check)",
            type(self).__name__,
        )

    def _bound_name(self, key: str) -> str:
        """The name a serializer binds *key*'s entry to: prefix + key, unhashed, so
        an entry copied under another key or prefix does not verify."""
        return self._keys.prefix + key

    def _dump(self, value: t.Any, key: str) -> Item | None:
        """The item to store for *key*; ``None`` if the serializer gave up on it."""
        return self._codec.dump(value, self._bound_name(key))

    def _load(self, item: Item | None, key: str) -> t.Any:
        """The value *key*'s stored item holds; ``None`` for a miss or an unreadable
        one."""
        if item is None:
            return None
        value = self._codec.load(item, self._bound_name(key))
        return None if value is MISS else value

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

        It reads and writes :class:`~._memcached_codec.Item` objects (bytes and
        flags) untouched. Set pylibmc behaviours on it before the first operation.
        """
        return self._pool.template.raw

    @property
    def key_prefix(self) -> str:
        """The prefix in front of every key (cachelib's attribute)."""
        return self._keys.prefix

    @key_prefix.setter
    def key_prefix(self, prefix: Prefix | None) -> None:
        self._keys = KeyMapper(prefix or "")
        self._map = self._keys.map

    def _normalize_key(self, key: str) -> str:
        """The memcached key for *key* (cachelib's hook)."""
        return self._map(key)

    def close(self) -> None:
        """Close this backend's connections (they reopen if it is used again)."""
        self._pool.close()

    # -- helpers ---------------------------------------------------------------

    def _exptime(self, timeout: Timeout) -> int | None:
        """memcached's expiry for *timeout*; ``None`` when it is already expired.

        Up to 30 days it is sent in seconds; beyond, as the unix time it ends at,
        which is how memcached tells the two apart.
        """
        seconds = self._normalize_timeout(timeout)
        if seconds < 0:
            return None
        if seconds > THIRTY_DAYS:
            return int(time.time()) + seconds
        return seconds

    # -- reading ---------------------------------------------------------------

    def get(self, key: str) -> t.Any:
        """Return the value or ``None``. Raises BackendError if the server fails."""
        mkey = self._map(key)
        with self._pool.reserve() as driver:
            item = driver.get(mkey)
        return self._load(item, key)

    def get_many(self, *keys: str) -> list[t.Any]:
        """Values for *keys* (``None`` for misses), in one request."""
        if not keys:
            return []
        mapper = self._map
        mkeys = [mapper(key) for key in keys]
        with self._pool.reserve() as driver:
            found = driver.get_multi(mkeys).get
        load = self._load
        return [load(found(mkey), key) for mkey, key in zip(mkeys, keys, strict=True)]

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
        item = self._dump(value, key)
        if item is None or len(item.data) > self._item_limit:
            return False
        with self._pool.reserve() as driver:
            return driver.set(mkey, item, exptime)

    def add(self, key: str, value: t.Any, timeout: Timeout = None) -> bool:
        """Store *value* only if *key* is absent (memcached ``add``, atomic)."""
        exptime = self._exptime(timeout)
        mkey = self._map(key)
        item = self._dump(value, key)
        if exptime is None or item is None or len(item.data) > self._item_limit:
            return False
        with self._pool.reserve() as driver:
            return driver.add(mkey, item, exptime)

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
        merged, owners = self._prepare(pairs)
        if not merged:
            return []
        with self._pool.reserve() as driver:
            failed = driver.set_multi(merged, exptime)
        if not failed:
            return [key for key, _ in owners]
        refused = set(failed)
        return [key for key, mkeys in owners if refused.isdisjoint(mkeys)]

    def _prepare(
        self, pairs: Mapping[str, t.Any]
    ) -> tuple[dict[str, Item], list[tuple[str, t.Collection[str]]]]:
        """The items to write for *pairs*, and each key's memcached keys."""
        mapper, dump = self._map, self._dump
        merged: dict[str, Item] = {}
        owners: list[tuple[str, t.Collection[str]]] = []
        limit = self._item_limit
        for key, value in pairs.items():
            item = dump(value, key)
            if item is not None and len(item.data) <= limit:
                mkey = mapper(key)
                merged[mkey] = item
                owners.append((key, (mkey,)))
        return merged, owners

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
        """Flush **every key on the server** (all prefixes), as released
        Flask-Caching does: memcached has no reliable way to list a prefix's keys."""
        with self._pool.reserve() as driver:
            driver.flush_all()
        return True


def __getattr__(name: str) -> t.Any:
    # The SASL backends subclass MemcachedCache, so they live in their own modules
    # and are loaded from here on first use.
    if name == "SASLMemcachedCache":
        from ._memcached_sasl import SASLMemcachedCache

        return SASLMemcachedCache
    if name == "SpreadSASLMemcachedCache":
        from ._memcached_spread import SpreadSASLMemcachedCache

        return SpreadSASLMemcachedCache
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
