"""Redis backends on cachelib's ``RedisCache``: a standalone server, Sentinel, Cluster.

:class:`RedisCache` is a :class:`cachelib.RedisCache` and stores the same keys and
bytes released Flask-Caching stores (see :mod:`._redis_serializer`), so old and new
instances share one Redis. cachelib builds the client and keeps ``_read_client``,
``_write_client`` and ``key_prefix`` where applications reach for them; ``has``,
``delete``, ``inc`` and ``dec`` (INCRBY) are cachelib's. What is overridden, and why:

- **Fail fast.** A client built from a host name connects within
  :data:`DEFAULT_SOCKET_CONNECT_TIMEOUT`, waits :data:`DEFAULT_SOCKET_TIMEOUT` for a
  reply and never retries, unless the options say otherwise.
- **One round trip per call.** ``get_many`` is one MGET, ``set_many`` one pipeline,
  ``delete_many`` one UNLINK, ``add`` one ``SET NX EX`` (cachelib: SETNX + EXPIRE,
  and a DELETE then an EXISTS per key in ``delete_many``).
- **Timeouts.** ``0`` never expires; a negative timeout means already expired, so
  ``set`` deletes the key and ``add`` stores nothing.
- **clear()** deletes only ``key_prefix*`` keys (SCAN + UNLINK in batches, where
  cachelib uses KEYS) when a prefix is set; without one it flushes the database.
- **Locks** for :mod:`flask_caching.locks`: SET NX PX, and a compare-and-delete in Lua.

Errors are redis-py's own, raised as they come, as released Flask-Caching raises them.
:class:`RedisSentinelCache` and :class:`RedisClusterCache` only build other clients.

Size: a few lines over the ~400 the style asks for; the overrides are one small
method each and this docstring is the backend's documentation.
"""

from __future__ import annotations

import itertools
import math
import typing as t

from cachelib import RedisCache as _CachelibRedisCache

from ..exceptions import ConfigurationError
from ._redis_clients import (
    DEFAULT_SOCKET_CONNECT_TIMEOUT,
    DEFAULT_SOCKET_TIMEOUT,
    client_from_url,
    client_options,
    cluster_client,
    int_setting,
    sentinel_client,
    split_options,
)
from ._redis_serializer import RedisSerializer, dump_value, load_value
from .base import BaseCache, Timeout, normalize_timeout

if t.TYPE_CHECKING:
    from flask import Flask
    from typing_extensions import Self

__all__ = [
    "DEFAULT_SOCKET_CONNECT_TIMEOUT",
    "DEFAULT_SOCKET_TIMEOUT",
    "RedisCache",
    "RedisClusterCache",
    "RedisSentinelCache",
    "RedisSerializer",
]

#: Keys per SCAN page and per UNLINK in :meth:`RedisCache.clear`.
CLEAR_BATCH_SIZE = 1000

_GLOB_SPECIALS = "\\*?[]"

#: delete KEYS[1] only if it still holds ARGV[1] (the serialized owner token)
_RELEASE_LOCK = """
if redis.call("get", KEYS[1]) == ARGV[1] then
    return redis.call("del", KEYS[1])
end
return 0
"""


