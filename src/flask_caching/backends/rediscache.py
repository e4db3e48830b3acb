"""Redis backends: a standalone server, Sentinel and Cluster, on one implementation.

:class:`RedisCache` speaks the cache protocol to any redis-py compatible client;
:class:`RedisSentinelCache` and :class:`RedisClusterCache` only build different
clients (Cluster also groups multi-key reads by hash slot).

Choices that hold for all three:

- **Fail fast.** Unless ``CACHE_OPTIONS`` says otherwise, clients connect within
  :data:`DEFAULT_SOCKET_CONNECT_TIMEOUT`, wait :data:`DEFAULT_SOCKET_TIMEOUT` for a
  reply and never retry (redis-py >= 6 retries three times with backoff by default).
  A cache outage then costs milliseconds per call; the caller decides what to do.
  No ``health_check_interval`` PINGs either: redis-py already replaces a pooled
  connection the server has closed before using it, without an extra round trip.
- **One round trip per call.** ``get_many`` is one MGET, ``set_many`` one pipeline,
  ``delete_many`` one UNLINK, ``add`` one ``SET NX EX``; no separate EXPIRE.
- **Values.** ``int`` values are stored as decimal digits so INCRBY (``inc``/``dec``)
  works on them; everything else goes through ``self.serializer`` (``dumps``/``loads``,
  swappable). Bytes that do not load are a miss, never an error.
- **Timeouts.** ``0`` never expires; a negative timeout means already expired, so
  ``set`` deletes the key and ``add`` stores nothing.
- **Errors.** Driver exceptions (server down, timeout, a command refused) are raised
  as :class:`~flask_caching.exceptions.BackendError`, the redis-py error chained as
  its cause, as every backend does. Only unreadable stored bytes become a miss.
- **clear()** deletes only ``key_prefix*`` keys (SCAN + UNLINK in batches) when a
  prefix is set; without a prefix it flushes the whole database (FLUSHDB ASYNC).
"""

from __future__ import annotations

import logging
import math
import typing as t

from ..exceptions import BackendError, ConfigurationError
from ..serializers import PickleSerializer, Serializer
from ._redis_clients import (
    DEFAULT_SOCKET_CONNECT_TIMEOUT,
    DEFAULT_SOCKET_TIMEOUT,
    addresses,
    client_from_url,
    client_options,
    driver_errors,
    import_redis,
    int_setting,
    translated,
)
from .base import BaseCache, Timeout

__all__ = [
    "DEFAULT_SOCKET_CONNECT_TIMEOUT",
    "DEFAULT_SOCKET_TIMEOUT",
    "RedisCache",
    "RedisClusterCache",
    "RedisSentinelCache",
]

logger = logging.getLogger("flask_caching")

#: Keys per SCAN page and per UNLINK in :meth:`RedisCache.clear`.
CLEAR_BATCH_SIZE = 1000

_DIGIT_START = frozenset(b"-0123456789")
_GLOB_SPECIALS = "\\*?[]"


