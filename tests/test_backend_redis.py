"""Redis-specific behaviour: settings mapping, round trips counted on the real server,
scoped clear, Sentinel failover, Cluster slots, fast failure when Redis is down, and
what makes it a drop-in for released Flask-Caching: the stored bytes, cachelib's
constructor rules, the live clients, locks and ``unlink``.

The capabilities every backend shares are in test_backend_contract.py.
"""

from __future__ import annotations

import datetime as dt
import inspect
import pickle
import socket
import sys
import threading
import time
import typing as t
import uuid
from collections.abc import Iterator

import cachelib
import pytest
import redis
from flask import Flask
from servers import ClusterGroup, RedisServer, SentinelGroup, free_port, start_redis

from flask_caching import Cache
from flask_caching.backends.rediscache import (
    CLEAR_BATCH_SIZE,
    DEFAULT_SOCKET_CONNECT_TIMEOUT,
    DEFAULT_SOCKET_TIMEOUT,
    RedisCache,
    RedisClusterCache,
    RedisSentinelCache,
)
from flask_caching.exceptions import ConfigurationError
from flask_caching.serializers import JSONSerializer, SignedPickleSerializer

pytestmark = pytest.mark.redis

#: a call refused at once (nothing listening) ends well within this, while redis-py's
#: default retries with backoff would take seconds; the margin is for a busy machine
FAST = 0.5

SETTINGS = (
    "CACHE_DEFAULT_TIMEOUT",
    "CACHE_KEY_PREFIX",
    "CACHE_REDIS_HOST",
    "CACHE_REDIS_PORT",
    "CACHE_REDIS_PASSWORD",
    "CACHE_REDIS_DB",
    "CACHE_REDIS_URL",
    "CACHE_REDIS_SENTINELS",
    "CACHE_REDIS_SENTINEL_MASTER",
    "CACHE_REDIS_CLUSTER",
)


def config(**settings: t.Any) -> dict[str, t.Any]:
    """A config mapping as the extension passes it: every setting present."""
    return {name: settings.get(name) for name in SETTINGS} | settings


@pytest.fixture
def prefix() -> str:
    return f"rt-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def cache(redis_server: RedisServer, prefix: str) -> Iterator[RedisCache]:
    cache = RedisCache(port=redis_server.port, key_prefix=prefix)
    yield cache
    cache.clear()
    cache.close()


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    with redis_server.client() as client:
        yield client