class RedisCache(BaseCache, _CachelibRedisCache):
    """Cache on a Redis server (or anything speaking its protocol).

    :param host: a host name, or a redis-py client (then ``port``, ``password``,
        ``db`` and ``**kwargs`` are not used, and the client is never closed here).
    :param key_prefix: a string, or a callable returning one (cachelib >= 0.10: on
        0.9, cachelib's ``has``/``delete``/``inc``/``dec`` take strings only).
    :param ignore_delete_many_errors: accepted as cachelib does; ``delete_many``
        removes every key in one UNLINK, so there is never a failed key to report.
    :param kwargs: passed to :class:`redis.Redis` after the fail-fast defaults.
    """

    batched_get_many = True
    serializer: t.Any = RedisSerializer()

    #: constructor parameter -> the setting :meth:`factory` reads it from
    factory_settings: t.ClassVar[dict[str, str]] = {
        "host": "CACHE_REDIS_HOST",
        "port": "CACHE_REDIS_PORT",
        "password": "CACHE_REDIS_PASSWORD",
        "db": "CACHE_REDIS_DB",
        "default_timeout": "CACHE_DEFAULT_TIMEOUT",
        "key_prefix": "CACHE_KEY_PREFIX",
        "ignore_delete_many_errors": "CACHE_IGNORE_ERRORS",
    }

    def __init__(
        self,
        host: t.Any = "localhost",
        port: int | str = 6379,
        password: str | None = None,
        db: int | str = 0,
        default_timeout: Timeout = 300,
        key_prefix: str | t.Callable[[], str] | None = None,
        ignore_delete_many_errors: bool = False,
        **kwargs: t.Any,
    ) -> None:
        owned = isinstance(host, str)
        if owned:  # cachelib builds redis.Redis(host, port, password, db, **kwargs)
            kwargs = client_options(kwargs, "CACHE_OPTIONS")
            port = int_setting(port, "CACHE_REDIS_PORT", 6379)
            db = int_setting(db, "CACHE_REDIS_DB", 0)
        # cachelib builds the client (and refuses host=None with ValueError, as
        # released does) and sets the timeout; the delete_many flag is set here, as
        # cachelib < 0.16 has no parameter for it
        _CachelibRedisCache.__init__(
            self,
            host=host,
            port=t.cast(int, port),
            password=password,
            db=t.cast(int, db),
            default_timeout=normalize_timeout(default_timeout, 300),
            key_prefix=key_prefix,
            **kwargs,
        )
        self.ignore_delete_many_errors = bool(ignore_delete_many_errors)
        self._owns_clients = owned

    @classmethod
    def factory(
        cls,
        app: Flask,
        config: t.Mapping[str, t.Any],
        args: list[t.Any],
        kwargs: dict[str, t.Any],
    ) -> Self:
        """Map CACHE_REDIS_* onto the constructor; CACHE_REDIS_URL wins over the host.

        With a URL, CACHE_OPTIONS configure the client built from it. Subclasses
        without a host setting (Sentinel, Cluster) map their settings directly.
        """
        url = config.get("CACHE_REDIS_URL")
        if not url or "host" not in cls.factory_settings:
            return super().factory(app, config, args, kwargs)
        params, options = split_options(kwargs)
        client = client_from_url(
            url,
            config.get("CACHE_REDIS_DB"),
            config.get("CACHE_REDIS_PASSWORD"),
            options,
        )
        for name in ("default_timeout", "key_prefix", "ignore_delete_many_errors"):
            setting = cls.factory_settings[name]
            if config.get(setting) is not None:
                params[name] = config[setting]
        backend: Self = t.cast(t.Any, cls)(*args, host=client, **params)
        backend._owns_clients = True
        return backend

    # --- helpers ---------------------------------------------------------------

    def _get_prefix(self) -> str:
        """The key prefix now (it may be a callable); cachelib 0.9 has no such method."""
        prefix = self.key_prefix
        return prefix if type(prefix) is str else t.cast(t.Callable[[], str], prefix)()

    def _dump(self, value: t.Any, name: str) -> bytes:
        return dump_value(self.serializer, value, name)

    def _mget(self, names: list[str]) -> list[bytes | None]:
        """One MGET of *names* (Cluster splits it by slot)."""
        return list(self._read_client.mget(names))

    def _remove(self, names: list[str]) -> t.Any:
        """UNLINK *names* (freed in the background), DEL on clients without it."""
        client = self._write_client
        remove = getattr(client, "unlink", None)
        if not callable(remove):
            remove = client.delete
        return remove(*names)

    # --- the cache protocol ----------------------------------------------------

    def get(self, key: str) -> t.Any:
        name = self._get_prefix() + key
        return load_value(self.serializer, self._read_client.get(name), name)

    def get_many(self, *keys: str) -> list[t.Any]:
        if not keys:
            return []
        names = [self._get_prefix() + k for k in keys]
        load, serializer = load_value, self.serializer
        # every value the client returns, as cachelib does (even a stand-in client's)
        bound = itertools.chain(names, itertools.repeat(""))
        found = self._mget(names)
        return [load(serializer, d, n) for d, n in zip(found, bound, strict=False)]

    def set(self, key: str, value: t.Any, timeout: Timeout = None) -> t.Any:
        """SET with EX; returns the client's reply (True), as cachelib does."""
        seconds = self._normalize_timeout(timeout)
        if seconds < 0:  # already expired: nothing to keep
            self.delete(key)
            return True
        name = self._get_prefix() + key
        dump = self._dump(value, name)
        return self._write_client.set(name, dump, ex=seconds or None)

    def add(self, key: str, value: t.Any, timeout: Timeout = None) -> bool:
        """Store *value* only if *key* is absent, in one SET NX EX."""
        seconds = self._normalize_timeout(timeout)
        if seconds < 0:
            return False
        name = self._get_prefix() + key
        dump = self._dump(value, name)
        return bool(self._write_client.set(name, dump, ex=seconds or None, nx=True))

    def set_many(
        self, mapping: t.Mapping[str, t.Any], timeout: Timeout = None
    ) -> list[t.Any]:
        """All the SETs in one pipeline (no MULTI, which twemproxy refuses)."""
        seconds = self._normalize_timeout(timeout)
        keys = list(mapping)
        if not keys:
            return []
        prefix = self._get_prefix()
        if seconds < 0:
            self._remove([prefix + key for key in keys])
            return keys
        pipe = self._write_client.pipeline(transaction=False)
        for key, value in mapping.items():
            name = prefix + key
            pipe.set(name, self._dump(value, name), ex=seconds or None)
        results = pipe.execute()
        return [key for key, ok in zip(keys, results, strict=True) if ok]

    def delete_many(self, *keys: str) -> list[t.Any]:
        """Delete *keys* with one UNLINK; all of them are absent afterwards."""
        if not keys:
            return []
        prefix = self._get_prefix()
        self._remove([prefix + key for key in keys])
        return list(keys)

    def unlink(self, *keys: str) -> t.Any:
        """Delete *keys* without blocking the server; the number removed."""
        if not keys:
            return 0
        prefix = self._get_prefix()
        return self._remove([prefix + key for key in keys])

    def clear(self) -> bool:
        """Delete this cache's keys: SCAN ``prefix*``, or FLUSHDB when unprefixed."""
        prefix = self._get_prefix()
        client = self._write_client
        if not prefix:
            client.flushdb(asynchronous=True)
            return True
        pattern = "".join("\\" + c if c in _GLOB_SPECIALS else c for c in prefix) + "*"
        batch: list[bytes] = []
        for name in client.scan_iter(match=pattern, count=CLEAR_BATCH_SIZE):
            batch.append(name)
            if len(batch) >= CLEAR_BATCH_SIZE:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)
        return True

    def close(self) -> None:
        """Disconnect the connection pools this backend created; shared ones stay."""
        if self._owns_clients:
            self._write_client.close()
            if self._read_client is not self._write_client:
                self._read_client.close()

    # --- locks (flask_caching.locks) -------------------------------------------

    def acquire_lock(self, key: str, token: str, timeout: float) -> bool:
        """SET NX PX: the lease in milliseconds, not rounded up to whole seconds."""
        name = self._get_prefix() + key
        lease = max(1, math.ceil(timeout * 1000))
        dump = self._dump(token, name)
        return bool(self._write_client.set(name, dump, px=lease, nx=True))

    def release_lock(self, key: str, token: str) -> bool:
        """Compare the owner token and delete in one step (a Lua script), so a holder
        whose lease ran out never deletes the next holder's lock."""
        name = self._get_prefix() + key
        dump = self._dump(token, name)
        return bool(self._write_client.eval(_RELEASE_LOCK, 1, name, dump))