class RedisCache(BaseCache):
    """Cache on a Redis server (or anything speaking its protocol).

    :param host: a host name, or an existing redis-py client whose connection pool is
        then shared (``port``, ``password``, ``db`` and ``**kwargs`` are ignored).
    :param db: the database number; ``None`` means the URL's, else 0.
    :param url: a ``redis://``, ``rediss://`` or ``unix://`` URL; wins over *host*.
        An explicit *db* wins over the URL's; *password* fills in a URL without one.
    :param key_prefix: a string, or a callable returning one, put before every key.
    :param kwargs: passed to :class:`redis.Redis` after the fail-fast defaults.
    """

    batched_get_many = True

    #: constructor parameter -> the setting :meth:`factory` reads it from
    factory_settings: t.ClassVar[dict[str, str]] = {
        "host": "CACHE_REDIS_HOST",
        "port": "CACHE_REDIS_PORT",
        "password": "CACHE_REDIS_PASSWORD",
        "db": "CACHE_REDIS_DB",
        "url": "CACHE_REDIS_URL",
        "default_timeout": "CACHE_DEFAULT_TIMEOUT",
        "key_prefix": "CACHE_KEY_PREFIX",
    }

    def __init__(
        self,
        host: t.Any = "localhost",
        port: int | str | None = 6379,
        password: str | None = None,
        db: int | str | None = None,
        default_timeout: Timeout = 300,
        key_prefix: str | t.Callable[[], str] | None = None,
        url: str | None = None,
        **kwargs: t.Any,
    ) -> None:
        owned = bool(url) or host is None or isinstance(host, str)
        if url:
            client = client_from_url(url, db, password, kwargs)
        elif owned:
            client = import_redis().Redis(
                host=host or "localhost",
                port=int_setting(port, "CACHE_REDIS_PORT", 6379),
                password=password,
                db=int_setting(db, "CACHE_REDIS_DB", 0),
                **client_options(kwargs, "CACHE_OPTIONS"),
            )
        else:
            client = host
        self._attach(client, client, default_timeout, key_prefix, owned=owned)

    def _attach(
        self,
        write_client: t.Any,
        read_client: t.Any,
        default_timeout: Timeout,
        key_prefix: str | t.Callable[[], str] | None,
        *,
        owned: bool,
    ) -> None:
        """Finish construction once a subclass has built its clients."""
        BaseCache.__init__(self, default_timeout)
        # Clients are redis.Redis, RedisCluster or any API-compatible object.
        self._write_client: t.Any = write_client
        self._read_client: t.Any = read_client
        self._owns_clients = owned
        self._driver_errors = driver_errors()
        self.key_prefix = key_prefix or ""
        self.serializer: Serializer = PickleSerializer()

    # --- helpers ---------------------------------------------------------------

    def _prefix(self) -> str:
        prefix = self.key_prefix
        return prefix if isinstance(prefix, str) else prefix()

    def _dump(self, value: t.Any) -> bytes:
        if type(value) is int:  # not bool: True must come back as True
            return str(value).encode("ascii")
        return self.serializer.dumps(value)

    def _load(self, data: bytes | None) -> t.Any:
        if data is None:
            return None
        try:
            if data[:1] and data[0] in _DIGIT_START:
                return int(data)
            return self.serializer.loads(data)
        except Exception as exc:  # corrupt or foreign data reads as a miss
            logger.debug("Unreadable cache entry treated as a miss: %r", exc)
            return None

    @staticmethod
    def _ex(timeout: int) -> int | None:
        return timeout or None  # 0: no expiry

    # --- the cache protocol ----------------------------------------------------

    # get and get_many translate errors inline rather than through @translated:
    # they are the hot path of every hit, where one more call level shows.

    def _get_one(self, key: str) -> t.Any:
        prefix = self.key_prefix
        name = (prefix if type(prefix) is str else self._prefix()) + key
        try:
            data = self._read_client.get(name)
        except self._driver_errors as exc:
            raise BackendError(f"{type(self).__name__}.get() failed: {exc}") from exc
        return self._load(data)

    get = _get_one

    def get_many(self, *keys: str) -> list[t.Any]:
        if len(keys) == 1:
            # one key (every view and fragment hit): GET, one command like MGET
            # but ~15 us cheaper in redis-py, which parses MGET's reply as an array
            return [self._get_one(keys[0])]
        if not keys:
            return []
        prefix = self._prefix()
        try:
            raw = self._read_client.mget([prefix + key for key in keys])
        except self._driver_errors as exc:
            raise BackendError(
                f"{type(self).__name__}.get_many() failed: {exc}"
            ) from exc
        return [self._load(data) for data in raw]

    def set(self, key: str, value: t.Any, timeout: Timeout = None) -> bool:
        # errors translated inline, as in get: every miss ends here
        seconds = self._normalize_timeout(timeout)
        if seconds < 0:  # already expired: nothing to keep
            self.delete(key)
            return True
        name = self._prefix() + key
        data = self._dump(value)  # a value that cannot be dumped is not our error
        try:
            return bool(self._write_client.set(name, data, ex=seconds or None))
        except self._driver_errors as exc:
            raise BackendError(f"{type(self).__name__}.set() failed: {exc}") from exc

    @translated
    def add(self, key: str, value: t.Any, timeout: Timeout = None) -> bool:
        """Store *value* only if *key* is absent; an expired timeout adds nothing."""
        seconds = self._normalize_timeout(timeout)
        if seconds < 0:
            return False
        name = self._prefix() + key
        dump = self._dump(value)
        return bool(self._write_client.set(name, dump, ex=self._ex(seconds), nx=True))

    @translated
    def set_many(
        self, mapping: t.Mapping[str, t.Any], timeout: Timeout = None
    ) -> list[t.Any]:
        seconds = self._normalize_timeout(timeout)
        keys = list(mapping)
        if not keys:
            return []
        prefix = self._prefix()
        if seconds < 0:
            self._write_client.unlink(*(prefix + key for key in keys))
            return keys
        pipe = self._write_client.pipeline(transaction=False)
        for key, value in mapping.items():
            pipe.set(prefix + key, self._dump(value), ex=self._ex(seconds))
        results = pipe.execute()
        return [key for key, ok in zip(keys, results, strict=True) if ok]

    @translated
    def delete(self, key: str) -> bool:
        return bool(self._write_client.unlink(self._prefix() + key))

    @translated
    def delete_many(self, *keys: str) -> list[t.Any]:
        """Delete *keys* with one UNLINK; all of them are absent afterwards."""
        if not keys:
            return []
        prefix = self._prefix()
        self._write_client.unlink(*(prefix + key for key in keys))
        return list(keys)

    @translated
    def has(self, key: str) -> bool:
        return bool(self._read_client.exists(self._prefix() + key))

    @translated
    def inc(self, key: str, delta: int = 1) -> int:
        return int(self._write_client.incrby(self._prefix() + key, delta))

    @translated
    def dec(self, key: str, delta: int = 1) -> int:
        return int(self._write_client.decrby(self._prefix() + key, delta))

    @translated
    def clear(self) -> bool:
        """Delete this cache's keys: SCAN ``prefix*``, or FLUSHDB when unprefixed."""
        prefix = self._prefix()
        if not prefix:
            self._write_client.flushdb(asynchronous=True)
            return True
        pattern = "".join("\\" + c if c in _GLOB_SPECIALS else c for c in prefix) + "*"
        batch: list[bytes] = []
        for name in self._write_client.scan_iter(match=pattern, count=CLEAR_BATCH_SIZE):
            batch.append(name)
            if len(batch) >= CLEAR_BATCH_SIZE:
                self._write_client.unlink(*batch)
                batch.clear()
        if batch:
            self._write_client.unlink(*batch)
        return True

    def close(self) -> None:
        """Disconnect the connection pools this backend created; shared ones stay."""
        if self._owns_clients:
            self._write_client.close()
            if self._read_client is not self._write_client:
                self._read_client.close()

    # --- locks (flask_caching.locks) -------------------------------------------

    @translated
    def acquire_lock(self, key: str, token: str, timeout: float) -> bool:
        """SET NX PX: the lease in milliseconds, not rounded up to whole seconds."""
        name = self._prefix() + key
        lease = max(1, math.ceil(timeout * 1000))
        dump = self._dump(token)
        return bool(self._write_client.set(name, dump, px=lease, nx=True))

    @translated
    def release_lock(self, key: str, token: str) -> bool:
        """Compare the owner token and delete in one step (a Lua script), so a holder
        whose lease ran out never deletes the next holder's lock."""
        name = self._prefix() + key
        dump = self._dump(token)
        return bool(self._write_client.eval(_RELEASE_LOCK, 1, name, dump))