def command_calls(client: t.Any, **target: t.Any) -> dict[str, int]:
    """Calls per command since the last CONFIG RESETSTAT, from INFO commandstats."""
    stats = client.info("commandstats", **target)
    if target:  # a cluster client answers per node
        merged: dict[str, int] = {}
        for node_stats in stats.values():
            for name, entry in node_stats.items():
                merged[name] = merged.get(name, 0) + entry["calls"]
        return {k.removeprefix("cmdstat_"): v for k, v in merged.items()}
    return {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()}


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every request written to any redis socket: one entry per round trip."""
    sent: list[bytes] = []
    original = redis.connection.AbstractConnection.send_packed_command

    def spy(self: t.Any, command: t.Any, check_health: bool = True) -> None:
        sent.append(command)
        original(self, command, check_health)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", spy)
    return sent


# --- settings --------------------------------------------------------------------


def test_factory_host_port_db_password(prefix: str) -> None:
    server = start_redis("--requirepass", "s3cret", name="redis-auth")
    try:
        settings = config(
            CACHE_REDIS_HOST="127.0.0.1",
            CACHE_REDIS_PORT=str(server.port),  # env-style strings are accepted
            CACHE_REDIS_PASSWORD="s3cret",
            CACHE_REDIS_DB=4,
            CACHE_KEY_PREFIX=prefix,
            CACHE_DEFAULT_TIMEOUT=123,
        )
        cache = RedisCache.factory(None, settings, [], {})  # type: ignore[arg-type]
        cache.set("k", "v")
        with server.client(password="s3cret", db=4) as inspect:
            assert inspect.ttl(prefix + "k") == 123
        assert cache.default_timeout == 123
        cache.close()
    finally:
        server.close()


def test_factory_url_db_wins_then_the_db_setting(
    redis_server: RedisServer, prefix: str
) -> None:
    """As released: a database in CACHE_REDIS_URL wins over CACHE_REDIS_DB, which
    applies to a URL without one."""
    with_db = f"redis://127.0.0.1:{redis_server.port}/3"
    without_db = f"redis://127.0.0.1:{redis_server.port}"
    caches = [
        RedisCache.factory(None, config(**settings), [], {})  # type: ignore[arg-type]
        for settings in (
            {"CACHE_REDIS_URL": with_db, "CACHE_REDIS_HOST": "nohost"},
            {"CACHE_REDIS_URL": with_db, "CACHE_REDIS_DB": 5},
            {"CACHE_REDIS_URL": without_db, "CACHE_REDIS_DB": 5},
            {"CACHE_REDIS_URL": without_db},
        )
    ]
    for n, cache in enumerate(caches):
        cache.key_prefix = prefix
        cache.set(f"where{n}", n)
    for db, names in ((3, ["where0", "where1"]), (5, ["where2"]), (0, ["where3"])):
        with redis_server.client(db=db) as inspect:
            assert inspect.delete(*(prefix + name for name in names)) == len(names)
    for cache in caches:
        cache.close()


def test_factory_url_password_from_setting(prefix: str) -> None:
    server = start_redis("--requirepass", "pw", name="redis-auth")
    try:
        settings = config(
            CACHE_REDIS_URL=f"redis://127.0.0.1:{server.port}",
            CACHE_REDIS_PASSWORD="pw",
            CACHE_KEY_PREFIX=prefix,
        )
        cache = RedisCache.factory(None, settings, [], {})  # type: ignore[arg-type]
        assert cache.set("k", 1) and cache.get("k") == 1
        cache.close()
    finally:
        server.close()


def test_factory_unix_socket_url(tmp_path: t.Any, prefix: str) -> None:
    path = tmp_path / "redis.sock"
    server = start_redis("--unixsocket", str(path), name="redis-unix")
    try:
        settings = config(
            CACHE_REDIS_URL=f"unix://{path}?db=2", CACHE_KEY_PREFIX=prefix
        )
        cache = RedisCache.factory(None, settings, [], {})  # type: ignore[arg-type]
        cache.set("k", "over unix")
        with server.client(db=2) as inspect:
            assert inspect.exists(prefix + "k")
        cache.close()
    finally:
        server.close()


def test_factory_rediss_url_uses_tls() -> None:
    settings = config(CACHE_REDIS_URL="rediss://cache.example:6380/1")
    cache = RedisCache.factory(None, settings, [], {})  # type: ignore[arg-type]
    pool = cache._write_client.connection_pool
    assert pool.connection_class is redis.connection.SSLConnection
    assert pool.connection_kwargs["port"] == 6380
    assert pool.connection_kwargs["db"] == 1


def test_client_object_shares_its_pool(redis_server: RedisServer, prefix: str) -> None:
    with redis_server.client() as shared:
        settings = config(CACHE_REDIS_HOST=shared, CACHE_KEY_PREFIX=prefix)
        cache = RedisCache.factory(None, settings, [], {})  # type: ignore[arg-type]
        assert cache._write_client is shared and cache._read_client is shared
        cache.set("k", 1)
        assert shared.get(prefix + "k") == b"1"
        cache.close()  # not ours to close
        assert shared.ping()
        cache.clear()


def test_options_reach_the_client_and_fast_defaults(redis_server: RedisServer) -> None:
    settings = config(CACHE_REDIS_PORT=redis_server.port)
    plain = RedisCache.factory(None, settings, [], {})  # type: ignore[arg-type]
    kwargs = plain._write_client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == DEFAULT_SOCKET_TIMEOUT
    assert kwargs["socket_connect_timeout"] == DEFAULT_SOCKET_CONNECT_TIMEOUT
    assert kwargs["retry"].get_retries() == 0
    options = {"socket_timeout": 2.0, "client_name": "fc-options-test"}
    tuned = RedisCache.factory(None, settings, [], options)  # type: ignore[arg-type]
    assert tuned._write_client.connection_pool.connection_kwargs["socket_timeout"] == 2
    tuned.has("anything")
    names = [c["name"] for c in tuned._write_client.client_list()]
    assert "fc-options-test" in names
    plain.close()
    tuned.close()


def test_callable_key_prefix(redis_server: RedisServer, client: redis.Redis) -> None:
    tenant = ["t1"]
    cache = RedisCache(port=redis_server.port, key_prefix=lambda: f"{tenant[0]}:")
    cache.set("k", "one")
    tenant[0] = "t2"
    assert cache.get("k") is None
    cache.set("k", "two")
    assert client.exists("t1:k", "t2:k") == 2
    cache.clear()
    tenant[0] = "t1"
    cache.clear()
    assert client.exists("t1:k", "t2:k") == 0
    cache.close()


@pytest.mark.parametrize(
    ("cls", "settings", "named"),
    [
        (
            RedisSentinelCache,
            {"CACHE_REDIS_SENTINELS": ["nohost"]},
            "CACHE_REDIS_SENTINELS",
        ),
        (
            RedisSentinelCache,
            {"CACHE_REDIS_SENTINELS": ["h:1"], "CACHE_REDIS_SENTINEL_MASTER": 3},
            "CACHE_REDIS_SENTINEL_MASTER",
        ),
        (RedisClusterCache, {}, "CACHE_REDIS_CLUSTER"),
        (RedisClusterCache, {"CACHE_REDIS_CLUSTER": "h:1,h:x"}, "CACHE_REDIS_CLUSTER"),
        (RedisCache, {"CACHE_REDIS_PORT": "sixty"}, "CACHE_REDIS_PORT"),
        (RedisCache, {"CACHE_REDIS_DB": -1}, "CACHE_REDIS_DB"),
        (RedisCache, {"CACHE_REDIS_URL": "http://x"}, "CACHE_REDIS_URL"),
    ],
)
def test_invalid_settings_name_the_setting(
    cls: type[RedisCache], settings: dict[str, t.Any], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named):
        cls.factory(None, config(**settings), [], {})  # type: ignore[arg-type]


def test_decode_responses_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="decode_responses"):
        RedisCache.factory(None, config(), [], {"decode_responses": True})  # type: ignore[arg-type]


def test_missing_redis_package_says_pip_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ConfigurationError, match="pip install redis"):
        RedisCache()


def test_sentinel_settings(redis_sentinel: SentinelGroup, prefix: str) -> None:
    as_strings = [f"{h}:{p}" for h, p in redis_sentinel.sentinels]
    settings = config(
        CACHE_REDIS_SENTINELS=as_strings,
        CACHE_REDIS_SENTINEL_MASTER="mymaster",
        CACHE_REDIS_DB=2,
        CACHE_KEY_PREFIX=prefix,
    )
    options = {"sentinel_kwargs": {"socket_timeout": 0.3}}
    cache = RedisSentinelCache.factory(None, settings, [], options)  # type: ignore[arg-type]
    cache.set("k", "v")
    with redis_sentinel.master.client(db=2) as inspect:
        assert inspect.exists(prefix + "k")
    assert cache._sentinel.sentinels[0].connection_pool.connection_kwargs[
        "socket_timeout"
    ] == pytest.approx(0.3)
    cache.clear()
    cache.close()


# --- round trips, counted on the server ------------------------------------------


def test_bulk_calls_are_one_round_trip_each(
    cache: RedisCache, client: redis.Redis, sends: list[bytes]
) -> None:
    keys = [f"k{i}" for i in range(10)]
    cache.has("warm-up")  # the connection handshake is not part of what we count
    client.config_resetstat()
    sends.clear()

    assert len(cache.set_many({k: {"v": k} for k in keys}, timeout=60)) == 10
    assert len(sends) == 1
    assert cache.get_many(*keys) == [{"v": k} for k in keys]
    assert len(sends) == 2
    assert cache.delete_many(*keys[:5]) == keys[:5]
    assert len(sends) == 3
    assert cache.add("new", 1, timeout=60) is True
    assert cache.set("plain", 1, timeout=60) is True
    assert len(sends) == 5

    calls = command_calls(client)
    assert calls.get("mget") == 1
    assert calls.get("set") == 12
    assert calls.get("unlink") == 1
    for never in ("get", "expire", "setnx", "setex", "del", "multi", "exec"):
        assert never not in calls, calls
    assert 55 <= client.ttl(str(cache.key_prefix) + "new") <= 60
    assert 55 <= client.ttl(str(cache.key_prefix) + "k7") <= 60


def test_timeout_zero_sets_no_ttl(cache: RedisCache, client: redis.Redis) -> None:
    cache.set("forever", 1, timeout=0)
    cache.add("forever-add", 1, timeout=0)
    assert client.ttl(str(cache.key_prefix) + "forever") == -1
    assert client.ttl(str(cache.key_prefix) + "forever-add") == -1


def test_a_refused_command_raises_the_drivers_error(cache: RedisCache) -> None:
    cache.set("text", "not a number")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        cache.inc("text")


# --- clear -----------------------------------------------------------------------


def test_clear_with_prefix_scans_in_batches(
    cache: RedisCache, client: redis.Redis
) -> None:
    count = CLEAR_BATCH_SIZE * 2 + 500
    cache.set_many({f"k{i}": i for i in range(count)})
    client.set("bystander", b"stays")
    globby = RedisCache(
        port=client.connection_pool.connection_kwargs["port"], key_prefix="g*[x]?"
    )
    globby.set("k", 1)
    client.set("g-other", b"stays")
    client.config_resetstat()

    assert cache.clear() is True
    assert globby.clear() is True

    calls = command_calls(client)
    assert calls.get("scan", 0) > 1
    assert calls.get("unlink") == 3 + 1
    for never in ("keys", "flushdb", "flushall"):
        assert never not in calls
    assert client.exists("bystander", "g-other") == 2
    assert not list(client.scan_iter(match=str(cache.key_prefix) + "*"))
    assert globby.get("k") is None
    client.delete("bystander", "g-other")
    globby.close()


def test_clear_without_prefix_flushes_the_db(throwaway_redis: RedisServer) -> None:
    cache = RedisCache(port=throwaway_redis.port, key_prefix="")
    cache.set("a", 1)
    with throwaway_redis.client() as inspect:
        inspect.set("foreign", b"x")
        assert cache.clear() is True
        assert inspect.dbsize() == 0
        assert command_calls(inspect).get("flushdb") == 1
    cache.close()


# --- Sentinel --------------------------------------------------------------------


def test_sentinel_reads_from_replica_when_asked(
    redis_sentinel: SentinelGroup, prefix: str
) -> None:
    cache = RedisSentinelCache(
        redis_sentinel.sentinels, key_prefix=prefix, read_from_replicas=True
    )
    cache.set("k", "v")
    with redis_sentinel.master.client() as master:
        master.wait(1, 2000)
    with redis_sentinel.replica.client() as replica:
        replica.config_resetstat()
        assert cache.get("k") == "v"
        assert command_calls(replica).get("get") == 1
    cache.clear()
    cache.close()


@pytest.mark.slow
def test_sentinel_failover_keeps_the_cache_working(
    redis_sentinel_failover: SentinelGroup,
) -> None:
    group = redis_sentinel_failover
    cache = RedisSentinelCache(group.sentinels, key_prefix="fo:")
    cache.set("before", "kept")
    with group.master.client() as master:
        assert master.wait(1, 2000) == 1  # replicated before the crash
    old_port = group.master_port()

    group.master.kill()  # SIGKILL by PID
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        cache.get("before")  # old master still announced: refused, at once
    assert time.monotonic() - started < 0.5

    new_port = group.wait_for_failover(old_port, timeout=20)
    assert new_port == group.replica.port
    assert cache.set("after", "written") is True  # no retry needed
    assert cache.get_many("before", "after") == ["kept", "written"]
    cache.close()


# --- Cluster ---------------------------------------------------------------------


@pytest.fixture
def cluster_cache(
    redis_cluster: ClusterGroup, prefix: str
) -> Iterator[RedisClusterCache]:
    cache = RedisClusterCache(redis_cluster.startup, key_prefix=prefix)
    yield cache
    cache.clear()
    cache.close()


def test_cluster_spreads_keys_and_clears_every_master(
    redis_cluster: ClusterGroup, cluster_cache: RedisClusterCache
) -> None:
    cluster_cache.set_many({f"k{i}": i for i in range(60)})
    outsider = RedisClusterCache(redis_cluster.startup, key_prefix="outsider:")
    outsider.set_many({f"k{i}": i for i in range(60)})
    pattern = str(cluster_cache.key_prefix) + "*"
    for node in redis_cluster.nodes:
        with node.client() as inspect:
            assert list(inspect.scan_iter(match=pattern)), f"no keys on {node.port}"

    assert cluster_cache.get_many(*(f"k{i}" for i in range(60))) == list(range(60))
    cluster_cache.clear()

    for node in redis_cluster.nodes:
        with node.client() as inspect:
            assert not list(inspect.scan_iter(match=pattern))
            assert list(inspect.scan_iter(match="outsider:*"))
    assert outsider.get_many(*(f"k{i}" for i in range(60))) == list(range(60))
    outsider.clear()
    outsider.close()


def test_cluster_hash_tag_get_many_is_one_command(
    cluster_cache: RedisClusterCache, sends: list[bytes]
) -> None:
    client = cluster_cache._write_client
    keys = [f"{{user:42}}:field{i}" for i in range(10)]
    cluster_cache.set_many({k: k.upper() for k in keys})
    cluster_cache.has(keys[0])  # warm the connection to that node
    client.config_resetstat(target_nodes=client.PRIMARIES)
    sends.clear()

    assert cluster_cache.get_many(*keys) == [k.upper() for k in keys]

    assert len(sends) == 1
    per_node = client.info("commandstats", target_nodes=client.PRIMARIES)
    mgets = [s.get("cmdstat_mget", {}).get("calls", 0) for s in per_node.values()]
    assert sorted(mgets) == [0, 0, 1]
    assert "get" not in command_calls(client, target_nodes=client.PRIMARIES)


# --- fast failure ----------------------------------------------------------------


def test_nothing_listening_fails_at_once() -> None:
    cache = RedisCache(port=free_port())
    for call in (lambda: cache.get("k"), lambda: cache.set("k", 1)):
        started = time.monotonic()
        with pytest.raises(redis.ConnectionError):
            call()
        assert time.monotonic() - started < FAST


def test_a_failed_call_is_not_retried() -> None:
    """A server that hangs up at once is connected to exactly once per call."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.02)
    accepted: list[int] = []
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(1)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    cache = RedisCache(port=listener.getsockname()[1])
    try:
        started = time.monotonic()
        with pytest.raises(redis.ConnectionError):
            cache.get("k")
        assert time.monotonic() - started < FAST
        time.sleep(0.05)
        assert len(accepted) == 1
    finally:
        done.set()
        thread.join(timeout=2)
        listener.close()
        cache.close()


