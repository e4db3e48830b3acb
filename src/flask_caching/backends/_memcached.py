"""Plumbing for the memcached backends: settings, values, the driver interface, a pool.

The backends in :mod:`.memcache` talk to the server through a small :class:`Driver`
interface (items in, items out, valid keys only; implementations for each client
library are in :mod:`._memcached_drivers` and :mod:`._pylibmc_driver`), so the
libraries look alike and their exceptions are translated in one place,
:meth:`Pool.reserve`, into :class:`~flask_caching.exceptions.BackendError`.

* Values travel as :class:`~._memcached_codec.Item` (bytes and flags); the codec in
  :mod:`._memcached_codec` turns values into items and back.
* :class:`Pool` hands each thread a driver of its own, or shares a bounded set.

Failures are fast and loud. Connect and read timeouts default to 0.5 s
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

Key mapping (:class:`KeyMapper`) lives in :mod:`._memcached_keys`, re-exported
here. Patch its constants (``MEMO_SIZE``) there: the copies here are not read.
"""

from __future__ import annotations

import logging
import os
import threading
import typing as t
import weakref
from types import TracebackType

from ..exceptions import BackendError, ConfigurationError
from ._memcached_codec import Item as Item
from ._memcached_keys import MAX_KEY_LENGTH as MAX_KEY_LENGTH
from ._memcached_keys import MEMO_SIZE as MEMO_SIZE
from ._memcached_keys import RESERVED_SUFFIX_LENGTH as RESERVED_SUFFIX_LENGTH
from ._memcached_keys import KeyMapper as KeyMapper
from ._memcached_keys import Prefix as Prefix
from ._memcached_keys import check_prefix as check_prefix

__all__ = [
    "Driver",
    "Item",
    "KeyMapper",
    "Lease",
    "NotANumber",
    "Pool",
    "check_positive",
    "check_prefix",
    "check_servers",
]

logger = logging.getLogger("flask_caching")


