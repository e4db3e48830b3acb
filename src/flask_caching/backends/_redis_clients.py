"""Building redis-py clients from CACHE_* settings and constructor arguments.

Kept apart from ``rediscache.py`` so that module reads as the cache protocol only.
Every configuration error names the setting it is about. Errors the server or the
driver raise are never translated: callers catch redis-py's own exceptions.
"""

from __future__ import annotations

import typing as t

from ..exceptions import ConfigurationError

if t.TYPE_CHECKING:
    from types import ModuleType

#: Seconds to open a TCP connection. On a LAN it takes well under a millisecond; this
#: only bites when the host is unreachable (packets dropped), where the OS default
#: would hang for minutes.
DEFAULT_SOCKET_CONNECT_TIMEOUT = 0.25
#: Seconds to wait for a reply. Generous for multi-megabyte values on a LAN, short
#: enough that a stalled server costs each request half a second, not a page timeout.
DEFAULT_SOCKET_TIMEOUT = 0.5
#: where RedisSentinelCache looks for sentinels when given none (as released does)
DEFAULT_SENTINELS = [("127.0.0.1", 26379)]
#: constructor parameters of the cache itself: never passed on to a redis client
CACHE_PARAMETERS = frozenset(
    {"default_timeout", "key_prefix", "ignore_delete_many_errors"}
)
_URL_SCHEMES = frozenset({"redis", "rediss", "unix"})
_SENTINEL_PREFIX = "sentinel_"


def import_redis() -> ModuleType:
    """Import redis-py, or explain how to install it."""
    try:
        import redis
    except ImportError as exc:
        raise ConfigurationError(
            "The Redis backends need the redis package: pip install redis"
            " (or pip install 'Flask-Caching-NG[redis]')."
        ) from exc
    return redis


def client_options(options: t.Mapping[str, t.Any], setting: str) -> dict[str, t.Any]:
    """Add the fail-fast defaults (short timeouts, no retries) the user did not set.

    redis-py >= 6 retries three times with backoff by default; for a cache an outage
    should cost milliseconds per call and let the caller decide.
    """
    redis = import_redis()
    opts = dict(options)
    if opts.get("decode_responses"):
        raise ConfigurationError(
            f"{setting}: decode_responses=True is not supported, values are bytes."
        )
    opts.setdefault("socket_connect_timeout", DEFAULT_SOCKET_CONNECT_TIMEOUT)
    opts.setdefault("socket_timeout", DEFAULT_SOCKET_TIMEOUT)
    opts.setdefault("retry", redis.retry.Retry(redis.backoff.NoBackoff(), 0))
    opts.setdefault("retry_on_error", [])
    return opts


def int_setting(value: t.Any, setting: str, default: int) -> int:
    """Read an integer setting that may also arrive as a string of digits."""
    if value is None:
        return default
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"{setting} must be an integer >= 0, got {value!r}")
    return value


def _address(entry: t.Any, setting: str) -> tuple[str, int]:
    """Turn ``"host:port"`` or ``(host, port)`` into a ``(host, port)`` tuple."""
    if isinstance(entry, str):
        host, sep, port = entry.strip().rpartition(":")
        if sep and host and port.strip().isdigit():
            return host.strip().strip("[]"), int(port)
    elif isinstance(entry, (tuple, list)) and len(entry) == 2:
        host, port = entry
        if isinstance(host, str) and host:
            return host, int_setting(port, setting, 0)
    raise ConfigurationError(
        f"{setting}: {entry!r} is not an address; use 'host:port' or (host, port)."
    )


def addresses(value: t.Any, setting: str) -> list[tuple[str, int]]:
    """Parse a list of addresses, or one comma-separated string of them."""
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not value or not isinstance(value, (list, tuple)):
        raise ConfigurationError(
            f"{setting} is required: give the server addresses as 'host:port' strings"
            " or (host, port) tuples."
        )
    return [_address(entry, setting) for entry in value]