def test_cluster_hits_of_a_vary_view_and_a_memoized_function(
    redis_cluster: ClusterGroup, prefix: str, sends: list[bytes]
) -> None:
    """The variants of a vary= view share a hash tag with their version key: each hit
    is one MGET to one node. A memoized function's keys are released Flask-Caching's,
    without a hash tag, so a hit reads its version and value keys with one MGET per
    slot, pipelined: at most two requests, never a GET per key."""
    app = Flask(__name__)
    cache = Cache(
        app,
        config={
            "CACHE_TYPE": "RedisClusterCache",
            "CACHE_REDIS_CLUSTER": redis_cluster.startup,
            "CACHE_KEY_PREFIX": prefix,
        },
    )
    runs: list[str] = []

    @app.route("/hello")
    @cache.cached(vary=["Accept-Language"])
    def hello() -> str:
        runs.append("view")
        return f"page {len(runs)}"

    @cache.memoize()
    def double(n: int) -> int:
        runs.append("memo")
        return 2 * n

    client = app.test_client()
    langs = [{"Accept-Language": lang} for lang in ("fr", "de", "nl", "it")]
    pages = [client.get("/hello", headers=h).data for h in langs]  # misses
    with app.app_context():
        assert [double(n) for n in range(4)] == [0, 2, 4, 6]
    assert len(runs) == 8
    node_client = cache.cache._write_client  # type: ignore[attr-defined]
    node_client.config_resetstat(target_nodes=node_client.PRIMARIES)
    sends.clear()

    assert [client.get("/hello", headers=h).data for h in langs] == pages
    assert len(sends) == 4  # one request per view hit
    with app.app_context():
        for n in range(4):
            before = len(sends)
            assert double(n) == 2 * n
            assert 1 <= len(sends) - before <= 2

    assert len(runs) == 8  # all hits
    calls = command_calls(node_client, target_nodes=node_client.PRIMARIES)
    assert {name for name in calls if not name.startswith("config")} == {"mget"}
    with app.app_context():
        assert cache.delete_cached(hello, path="/hello")
    assert client.get("/hello", headers=langs[0]).data == b"page 9"