#: delete KEYS[1] only if it still holds ARGV[1] (the serialized owner token)
_RELEASE_LOCK = """
if redis.call("get", KEYS[1]) == ARGV[1] then
    return redis.call("del", KEYS[1])
end
return 0
"""


class RedisSentinelCache(RedisCache):
    """Cache on the master that Redis Sentinel announces, following failovers.

    Writes always go to the master. Reads go to the master too, so a value is
    readable right after it is written; ``read_from_replicas=True`` sends them to a
    replica instead, trading that guarantee for load on the master.

    :param sentinels: sentinel addresses, ``(host, port)`` tuples or ``"host:port"``.
    :param master: the monitored master's name (``None``: "mymaster").
    :param sentinel_kwargs: redis client kwargs for talking to the sentinels
        (e.g. their password); fail-fast defaults are added.
    """

    factory_settings: t.ClassVar[dict[str, str]] = {
        "sentinels": "CACHE_REDIS_SENTINELS",
        "master": "CACHE_REDIS_SENTINEL_MASTER",
        "password": "CACHE_REDIS_PASSWORD",
        "db": "CACHE_REDIS_DB",
        "default_timeout": "CACHE_DEFAULT_TIMEOUT",
        "key_prefix": "CACHE_KEY_PREFIX",
    }

    def __init__(
        self,
        sentinels: t.Any = None,
        master: str | None = "mymaster",
        password: str | None = None,
        db: int | str | None = 0,
        default_timeout: Timeout = 300,
        key_prefix: str | t.Callable[[], str] | None = None,
        sentinel_kwargs: t.Mapping[str, t.Any] | None = None,
        read_from_replicas: bool = False,
        **kwargs: t.Any,
    ) -> None:
        sentinel_addresses = addresses(sentinels, "CACHE_REDIS_SENTINELS")
        master = "mymaster" if master is None else master
        if not master or not isinstance(master, str):
            raise ConfigurationError(
                "CACHE_REDIS_SENTINEL_MASTER must name the master the sentinels"
                f" monitor, got {master!r}"
            )
        redis = import_redis()
        sentinel = redis.sentinel.Sentinel(
            sentinel_addresses,
            sentinel_kwargs=client_options(sentinel_kwargs or {}, "sentinel_kwargs"),
            password=password,
            db=int_setting(db, "CACHE_REDIS_DB", 0),
            **client_options(kwargs, "CACHE_OPTIONS"),
        )
        writer = sentinel.master_for(master)
        reader = sentinel.slave_for(master) if read_from_replicas else writer
        self._sentinel = sentinel
        self._attach(writer, reader, default_timeout, key_prefix, owned=True)

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
    :param kwargs: passed to :class:`redis.cluster.RedisCluster`.
    """

    factory_settings: t.ClassVar[dict[str, str]] = {
        "cluster": "CACHE_REDIS_CLUSTER",
        "password": "CACHE_REDIS_PASSWORD",
        "default_timeout": "CACHE_DEFAULT_TIMEOUT",
        "key_prefix": "CACHE_KEY_PREFIX",
    }

    def __init__(
        self,
        cluster: t.Any = None,
        password: str | None = None,
        default_timeout: Timeout = 300,
        key_prefix: str | t.Callable[[], str] | None = None,
        **kwargs: t.Any,
    ) -> None:
        nodes = addresses(cluster, "CACHE_REDIS_CLUSTER")
        cluster_mod = import_redis().cluster
        options = client_options(kwargs, "CACHE_OPTIONS")
        options.pop("retry_on_error")  # not a cluster option; retry covers it
        try:  # RedisCluster fetches the slot map right away
            client = cluster_mod.RedisCluster(
                startup_nodes=[cluster_mod.ClusterNode(h, p) for h, p in nodes],
                password=password,
                **options,
            )
        except (cluster_mod.RedisClusterException, cluster_mod.RedisError) as exc:
            raise BackendError(
                f"RedisClusterCache could not reach the cluster at CACHE_REDIS_CLUSTER"
                f" {cluster!r}: {exc}"
            ) from exc
        self._attach(client, client, default_timeout, key_prefix, owned=True)

    @translated
    def get_many(self, *keys: str) -> list[t.Any]:
        """One MGET when all keys share a slot, else one MGET per slot, pipelined."""
        if not keys:
            return []
        prefix = self._prefix()
        names = [prefix + key for key in keys]
        client = self._read_client
        if len({client.keyslot(name) for name in names}) == 1:
            raw = client.mget(names)
        else:
            raw = client.mget_nonatomic(names)
        return [self._load(data) for data in raw]
