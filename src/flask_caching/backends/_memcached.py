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
* :func:`list_keys` lists one server's keys under a prefix (``lru_crawler metadump``),
  which lets ``clear()`` delete only its own prefix.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import random
import re
import socket
import threading
import time
import typing as t
import weakref
from collections.abc import Callable
from types import TracebackType
from urllib.parse import unquote_to_bytes

from ..exceptions import BackendError, ConfigurationError
from ..serializers import PickleSerializer as PickleSerializer
from ..serializers import Serializer as Serializer

__all__ = [
    "Driver",
    "KeyListingUnsupported",
    "KeyMapper",
    "Lease",
    "NotANumber",
    "PickleSerializer",
    "Pool",
    "Serializer",
    "check_positive",
    "check_prefix",
    "check_servers",
    "decode",
    "encode",
    "list_keys",
    "make_dumper",
    "make_loader",
]

logger = logging.getLogger("flask_caching")

#: memcached refuses keys longer than this many bytes
MAX_KEY_LENGTH = 250
#: the longest suffix we append to the prefix ourselves ("~h:" + a sha256 hex digest)
RESERVED_SUFFIX_LENGTH = 3 + 64
#: how many key mappings a :class:`KeyMapper` with a fixed prefix remembers
MEMO_SIZE = 2048