def test_unreachable_sentinel_and_cluster_fail_fast() -> None:
    sentinel = RedisSentinelCache([("127.0.0.1", free_port())])  # connects to nobody
    started = time.monotonic()
    with pytest.raises(redis.sentinel.MasterNotFoundError):
        sentinel.get("k")
    assert time.monotonic() - started < FAST
    started = time.monotonic()
    with pytest.raises(redis.exceptions.RedisClusterException) as err:
        RedisClusterCache(f"127.0.0.1:{free_port()}")
    assert time.monotonic() - started < 0.5
    if sys.version_info >= (3, 11):
        assert "CACHE_REDIS_CLUSTER" in " ".join(err.value.__notes__)


@pytest.mark.slow
def test_stalled_server_times_out_then_recovers(throwaway_redis: RedisServer) -> None:
    cache = RedisCache(port=throwaway_redis.port)
    cache.set("k", "v")
    throwaway_redis.stop()  # SIGSTOP: connected, but nothing answers
    try:
        started = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            cache.get("k")
        assert time.monotonic() - started < DEFAULT_SOCKET_TIMEOUT + 0.3
    finally:
        throwaway_redis.cont()
    assert cache.get("k") == "v"
    throwaway_redis.restart()  # pooled connections are now dead
    assert cache.get("k") is None  # no error: a stale connection is replaced
    cache.close()


