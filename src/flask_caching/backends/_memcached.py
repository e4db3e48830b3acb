"""Plumbing for the memcached backends: keys, values, the driver interface, a pool.

The backends in :mod:`.memcache` talk to the server through a small :class:`Driver`
interface (bytes in, bytes out, valid keys only; implementations for each client
library are in :mod:`._memcached_drivers`), so the libraries look alike and their
exceptions are translated in one place, :meth:`Pool.reserve`, into
:class:`~flask_caching.exceptions.BackendError`.

* :class:`KeyMapper` turns any ``str`` key into a key memcached accepts.
* :func:`encode`/:func:`decode` store ints as decimal text (so the server's ``incr``
  works on them) and everything else through the backend's serializer.
* :class:`Pool` hands each thread a driver of its own, or shares a bounded set.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import typing as t
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from ..exceptions import BackendError, ConfigurationError
from ..serializers import PickleSerializer as PickleSerializer
from ..serializers import Serializer as Serializer

__all__ = [
    "Driver",
    "KeyMapper",
    "NotANumber",
    "PickleSerializer",
    "Pool",
    "Serializer",
    "check_positive",
    "check_prefix",
    "check_servers",
    "decode",
    "encode",
]

#: memcached refuses keys longer than this many bytes
MAX_KEY_LENGTH = 250
#: the longest suffix we append to the prefix ourselves ("~h:" + a sha256 hex digest)
RESERVED_SUFFIX_LENGTH = 3 + 64

# A key is passed through unchanged only when memcached accepts it as it is: printable
# ASCII without spaces, and not starting with "~", which we keep for our own keys.
_PLAIN_KEY = re.compile(r"[!-}][!-~]*\Z")
_DECIMAL = re.compile(rb"-?[0-9]+ *\Z")  # incr may leave trailing spaces behind
_DIGIT_START = frozenset(b"-0123456789")

Prefix: t.TypeAlias = "str | t.Callable[[], str]"


def check_prefix(prefix: str) -> str:
    """Return *prefix* if memcached keys can start with it, else raise."""
    if not isinstance(prefix, str) or (prefix and not _PLAIN_KEY.match(prefix)):
        raise ConfigurationError(
            f"CACHE_KEY_PREFIX must be printable ASCII without spaces, got {prefix!r}"
        )
    if len(prefix) > MAX_KEY_LENGTH - RESERVED_SUFFIX_LENGTH:
        raise ConfigurationError(
            f"CACHE_KEY_PREFIX is {len(prefix)} characters; memcached keys are "
            f"limited to {MAX_KEY_LENGTH} bytes, so keep the prefix at most "
            f"{MAX_KEY_LENGTH - RESERVED_SUFFIX_LENGTH} characters"
        )
    return prefix


class KeyMapper:
    """Map cache keys onto memcached keys, collision-free.

    A key that memcached accepts as it is (printable ASCII, no spaces, not starting
    with ``~``, at most 250 bytes with the prefix) is only prefixed. Every other key
    becomes ``prefix + "~h:" + sha256(key)``; since no pass-through key starts with
    ``~``, a mapped key can never equal a pass-through one. Keys beginning ``~c:`` are
    left for spread chunks (see :class:`~.memcache.SpreadSASLMemcachedCache`).

    *prefix* may be a callable returning the prefix (evaluated on every call).
    """

    def __init__(self, prefix: Prefix) -> None:
        self._prefix = prefix if callable(prefix) else check_prefix(prefix)

    @property
    def prefix(self) -> str:
        """The current prefix."""
        if callable(self._prefix):
            return check_prefix(self._prefix())
        return self._prefix

    def __call__(self, key: str) -> str:
        if not isinstance(key, str):
            raise TypeError(f"cache keys must be str, got {type(key).__name__}")
        prefix = self.prefix
        if len(key) <= MAX_KEY_LENGTH - len(prefix) and _PLAIN_KEY.match(key):
            return prefix + key
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{prefix}~h:{digest}"


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


def encode(serializer: Serializer, value: t.Any) -> bytes:
    """Bytes to store: an ``int`` as decimal text (what ``incr`` needs), anything
    else through *serializer*, whose formats never start with a digit or ``-``."""
    if type(value) is int:  # not bool: True must come back as True
        return str(value).encode("ascii")
    return serializer.dumps(value)


def decode(serializer: Serializer, data: bytes) -> t.Any:
    """The value stored as *data*; raises if it cannot be read (a miss, to callers)."""
    if data[:1] and data[0] in _DIGIT_START and _DECIMAL.match(data):
        return int(data)
    return serializer.loads(data)


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
    def close(self) -> None: ...
    def clone(self) -> Driver: ...
    def explain(self, exc: BaseException) -> str: ...


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
        if self._pid != os.getpid():
            self._forget_parent()
        if self.size is None:
            driver: Driver | None = getattr(self._local, "driver", None)
            if driver is None:
                driver = self._local.driver = self._clone()
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
            return self._clone()
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

    def _give_back(self, driver: Driver) -> None:
        if self.size is None or self._pid != os.getpid():
            return
        with self._cond:
            self._idle.append(driver)
            self._cond.notify()