# A key is passed through unchanged only when memcached accepts it as it is: printable
# ASCII without spaces, and not starting with "~", which we keep for our own keys.
_PLAIN_KEY = re.compile(r"[!-}][!-~]*\Z")
_DECIMAL = re.compile(rb"-?[0-9]+ *\Z")  # incr may leave trailing spaces behind
_DIGIT_START = frozenset(b"-0123456789")
# a key the text protocol can name: what clear() may delete from a metadump listing
_SENDABLE_KEY = re.compile(rb"[!-~]{1,250}\Z")

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
    Either way the memcached key starts with the prefix, so ``clear()`` finds it.

    *prefix* may be a callable returning the prefix (evaluated on every call).
    :attr:`map` is the mapping as a plain function; with a fixed prefix it remembers
    the last :data:`MEMO_SIZE` keys (then starts over).
    """

    __slots__ = ("_prefix", "map")

    def __init__(self, prefix: Prefix) -> None:
        self._prefix: Prefix
        #: key -> memcached key
        self.map: Callable[[str], str]
        if callable(prefix):
            self._prefix = prefix
            self.map = self._map
        else:
            self._prefix = check_prefix(prefix)
            self.map = self._memoized(self._prefix)

    @property
    def prefix(self) -> str:
        """The current prefix."""
        if callable(self._prefix):
            return check_prefix(self._prefix())
        return self._prefix

    def __call__(self, key: str) -> str:
        return self.map(key)

    def _map(self, key: str) -> str:
        if not isinstance(key, str):
            raise TypeError(f"cache keys must be str, got {type(key).__name__}")
        prefix = self.prefix
        if len(key) <= MAX_KEY_LENGTH - len(prefix) and _PLAIN_KEY.match(key):
            return prefix + key
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{prefix}~h:{digest}"

    def _memoized(self, prefix: str) -> Callable[[str], str]:
        memo: dict[str, str] = {}
        room = MAX_KEY_LENGTH - len(prefix)
        slow = self._map

        def map_key(key: str) -> str:
            try:
                return memo[key]
            except KeyError:
                pass
            except TypeError:  # unhashable, so not a str: _map says so
                return slow(key)
            # what _PLAIN_KEY accepts, with C string methods: printable ASCII
            # (0x20-0x7e) without spaces, not empty, not starting with "~"
            if (
                type(key) is str
                and 0 < len(key) <= room
                and key.isascii()
                and key.isprintable()
                and " " not in key
                and key[0] != "~"
            ):
                mapped = prefix + key
            else:
                mapped = slow(key)
            if len(memo) >= MEMO_SIZE:
                memo.clear()
            memo[key] = mapped
            return mapped

        return map_key


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


def make_dumper(serializer: Serializer) -> Callable[[t.Any], bytes | None]:
    """A function giving the bytes to store for a value, as :func:`encode` does;
    ``None`` when a cachelib-style serializer returned something else (gave up)."""
    dumps = serializer.dumps

    def dump(value: t.Any) -> bytes | None:
        if type(value) is int:  # not bool: True must come back as True
            return str(value).encode("ascii")
        payload = dumps(value)
        return payload if isinstance(payload, bytes) else None

    return dump


def make_loader(serializer: Serializer) -> Callable[[t.Any], t.Any]:
    """A function turning what the driver read into the value; ``None`` for a miss.

    The same result as :func:`decode`, in one call per value: ``None`` or anything
    that is not bytes is a miss, and so is a value that cannot be read (logged at
    DEBUG). With the default :class:`PickleSerializer`, a pickle (first byte 0x80)
    goes straight to :func:`pickle.loads`, which is what its ``loads`` does too.
    """
    loads = serializer.loads
    pickled = type(serializer) is PickleSerializer
    unpickle = pickle.loads
    decimal = _DECIMAL.match
    digit_start = _DIGIT_START

    def load(raw: t.Any) -> t.Any:
        if type(raw) is not bytes:
            return None
        try:
            if raw:
                first = raw[0]
                if first == 0x80 and pickled:
                    return unpickle(raw)
                if first in digit_start and decimal(raw):
                    return int(raw)
            return loads(raw)
        except Exception:
            logger.debug("unreadable memcached value treated as a miss", exc_info=True)
            return None

    return load


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
                    raise BackendError(driver.explain(exc)) from exc
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


# --- listing keys: lru_crawler metadump ---------------------------------------------

#: seconds ``list_keys`` keeps retrying while the server's LRU crawler is busy (one
#: metadump at a time per server: another client's, or another ``clear()``)
BUSY_WAIT = 5.0


class KeyListingUnsupported(Exception):
    """The server cannot list its keys: memcached older than 1.4.31, started with
    ``-o no_lru_crawler`` or ``-X``, or not speaking the ASCII protocol."""


def _connect(server: str, connect_timeout: float, timeout: float) -> socket.socket:
    if server.startswith(("/", "unix:")):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(connect_timeout)
            sock.connect(server.removeprefix("unix:"))
        except BaseException:
            sock.close()
            raise
    else:
        host, _, port = server.rpartition(":")
        sock = socket.create_connection(
            (host.strip("[]"), int(port)), timeout=connect_timeout
        )
    sock.settimeout(timeout)
    return sock


def _metadump(sock: socket.socket, prefix: bytes) -> list[str] | None:
    """Keys starting with *prefix* from one ``lru_crawler metadump all``; ``None``
    if the crawler is busy. Lines look like ``key=<url-encoded> exp=... size=...``."""
    sock.sendall(b"lru_crawler metadump all\r\n")
    keys: list[str] = []
    rest = b""
    first = True
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("memcached closed the connection during metadump")
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            if line.startswith(b"key="):
                end = line.find(b" ")
                quoted = line[4:] if end < 0 else line[4:end]
                key = unquote_to_bytes(quoted) if b"%" in quoted else quoted
                # only keys a text-protocol client can name (and so delete)
                if key.startswith(prefix) and _SENDABLE_KEY.match(key):
                    keys.append(key.decode("ascii"))
            elif line == b"END\r":
                return keys
            elif first:
                reply = line.rstrip(b"\r").decode("ascii", "replace")
                if reply.startswith("BUSY"):
                    return None
                if reply.startswith("NOTSTARTED"):  # no items at all
                    return keys
                if reply.startswith(("ERROR", "CLIENT_ERROR")):
                    raise KeyListingUnsupported(reply)
                raise BackendError(f"memcached lru_crawler metadump: {reply}")
            first = False


def list_keys(
    server: str,
    prefix: str,
    *,
    connect_timeout: float,
    timeout: float,
    busy_wait: float | None = None,
) -> list[str]:
    """The keys on *server* that start with *prefix*, from ``lru_crawler metadump``.

    One short-lived connection per attempt; *connect_timeout* bounds the connect and
    *timeout* every read. While the crawler is busy it retries for *busy_wait*
    seconds (default :data:`BUSY_WAIT`), then raises BackendError. Raises
    :class:`KeyListingUnsupported` if the server cannot list keys, and ``OSError``
    if it cannot be reached or a read times out.
    """
    if busy_wait is None:
        busy_wait = BUSY_WAIT
    deadline = time.monotonic() + busy_wait
    wanted = prefix.encode("ascii")
    while True:
        with _connect(server, connect_timeout, timeout) as sock:
            keys = _metadump(sock, wanted)
        if keys is not None:
            return keys
        if time.monotonic() >= deadline:
            raise BackendError(
                f"memcached {server}: its LRU crawler stayed busy for {busy_wait} s"
                " (another metadump running); clear() deleted nothing there"
            )
        time.sleep(random.uniform(0.01, 0.05))