# --- stored bytes: what released Flask-Caching (cachelib) writes -----------------

VALUES: list[t.Any] = [
    "text",
    "",
    b"raw bytes",
    {"a": [1, 2.5, None]},
    ("a", 1),
    [1, 2],
    None,
    True,
    False,
    1.5,
    dt.date(2024, 1, 2),
]
INTS = [0, 7, -42, 10**30]


def released_bytes(value: t.Any) -> bytes:
    """What cachelib's RedisSerializer (>= 0.10) stores, from its documented format."""
    if type(value) is int:
        return str(value).encode("ascii")
    return b"!" + pickle.dumps(value, pickle.HIGHEST_PROTOCOL)


@pytest.mark.parametrize("value", VALUES + INTS, ids=repr)
def test_stored_bytes_are_released_flask_cachings(
    cache: RedisCache, client: redis.Redis, value: t.Any
) -> None:
    p = str(cache.key_prefix)
    cache.set("set", value)
    cache.add("add", value)
    cache.set_many({"many": value})
    for name in ("set", "add", "many"):
        assert client.get(p + name) == released_bytes(value)
    assert cache.get("set") == value and type(cache.get("set")) is type(value)
    assert cache.get_many("add", "many") == [value, value]


def test_ints_are_digits_and_inc_dec_are_incrby(
    cache: RedisCache, client: redis.Redis
) -> None:
    p = str(cache.key_prefix)
    cache.set("n", 41)
    assert client.get(p + "n") == b"41"
    client.config_resetstat()
    assert cache.inc("n") == 42
    assert cache.dec("n", 5) == 37
    assert cache.inc("fresh", 3) == 3  # absent counts from 0
    assert client.get(p + "n") == b"37"
    assert cache.get_many("n", "fresh") == [37, 3]
    assert command_calls(client).get("incrby") == 3


