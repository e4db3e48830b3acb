"""What the decorators cost on a real redis-server, and how they survive losing it.

Round trips are counted by the server (``INFO commandstats``), not claimed: a hit of
``@cached``, ``@memoize`` (functions and methods) or ``{% cache %}`` is exactly one
read (GET for one key, MGET for a value and its version keys, as for views with
``vary=``) and nothing else.
"""

from __future__ import annotations

import logging
import typing as t
from collections.abc import Iterator
from contextlib import contextmanager

import decorator_support as support
import pytest
import redis
from decorator_support import Backend, Calls, MakeApp
from flask import Flask, render_template_string
from servers import RedisServer

from flask_caching import Cache
from flask_caching.exceptions import BackendError

# the shared fixtures, used by name
redis_backend = support.redis_backend
make_redis_app = support.make_redis_app

HITS = 25


class Commands:
    """Commands the server ran inside a ``counting()`` block, by name."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def command_stats(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(entry["calls"])
        for name, entry in stats.items()
        if name != "cmdstat_info"
    }


@contextmanager
def counting(server: RedisServer) -> Iterator[Commands]:
    """Count the commands of everyone but ourselves (one connection, INFO only)."""
    commands = Commands()
    with server.client() as client:
        before = command_stats(client)  # connects (HELLO etc.) before the snapshot
        yield commands
        after = command_stats(client)
    commands.counts = {
        name: calls - before.get(name, 0)
        for name, calls in after.items()
        if calls != before.get(name, 0)
    }


def server_of(backend: Backend) -> RedisServer:
    assert backend.server is not None
    return backend.server


def test_cached_view_hit_is_one_get(
    make_redis_app: MakeApp, redis_backend: Backend
) -> None:
    app, cache = make_redis_app()
    calls = Calls()

    @app.route("/v")
    @cache.cached()
    def view() -> str:
        return str(calls())

    client = app.test_client()
    assert client.get("/v").data == b"1"  # the miss; connects too
    with counting(server_of(redis_backend)) as commands:
        for _ in range(HITS):
            assert client.get("/v").data == b"1"
    assert commands.counts == {"get": HITS}


def test_vary_view_hit_is_one_mget_and_delete_cached_one_write(
    make_redis_app: MakeApp, redis_backend: Backend
) -> None:
    """A view with vary= reads its variant and the version key its variants share
    in one MGET; delete_cached drops that one key and every variant misses."""
    app, cache = make_redis_app()
    calls = Calls()

    @app.route("/v")
    @cache.cached(vary=["Accept-Language"])
    def view() -> str:
        return str(calls())

    client = app.test_client()
    french, german = {"Accept-Language": "fr"}, {"Accept-Language": "de"}
    assert client.get("/v", headers=french).data == b"1"  # misses; connect too
    assert client.get("/v", headers=german).data == b"2"
    with counting(server_of(redis_backend)) as commands:
        for _ in range(HITS):
            assert client.get("/v", headers=french).data == b"1"
            assert client.get("/v", headers=german).data == b"2"
    assert commands.counts == {"mget": 2 * HITS}
    with app.app_context(), counting(server_of(redis_backend)) as deleting:
        assert cache.delete_cached(view, path="/v")
    assert deleting.total == 1
    assert client.get("/v", headers=french).data == b"3"
    assert client.get("/v", headers=german).data == b"4"


def test_cached_function_hit_is_one_get(
    make_redis_app: MakeApp, redis_backend: Backend
) -> None:
    app, cache = make_redis_app()
    calls = Calls()

    @cache.cached(key_prefix="comments")
    def comments() -> list[int]:
        return [calls()]

    with app.app_context():
        comments()
        with counting(server_of(redis_backend)) as commands:
            for _ in range(HITS):
                assert comments() == [1]
    assert commands.counts == {"get": HITS}


def test_memoize_hit_is_one_mget(
    make_redis_app: MakeApp, redis_backend: Backend
) -> None:
    app, cache = make_redis_app()
    calls = Calls()

    @cache.memoize()
    def f(x: int, y: int = 1) -> int:
        return calls()

    with app.app_context():
        f(1)
        cache.delete_memoized(f, 2)  # a version key that exists beforehand is fine
        with counting(server_of(redis_backend)) as commands:
            for _ in range(HITS):
                assert f(1) == 1
                assert f(x=1, y=1) == 1
    assert commands.counts == {"mget": 2 * HITS}


def test_memoized_method_hit_is_one_mget(
    make_redis_app: MakeApp, redis_backend: Backend
) -> None:
    app, cache = make_redis_app()
    calls = Calls()

    class Person:
        def __init__(self, pk: int) -> None:
            self.pk = pk

        def __repr__(self) -> str:
            return f"Person({self.pk})"

        @cache.memoize()
        def roles(self) -> int:
            return calls()

    person = Person(1)
    with app.app_context():
        person.roles()
        with counting(server_of(redis_backend)) as commands:
            for _ in range(HITS):
                assert person.roles() == 1
        with counting(server_of(redis_backend)) as after_delete:
            cache.delete_memoized(person.roles)
        assert after_delete.total == 1  # invalidating an instance is one write
        assert person.roles() == 2
    assert commands.counts == {"mget": HITS}


def test_template_fragment_hit_is_one_get(
    make_redis_app: MakeApp, redis_backend: Backend
) -> None:
    app, cache = make_redis_app()
    calls = Calls()
    source = '{% cache 60, "box" %}{{ n() }}{% endcache %}'
    with app.test_request_context():
        assert render_template_string(source, n=calls) == "1"
        with counting(server_of(redis_backend)) as commands:
            for _ in range(HITS):
                assert render_template_string(source, n=calls) == "1"
    assert commands.counts == {"get": HITS}


def test_a_hit_reads_through_get_many_once(
    make_redis_app: MakeApp,
) -> None:
    """The same claim seen from the client: one get_many per hit, no get/has."""
    app, cache = make_redis_app()
    with app.app_context():
        store = cache.cache
    used: list[tuple[str, int]] = []
    for name in ("get", "get_many", "has", "get_dict"):
        original = getattr(store, name)

        def spy(*args: t.Any, _name: str = name, _orig: t.Any = original) -> t.Any:
            used.append((_name, len(args)))
            return _orig(*args)

        setattr(store, name, spy)

    @cache.memoize()
    def f(x: int) -> int:
        return x

    @app.route("/")
    @cache.cached()
    def view() -> str:
        return "v"

    with app.app_context():
        f(1)
        used.clear()
        f(1)
        assert used == [("get_many", 2)]  # the value key and the version key

    @app.route("/varied")
    @cache.cached(vary_on_session=True)
    def varied() -> str:
        return "v"

    client = app.test_client()
    client.get("/")
    used.clear()
    client.get("/")
    assert used == [("get", 1)]  # one key: get, as released reads it
    client.get("/varied")
    used.clear()
    client.get("/varied")
    # the variant, its meta key and the version key its variants share
    assert used == [("get_many", 3)]


# -- outage ---------------------------------------------------------------------------


def outage_app(server: RedisServer) -> tuple[Flask, Cache, Calls]:
    app = Flask(__name__)
    cache = Cache(
        app,
        config={
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_URL": server.url,
            "CACHE_KEY_PREFIX": "outage:",
            # no circuit breaker pause: the first request after the restart caches
            "CACHE_FAILURE_COOLDOWN": 0,
        },
    )
    calls = Calls()

    @app.route("/page/<name>")
    @cache.cached(timeout=60)
    def page(name: str) -> str:
        return f"{name}:{calls()}|{total(2, 3)}"

    @cache.memoize(timeout=60)
    def total(a: int, b: int) -> int:
        return a + b

    @app.route("/fragment")
    def fragment() -> str:
        return render_template_string(
            '{% cache 60, "frag" %}<i>{{ n() }}</i>{% endcache %}', n=calls
        )

    return app, cache, calls


def test_requests_survive_a_killed_redis(
    throwaway_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    app, cache, calls = outage_app(throwaway_redis)
    client = app.test_client()
    assert client.get("/page/a").data == b"a:1|5"
    assert client.get("/page/a").data == b"a:1|5"
    assert client.get("/fragment").data == b"<i>2</i>"
    assert client.get("/fragment").data == b"<i>2</i>"

    throwaway_redis.kill()
    with caplog.at_level(logging.WARNING, logger="flask_caching"):
        for expected in (b"a:3|5", b"a:4|5"):
            response = client.get("/page/a")
            assert (response.status_code, response.data) == (200, expected)
        response = client.get("/fragment")
        assert (response.status_code, response.data) == (200, b"<i>5</i>")
    warnings = [r for r in caplog.records if r.name == "flask_caching"]
    assert warnings and {r.levelno for r in warnings} == {logging.WARNING}
    assert all(r.name == "flask_caching" for r in caplog.records)

    throwaway_redis.restart()  # empty again: no persistence
    assert client.get("/page/a").data == b"a:6|5"
    assert client.get("/page/a").data == b"a:6|5"
    with app.app_context():
        cache.cache.close()  # type: ignore[attr-defined]


def test_killed_redis_raises_in_debug_mode(throwaway_redis: RedisServer) -> None:
    app, cache, calls = outage_app(throwaway_redis)
    app.debug = True
    client = app.test_client()
    assert client.get("/page/a").status_code == 200
    throwaway_redis.kill()
    with pytest.raises((BackendError, redis.ConnectionError)):
        client.get("/page/b")
    with app.app_context():
        cache.cache.close()  # type: ignore[attr-defined]


class _Account:
    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        return f"Account({self.n})"


def test_version_keys_expire_with_the_newest_entry(
    make_redis_app: MakeApp, redis_backend: Backend
) -> None:
    """As released: every version key is written with the entry's timeout, so
    objects that come and go leave no version key behind on the server."""
    app, cache = make_redis_app()

    class Account(_Account):
        @cache.memoize(timeout=60)
        def balance(self) -> int:
            return self.n

    ns = f"{__name__}.test_version_keys_expire_with_the_newest_entry.locals"
    function_key = f"{ns}.Account.balance_memver"
    instance_key = f"{ns}.Account.balance.Account1_memver"  # "Account(1)" stripped
    with app.app_context():
        assert Account(1).balance() == 1
        for key in (function_key, instance_key):
            assert 55 < redis_backend.ttl(key) <= 60
        before = cache.get(instance_key)
        with counting(server_of(redis_backend)) as deleting:
            cache.delete_memoized(Account(1).balance)
        assert deleting.total == 1  # invalidating an instance is one write
        assert cache.get(instance_key) != before
        assert redis_backend.ttl(instance_key) == -1  # set_many(timeout=0)
        assert Account(1).balance() == 1  # a miss that stores it again
        assert 55 < redis_backend.ttl(instance_key) <= 60


def test_another_process_sees_a_delete_in_two_round_trips_once(
    make_redis_app: MakeApp, redis_backend: Backend
) -> None:
    """Two Caches on one server (two processes): after one runs delete_memoized,
    the other's next hit reads the versions with the old value key, then the new
    value key (two reads), and then it is one read again. A process that has seen
    nothing yet reads the versions, then the value, as released does."""
    apps = [make_redis_app() for _ in range(3)]
    calls = Calls()

    def total(x: int) -> int:
        return calls()

    fs = [cache.memoize(timeout=60)(total) for _app, cache in apps]
    server = server_of(redis_backend)
    (app_a, cache_a), (app_b, _cache_b), (app_c, cache_c) = apps
    with app_a.app_context():
        assert fs[0](1) == 1
    with app_b.app_context():
        assert fs[1](1) == 1  # b has seen the versions
    with app_a.app_context():
        cache_a.delete_memoized(fs[0])  # "process" a deletes, and recomputes
        assert fs[0](1) == 2
    with app_b.app_context():
        with counting(server) as first:
            assert fs[1](1) == 2
        with counting(server) as then:
            assert fs[1](1) == 2
    assert first.total == 2 and first.counts.get("mget") == 1, first.counts
    assert then.counts == {"mget": 1}
    with app_c.app_context():  # cold: versions, then the value
        assert cache_c.get("unrelated") is None  # connects (HELLO) beforehand
        with counting(server) as cold:
            assert fs[2](1) == 2
        with counting(server) as warm:
            assert fs[2](1) == 2
    assert cold.total == 2 and cold.counts.get("get") == 1, cold.counts
    assert warm.counts == {"mget": 1}