class RedisSentinelCache(RedisCache):
    """Cache on the master that Redis Sentinel announces, following failovers.

    Building it contacts nobody. Writes go to the master. Reads go to the master
    too, so a value is readable right after it is written; ``read_from_replicas=True``
    reads from a replica instead (released Flask-Caching always does), trading that
    guarantee for load on the master.

    :param sentinels: sentinel addresses, ``(host, port)`` tuples or ``"host:port"``;
        ``127.0.0.1:26379`` when not given.
    :param sentinel_kwargs: redis client options for the sentinel connections; so
        are keyword arguments named ``sentinel_<option>`` (``sentinel_password``).
    """

    factory_settings: t.ClassVar[dict[str, str]] = {
        "sentinels": "CACHE_REDIS_SENTINELS",
        "master": "CACHE_REDIS_SENTINEL_MASTER",
        "password": "CACHE_REDIS_PASSWORD",
        "sentinel_password": "CACHE_REDIS_SENTINEL_PASSWORD",
        "db": "CACHE_REDIS_DB",
        "default_timeout": "CACHE_DEFAULT_TIMEOUT",
        "key_prefix": "CACHE_KEY_PREFIX",
        "ignore_delete_many_errors": "CACHE_IGNORE_ERRORS",
    }

    def __init__(
        self,
        sentinels: t.Any = None,
        master: str = "mymaster",
        password: str | None = None,
        db: int | str = 0,
        default_timeout: Timeout = 300,
        key_prefix: str | t.Callable[[], str] | None = None,
        ignore_delete_many_errors: bool = False,
        sentinel_kwargs: t.Mapping[str, t.Any] | None = None,
        read_from_replicas: bool = False,
        **kwargs: t.Any,
    ) -> None:
        master = "mymaster" if master is None else master
        if not master or not isinstance(master, str):
            raise ConfigurationError(
                "CACHE_REDIS_SENTINEL_MASTER must name the master the sentinels"
                f" monitor, got {master!r}"
            )
        sentinel = sentinel_client(sentinels, password, db, sentinel_kwargs, kwargs)
        writer = sentinel.master_for(master)
        super().__init__(
            writer,
            default_timeout=default_timeout,
            key_prefix=key_prefix,
            ignore_delete_many_errors=ignore_delete_many_errors,
        )
        self._read_client = sentinel.slave_for(master) if read_from_replicas else writer
        self._sentinel = sentinel
        self._owns_clients = True

    def close(self) -> None:
        """Disconnect from the master, replicas and the sentinels."""
        super().close()
        for client in self._sentinel.sentinels:
            client.close()


