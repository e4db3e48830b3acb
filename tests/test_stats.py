"""``cache.stats()``: the decorators' counters per function and in total, per app.

Every event is provoked for real (a hit, a miss, a stale value served, a key
function that raises, a backend that is down, ``unless``, a POST, a response that
sets a cookie, a caller waiting for another's computation) on SimpleCache, and the
main ones on a real redis-server.
"""

from __future__ import annotations

import threading
import time
import typing as t
import uuid

import pytest
from flask import Flask, make_response

from flask_caching import Cache
from flask_caching.stats import BACKEND, EVENTS

BOUND = 20.0


class Clock:
    """``time.time`` plus an offset the test moves forward (no sleeping)."""

    def __init__(self) -> None:
        self.offset = 0.0
        self._real = time.time

    def __call__(self) -> float:
        return self._real() + self.offset


def make_app(**config: t.Any) -> tuple[Flask, Cache]:
    app = Flask(f"stats_{uuid.uuid4().hex[:6]}")
    app.config.update(
        CACHE_TYPE="SimpleCache", CACHE_KEY_PREFIX=f"s{uuid.uuid4().hex[:8]}_"
    )
    app.config.update(config)
    return app, Cache(app)


def counts(cache: Cache, name: str) -> dict[str, int]:
    functions = cache.stats()["functions"]
    found = [v for k, v in functions.items() if k.endswith(name)]
    assert len(found) == 1, sorted(functions)
    return dict(found[0])


def nonzero(c: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in c.items() if v}


def test_view_hits_and_misses_and_the_total() -> None:
    app, cache = make_app()

    @app.route("/a")
    @cache.cached()
    def page_a() -> str:
        return "a"

    @app.route("/b")
    @cache.cached()
    def page_b() -> str:
        return "b"

    client = app.test_client()
    for path in ["/a", "/a", "/a", "/b"]:
        assert client.get(path).status_code == 200
    with app.app_context():
        stats = cache.stats()
        assert nonzero(counts(cache, ".page_a")) == {"hits": 2, "misses": 1}
        assert nonzero(counts(cache, ".page_b")) == {"misses": 1}
    assert list(stats["total"]) == list(EVENTS)
    assert nonzero(stats["total"]) == {"hits": 2, "misses": 2}


def test_counters_are_per_app() -> None:
    cache = Cache()
    apps = []
    for _ in range(2):
        app = Flask(f"per_app_{uuid.uuid4().hex[:6]}")
        app.config.update(CACHE_TYPE="SimpleCache")
        cache.init_app(app)
        apps.append(app)

    @cache.memoize()
    def double(x: int) -> int:
        return 2 * x

    with apps[0].app_context():
        double(1)
        double(1)
        double(1)
    with apps[1].app_context():
        double(1)
        assert nonzero(counts(cache, ".double")) == {"misses": 1}
    with apps[0].app_context():
        assert nonzero(counts(cache, ".double")) == {"hits": 2, "misses": 1}


def test_bypasses_unless_method_private() -> None:
    app, cache = make_app()

    @app.route("/skip")
    @cache.cached(unless=lambda: True)
    def skipped() -> str:
        return "s"

    @app.route("/form", methods=["GET", "POST"])
    @cache.cached()
    def form() -> str:
        return "f"

    @app.route("/cookie")
    @cache.cached()
    def cookie() -> t.Any:
        response = make_response("c")
        response.set_cookie("who", "me")
        return response

    client = app.test_client()
    client.get("/skip")
    client.get("/skip")
    client.post("/form")
    client.get("/form")
    client.get("/cookie")
    client.get("/cookie")
    with app.app_context():
        assert nonzero(counts(cache, ".skipped")) == {"bypass_unless": 2}
        assert nonzero(counts(cache, ".form")) == {"bypass_method": 1, "misses": 1}
        # a refused result is a miss that was also kept out by the privacy rules
        assert nonzero(counts(cache, ".cookie")) == {
            "misses": 2,
            "bypass_private": 2,
        }


