"""Building redis-py clients from CACHE_* settings, and translating their errors.

Kept apart from ``rediscache.py`` so that module reads as the cache protocol only.
Every configuration error names the setting it is about; every driver error becomes
a :class:`~flask_caching.exceptions.BackendError`.
"""

from __future__ import annotations

import functools
import typing as t

from ..exceptions import BackendError, ConfigurationError

if t.TYPE_CHECKING:
    from types import ModuleType

#: Seconds to open a TCP connection. On a LAN it takes well under a millisecond; this
#: only bites when the host is unreachable (packets dropped), where the OS default
#: would hang for minutes.
DEFAULT_SOCKET_CONNECT_TIMEOUT = 0.25
#: Seconds to wait for a reply. Generous for multi-megabyte values on a LAN, short
#: enough that a stalled server costs each request half a second, not a page timeout.
DEFAULT_SOCKET_TIMEOUT = 0.5
_URL_SCHEMES = frozenset({"redis", "rediss", "unix"})


class _HasDriverErrors(t.Protocol):
    _driver_errors: tuple[type[Exception], ...]


_P = t.ParamSpec("_P")
_R = t.TypeVar("_R")
_C = t.TypeVar("_C", bound="_HasDriverErrors")


def translated(
    method: t.Callable[t.Concatenate[_C, _P], _R],
) -> t.Callable[t.Concatenate[_C, _P], _R]:
    """Raise the driver's errors from *method* as BackendError, the original chained."""

    @functools.wraps(method)
    def wrapper(self: _C, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(self, *args, **kwargs)
        except self._driver_errors as exc:
            name = f"{type(self).__name__}.{method.__name__}()"
            raise BackendError(f"{name} failed: {exc}") from exc

    return wrapper


def driver_errors() -> tuple[type[Exception], ...]:
    """The redis-py exceptions that mean the server failed or refused a command."""
    errors = import_redis().exceptions
    # RedisClusterException is not a RedisError subclass.
    return (errors.RedisError, errors.RedisClusterException)


def import_redis() -> ModuleType:
    """Import redis-py, or explain how to install it."""
    try:
        import redis
    except ImportError as exc:
        raise ConfigurationError(
            "The Redis backends need the redis package: pip install redis"
            " (or pip install 'Flask-Caching[redis]')."
        ) from exc
    return redis


def client_options(options: t.Mapping[str, t.Any], setting: str) -> dict[str, t.Any]:
    """Add the fail-fast defaults to redis client kwargs the user did not set."""
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
        if sep and host and port.isdigit():
            return host.strip("[]"), int(port)
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


def client_from_url(
    url: t.Any, db: t.Any, password: str | None, options: t.Mapping[str, t.Any]
) -> t.Any:
    """A client for CACHE_REDIS_URL in which the DB and password settings win."""
    if not isinstance(url, str) or url.partition("://")[0] not in _URL_SCHEMES:
        raise ConfigurationError(
            "CACHE_REDIS_URL must start with redis://, rediss:// or unix://,"
            f" got {url!r}"
        )
    redis = import_redis()
    client = redis.from_url(url, **client_options(options, "CACHE_OPTIONS"))
    # redis-py lets the URL win over keyword arguments; the settings should win.
    pool_kwargs = client.connection_pool.connection_kwargs
    if db is not None:
        pool_kwargs["db"] = int_setting(db, "CACHE_REDIS_DB", 0)
    if password and not pool_kwargs.get("password"):
        pool_kwargs["password"] = password
    return client