class RedisClusterCache(RedisCache):
    """Cache on a Redis Cluster; keys are spread over the masters by hash slot.

    Multi-key calls work across slots. Keys that share a ``{hash tag}`` share a slot,
    so reading them together is a single MGET on a single node.

    :param cluster: startup nodes, ``"host1:port1,host2:port2"`` or a list of them.
    :param redis_url: a ``redis://`` URL of one node, instead of *cluster*.
    :param kwargs: passed to :class:`redis.cluster.RedisCluster`.
    """

    factory_settings: t.ClassVar[dict[str, str]] = {
        "cluster": "CACHE_REDIS_CLUSTER",
        "redis_url": "CACHE_REDIS_URL",
        "password": "CACHE_REDIS_PASSWORD",
        "default_timeout": "CACHE_DEFAULT_TIMEOUT",
        "key_prefix": "CACHE_KEY_PREFIX",
        "ignore_delete_many_errors": "CACHE_IGNORE_ERRORS",
    }

    def __init__(
        self,
        cluster: t.Any = "",
        password: str | None = "",
        default_timeout: Timeout = 300,
        key_prefix: str | t.Callable[[], str] | None = "",
        ignore_delete_many_errors: bool = False,
        redis_url: str | None = None,
        **kwargs: t.Any,
    ) -> None:
        client = cluster_client(cluster, password or None, redis_url, kwargs)
        super().__init__(
            client,
            default_timeout=default_timeout,
            key_prefix=key_prefix,
            ignore_delete_many_errors=ignore_delete_many_errors,
        )
        self._owns_clients = True

    def _mget(self, names: list[str]) -> list[bytes | None]:
        """One MGET when all keys share a slot, else one MGET per slot, pipelined."""
        client = self._read_client
        if len({client.keyslot(name) for name in names}) == 1:
            return list(client.mget(names))
        return list(client.mget_nonatomic(names))