def split_options(
    options: t.Mapping[str, t.Any],
) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    """Split CACHE_OPTIONS into (cache parameters, redis client options)."""
    cache = {k: v for k, v in options.items() if k in CACHE_PARAMETERS}
    client = {k: v for k, v in options.items() if k not in CACHE_PARAMETERS}
    return cache, client


def client_from_url(
    url: t.Any, db: t.Any, password: str | None, options: t.Mapping[str, t.Any]
) -> t.Any:
    """A client for CACHE_REDIS_URL, as released Flask-Caching builds it.

    A database in the URL wins, else CACHE_REDIS_DB (else 0): redis-py lets the URL
    win over keyword arguments. CACHE_REDIS_PASSWORD fills in a URL without one.
    """
    if not isinstance(url, str) or url.partition("://")[0] not in _URL_SCHEMES:
        raise ConfigurationError(
            "CACHE_REDIS_URL must start with redis://, rediss:// or unix://,"
            f" got {url!r}"
        )
    redis = import_redis()
    db = int_setting(db, "CACHE_REDIS_DB", 0)
    client = redis.from_url(url, db=db, **client_options(options, "CACHE_OPTIONS"))
    pool_kwargs = client.connection_pool.connection_kwargs
    if password and not pool_kwargs.get("password"):
        pool_kwargs["password"] = password
    return client


def sentinel_client(
    sentinels: t.Any,
    password: str | None,
    db: t.Any,
    sentinel_kwargs: t.Mapping[str, t.Any] | None,
    kwargs: t.Mapping[str, t.Any],
) -> t.Any:
    """A ``redis.sentinel.Sentinel``; nothing is contacted until the first command.

    As released Flask-Caching does, keyword arguments named ``sentinel_<option>``
    configure the connections to the sentinels (``sentinel_password`` is their
    ``password``); the others, the connections to the master and replicas.
    """
    found = addresses(sentinels or DEFAULT_SENTINELS, "CACHE_REDIS_SENTINELS")
    to_sentinels = {
        key[len(_SENTINEL_PREFIX) :]: value
        for key, value in kwargs.items()
        if key.startswith(_SENTINEL_PREFIX)
    }
    to_sentinels.update(sentinel_kwargs or {})
    to_servers = {k: v for k, v in kwargs.items() if not k.startswith(_SENTINEL_PREFIX)}
    return import_redis().sentinel.Sentinel(
        found,
        sentinel_kwargs=client_options(to_sentinels, "sentinel_kwargs"),
        password=password,
        db=int_setting(db, "CACHE_REDIS_DB", 0),
        **client_options(to_servers, "CACHE_OPTIONS"),
    )


def cluster_client(
    cluster: t.Any, password: str | None, url: str | None, kwargs: t.Mapping[str, t.Any]
) -> t.Any:
    """A ``redis.cluster.RedisCluster`` from CACHE_REDIS_URL or CACHE_REDIS_CLUSTER.

    RedisCluster reads the slot map right away, so an unreachable cluster raises
    redis-py's own error here; on Python 3.11+ a note names the setting.
    """
    cluster_mod = import_redis().cluster
    options = client_options(kwargs, "CACHE_OPTIONS")
    options.pop("retry_on_error")  # not a cluster option; ``retry`` covers it
    setting = "CACHE_REDIS_URL" if url else "CACHE_REDIS_CLUSTER"
    try:
        if url:
            return cluster_mod.RedisCluster.from_url(url, password=password, **options)
        nodes = addresses(cluster, setting)
        return cluster_mod.RedisCluster(
            startup_nodes=[cluster_mod.ClusterNode(h, p) for h, p in nodes],
            password=password,
            **options,
        )
    except (cluster_mod.RedisClusterException, cluster_mod.RedisError) as exc:
        add_note = getattr(exc, "add_note", None)
        if add_note is not None:
            add_note(f"RedisClusterCache could not reach {setting}={url or cluster!r}")
        raise
