"""One :class:`~._memcached.Driver` per memcached client library, and the choice.

pylibmc (libmemcached, C) is preferred when installed, then pymemcache (pure Python),
then python-memcached. Each driver only adapts method names and return values and
lists the library's exception types; :class:`~._memcached.Pool` translates them.
The pure-Python drivers are here; the pylibmc ones are in :mod:`._pylibmc_driver`
(re-exported here).
"""

from __future__ import annotations

import functools
import importlib
import typing as t
from collections.abc import Callable

from ..exceptions import ConfigurationError
from ._memcached import Driver, Item, NotANumber, _explain, _TimeKeywordWrites
from ._memcached_codec import pylibmc_item
from ._pylibmc_driver import NoReply as NoReply
from ._pylibmc_driver import PylibmcDriver as PylibmcDriver
from ._pylibmc_driver import SaslPylibmcDriver as SaslPylibmcDriver
from ._pylibmc_driver import ensure_sasl_plugin_path as ensure_sasl_plugin_path
from ._pylibmc_driver import item_client_class
from ._pylibmc_driver import scrub_c_stack as scrub_c_stack

__all__ = [
    "CLIENT_NAMES",
    "MemcacheDriver",
    "NoReply",
    "PylibmcDriver",
    "PymemcacheDriver",
    "SaslPylibmcDriver",
    "build_driver_factory",
    "cachelib_client_name",
    "ensure_sasl_plugin_path",
    "import_client",
]

#: every client library we can drive, in the order we try them
CLIENT_NAMES = ("pylibmc", "pymemcache", "memcache")


class ItemSerde:
    """pymemcache's ``serde``: :class:`~._memcached_codec.Item` objects pass as
    they are, so pymemcache never interprets a stored item; other values (direct
    use of ``backend._client``) are written as pylibmc writes them."""

    def serialize(self, key: t.Any, value: t.Any) -> tuple[bytes, int]:
        item = value if type(value) is Item else pylibmc_item(value)
        return item.data, item.flags

    def deserialize(self, key: t.Any, value: bytes, flags: int) -> Item:
        return Item(value, flags)


@functools.cache
def memcache_item_client(base: type) -> type:
    """A subclass of python-memcached's ``Client`` (*base*) that stores and returns
    :class:`~._memcached_codec.Item` objects as they are (it otherwise unpickles and
    inflates by the item's flags, before anything else sees it)."""

    def _val_to_store_info(self: t.Any, val: t.Any, min_compress_len: int) -> t.Any:
        item = val if type(val) is Item else pylibmc_item(val)
        limit = self.server_max_value_length
        if limit and len(item.data) > limit:
            return 0
        return item.flags, len(item.data), item.data

    def _recv_value(self: t.Any, server: t.Any, flags: int, rlen: int) -> Item:
        buf = server.recv(rlen + 2)
        if len(buf) != rlen + 2:
            raise OSError(f"memcached sent {len(buf)} bytes, expected {rlen + 2}")
        return Item(buf[:-2], flags)

    namespace = {
        "_val_to_store_info": _val_to_store_info,
        "_recv_value": _recv_value,
    }
    return type("ItemClient", (base,), namespace)


