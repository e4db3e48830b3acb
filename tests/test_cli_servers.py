"""The ``flask cache`` commands against real Redis and memcached servers, up and
down (a loopback port with nothing listening), and a Redis with a password that
must never be printed. The in-process backends are in test_cli.py.
"""

from __future__ import annotations

import json
import typing as t
import uuid
from collections.abc import Iterator

import pytest
from click.testing import Result
from flask import Flask
from servers import MemcachedServer, RedisServer, free_port, start_redis

from flask_caching import Cache

PASSWORD = "cli-S3cret-pw"


def run(app: Flask, *args: str, input: str | None = None) -> Result:
    """``flask cache ARGS`` on *app*; fails the test on a traceback."""
    result = app.test_cli_runner().invoke(args=["cache", *args], input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.output
    )
    assert "Traceback" not in result.output
    return result


def make_app(**config: t.Any) -> tuple[Flask, Cache]:
    app = Flask(__name__)
    return app, Cache(app, config=config)


def redis_app(url: str, prefix: str | None = None) -> tuple[Flask, Cache]:
    """A RedisCache app; *prefix* None keeps the default prefix, "" has none."""
    config: dict[str, t.Any] = {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": url}
    if prefix is not None:
        config["CACHE_KEY_PREFIX"] = prefix
    return make_app(**config)


@pytest.fixture
def prefix() -> str:
    return f"cli-{uuid.uuid4().hex[:8]}:"


@pytest.fixture(scope="module")
def redis_with_password() -> Iterator[RedisServer]:
    server = start_redis("--requirepass", PASSWORD, name="cli-redis-auth")
    yield server
    server.close()


# -- Redis up ---------------------------------------------------------------------------


@pytest.mark.redis
def test_redis_ping(redis_server: RedisServer, prefix: str) -> None:
    app, _cache = redis_app(redis_server.url, prefix)
    result = run(app, "ping")
    assert result.exit_code == 0
    assert "cache: 0 (RedisCache)" in result.output
    where = f"where: redis://127.0.0.1:{redis_server.port}/0, key prefix {prefix!r}"
    assert where in result.output
    assert "round trip: " in result.output and " ms (" in result.output
    assert redis_server.client().keys(f"{prefix}*") == []  # the ping key is gone


@pytest.mark.redis
def test_redis_stats_text_and_json(redis_server: RedisServer, prefix: str) -> None:
    app, cache = redis_app(redis_server.url, prefix)
    with app.app_context():
        cache.set("a", 1)
        cache.get("a")
    text = run(app, "stats")
    assert text.exit_code == 0
    for field in ("used_memory_human", "keyspace_hits", "keyspace_misses"):
        assert f"  {field}: " in text.output
    assert "evicted_keys: 0" in text.output
    assert "keyspace:\n  db0: keys=" in text.output
    data = json.loads(run(app, "stats", "--json").output)
    info = redis_server.client().info()
    assert data["backend"] == "RedisCache"
    assert data["server"]["redis_version"] == info["redis_version"]
    assert data["keyspace"]["db0"]["keys"] >= 1
    assert data["this cache"] == {"db": 0, "key prefix": prefix}


@pytest.mark.redis
def test_redis_keys_are_prefix_scoped(redis_server: RedisServer, prefix: str) -> None:
    app, cache = redis_app(redis_server.url, prefix)
    redis_server.client().set("elsewhere:user:9", b"x")
    with app.app_context():
        for name in ("user:1", "user:2", "user:3", "page:/"):
            cache.set(name, name)
    listed = run(app, "keys", "user:*")
    assert listed.exit_code == 0
    assert listed.output.split() == ["user:1", "user:2", "user:3"]
    assert len(run(app, "keys").output.split()) == 4
    limited = run(app, "keys", "--limit", "2")
    assert "more match: use --limit" in limited.output
    assert run(app, "keys", "zzz*").output.startswith("No keys match 'zzz*' under")
    redis_server.client().delete("elsewhere:user:9")


@pytest.mark.redis
def test_redis_get_shows_pttl(redis_server: RedisServer, prefix: str) -> None:
    app, cache = redis_app(redis_server.url, prefix)
    with app.app_context():
        cache.set("t", ["a", 1], timeout=90)
        cache.set("forever", b"raw", timeout=0)
    result = run(app, "get", "t")
    assert result.exit_code == 0
    assert "type: list" in result.output and "value: ['a', 1]" in result.output
    ttl = float(result.output.split("ttl: ")[1].split(" s")[0])
    assert 88 <= ttl <= 90
    forever = run(app, "get", "forever")
    assert "type: bytes" in forever.output and "ttl: never expires" in forever.output
    missing = run(app, "get", "nope")
    assert missing.exit_code == 1 and "no key 'nope'" in missing.output


@pytest.mark.redis
def test_redis_delete_and_scoped_clear(redis_server: RedisServer, prefix: str) -> None:
    app, cache = redis_app(redis_server.url, prefix)
    client = redis_server.client()
    client.set("other-app:keep", b"1")
    with app.app_context():
        cache.set_many({"a": 1, "b": 2, "c": 3})
    deleted = run(app, "delete", "a", "zz")
    assert deleted.exit_code == 0 and "Deleted 1 of 2 key(s)" in deleted.output
    refused = run(app, "clear", input="n\n")
    assert refused.exit_code == 1
    assert f"deletes only the keys starting with {prefix!r}" in refused.output
    assert client.exists(f"{prefix}b") == 1
    assert run(app, "clear", "--yes").exit_code == 0
    assert client.keys(f"{prefix}*") == [] and client.get("other-app:keep") == b"1"
    client.delete("other-app:keep")


@pytest.mark.redis
def test_redis_clear_without_prefix_names_the_database(
    throwaway_redis: RedisServer,
) -> None:
    app, cache = redis_app(throwaway_redis.url.replace("/0", "/3"), prefix="")
    throwaway_redis.client(db=3).set("someone-else", b"1")
    refused = run(app, "clear")
    assert refused.exit_code == 1
    assert "empties the WHOLE database number 3" in refused.output
    assert throwaway_redis.client(db=3).get("someone-else") == b"1"
    assert run(app, "clear", "--yes").exit_code == 0
    assert throwaway_redis.client(db=3).dbsize() == 0


# -- Redis down, Redis with a password ------------------------------------------------


@pytest.mark.redis
@pytest.mark.parametrize(
    "command", [("ping",), ("stats",), ("keys",), ("get", "k"), ("delete", "k")]
)
def test_redis_down_is_a_one_line_error(command: tuple[str, ...]) -> None:
    port = free_port()
    app, _cache = redis_app(f"redis://:{PASSWORD}@127.0.0.1:{port}/0", "p:")
    result = run(app, *command)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "ConnectionError" in lines[0] and f"127.0.0.1:{port}" in lines[0]
    assert PASSWORD not in result.output


@pytest.mark.redis
def test_redis_password_is_never_printed(redis_with_password: RedisServer) -> None:
    port = redis_with_password.port
    app, cache = redis_app(f"redis://:{PASSWORD}@127.0.0.1:{port}/0", "pw:")
    with app.app_context():
        cache.set("k", PASSWORD[:3])
    outputs = [run(app, *args) for args in (["ping"], ["stats"], ["stats", "--json"])]
    outputs.append(run(app, "clear", input="n\n"))
    for result in outputs:
        assert f"127.0.0.1:{port}" in result.output
        assert PASSWORD not in result.output
    assert [r.exit_code for r in outputs] == [0, 0, 0, 1]
    wrong, _ = redis_app(f"redis://:wrong-{PASSWORD}@127.0.0.1:{port}/0")
    refused = run(wrong, "ping")
    assert refused.exit_code == 1 and PASSWORD not in refused.output


# -- memcached --------------------------------------------------------------------------


def memcached_app(*servers: str, prefix: str = "") -> tuple[Flask, Cache]:
    return make_app(
        CACHE_TYPE="MemcachedCache",
        CACHE_MEMCACHED_SERVERS=list(servers),
        CACHE_KEY_PREFIX=prefix,
    )


@pytest.mark.memcached
def test_memcached_ping_and_stats(memcached_server: MemcachedServer) -> None:
    app, cache = memcached_app(memcached_server.address, prefix="cli-mc:")
    ping = run(app, "ping")
    assert ping.exit_code == 0
    assert f"where: {memcached_server.address}" in ping.output
    with app.app_context():
        cache.set("a", 1)
    text = run(app, "stats")
    assert text.exit_code == 0
    assert f"servers:\n  {memcached_server.address}:\n" in text.output
    data = json.loads(run(app, "stats", "--json").output)
    mine = data["servers"][memcached_server.address]
    for field in ("curr_items", "bytes", "get_hits", "get_misses", "evictions"):
        assert isinstance(mine[field], int)
    assert mine["curr_items"] >= 1


@pytest.mark.memcached
def test_memcached_cannot_list_or_tell_a_ttl(memcached_server: MemcachedServer) -> None:
    app, cache = memcached_app(memcached_server.address, prefix="cli-mc2:")
    keys = run(app, "keys")
    assert keys.exit_code == 1 and "listing is not supported" in keys.output
    with app.app_context():
        cache.set("v", {"n": 1})
    got = run(app, "get", "v")
    assert got.exit_code == 0 and "value: {'n': 1}" in got.output
    assert "ttl: unknown (memcached does not report it)" in got.output


@pytest.mark.memcached
def test_memcached_clear_warns_of_the_whole_server(
    throwaway_memcached: MemcachedServer,
) -> None:
    app, cache = memcached_app(throwaway_memcached.address, prefix="mine:")
    other, other_cache = memcached_app(throwaway_memcached.address, prefix="theirs:")
    with other.app_context():
        other_cache.set("k", 1)
    refused = run(app, "clear")
    assert refused.exit_code == 1
    assert "flushes EVERY key on the memcached server(s)" in refused.output
    assert "all apps" in refused.output
    assert run(app, "clear", "--yes").exit_code == 0
    with other.app_context():
        assert other_cache.get("k") is None  # it was another prefix: gone too


@pytest.mark.memcached
def test_memcached_down(memcached_server: MemcachedServer) -> None:
    dead = f"127.0.0.1:{free_port()}"
    app, _cache = memcached_app(dead)
    ping = run(app, "ping")
    assert ping.exit_code == 1
    lines = ping.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: cache 0 (MemcachedCache)")
    stats = run(app, "stats")
    assert stats.exit_code == 1 and f"{dead}: ConnectionRefusedError" in stats.output
    half, _ = memcached_app(memcached_server.address, dead)
    data = json.loads(run(half, "stats", "--json").output)
    assert "error" in data["servers"][dead]
    assert "curr_items" in data["servers"][memcached_server.address]
