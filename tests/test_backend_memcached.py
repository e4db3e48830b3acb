"""The memcached backends against real servers (fixtures from ``conftest.py``).

What the contract suite does not cover: settings, each client library, pools under
threads, key mapping, round trips counted on the wire, SASL credentials, spread
values, fast failure and recovery, and ``clear`` flushing every prefix. The stored
items themselves (flags and bytes) are in ``test_backend_memcached_items.py``.
"""

from __future__ import annotations

import importlib.util
import os
import selectors
import socket
import sys
import threading
import time
import typing as t
import urllib.parse
import uuid
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from servers import HOST, MemcachedServer, free_port, start_memcached

from flask_caching.backends import _memcached_keys
from flask_caching.backends._memcached import MAX_KEY_LENGTH, Item, KeyMapper
from flask_caching.backends._memcached_drivers import (
    PylibmcDriver,
    ensure_sasl_plugin_path,
)
from flask_caching.exceptions import BackendError, ConfigurationError

# pylibmc reads SASL_PATH when it is first imported: make sure that is after this.
ensure_sasl_plugin_path()

from flask_caching.backends.memcache import (  # noqa: E402
    MemcachedCache,
    SASLMemcachedCache,
    SpreadSASLMemcachedCache,
)

pytestmark = pytest.mark.memcached

CLIENTS = [
    pytest.param(
        name,
        marks=pytest.mark.skipif(
            not importlib.util.find_spec(name), reason=f"{name} not installed"
        ),
    )
    for name in ("pylibmc", "pymemcache")
]
ALL_CLIENTS = [
    *CLIENTS,
    pytest.param(
        "memcache",
        marks=[
            pytest.mark.skipif(
                not importlib.util.find_spec("memcache"), reason="not installed"
            ),
            # python-memcached leaves its per-thread sockets to the GC
            pytest.mark.filterwarnings(
                "ignore::pytest.PytestUnraisableExceptionWarning"
            ),
        ],
    ),
]
SETTINGS = {
    "CACHE_MEMCACHED_SERVERS": None,
    "CACHE_KEY_PREFIX": None,
    "CACHE_DEFAULT_TIMEOUT": None,
    "CACHE_MEMCACHED_USERNAME": None,
    "CACHE_MEMCACHED_PASSWORD": None,
}


def prefix() -> str:
    return f"t-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def made() -> Iterator[list[MemcachedCache]]:
    """Backends built by a test, closed after it (no sockets left to the GC)."""
    caches: list[MemcachedCache] = []
    yield caches
    for cache in caches:
        cache.close()


@pytest.fixture
def build(
    memcached_server: MemcachedServer, made: list[MemcachedCache]
) -> Callable[..., MemcachedCache]:
    def build(client: str | None = None, **options: t.Any) -> MemcachedCache:
        options.setdefault("key_prefix", prefix())
        servers = options.pop("servers", [memcached_server.address])
        cache = MemcachedCache(servers, client=client, **options)
        made.append(cache)
        return cache

    return build