def test_cachelib_reads_ours_and_we_read_cachelibs(
    cache: RedisCache, client: redis.Redis
) -> None:
    """cachelib's RedisCache and its serializer stand for released Flask-Caching,
    which stores through them."""
    p = str(cache.key_prefix)
    theirs = cachelib.RedisCache(host=client, key_prefix=p)
    their_bytes = cachelib.serializers.RedisSerializer().dumps
    for n, value in enumerate(VALUES + INTS):
        cache.set(f"ours{n}", value)
        client.set(f"{p}theirs{n}", their_bytes(value))
        assert theirs.get(f"ours{n}") == value
        assert cache.get(f"theirs{n}") == value


def test_foreign_bytes_come_back_unchanged(
    cache: RedisCache, client: redis.Redis
) -> None:
    """Bytes in no known format (another program's) are returned as bytes, not a
    miss, as released does; ASCII integers written by others are ints."""
    p = str(cache.key_prefix)
    client.mset({p + "text": b"Awesome", p + "num": b"42", p + "mixed": b"12abc"})
    client.set(p + "empty", b"")
    assert cache.get("text") == b"Awesome"
    assert cache.get_many("text", "num", "mixed", "empty", "absent") == [
        b"Awesome",
        42,
        b"12abc",
        b"",
        None,
    ]


def test_legacy_plain_pickle_is_read(cache: RedisCache, client: redis.Redis) -> None:
    """This project used to store plain pickle: an upgrade keeps those entries."""
    p = str(cache.key_prefix)
    client.set(p + "old", pickle.dumps({"kept": [1, 2]}, 5))
    client.set(p + "old2", pickle.dumps("two", 2))
    assert cache.get("old") == {"kept": [1, 2]}
    assert cache.get_many("old", "old2") == [{"kept": [1, 2]}, "two"]


def test_pickles_that_do_not_load_are_misses(
    cache: RedisCache, client: redis.Redis
) -> None:
    """A broken pickle (either mark) is a miss, never its raw bytes served."""
    p = str(cache.key_prefix)
    gone = pickle.dumps(Unpicklable(), 5).replace(b"Unpicklable", b"Vanished123")
    client.mset({p + "a": b"\x80\x05garbage", p + "b": b"!junk", p + "c": b"!" + gone})
    assert cache.get("a") is None
    assert cache.get_many("a", "b", "c") == [None, None, None]


class Unpicklable:
    """A class whose pickle a test renames, as if the class had been removed."""


RAN: list[str] = []


def _record(what: str) -> str:
    RAN.append(what)
    return what


class Payload:
    """Unpickling this calls _record: proof that bytes were (not) unpickled."""

    def __reduce__(self) -> tuple[t.Any, tuple[str]]:
        return (_record, ("unpickled",))


@pytest.mark.parametrize(
    ("serializer", "mark"),
    [(SignedPickleSerializer("s3cret"), b"\x03"), (JSONSerializer(), b"\x02")],
    ids=["signed", "json"],
)
def test_an_assigned_serializer_owns_every_byte_but_ints(
    cache: RedisCache, client: redis.Redis, serializer: t.Any, mark: bytes
) -> None:
    p = str(cache.key_prefix)
    cache.serializer = serializer
    cache.set_many({"s": "hello", "n": 7})
    cache.add("d", {"k": [1]})
    cache.set("neg", -3)
    assert client.get(p + "s") == serializer.dumps_for(p + "s", "hello")
    assert client.get(p + "s")[:1] == mark  # type: ignore[index]
    assert client.get(p + "d")[:1] == mark  # type: ignore[index]
    assert client.mget(p + "n", p + "neg") == [b"7", b"-3"]
    assert cache.inc("n") == 8
    assert cache.get_many("s", "n", "d", "neg") == ["hello", 8, {"k": [1]}, -3]

    RAN.clear()
    client.mset(
        {
            p + "cachelib": b"!" + pickle.dumps(Payload()),
            p + "legacy": pickle.dumps(Payload()),
            p + "text": b"Awesome",
        }
    )
    assert cache.get("cachelib") is None
    assert cache.get_many("legacy", "text") == [None, None]
    assert RAN == []  # refused, never unpickled