def check_positive(name: str, value: t.Any, integer: bool = False) -> None:
    """Raise unless CACHE_OPTIONS *name* is a positive number (an int if *integer*)."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
        raise ConfigurationError(
            f"CACHE_OPTIONS {name} must be a positive "
            f"{'integer' if integer else 'number'}, got {value!r}"
        )


def check_servers(servers: t.Any) -> list[str]:
    """CACHE_MEMCACHED_SERVERS as a list, or a ConfigurationError saying why not."""
    if servers is None:
        return ["127.0.0.1:11211"]
    if isinstance(servers, str):  # "host:port" or several, comma/space separated
        servers = servers.replace(",", " ").split()
    if not isinstance(servers, (list, tuple)) or not servers:
        raise ConfigurationError(
            "CACHE_MEMCACHED_SERVERS must be a non-empty list of 'host:port' "
            f"strings, e.g. ['127.0.0.1:11211'], got {servers!r}"
        )
    for server in servers:
        ok = isinstance(server, str) and (
            server.startswith(("/", "unix:"))
            or server.rpartition(":")[2].isdigit()
            and server.rpartition(":")[0] != ""
        )
        if not ok:
            raise ConfigurationError(
                "CACHE_MEMCACHED_SERVERS entries must be 'host:port' or a unix "
                f"socket path, got {server!r}"
            )
    return list(servers)


class NotANumber(Exception):
    """``incr`` refused the stored value (negative or not a decimal number)."""


class Driver(t.Protocol):
    """What the backends need from a client library: :class:`Item` values (the
    client never interprets them), valid keys.

    ``exptime`` is already in memcached's format (0 = never, large = unix time).
    Methods raise the library's own exceptions; :class:`Pool` translates them.
    """

    errors: tuple[type[BaseException], ...]
    raw: t.Any  # the library's client object

    def get(self, key: str) -> Item | None: ...
    def get_multi(self, keys: list[str]) -> dict[str, Item]: ...
    def set(self, key: str, value: Item, exptime: int) -> bool: ...
    def set_multi(self, items: dict[str, Item], exptime: int) -> list[str]: ...
    def add(self, key: str, value: Item, exptime: int) -> bool: ...
    def delete(self, key: str) -> bool: ...
    def delete_multi(self, keys: list[str]) -> None: ...
    def incr(self, key: str, delta: int) -> int | None: ...
    def gets(self, key: str) -> tuple[Item | None, t.Any]: ...
    def cas(self, key: str, value: Item, token: t.Any, exptime: int) -> bool: ...
    def flush_all(self) -> None: ...
    def reset(self) -> None: ...
    def close(self) -> None: ...
    def clone(self) -> Driver: ...
    def explain(self, exc: BaseException) -> str: ...


def _explain(exc: BaseException) -> str:
    return f"memcached request failed: {type(exc).__name__}: {exc}"


class _TimeKeywordWrites:
    """The writes of the clients that name the expiry ``time=`` (pylibmc and
    python-memcached): the same five calls, written once."""

    raw: t.Any

    def set(self, key: str, value: Item, exptime: int) -> bool:
        return bool(self.raw.set(key, value, time=exptime))

    def set_multi(self, items: dict[str, Item], exptime: int) -> list[str]:
        return list(self.raw.set_multi(items, time=exptime))

    def add(self, key: str, value: Item, exptime: int) -> bool:
        return bool(self.raw.add(key, value, time=exptime))

    def delete(self, key: str) -> bool:
        return bool(self.raw.delete(key))

    def delete_multi(self, keys: list[str]) -> None:
        self.raw.delete_multi(keys)


#: driver error class -> the class proxy methods raise for it
_COMBINED: dict[type[BaseException], type[BackendError]] = {}


def driver_error(kind: type[BaseException]) -> type[BackendError]:
    """An error class that is both :class:`BackendError` and the driver's own
    *kind*, so ``except pylibmc.Error`` (or ``OSError``...) written for released
    Flask-Caching still catches what the proxy methods raise."""
    if issubclass(kind, BackendError):
        return kind
    combined = _COMBINED.get(kind)
    if combined is None:
        try:
            made = type(kind.__name__, (BackendError, kind), {})
            combined = t.cast(type[BackendError], made)
        except TypeError:  # layouts that cannot be combined: ours alone
            combined = BackendError
        _COMBINED[kind] = combined
    return combined


class Lease:
    """A driver lent by a :class:`Pool`: ``with pool.reserve() as driver: ...``.

    On the way out, driver errors become :class:`BackendError` (the driver is reset
    first: its connection may hold half a reply) and a shared driver goes back to
    the pool. Leases are made once per driver and reused, so lending is cheap.
    """

    __slots__ = ("driver", "_pool", "_shared")

    def __init__(self, pool: Pool, driver: Driver, shared: bool) -> None:
        self.driver = driver
        self._pool = pool
        self._shared = shared

    def __enter__(self) -> Driver:
        return self.driver

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is not None and not isinstance(exc, NotANumber):
                driver = self.driver
                driver.reset()
                if isinstance(exc, driver.errors):
                    raise driver_error(type(exc))(driver.explain(exc)) from exc
        finally:
            if self._shared:
                self._pool._give_back(self)


class Pool:
    """Lend drivers to threads; translate driver errors into :class:`BackendError`.

    With ``size=None`` each thread gets its own clone of *template*, made on first
    use (client objects are not thread-safe). With a size, at most *size* clones are
    shared; when all are busy, :meth:`reserve` waits (``blocking``) or raises.

    A forked child (gunicorn, uWSGI workers) never uses the parent's connections: it
    starts with no clients. The inherited ones are kept, unused, because freeing a
    pylibmc client sends ``quit`` on a socket the parent still uses.
    """

    def __init__(self, template: Driver, size: int | None, blocking: bool) -> None:
        self.template = template
        self.size = size
        self.blocking = blocking
        self._pid = os.getpid()
        self._inherited: list[object] = []
        self._local = threading.local()
        self._clones: weakref.WeakSet[Driver] = weakref.WeakSet()
        self._idle: list[Lease] = []
        self._created = 0
        self._cond = threading.Condition()

    def reserve(self) -> Lease:
        """Lend a driver for one operation (a context manager giving the driver);
        driver errors inside it become BackendError."""
        if self._pid != os.getpid():
            self._forget_parent()
        size = self.size
        if size is None:
            try:
                lease: Lease = self._local.lease
            except AttributeError:
                lease = self._local.lease = Lease(self, self._clone(), False)
            return lease
        return self._take_shared(size)

    def _take_shared(self, size: int) -> Lease:
        with self._cond:
            while not self._idle and self._created >= size:
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
            return Lease(self, self._clone(), True)
        except BaseException:
            with self._cond:
                self._created -= 1
                self._cond.notify()
            raise

    def _forget_parent(self) -> None:
        # After fork() only the forking thread exists, so no lock is needed (and the
        # old one may have been held by a thread that is gone).
        self._inherited.append((self._local, self._idle, list(self._clones)))
        self._local = threading.local()
        self._clones = weakref.WeakSet()
        self._idle = []
        self._created = 0
        self._cond = threading.Condition()
        self._pid = os.getpid()

    def _clone(self) -> Driver:
        driver = self.template.clone()
        self._clones.add(driver)
        return driver

    def close(self) -> None:
        """Close every connection; clients reconnect if used again."""
        for driver in [self.template, *self._clones]:
            driver.close()

    def _give_back(self, lease: Lease) -> None:
        if self._pid != os.getpid():
            return
        with self._cond:
            self._idle.append(lease)
            self._cond.notify()