def server_keys(port: int, start: str) -> set[str]:
    """Keys on a plain memcached that begin with *start* (``lru_crawler metadump``,
    retried while the crawler is busy with someone else's)."""
    for _ in range(100):
        with socket.create_connection((HOST, port), timeout=2) as sock:
            sock.sendall(b"lru_crawler metadump all\r\n")
            data = b""
            while not data.endswith(b"END\r\n") and not data.startswith(b"BUSY"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        if not data.startswith(b"BUSY"):
            break
        time.sleep(0.02)
    keys = set()
    for line in data.decode().splitlines():
        if line.startswith("key="):
            key = urllib.parse.unquote(line.split()[0][4:])
            if key.startswith(start):
                keys.add(key)
    return keys


def server_stats(port: int) -> dict[str, int]:
    with socket.create_connection((HOST, port), timeout=2) as sock:
        sock.sendall(b"stats\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            data += sock.recv(65536)
    stats = {}
    for line in data.decode().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].isdigit():
            stats[parts[1]] = int(parts[2])
    return stats


class TurnCounter:
    """A loopback TCP proxy counting round trips: each time the client sends after
    having received a reply (or first) is one turn."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.turns = 0
        self.listener = socket.create_server((HOST, 0))
        self.listener.settimeout(0.05)
        self.port: int = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = [self.listener]
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            client.settimeout(None)
            upstream = socket.create_connection((HOST, self.target_port))
            self._sockets += [client, upstream]
            pump = threading.Thread(target=self._pump, args=(client, upstream))
            pump.daemon = True
            self._threads.append(pump)
            pump.start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peer = {client: upstream, upstream: client}
        replied = True
        with selectors.DefaultSelector() as selector:
            selector.register(client, selectors.EVENT_READ)
            selector.register(upstream, selectors.EVENT_READ)
            while not self._stop.is_set():
                try:
                    ready = selector.select(timeout=0.05)
                    for key, _ in ready:
                        sock = t.cast(socket.socket, key.fileobj)
                        data = sock.recv(1 << 20)
                        if not data:
                            return
                        if sock is client and replied:
                            self.turns += 1
                        replied = sock is upstream
                        peer[sock].sendall(data)
                except (OSError, ValueError):
                    return

    def count(self, action: Callable[[], object]) -> int:
        before = self.turns
        action()
        return self.turns - before

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        for sock in self._sockets:
            sock.close()


@pytest.fixture
def turns(memcached_server: MemcachedServer) -> Iterator[TurnCounter]:
    counter = TurnCounter(memcached_server.port)
    yield counter
    counter.close()


# --- settings --------------------------------------------------------------------


def test_factory_maps_settings(memcached_server: MemcachedServer) -> None:
    config = {
        **SETTINGS,
        "CACHE_MEMCACHED_SERVERS": [memcached_server.address],
        "CACHE_KEY_PREFIX": "app1_",
        "CACHE_DEFAULT_TIMEOUT": 42,
    }
    cache = MemcachedCache.factory(
        Flask(__name__), config, [], {"client": "pymemcache", "pool_size": 3}
    )
    try:
        assert cache._keys.prefix == "app1_" and cache.default_timeout == 42
        assert cache.client_name == "pymemcache" and cache._pool.size == 3
        assert cache.set("k", "v") and cache.get("k") == "v"
        assert cache._client.get("app1_k") is not None  # stored under the prefix
    finally:
        cache.close()


def test_factory_defaults_and_option_precedence() -> None:
    cache = MemcachedCache.factory(
        Flask(__name__), SETTINGS, [], {"client": "pymemcache"}
    )
    assert cache._client.server == ("127.0.0.1", 11211)  # nothing is connected yet
    assert cache._keys.prefix == "" and cache.default_timeout == 300
    options = {"client": "pymemcache", "key_prefix": "opt_", "servers": ["h:1"]}
    config = {**SETTINGS, "CACHE_KEY_PREFIX": "setting_"}
    cache = MemcachedCache.factory(Flask(__name__), config, [], options)
    assert cache._keys.prefix == "setting_" and cache._client.server == ("h", 1)
    cache = MemcachedCache(
        ["a:1, b:2"][0], client="pymemcache"
    )  # one string, two servers
    assert sorted(cache._client.clients) == ["a:1", "b:2"]


@pytest.mark.parametrize(
    ("options", "setting"),
    [
        ({"servers": 11211}, "CACHE_MEMCACHED_SERVERS"),
        ({"servers": ["localhost"]}, "CACHE_MEMCACHED_SERVERS"),
        ({"servers": []}, "CACHE_MEMCACHED_SERVERS"),
        ({"key_prefix": "has space"}, "CACHE_KEY_PREFIX"),
        ({"key_prefix": "p" * 200}, "CACHE_KEY_PREFIX"),
        ({"pool_size": 0}, "pool_size"),
        ({"timeout": -1}, "timeout"),
        ({"connect_timeout": "fast"}, "connect_timeout"),
        ({"maximum_value_length": 100}, "maximum_value_length"),
        ({"client": "nope"}, "client"),
        ({"client": "pymemcache", "no_such_kwarg": 1}, "CACHE_OPTIONS"),
    ],
)
def test_bad_settings_name_the_setting(options: dict[str, t.Any], setting: str) -> None:
    options.setdefault("client", "pymemcache")
    with pytest.raises(ConfigurationError, match=setting):
        MemcachedCache(**options)


def test_bad_pylibmc_behaviour_and_sasl_client() -> None:
    pytest.importorskip("pylibmc")
    with pytest.raises(ConfigurationError, match="not pylibmc behaviours"):
        MemcachedCache(client="pylibmc", tcp_nodelayy=True)
    with pytest.raises(ConfigurationError, match="needs pylibmc"):
        SASLMemcachedCache(client="pymemcache")


def test_missing_client_library_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("pylibmc", "pymemcache", "memcache"):
        monkeypatch.setitem(sys.modules, name, None)  # makes the import fail
    with pytest.raises(ConfigurationError, match="pip install pylibmc"):
        MemcachedCache()
    with pytest.raises(ConfigurationError, match="pip install python-memcached"):
        MemcachedCache(client="memcache")


def test_registry_and_prefered_client() -> None:
    from flask_caching import backends

    assert backends.MemcachedCache is MemcachedCache
    assert backends.SpreadSASLMemcachedCache is SpreadSASLMemcachedCache
    expected = "pylibmc" if importlib.util.find_spec("pylibmc") else "pymemcache"
    assert MemcachedCache().client_name == expected


# --- clients and pools -----------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
def test_each_client_round_trips(
    build: Callable[..., MemcachedCache], client: str
) -> None:
    cache = build(client)
    assert cache.client_name == client
    assert cache.set_many({"a": 1, "b": [2]}) == ["a", "b"]
    assert cache.get_dict("a", "b", "c") == {"a": 1, "b": [2], "c": None}
    assert cache.inc("a", 41) == 42 and cache.add("a", 0) is False
    assert cache.delete_many("a", "b") == ["a", "b"] and not cache.has("a")


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("pool_size", [None, 2])
def test_threads_share_safely(
    build: Callable[..., MemcachedCache], client: str, pool_size: int | None
) -> None:
    cache = build(client, pool_size=pool_size)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(30):
                cache.set(f"k{n}", (n, i))
                assert cache.get_many(f"k{n}", "nope") == [(n, i), None]
                cache.inc("shared")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == [] and cache.get("shared") == 6 * 30
    if pool_size:
        assert cache._pool._created <= pool_size


@pytest.mark.parametrize("client", CLIENTS)
def test_counters_under_contention(
    build: Callable[..., MemcachedCache], client: str
) -> None:
    cache = build(client)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for _ in range(25):
                cache.inc("up")  # incr, after one add wins the first race
                cache.dec("down")  # negative: compare-and-swap under contention
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert cache.get_many("up", "down") == [300, -300]


@pytest.mark.parametrize("client", CLIENTS)
def test_exhausted_pool_waits_or_raises(
    build: Callable[..., MemcachedCache], client: str
) -> None:
    waiting = build(client, pool_size=1)
    raising = build(client, pool_size=1, pool_blocking=False)
    with raising._pool.reserve():
        with pytest.raises(BackendError, match="busy"):
            raising.get("k")

    def hold() -> None:
        with waiting._pool.reserve():
            time.sleep(0.2)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.05)
    started = time.monotonic()
    assert waiting.get("k") is None
    assert time.monotonic() - started > 0.1
    holder.join()


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("pool_size", [None, 2])
def test_forked_child_opens_its_own_connections(
    build: Callable[..., MemcachedCache], client: str, pool_size: int | None
) -> None:
    cache = build(client, pool_size=pool_size)
    cache.set("k", "parent")  # the parent now holds a connection
    with cache._pool.reserve() as driver:
        parent_driver = driver
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code, never return to pytest
        code = 1
        try:
            with cache._pool.reserve() as driver:
                fresh = driver is not parent_driver
            cache.set("k", "child")
            code = 0 if fresh and cache.get("k") == "child" else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert cache.get("k") == "child"  # the parent's connection still works
    with cache._pool.reserve() as driver:
        assert driver is parent_driver


# --- keys and values -------------------------------------------------------------


def test_invalid_keys_are_mapped_without_collisions(
    build: Callable[..., MemcachedCache],
) -> None:
    cache = build("pymemcache")
    shared = "k" * 250
    odd = [shared + "1", shared + "2", "with space", "tab\t", "nul\0", "", "\x7f"]
    odd += ["é" * 125, "é" * 126, "\udc80"]  # 250 and 252 bytes; a lone surrogate
    mapper = cache._keys
    odd.append(mapper("with space")[len(mapper.prefix) :])  # looks like a mapped key
    assert cache.set_many({key: index for index, key in enumerate(odd)}) == odd
    assert cache.get_many(*odd) == list(range(len(odd)))
    for key in odd:
        mapped = mapper(key)
        assert len(mapped.encode()) <= MAX_KEY_LENGTH and " " not in mapped
        assert mapped.isascii() and mapped.startswith(mapper.prefix + "~h:")


@pytest.mark.parametrize("client", ALL_CLIENTS)
def test_keys_released_flask_caching_stores_stay_as_they_are(
    build: Callable[..., MemcachedCache], client: str
) -> None:
    cache = build(client, key_prefix="app_")
    plain = ["ключ", "~x", "~hx", "view//a?b=c", "k" * 246, "é" * 123]
    assert cache.set_many({key: key for key in plain}) == plain
    for key in plain:
        assert cache._keys(key) == "app_" + key
        assert cache.get(key) == key


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text())
def test_key_mapping_is_injective_and_valid(a: str, b: str) -> None:
    mapper = KeyMapper("pre_")
    for key in (a, b):
        mapped = mapper(key)
        assert 0 < len(mapped.encode()) <= MAX_KEY_LENGTH
        assert all(ord(char) > 32 and char != "\x7f" for char in mapped)
    assert (mapper(a) == mapper(b)) == (a == b)


@settings(max_examples=500, deadline=None)
@given(st.text() | st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127)))
def test_fast_key_mapping_matches_the_reference(key: str) -> None:
    fixed = KeyMapper("pre_")  # memoized fast path
    computed = KeyMapper(lambda: "pre_")  # a callable prefix takes the slow path
    assert fixed.map(key) == computed.map(key) == fixed(key) == fixed.map(key)


def test_key_memo_is_bounded_and_stays_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_memcached_keys, "MEMO_SIZE", 8)
    mapper = KeyMapper("m_")
    keys = [f"k{i}" for i in range(50)] + ["with space", "é", "k" * 300, "~x", ""]
    for _ in range(2):
        assert [mapper.map(key) for key in keys] == [
            KeyMapper(lambda: "m_").map(key) for key in keys
        ]
    cells = [cell.cell_contents for cell in mapper.map.__closure__ or ()]
    memo = next(cell for cell in cells if isinstance(cell, dict))
    assert 0 < len(memo) <= 8
    for bad in (b"bytes", 5, ["list"]):
        with pytest.raises(TypeError, match="cache keys must be str"):
            mapper.map(bad)  # type: ignore[arg-type]


def test_callable_prefix(build: Callable[..., MemcachedCache]) -> None:
    tenant = ["one_"]
    cache = build("pymemcache", key_prefix=lambda: tenant[0])
    cache.set("k", 1)
    tenant[0] = "two_"
    assert cache.get("k") is None
    tenant[0] = "bad prefix"
    with pytest.raises(ConfigurationError, match="CACHE_KEY_PREFIX"):
        cache.get("k")


def test_timeouts_in_memcached_terms(build: Callable[..., MemcachedCache]) -> None:
    cache = build("pymemcache")
    assert cache._exptime(0) == 0 and cache._exptime(-1) is None
    assert cache._exptime(30 * 86400) == 30 * 86400
    absolute = cache._exptime(40 * 86400)
    assert absolute is not None and abs(absolute - time.time() - 40 * 86400) < 5
    assert cache.set("far", 1, timeout=40 * 86400) and cache.get("far") == 1
    assert cache.set("big", b"x" * (2 << 20)) is False  # over the item size: refused


@pytest.mark.parametrize("client", ALL_CLIENTS)
def test_clear_flushes_every_prefix(
    throwaway_memcached: MemcachedServer, made: list[MemcachedCache], client: str
) -> None:
    """clear() is flush_all, as released Flask-Caching's: a key read just before
    (which a key listing would miss) goes too, and so does every other prefix."""
    one, two = (
        MemcachedCache([throwaway_memcached.address], key_prefix=p, client=client)
        for p in ("one_", "two_")
    )
    made += [one, two]
    one.set_many({f"k{i}": i for i in range(50)})
    two.set("k", 2)
    assert one.get("k7") == 7  # recently read
    assert one.clear() is True
    assert one.get_many("k0", "k7", "k49") == [None] * 3 and two.get("k") is None
    assert one.clear() is True  # nothing left: still fine


def test_sasl_clear_flushes_the_whole_server(
    memcached_sasl_server: MemcachedServer, made: list[MemcachedCache]
) -> None:
    pytest.importorskip("pylibmc")
    one = sasl_cache(memcached_sasl_server, made)
    two = sasl_cache(memcached_sasl_server, made)
    one.set("k", 1)
    two.set("k", 2)
    assert one.clear() is True
    assert one.get("k") is None and two.get("k") is None  # documented: every prefix


@pytest.mark.parametrize("client", CLIENTS)
def test_locks_compare_and_delete(
    build: Callable[..., MemcachedCache], client: str
) -> None:
    cache = build(client)
    assert cache.acquire_lock("lock", "a", 0.5) is True
    assert cache.acquire_lock("lock", "b", 0.5) is False
    assert cache.release_lock("lock", "b") is False and cache.get("lock") == "a"
    cache.delete("lock")  # as if a's lease ran out, and b took the lock
    assert cache.acquire_lock("lock", "b", 5) is True
    assert cache.release_lock("lock", "a") is False and cache.get("lock") == "b"
    assert cache.release_lock("lock", "b") is True and cache.get("lock") is None
    assert cache.release_lock("lock", "b") is False


# --- round trips -----------------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
def test_round_trips_on_the_wire(
    build: Callable[..., MemcachedCache],
    memcached_server: MemcachedServer,
    turns: TurnCounter,
    client: str,
) -> None:
    cache = build(client, servers=[f"{HOST}:{turns.port}"])
    keys = [f"k{i}" for i in range(10)]
    cache.get("warm-up")  # connects
    assert turns.count(lambda: cache.set_many(dict.fromkeys(keys, "v"))) == 1
    before = server_stats(memcached_server.port)
    assert turns.count(lambda: cache.get_many(*keys)) == 1
    after = server_stats(memcached_server.port)
    assert (
        after["get_hits"] - before["get_hits"] == 10
    )  # every key, in that one request
    assert turns.count(lambda: cache.get("k1")) == 1
    assert turns.count(lambda: cache.inc("n")) == 2  # incr misses, then add
    assert turns.count(lambda: cache.inc("n")) == 1
    assert turns.count(lambda: cache.delete_many(*keys)) == 1
    assert cache.get_many(*keys) == [None] * 10


def test_pylibmc_pipelined_writes_keep_the_connection_in_step() -> None:
    """pylibmc sends all but the last key of a bulk write unanswered. A server with
    a smaller item limit than ours refuses some of them without a word; the next
    replies still match their requests, and the small values are all stored."""
    pytest.importorskip("pylibmc")
    server = start_memcached("-I", "2k", "-o", "slab_chunk_max=1024")
    cache = MemcachedCache(
        [server.address],
        client="pylibmc",
        key_prefix=prefix(),
        maximum_value_length=8192,
    )
    try:
        values = {f"k{i}": ("x" * 3000 if i % 3 == 0 else f"v{i}") for i in range(12)}
        stored = cache.set_many(values)
        # the server refused the big ones; the small ones are all there
        assert cache.get_many(*values) == [
            None if i % 3 == 0 else f"v{i}" for i in range(12)
        ]
        assert set(stored) >= {f"k{i}" for i in range(12) if i % 3}
        for _ in range(3):
            cache.delete_many(*values)
            assert cache.set("after", "fine") and cache.get("after") == "fine"
            assert cache.get_many(*values) == [None] * 12
            assert cache.set_many({"a": 1, "b": "two"}) == ["a", "b"]
            assert cache.get_dict("a", "b") == {"a": 1, "b": "two"}
    finally:
        cache.close()
        server.close()


# --- failure ---------------------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
def test_dead_server_fails_fast_and_loud(
    build: Callable[..., MemcachedCache], client: str
) -> None:
    cache = build(client, servers=[f"{HOST}:{free_port()}"])
    operations: list[Callable[[], object]] = [
        lambda: cache.get("k"),
        lambda: cache.get_many("a", "b"),
        lambda: cache.set("k", 1),
        lambda: cache.set_many({"a": 1}),
        lambda: cache.add("k", 1),
        lambda: cache.delete("k"),
        lambda: cache.delete_many("a"),
        lambda: cache.has("k"),
        lambda: cache.inc("k"),
        lambda: cache.clear(),
    ]
    for operation in operations:
        started = time.monotonic()
        with pytest.raises(BackendError):
            operation()
        # refused at once: well under a retry delay (seconds), with room for a busy
        # machine
        assert time.monotonic() - started < 0.5


@pytest.mark.parametrize("client", CLIENTS)
def test_silent_server_times_out(
    build: Callable[..., MemcachedCache], client: str
) -> None:
    with socket.create_server((HOST, 0)) as silent:  # accepts, never answers
        port = silent.getsockname()[1]
        cache = build(client, servers=[f"{HOST}:{port}"], timeout=0.2)
        reads: list[Callable[[], object]] = [
            lambda: cache.get("k"),
            lambda: cache.get("k"),  # every time, not only the first
            lambda: cache.get_many("a", "b"),
            lambda: cache.has("k"),
            lambda: cache.release_lock("k", "token"),  # a gets
        ]
        for read in reads:
            started = time.monotonic()
            with pytest.raises(BackendError, match="did not answer|timed out|Timeout"):
                read()
            assert 0.15 < time.monotonic() - started < 1.0
        started = time.monotonic()
        with pytest.raises(BackendError):
            cache.set("k", 1)
        assert time.monotonic() - started < 1.0
        cache.close()


def stop(server: MemcachedServer) -> None:
    """SIGSTOP *server* and wait until it is stopped (the signal is asynchronous:
    a request sent at once could still be answered)."""
    server.stop()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with open(f"/proc/{server.pid}/stat") as stat:
            if stat.read().rpartition(")")[2].split()[0] == "T":
                return
        time.sleep(0.005)
    raise AssertionError(f"{server.name} did not stop")


@pytest.mark.parametrize("client", CLIENTS)
def test_stopped_server_fails_every_call_and_recovers_at_once(
    throwaway_memcached: MemcachedServer, made: list[MemcachedCache], client: str
) -> None:
    cache = MemcachedCache(
        [throwaway_memcached.address], key_prefix="s_", client=client, timeout=0.2
    )
    made.append(cache)
    cache.set("k", "v")
    stop(throwaway_memcached)  # SIGSTOP: connections hang
    try:
        for _ in range(3):
            with pytest.raises(BackendError):
                cache.get("k")
        with pytest.raises(BackendError):
            cache.get_many("k", "j")
    finally:
        throwaway_memcached.cont()
    started = time.monotonic()
    assert cache.get("k") == "v"  # the first call after SIGCONT
    assert time.monotonic() - started < 0.3


@pytest.mark.parametrize("client", CLIENTS)
def test_killed_server_fails_every_call_and_recovers_at_once(
    throwaway_memcached: MemcachedServer, made: list[MemcachedCache], client: str
) -> None:
    cache = MemcachedCache(
        [throwaway_memcached.address], key_prefix="s_", client=client, timeout=0.2
    )
    made.append(cache)
    cache.set("k", "v")
    throwaway_memcached.kill()
    if client == "pylibmc":
        # libmemcached reads the closed connection as a miss, once (documented)
        assert cache.get("k") is None
    for _ in range(3):
        with pytest.raises(BackendError):
            cache.get("k")
    with pytest.raises(BackendError):
        cache.set("k", "w")
    throwaway_memcached.restart()
    started = time.monotonic()
    assert cache.get("k") is None  # the first call after the restart: a real miss
    assert cache.set("k", "w") is True and cache.get("k") == "w"
    assert time.monotonic() - started < 0.3


def test_pylibmc_timeout_behaviours(build: Callable[..., MemcachedCache]) -> None:
    pytest.importorskip("pylibmc")
    cache = build("pylibmc", timeout=0.2)
    behaviors = cache._client.behaviors
    assert behaviors["_poll_timeout"] == 200 and behaviors["retry_timeout"] == 1
    # only a miss that took the whole read timeout is an error; real misses are fast
    assert cache.get("nothing") is None and cache.get_many("a", "b") == [None, None]
    cache.set("k", 1)
    with cache._pool.reserve() as driver:
        assert isinstance(driver, PylibmcDriver) and driver._slow == pytest.approx(0.18)


# --- SASL ------------------------------------------------------------------------


def sasl_cache(
    server: MemcachedServer,
    made: list[MemcachedCache],
    cls: type[SASLMemcachedCache] = SASLMemcachedCache,
    **options: t.Any,
) -> SASLMemcachedCache:
    config = {
        **SETTINGS,
        "CACHE_MEMCACHED_SERVERS": [server.address],
        "CACHE_KEY_PREFIX": prefix(),
        "CACHE_MEMCACHED_USERNAME": server.username,
        "CACHE_MEMCACHED_PASSWORD": server.password,
    }
    config.update(options.pop("config", {}))
    cache = cls.factory(Flask(__name__), config, [], options)
    made.append(cache)
    return cache


def test_sasl_right_and_wrong_credentials(
    memcached_sasl_server: MemcachedServer, made: list[MemcachedCache]
) -> None:
    pytest.importorskip("pylibmc")
    cache = sasl_cache(memcached_sasl_server, made)
    assert cache.set("k", {"v": 1}) and cache.get("k") == {"v": 1}
    if os.environ.get("SASL_PATH"):
        assert any(
            name.startswith("libplain.so")
            for name in os.listdir(os.environ["SASL_PATH"])
        )
    wrong = sasl_cache(
        memcached_sasl_server, made, config={"CACHE_MEMCACHED_PASSWORD": "nope"}
    )
    with pytest.raises(
        BackendError, match="SASL authentication failed.*CACHE_MEMCACHED_PASSWORD"
    ):
        wrong.get("k")
    with pytest.raises(BackendError, match="SASL authentication failed"):
        wrong.set("k", 1)


def test_sasl_connects_whatever_an_earlier_call_left_on_the_stack(
    memcached_sasl_server: MemcachedServer, made: list[MemcachedCache]
) -> None:
    """libmemcached 1.0.16 (bundled with pylibmc) reads the server's mechanism list,
    ``PLAIN``, into a stack buffer without a NUL, so libsasl2 reads on into what an
    earlier C call left there: after a stale pointer it sees ``PLAINU...`` and the
    connection fails with error 40. A read timeout on a plain pylibmc cache left
    such a pointer. Here ctypes leaves 'U's at a range of stack depths (it lays a
    call's arguments out on the stack) before each new connection."""
    pytest.importorskip("pylibmc")
    import ctypes

    snprintf = ctypes.CDLL(None).snprintf  # variadic: ignores extra arguments
    stale = ctypes.c_longlong(0x5555555555555555)  # b"UUUUUUUU"
    cache = sasl_cache(memcached_sasl_server, made)
    cache.set("k", 1)
    failed = []
    for count in range(100, 400, 4):
        cache.close()  # the next call connects, so authenticates, again
        snprintf(None, 0, b"", *([stale] * count))
        try:
            assert cache.get("k") == 1
        except BackendError:
            failed.append(count)
    assert failed == []


def test_sasl_options_are_pylibmc_behaviours(
    memcached_sasl_server: MemcachedServer, made: list[MemcachedCache]
) -> None:
    pytest.importorskip("pylibmc")
    cache = sasl_cache(memcached_sasl_server, made, ketama=True, pool_size=2)
    assert cache._client.behaviors["ketama"] and cache._pool.size == 2
    assert cache._client.binary is True


# --- spread values (the format itself: test_backend_memcached_spread.py) -----------


@pytest.fixture
def spread(
    memcached_server: MemcachedServer, made: list[MemcachedCache]
) -> SpreadSASLMemcachedCache:
    """Spread values on the plain server (no credentials), so keys can be listed."""
    pytest.importorskip("pylibmc")
    cache = SpreadSASLMemcachedCache(
        [memcached_server.address], key_prefix=prefix(), chunksize=100_000
    )
    made.append(cache)
    return cache


def test_spread_requests_and_keys_on_the_server(
    spread: SpreadSASLMemcachedCache,
    memcached_server: MemcachedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blob = os.urandom(200_000).hex()  # 400 kB of pickled text: 5 chunks
    assert spread.set("blob", blob) is True
    assert spread.set_many({"small": 1}) == ["small"]
    pre = spread._keys.prefix
    expected = {f"{pre}blob.{n}" for n in range(5)} | {f"{pre}small"}
    assert server_keys(memcached_server.port, pre) == expected
    # each get_multi is one request (test_round_trips_on_the_wire); count them
    calls: list[list[str]] = []
    real = PylibmcDriver.get_multi

    def counted(driver: PylibmcDriver, keys: list[str]) -> dict[str, Item]:
        calls.append(keys)
        return real(driver, keys)

    monkeypatch.setattr(PylibmcDriver, "get_multi", counted)
    assert spread.get_many("small", "blob", "missing") == [1, blob, None]
    assert len(calls) == 1  # every form of every key in one request
    assert spread.delete_many("blob", "small") == ["blob", "small"]
    assert server_keys(memcached_server.port, pre) == set()


def test_released_constructor_arguments(memcached_server: MemcachedServer) -> None:
    """Positional arguments in released Flask-Caching's order, and its pylibmc
    ``behaviors`` dict in CACHE_OPTIONS."""
    pytest.importorskip("pylibmc")
    cache = MemcachedCache([memcached_server.address], 60, "r_", 2, False, True)
    try:
        assert cache.default_timeout == 60 and cache.key_prefix == "r_"
        assert cache._pool.size == 2 and cache._pool.blocking is False
        assert cache.ignore_delete_many_errors is True
    finally:
        cache.close()
    tuned = MemcachedCache(
        [memcached_server.address], client="pylibmc", behaviors={"ketama": True}
    )
    try:
        assert tuned._client.behaviors["ketama"] and tuned.set("k", 1)
    finally:
        tuned.close()