def test_serializer_is_swappable(cache: RedisCache, client: redis.Redis) -> None:
    class Upper:
        def dumps(self, value: t.Any) -> bytes:
            return b"U" + str(value).upper().encode()

        def loads(self, data: bytes) -> t.Any:
            if not data.startswith(b"U"):
                raise ValueError("not ours")
            return data[1:].decode()

    cache.serializer = Upper()
    cache.set_many({"s": "hello", "n": 7})
    cache.add("a", "added")
    client.set(str(cache.key_prefix) + "other", b"xyz")
    assert client.get(str(cache.key_prefix) + "s") == b"UHELLO"
    assert client.get(str(cache.key_prefix) + "n") == b"7"
    assert cache.get_many("s", "n", "a", "other") == ["HELLO", 7, "ADDED", None]


# --- constructor rules (cachelib's and released's) -------------------------------


def test_it_is_a_cachelib_redis_cache() -> None:
    for cls in (RedisCache, RedisSentinelCache, RedisClusterCache):
        assert issubclass(cls, cachelib.RedisCache)
    assert isinstance(RedisCache(), cachelib.RedisCache)


def test_constructor_signature_and_defaults() -> None:
    params = inspect.signature(RedisCache).parameters
    assert list(params)[:6] == [
        "host",
        "port",
        "password",
        "db",
        "default_timeout",
        "key_prefix",
    ]
    defaults = {name: p.default for name, p in params.items()}
    assert defaults["host"] == "localhost" and defaults["port"] == 6379
    assert defaults["password"] is None and defaults["db"] == 0
    assert defaults["default_timeout"] == 300 and defaults["key_prefix"] is None
    cache = RedisCache()  # builds a client, connects to nothing yet
    kwargs = cache._write_client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("localhost", 6379, 0)
    assert cache._read_client is cache._write_client
    assert cache.key_prefix == "" and cache.default_timeout == 300
    assert cache.ignore_delete_many_errors is False
    assert RedisCache(ignore_delete_many_errors=True).ignore_delete_many_errors


def test_host_none_is_refused() -> None:
    with pytest.raises(ValueError) as err:
        RedisCache(host=None)
    assert str(err.value) == "RedisCache host parameter may not be None"


def test_sentinel_defaults_build_without_connecting() -> None:
    cache = RedisSentinelCache()
    assert cache._sentinel.sentinels[0].connection_pool.connection_kwargs["port"] == (
        26379
    )
    from_settings = RedisSentinelCache.factory(None, config(), [], {})  # type: ignore[arg-type]
    pool = from_settings._sentinel.sentinels[0].connection_pool
    host_port = (pool.connection_kwargs["host"], pool.connection_kwargs["port"])
    assert host_port == ("127.0.0.1", 26379)
    assert from_settings._write_client.connection_pool.service_name == "mymaster"


def test_sentinel_options_with_the_sentinel_prefix_go_to_the_sentinels() -> None:
    settings = config(
        CACHE_REDIS_SENTINELS=["127.0.0.1:26380"],
        CACHE_REDIS_SENTINEL_PASSWORD="for-sentinels",
        CACHE_REDIS_PASSWORD="for-master",
    )
    options = {"sentinel_socket_timeout": 0.7, "socket_timeout": 0.9}
    cache = RedisSentinelCache.factory(None, settings, [], options)  # type: ignore[arg-type]
    to_sentinel = cache._sentinel.sentinels[0].connection_pool.connection_kwargs
    assert to_sentinel["password"] == "for-sentinels"
    assert to_sentinel["socket_timeout"] == pytest.approx(0.7)
    to_master = cache._write_client.connection_pool.connection_kwargs
    assert to_master["password"] == "for-master"
    assert to_master["socket_timeout"] == pytest.approx(0.9)
    assert "sentinel_socket_timeout" not in to_master


# --- the live clients -------------------------------------------------------------


def test_replaced_clients_are_used_by_every_method(
    cache: RedisCache, redis_server: RedisServer
) -> None:
    """Apps swap ``_read_client``/``_write_client``; every method follows."""
    p = str(cache.key_prefix)
    with redis_server.client(db=8) as writer, redis_server.client(db=9) as reader:
        cache._write_client = writer
        cache._read_client = reader
        assert cache.set("k", "v") is True
        cache.set_many({"a": 1, "b": 2})
        cache.add("c", 3)
        assert writer.mget(p + "k", p + "a", p + "b", p + "c") == [
            released_bytes("v"),
            b"1",
            b"2",
            b"3",
        ]
        assert cache.get("k") is None and cache.has("k") is False  # the reader's db
        reader.set(p + "k", released_bytes("from reader"))
        assert cache.get("k") == "from reader"
        assert cache.get_many("k", "a") == ["from reader", None]
        assert cache.inc("a") == 2 and writer.get(p + "a") == b"2"
        assert cache.delete_many("a", "b") == ["a", "b"]
        assert cache.delete("c") is True
        assert writer.keys(p + "*") == [(p + "k").encode()]
        cache.clear()
        assert writer.keys(p + "*") == [] and reader.exists(p + "k") == 1
        reader.delete(p + "k")