def test_memoize_unless_and_key_errors() -> None:
    app, cache = make_app()

    @cache.memoize(unless=lambda: True)
    def never(x: int) -> int:
        return x

    class Unhashable:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    @cache.memoize()
    def takes(obj: t.Any) -> int:
        return 1

    with app.app_context():
        never(1)
        assert takes(Unhashable()) == 1  # served uncached
        assert nonzero(counts(cache, ".never")) == {"bypass_unless": 1}
        assert nonzero(counts(cache, ".takes")) == {"errors": 1}


def test_a_key_function_error_of_a_view_is_counted() -> None:
    app, cache = make_app()

    def broken() -> str:
        raise RuntimeError("no key")

    @app.route("/k")
    @cache.cached(make_cache_key=broken)
    def keyed() -> str:
        return "k"

    assert app.test_client().get("/k").data == b"k"
    with app.app_context():
        assert nonzero(counts(cache, ".keyed")) == {"errors": 1}


def test_stale_values_served_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(time, "time", clock)
    app, cache = make_app()
    calls = []

    @cache.memoize(timeout=10, stale_while_revalidate=60)
    def slow(x: int) -> int:
        calls.append(x)
        return len(calls)

    with app.app_context():
        assert slow(1) == 1
        clock.offset += 30  # stale, inside the window
        # this caller refreshes inline (a miss); a caller racing it would be served
        # stale: make the refresh lock look taken so this one is served stale
        lock = cache.cache
        monkeypatch.setattr(lock, "add", lambda *a, **k: False)
        assert slow(1) == 1
        assert nonzero(counts(cache, ".slow")) == {"misses": 1, "stale": 1}


def test_lock_waits_are_counted() -> None:
    app, cache = make_app()
    started = threading.Event()

    @cache.memoize(lock=True)
    def heavy(x: int) -> int:
        started.set()
        time.sleep(0.3)
        return x

    def call() -> None:
        with app.app_context():
            heavy(7)

    first = threading.Thread(target=call)
    first.start()
    assert started.wait(BOUND)
    second = threading.Thread(target=call)
    second.start()
    first.join(BOUND)
    second.join(BOUND)
    with app.app_context():
        assert nonzero(counts(cache, ".heavy")) == {
            "misses": 1,
            "hits": 1,
            "lock_waits": 1,
        }


def test_template_fragments_are_counted_by_name() -> None:
    app, cache = make_app()
    source = "{% cache 60, 'sidebar' %}side{% endcache %}"
    with app.test_request_context():
        from flask import render_template_string

        for _ in range(3):
            assert render_template_string(source) == "side"
        stats = cache.stats()
    assert nonzero(stats["functions"]["fragment:sidebar"]) == {"hits": 2, "misses": 1}


def test_backend_failures_are_counted(throwaway_redis: t.Any) -> None:
    app, cache = make_app(
        CACHE_TYPE="RedisCache",
        CACHE_REDIS_URL=throwaway_redis.url,
        CACHE_OPTIONS={"socket_timeout": 1, "socket_connect_timeout": 1},
    )

    @cache.memoize()
    def value(x: int) -> int:
        return x

    throwaway_redis.kill()
    with app.app_context():
        assert value(3) == 3
        stats = cache.stats()
    assert stats["functions"][BACKEND]["errors"] >= 1
    assert stats["total"]["errors"] == stats["functions"][BACKEND]["errors"]


def test_redis_view_counts(redis_server: t.Any) -> None:
    app, cache = make_app(CACHE_TYPE="RedisCache", CACHE_REDIS_URL=redis_server.url)

    @app.route("/r")
    @cache.cached()
    def on_redis() -> str:
        return "r"

    client = app.test_client()
    for _ in range(4):
        assert client.get("/r").data == b"r"
    with app.app_context():
        assert nonzero(counts(cache, ".on_redis")) == {"hits": 3, "misses": 1}