class PymemcacheDriver:
    """Drive pymemcache (pure Python). Replies are always awaited (no ``noreply``)."""

    def __init__(self, make: Callable[[], t.Any]) -> None:
        from pymemcache.exceptions import MemcacheClientError, MemcacheError

        self._make = make
        self.raw = make()
        self._client_error = MemcacheClientError
        self.errors: tuple[type[BaseException], ...] = (MemcacheError, OSError)

    def get(self, key: str) -> Item | None:
        return t.cast("Item | None", self.raw.get(key))

    def get_multi(self, keys: list[str]) -> dict[str, Item]:
        return t.cast("dict[str, Item]", self.raw.get_many(keys))

    def set(self, key: str, value: Item, exptime: int) -> bool:
        return bool(self.raw.set(key, value, expire=exptime, noreply=False))

    def set_multi(self, items: dict[str, Item], exptime: int) -> list[str]:
        return list(self.raw.set_many(items, expire=exptime, noreply=False))

    def add(self, key: str, value: Item, exptime: int) -> bool:
        return bool(self.raw.add(key, value, expire=exptime, noreply=False))

    def delete(self, key: str) -> bool:
        return bool(self.raw.delete(key, noreply=False))

    def delete_multi(self, keys: list[str]) -> None:
        self.raw.delete_many(keys, noreply=False)

    def incr(self, key: str, delta: int) -> int | None:
        try:
            result = self.raw.incr(key, delta, noreply=False)
        except self._client_error as exc:
            raise NotANumber(key) from exc
        return None if result is None else int(result)

    def gets(self, key: str) -> tuple[Item | None, t.Any]:
        return t.cast("tuple[Item | None, t.Any]", self.raw.gets(key))

    def cas(self, key: str, value: Item, token: t.Any, exptime: int) -> bool:
        return bool(self.raw.cas(key, value, token, expire=exptime, noreply=False))

    def flush_all(self) -> None:
        self.raw.flush_all(noreply=False)

    def reset(self) -> None:
        """Drop the socket: after an error it may hold half a reply."""
        self.raw.close()

    def close(self) -> None:
        self.raw.close()

    def __del__(self) -> None:
        # A thread's client is dropped when the thread ends: close its socket
        # rather than leave it to the garbage collector (a ResourceWarning).
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def clone(self) -> PymemcacheDriver:
        return PymemcacheDriver(self._make)

    def explain(self, exc: BaseException) -> str:
        return _explain(exc)


class MemcacheDriver(_TimeKeywordWrites, PymemcacheDriver):
    """Drive python-memcached (``memcache``). It reports most failures by returning
    ``0``/``None`` rather than raising, so with it errors look like misses."""

    def __init__(self, make: Callable[[], t.Any]) -> None:
        self._make = make
        self.raw = make()
        self.errors = (OSError,)

    def get_multi(self, keys: list[str]) -> dict[str, Item]:
        return t.cast("dict[str, Item]", self.raw.get_multi(keys))

    def incr(self, key: str, delta: int) -> int | None:
        # None means "missing"; ValueError "not a number". Either way the caller's
        # compare-and-swap path sorts it out.
        try:
            result = self.raw.incr(key, delta)
        except ValueError as exc:
            raise NotANumber(key) from exc
        if result is None:
            raise NotANumber(key)
        return int(result)

    def gets(self, key: str) -> tuple[Item | None, t.Any]:
        return self.raw.gets(key), None  # the CAS id is kept inside the client

    def cas(self, key: str, value: Item, token: t.Any, exptime: int) -> bool:
        return bool(self.raw.cas(key, value, time=exptime))

    def flush_all(self) -> None:
        self.raw.flush_all()

    def reset(self) -> None:
        self.raw.disconnect_all()

    def close(self) -> None:
        self.raw.disconnect_all()

    def clone(self) -> MemcacheDriver:
        return MemcacheDriver(self._make)


#: cachelib's names (``memcache_client_lib``) of the client libraries we drive
_CACHELIB_CLIENTS = ("pylibmc", "memcache")


def cachelib_client_name(client: str | None, options: dict[str, t.Any]) -> str | None:
    """CACHE_OPTIONS ``client``, else cachelib's ``memcache_client_lib`` (popped
    from *options*)."""
    lib = options.pop("memcache_client_lib", None)
    if lib is None or client is not None:
        return client
    if lib not in _CACHELIB_CLIENTS:
        raise ConfigurationError(
            f"CACHE_OPTIONS memcache_client_lib={lib!r} is not supported; "
            "use client='pylibmc', 'pymemcache' or 'memcache'"
        )
    return t.cast(str, lib)