def test_a_default_sentinel_cache_runs_on_replaced_clients(
    redis_server: RedisServer, prefix: str
) -> None:
    """Released's own scenario: RedisSentinelCache() with no sentinel running, its
    clients swapped for working ones."""
    cache = RedisSentinelCache(key_prefix=prefix)
    assert cache._read_client is cache._write_client  # reads go to the master
    with redis_server.client() as live:
        cache._write_client = cache._read_client = live
        assert cache.set("k", ["v"]) is True
        assert cache.get_many("k", "absent") == [["v"], None]
        assert live.get(prefix + "k") == released_bytes(["v"])
        cache.clear()
        assert live.exists(prefix + "k") == 0


def test_factory_reads_ignore_errors_and_cache_options_beside_a_url(
    redis_server: RedisServer, prefix: str
) -> None:
    settings = config(
        CACHE_REDIS_URL=redis_server.url,
        CACHE_IGNORE_ERRORS=True,
        CACHE_KEY_PREFIX=prefix,
    )
    options = {"default_timeout": 77, "client_name": "fc-url-options"}
    cache = RedisCache.factory(None, settings, [], options)  # type: ignore[arg-type]
    assert cache.ignore_delete_many_errors is True
    cache.set("k", 1)
    with redis_server.client() as inspect:
        assert 70 < inspect.ttl(prefix + "k") <= 77
        names = [c["name"] for c in inspect.client_list()]
    assert "fc-url-options" in names
    cache.clear()
    cache.close()


def test_key_prefix_is_live_and_clients_take_app_commands(
    cache: RedisCache, client: redis.Redis
) -> None:
    cache.key_prefix = str(cache.key_prefix) + "v2:"
    cache.set("k", "v")
    assert client.exists(cache.key_prefix + "k") == 1
    # what applications do with the clients
    assert cache._write_client.expire(cache.key_prefix + "k", 1000)
    assert 990 < client.ttl(cache.key_prefix + "k") <= 1000
    pubsub = cache._read_client.pubsub()
    pubsub.subscribe("fc-channel")
    assert pubsub.get_message(timeout=1)["type"] == "subscribe"
    assert cache._write_client.publish("fc-channel", b"hello") == 1
    message = pubsub.get_message(timeout=1)
    assert message is not None and message["data"] == b"hello"
    pubsub.close()


# --- unlink and locks -------------------------------------------------------------


def test_unlink_removes_prefixed_keys_with_one_unlink(
    cache: RedisCache, client: redis.Redis
) -> None:
    p = str(cache.key_prefix)
    cache.set_many({"a": 1, "b": 2, "c": 3})
    client.set("a", b"unprefixed bystander")
    client.config_resetstat()
    assert cache.unlink("a", "b", "absent") == 2
    assert cache.unlink() == 0
    assert client.exists(p + "a", p + "b", p + "c", "a") == 2
    calls = command_calls(client)
    assert calls.get("unlink") == 1 and "del" not in calls
    client.delete("a")


def test_lock_is_set_nx_px_and_released_only_by_its_owner(
    cache: RedisCache, client: redis.Redis
) -> None:
    p = str(cache.key_prefix)
    assert cache.acquire_lock("lock", "me", 0.4) is True
    assert cache.acquire_lock("lock", "you", 5) is False
    assert 0 < client.pttl(p + "lock") <= 400  # milliseconds, not rounded up
    assert cache.release_lock("lock", "you") is False
    assert client.exists(p + "lock") == 1
    assert cache.release_lock("lock", "me") is True
    assert client.exists(p + "lock") == 0
    assert cache.release_lock("lock", "me") is False
    assert cache.acquire_lock("short", "me", 0.05) is True
    time.sleep(0.1)  # the lease ran out: the next caller gets it
    assert cache.acquire_lock("short", "next", 5) is True
    assert cache.release_lock("short", "me") is False  # never the next holder's
    assert cache.get("short") == "next"


def test_cluster_from_url_and_get_many_across_slots(
    redis_cluster: ClusterGroup, prefix: str
) -> None:
    node = redis_cluster.nodes[0]
    cache = RedisClusterCache.factory(
        None,  # type: ignore[arg-type]
        config(
            CACHE_REDIS_URL=f"redis://127.0.0.1:{node.port}", CACHE_KEY_PREFIX=prefix
        ),
        [],
        {},
    )
    keys = [f"spread{i}" for i in range(30)]
    slots = {cache._read_client.keyslot(prefix + k) for k in keys}
    assert len(slots) > 1
    cache.set_many({k: {"n": k} for k in keys})
    assert cache.get_many(*keys, "absent") == [{"n": k} for k in keys] + [None]
    assert cache.get_many("absent") == [None]
    assert cache.delete_many(*keys) == keys
    assert cache.get_many(*keys) == [None] * len(keys)
    cache.close()
