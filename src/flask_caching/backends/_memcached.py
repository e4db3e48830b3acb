"""Plumbing shared by the memcached backends: keys, values, client drivers, a pool.

The backends in :mod:`.memcache` talk to the server through a small :class:`Driver`
interface (bytes in, bytes out, valid keys only), so the three client libraries we
support look alike and their exceptions are translated in one place, :meth:`Pool.
reserve`, into :class:`~flask_caching.exceptions.BackendError`.

* :class:`KeyMapper` turns any ``str`` key into a key memcached accepts.
* :class:`MemcachedSerializer` is the default value format (ints stay decimal so the
  server's ``incr`` works on them).
* :func:`build_driver_factory` picks pylibmc, pymemcache or python-memcached.
* :class:`Pool` hands each thread a driver of its own, or shares a bounded set.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import pickle
import platform
import re
import sys
import sysconfig
import threading
import typing as t
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cachelib.serializers import BaseSerializer

from ..exceptions import BackendError, ConfigurationError

__all__ = [
    "CLIENT_NAMES",
    "Driver",
    "KeyMapper",
    "MemcachedSerializer",
    "NotANumber",
    "Pool",
    "build_driver_factory",
    "ensure_sasl_plugin_path",
]

#: memcached refuses keys longer than this many bytes
MAX_KEY_LENGTH = 250
#: the longest suffix we append to the prefix ourselves ("~h:" + a sha256 hex digest)
RESERVED_SUFFIX_LENGTH = 3 + 64
#: every client library we can drive, in the order we try them
CLIENT_NAMES = ("pylibmc", "pymemcache", "memcache")

# A key is passed through unchanged only when memcached accepts it as it is: printable
# ASCII without spaces, and not starting with "~", which we keep for our own keys.
_PLAIN_KEY = re.compile(r"[!-}][!-~]*\Z")
_DECIMAL = re.compile(rb"-?[0-9]+ *\Z")


class KeyMapper:
    """Map cache keys onto memcached keys, collision-free.

    A key that memcached accepts as it is (printable ASCII, no spaces, not starting
    with ``~``, at most 250 bytes with the prefix) is only prefixed. Every other key
    becomes ``prefix + "~h:" + sha256(key)``; since no pass-through key starts with
    ``~``, a mapped key can never equal a pass-through one. Keys beginning ``~c:`` are
    left for spread chunks (see :class:`~.memcache.SpreadSASLMemcachedCache`).
    """

    def __init__(self, prefix: str) -> None:
        if not isinstance(prefix, str) or (prefix and not _PLAIN_KEY.match(prefix)):
            raise ConfigurationError(
                f"CACHE_KEY_PREFIX must be printable ASCII without spaces, "
                f"got {prefix!r}"
            )
        if len(prefix) > MAX_KEY_LENGTH - RESERVED_SUFFIX_LENGTH:
            raise ConfigurationError(
                f"CACHE_KEY_PREFIX is {len(prefix)} characters; memcached keys are "
                f"limited to {MAX_KEY_LENGTH} bytes, so keep the prefix at most "
                f"{MAX_KEY_LENGTH - RESERVED_SUFFIX_LENGTH} characters"
            )
        self.prefix = prefix
        self._room = MAX_KEY_LENGTH - len(prefix)

    def __call__(self, key: str) -> str:
        if not isinstance(key, str):
            raise TypeError(f"cache keys must be str, got {type(key).__name__}")
        if len(key) <= self._room and _PLAIN_KEY.match(key):
            return self.prefix + key
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self.prefix}~h:{digest}"


class MemcachedSerializer(BaseSerializer):
    """The default value format: ``int`` as a decimal string, anything else pickled.

    Decimal ints are what memcached's ``incr`` needs, so :meth:`inc` can run on the
    server. Pickles start with ``0x80`` and so never look like a number. Unlike
    cachelib's serializers, errors are raised, not logged: the backend turns a value
    that cannot be loaded into a miss and a value that cannot be dumped into an error.
    """

    def dumps(self, value: t.Any, protocol: int = pickle.HIGHEST_PROTOCOL) -> bytes:
        if type(value) is int:  # not bool: True must come back as True
            return str(value).encode("ascii")
        return pickle.dumps(value, protocol)

    def loads(self, bvalue: bytes) -> t.Any:
        if _DECIMAL.match(bvalue):  # incr may leave trailing spaces behind
            return int(bvalue)
        return pickle.loads(bvalue)


class NotANumber(Exception):
    """``incr`` refused the stored value (negative or not a decimal number)."""


class Driver(t.Protocol):
    """What the backends need from a client library: bytes values, valid keys.

    ``exptime`` is already in memcached's format (0 = never, large = unix time).
    Methods raise the library's own exceptions; :class:`Pool` translates them.
    """

    errors: tuple[type[BaseException], ...]
    raw: t.Any  # the library's client object

    def get(self, key: str) -> bytes | None: ...
    def get_multi(self, keys: list[str]) -> dict[str, bytes]: ...
    def set(self, key: str, value: bytes, exptime: int) -> bool: ...
    def set_multi(self, items: dict[str, bytes], exptime: int) -> list[str]: ...
    def add(self, key: str, value: bytes, exptime: int) -> bool: ...
    def delete(self, key: str) -> bool: ...
    def delete_multi(self, keys: list[str]) -> None: ...
    def incr(self, key: str, delta: int) -> int | None: ...
    def gets(self, key: str) -> tuple[bytes | None, t.Any]: ...
    def cas(self, key: str, value: bytes, token: t.Any, exptime: int) -> bool: ...
    def flush_all(self) -> None: ...
    def reset(self) -> None: ...
    def clone(self) -> Driver: ...
    def explain(self, exc: BaseException) -> str: ...


def _explain(exc: BaseException) -> str:
    return f"memcached request failed: {type(exc).__name__}: {exc}"


class PylibmcDriver:
    """Drive a ``pylibmc.Client`` (libmemcached, C). Each thread gets a ``clone()``."""

    def __init__(self, module: t.Any, raw: t.Any) -> None:
        self._mod = module
        self.raw = raw
        self.errors: tuple[type[BaseException], ...] = (module.Error,)

    def get(self, key: str) -> bytes | None:
        return t.cast("bytes | None", self.raw.get(key))

    def get_multi(self, keys: list[str]) -> dict[str, bytes]:
        return t.cast("dict[str, bytes]", self.raw.get_multi(keys))

    def set(self, key: str, value: bytes, exptime: int) -> bool:
        return bool(self.raw.set(key, value, time=exptime))

    def set_multi(self, items: dict[str, bytes], exptime: int) -> list[str]:
        return list(self.raw.set_multi(items, time=exptime))

    def add(self, key: str, value: bytes, exptime: int) -> bool:
        return bool(self.raw.add(key, value, time=exptime))

    def delete(self, key: str) -> bool:
        return bool(self.raw.delete(key))

    def delete_multi(self, keys: list[str]) -> None:
        self.raw.delete_multi(keys)

    def incr(self, key: str, delta: int) -> int | None:
        try:
            return int(self.raw.incr(key, delta))
        except self._mod.NotFound:
            return None
        except self._mod.ClientError as exc:
            raise NotANumber(key) from exc

    def gets(self, key: str) -> tuple[bytes | None, t.Any]:
        return t.cast("tuple[bytes | None, t.Any]", self.raw.gets(key))

    def cas(self, key: str, value: bytes, token: t.Any, exptime: int) -> bool:
        return bool(self.raw.cas(key, value, token, time=exptime))

    def flush_all(self) -> None:
        self.raw.flush_all()

    def reset(self) -> None:
        """libmemcached reconnects by itself; nothing to do."""

    def clone(self) -> PylibmcDriver:
        return PylibmcDriver(self._mod, self.raw.clone())

    def explain(self, exc: BaseException) -> str:
        text = str(exc)
        if "AUTHENTICATION FAILURE" in text:
            return (
                f"memcached SASL authentication failed ({text}): check "
                "CACHE_MEMCACHED_USERNAME and CACHE_MEMCACHED_PASSWORD"
            )
        if "FAILED TO SEND AUTHENTICATION" in text:
            return (
                f"memcached SASL authentication could not start ({text}): libsasl2 "
                "found no PLAIN mechanism. Install your system's SASL modules "
                "(Debian: libsasl2-modules) and set SASL_PATH to their folder "
                "before pylibmc is first imported"
            )
        return _explain(exc)


class PymemcacheDriver:
    """Drive pymemcache (pure Python). Replies are always awaited (no ``noreply``)."""

    def __init__(self, make: Callable[[], t.Any]) -> None:
        from pymemcache.exceptions import MemcacheClientError, MemcacheError

        self._make = make
        self.raw = make()
        self._client_error = MemcacheClientError
        self.errors: tuple[type[BaseException], ...] = (MemcacheError, OSError)

    def get(self, key: str) -> bytes | None:
        return t.cast("bytes | None", self.raw.get(key))

    def get_multi(self, keys: list[str]) -> dict[str, bytes]:
        return t.cast("dict[str, bytes]", self.raw.get_many(keys))

    def set(self, key: str, value: bytes, exptime: int) -> bool:
        return bool(self.raw.set(key, value, expire=exptime, noreply=False))

    def set_multi(self, items: dict[str, bytes], exptime: int) -> list[str]:
        return list(self.raw.set_many(items, expire=exptime, noreply=False))

    def add(self, key: str, value: bytes, exptime: int) -> bool:
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

    def gets(self, key: str) -> tuple[bytes | None, t.Any]:
        return t.cast("tuple[bytes | None, t.Any]", self.raw.gets(key))

    def cas(self, key: str, value: bytes, token: t.Any, exptime: int) -> bool:
        return bool(self.raw.cas(key, value, token, expire=exptime, noreply=False))

    def flush_all(self) -> None:
        self.raw.flush_all(noreply=False)

    def reset(self) -> None:
        """Drop the socket: after an error it may hold half a reply."""
        self.raw.close()

    def clone(self) -> PymemcacheDriver:
        return PymemcacheDriver(self._make)

    def explain(self, exc: BaseException) -> str:
        return _explain(exc)


class MemcacheDriver(PymemcacheDriver):
    """Drive python-memcached (``memcache``). It reports most failures by returning
    ``0``/``None`` rather than raising, so with it errors look like misses."""

    def __init__(self, make: Callable[[], t.Any]) -> None:
        self._make = make
        self.raw = make()
        self.errors = (OSError,)

    def get_multi(self, keys: list[str]) -> dict[str, bytes]:
        return t.cast("dict[str, bytes]", self.raw.get_multi(keys))

    def set(self, key: str, value: bytes, exptime: int) -> bool:
        return bool(self.raw.set(key, value, time=exptime))

    def set_multi(self, items: dict[str, bytes], exptime: int) -> list[str]:
        return list(self.raw.set_multi(items, time=exptime))

    def add(self, key: str, value: bytes, exptime: int) -> bool:
        return bool(self.raw.add(key, value, time=exptime))

    def delete(self, key: str) -> bool:
        return bool(self.raw.delete(key))

    def delete_multi(self, keys: list[str]) -> None:
        self.raw.delete_multi(keys)

    def incr(self, key: str, delta: int) -> int | None:
        # None means "missing" or "not a number"; the caller's CAS path sorts it out
        result = self.raw.incr(key, delta)
        if result is None:
            raise NotANumber(key)
        return int(result)

    def gets(self, key: str) -> tuple[bytes | None, t.Any]:
        return self.raw.gets(key), None  # the CAS id is kept inside the client

    def cas(self, key: str, value: bytes, token: t.Any, exptime: int) -> bool:
        return bool(self.raw.cas(key, value, time=exptime))

    def flush_all(self) -> None:
        self.raw.flush_all()

    def reset(self) -> None:
        self.raw.disconnect_all()

    def clone(self) -> MemcacheDriver:
        return MemcacheDriver(self._make)


def _pylibmc_bundles_libsasl() -> bool:
    spec = importlib.util.find_spec("pylibmc")
    if spec is None or spec.origin is None:
        return False
    libs = Path(spec.origin).parent.parent / "pylibmc.libs"
    return any(libs.glob("libsasl2*"))


def _sasl_plugin_dirs() -> Iterator[Path]:
    multiarch = sysconfig.get_config_var("MULTIARCH") or (
        f"{platform.machine()}-linux-gnu"
    )
    for folder in (f"/usr/lib/{multiarch}", "/usr/lib64", "/usr/lib", "/usr/local/lib"):
        yield Path(folder) / "sasl2"


def ensure_sasl_plugin_path() -> str | None:
    """Point pylibmc's bundled libsasl2 at the system's SASL plugins; return the path.

    The pylibmc wheel ships its own libsasl2, which looks for mechanism plugins in a
    folder that does not exist on the host, so SASL auth fails with "FAILED TO SEND
    AUTHENTICATION". libsasl2 reads ``SASL_PATH`` once, when pylibmc is imported, so
    this must run first. It changes nothing if ``SASL_PATH`` is set, pylibmc does not
    bundle libsasl2, pylibmc is already imported, or no plugin folder is found.
    """
    if "SASL_PATH" in os.environ or "pylibmc" in sys.modules:
        return os.environ.get("SASL_PATH")
    if not sys.platform.startswith("linux") or not _pylibmc_bundles_libsasl():
        return None
    for folder in _sasl_plugin_dirs():
        if any(folder.glob("libplain.so*")):
            os.environ["SASL_PATH"] = str(folder)
            return str(folder)
    return None


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
        behaviors: dict[str, t.Any] = {
            "tcp_nodelay": True,
            "cas": True,
            "connect_timeout": max(1, round(connect_timeout * 1000)),
            "_poll_timeout": max(1, round(timeout * 1000)),
            "send_timeout": max(1, round(timeout * 1_000_000)),
            "receive_timeout": max(1, round(timeout * 1_000_000)),
        }
        if len(servers) > 1:
            behaviors["ketama"] = True
        unknown = sorted(set(options) - set(module.all_behaviors))
        if unknown:
            raise ConfigurationError(
                f"CACHE_OPTIONS {unknown} are not pylibmc behaviours; "
                f"known ones: {', '.join(sorted(module.all_behaviors))}"
            )
        behaviors.update(options)
        raw = module.Client(
            servers,
            binary=binary,
            username=username,
            password=password,
            behaviors=behaviors,
        )
        return name, PylibmcDriver(module, raw)
    if name == "pymemcache":
        kwargs = {
            "connect_timeout": connect_timeout,
            "timeout": timeout,
            "no_delay": True,
            "default_noreply": False,
            **options,
        }
        if len(servers) == 1:
            address = _split_server(servers[0])
            return name, PymemcacheDriver(lambda: module.Client(address, **kwargs))
        addresses = [_split_server(s) for s in servers]
        kwargs.setdefault("retry_attempts", 0)
        return name, PymemcacheDriver(lambda: module.HashClient(addresses, **kwargs))
    kwargs = {"socket_timeout": timeout, "dead_retry": 1, "cache_cas": True, **options}
    return name, MemcacheDriver(lambda: module.Client(servers, **kwargs))


class Pool:
    """Lend drivers to threads; translate driver errors into :class:`BackendError`.

    With ``size=None`` each thread gets its own clone of *template*, made on first
    use (client objects are not thread-safe). With a size, at most *size* clones are
    shared; when all are busy, :meth:`reserve` waits (``blocking``) or raises.
    """

    def __init__(self, template: Driver, size: int | None, blocking: bool) -> None:
        self.template = template
        self.size = size
        self.blocking = blocking
        self._local = threading.local()
        self._idle: list[Driver] = []
        self._created = 0
        self._cond = threading.Condition()

    @contextmanager
    def reserve(self) -> Iterator[Driver]:
        """Lend a driver for one operation; driver errors become BackendError."""
        driver = self._take()
        try:
            yield driver
        except NotANumber:
            raise
        except driver.errors as exc:
            driver.reset()
            raise BackendError(driver.explain(exc)) from exc
        except BaseException:
            driver.reset()
            raise
        finally:
            self._give_back(driver)

    def _take(self) -> Driver:
        if self.size is None:
            driver: Driver | None = getattr(self._local, "driver", None)
            if driver is None:
                driver = self._local.driver = self.template.clone()
            return driver
        with self._cond:
            while not self._idle and self._created >= self.size:
                if not self.blocking:
                    raise BackendError(
                        f"all {self.size} memcached clients are busy: raise "
                        "CACHE_OPTIONS pool_size or set pool_blocking=True"
                    )
                self._cond.wait()
            if self._idle:
                return self._idle.pop()
            self._created += 1
        try:
            return self.template.clone()
        except BaseException:
            with self._cond:
                self._created -= 1
                self._cond.notify()
            raise

    def _give_back(self, driver: Driver) -> None:
        if self.size is None:
            return
        with self._cond:
            self._idle.append(driver)
            self._cond.notify()