def import_client(name: str | None) -> tuple[str, t.Any]:
    """Import the client library *name*, or the first installed one if ``None``."""
    if name is not None and name not in CLIENT_NAMES:
        raise ConfigurationError(
            f"CACHE_OPTIONS client must be one of {', '.join(CLIENT_NAMES)}, "
            f"got {name!r}"
        )
    for candidate in (name,) if name else CLIENT_NAMES:
        if candidate == "pylibmc":
            ensure_sasl_plugin_path()
        try:
            return candidate, importlib.import_module(candidate)
        except ImportError:
            if name:
                raise ConfigurationError(
                    f"CACHE_OPTIONS client={name!r} but {name} is not installed: "
                    f"pip install {'python-memcached' if name == 'memcache' else name}"
                ) from None
    raise ConfigurationError(
        "MemcachedCache needs a memcached client library; none is installed. "
        "Install one: pip install pylibmc (or pymemcache)"
    )


def _split_server(server: str) -> tuple[str, int] | str:
    if server.startswith("/") or server.startswith("unix:"):
        return server.removeprefix("unix:")
    host, _, port = server.rpartition(":")
    return host.strip("[]"), int(port)


def build_driver_factory(
    servers: list[str],
    client: str | None,
    *,
    connect_timeout: float,
    timeout: float,
    binary: bool = False,
    username: str | None = None,
    password: str | None = None,
    options: dict[str, t.Any],
) -> tuple[str, Driver]:
    """Build the template driver for *servers* (threads and pools use clones of it).

    *options* are extra pylibmc behaviours, or pymemcache / python-memcached client
    keyword arguments, depending on the library chosen.
    """
    name, module = import_client(client)
    if name == "pylibmc":
        return name, _pylibmc_driver(
            module,
            servers,
            connect_timeout,
            timeout,
            credentials=(binary, username, password),
            options=options,
        )
    if name == "pymemcache":
        kwargs = {
            "connect_timeout": connect_timeout,
            "timeout": timeout,
            "no_delay": True,
            "default_noreply": False,
            "allow_unicode_keys": True,
            **options,
            "serde": ItemSerde(),
        }
        if len(servers) == 1:
            address = _split_server(servers[0])
            return name, PymemcacheDriver(lambda: module.Client(address, **kwargs))
        addresses = [_split_server(s) for s in servers]
        kwargs.setdefault("retry_attempts", 0)
        return name, PymemcacheDriver(lambda: module.HashClient(addresses, **kwargs))
    kwargs = {"socket_timeout": timeout, "dead_retry": 1, "cache_cas": True, **options}
    client_class = memcache_item_client(module.Client)
    return name, MemcacheDriver(lambda: client_class(servers, **kwargs))


def _pylibmc_driver(
    module: t.Any,
    servers: list[str],
    connect_timeout: float,
    timeout: float,
    *,
    credentials: tuple[bool, str | None, str | None],
    options: dict[str, t.Any],
) -> PylibmcDriver:
    """The pylibmc driver: short timeouts, no retry wait, *options* as behaviours."""
    behaviors: dict[str, t.Any] = {
        "tcp_nodelay": True,
        "cas": True,
        "connect_timeout": max(1, round(connect_timeout * 1000)),
        "_poll_timeout": max(1, round(timeout * 1000)),
        "send_timeout": max(1, round(timeout * 1_000_000)),
        "receive_timeout": max(1, round(timeout * 1_000_000)),
        # the shortest libmemcached allows; reset() clears the mark anyway
        "retry_timeout": 1,
    }
    if len(servers) > 1:
        behaviors["ketama"] = True
    # released Flask-Caching hands CACHE_OPTIONS to pylibmc.Client: behaviors={...}
    options = {**(options.pop("behaviors", None) or {}), **options}
    unknown = sorted(set(options) - set(module.all_behaviors))
    if unknown:
        raise ConfigurationError(
            f"CACHE_OPTIONS {unknown} are not pylibmc behaviours; "
            f"known ones: {', '.join(sorted(module.all_behaviors))}"
        )
    behaviors.update(options)
    binary, username, password = credentials
    raw = item_client_class(module.Client)(
        servers,
        binary=binary,
        username=username,
        password=password,
        behaviors=behaviors,
    )
    quiet = bool(behaviors.get("_noreply"))
    kind = PylibmcDriver if username is None else SaslPylibmcDriver
    return kind(module, raw, int(behaviors["_poll_timeout"]), quiet)
