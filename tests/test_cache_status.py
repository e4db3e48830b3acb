"""The RFC 9211 ``Cache-Status`` header of cached views (CACHE_STATUS_HEADER and
``@cache.cached(cache_status=...)``), on SimpleCache and a real redis-server."""

from __future__ import annotations

import time
import typing as t
import uuid

import pytest
from flask import Flask, abort, make_response

from flask_caching import Cache
from flask_caching.entry import META_SUFFIX

HEADER = "Cache-Status"


def make_app(**config: t.Any) -> tuple[Flask, Cache]:
    app = Flask(f"status_{uuid.uuid4().hex[:6]}")
    app.config.update(
        CACHE_TYPE="SimpleCache",
        CACHE_STATUS_HEADER=True,
        CACHE_KEY_PREFIX=f"cs{uuid.uuid4().hex[:8]}_",
    )
    app.config.update(config)
    return app, Cache(app)


def test_miss_stored_then_hit_with_ttl() -> None:
    app, cache = make_app()

    @app.route("/")
    @cache.cached(timeout=42)
    def index() -> str:
        return "hello"

    client = app.test_client()
    first = client.get("/")
    assert first.headers[HEADER] == "flask-caching; fwd=miss; stored"
    second = client.get("/")
    assert second.data == b"hello"
    assert second.headers[HEADER] in (
        "flask-caching; hit; ttl=42",
        "flask-caching; hit; ttl=41",
    )
    # the ttl comes from the meta key written beside the value
    with app.app_context():
        assert cache.get("view//" + META_SUFFIX) is not None


def test_ttl_counts_down(monkeypatch: pytest.MonkeyPatch) -> None:
    app, cache = make_app()

    @app.route("/t")
    @cache.cached(timeout=100)
    def timed() -> str:
        return "t"

    client = app.test_client()
    client.get("/t")
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 60)
    assert client.get("/t").headers[HEADER] in (
        "flask-caching; hit; ttl=40",
        "flask-caching; hit; ttl=39",
    )


def test_private_unstorable_method_and_bypass() -> None:
    app, cache = make_app()

    @app.route("/cookie")
    @cache.cached()
    def cookie() -> t.Any:
        response = make_response("c")
        response.set_cookie("who", "me")
        return response

    @app.route("/error")
    @cache.cached()
    def error() -> t.Any:
        return "boom", 500

    @app.route("/form", methods=["GET", "POST"])
    @cache.cached()
    def form() -> str:
        return "f"

    @app.route("/skip")
    @cache.cached(unless=lambda: True)
    def skip() -> str:
        return "s"

    client = app.test_client()
    assert (
        client.get("/cookie").headers[HEADER]
        == "flask-caching; fwd=miss; detail=private"
    )
    assert client.get("/error").headers[HEADER] == (
        "flask-caching; fwd=miss; detail=unstorable"
    )
    assert client.post("/form").headers[HEADER] == (
        "flask-caching; fwd=miss; detail=method"
    )
    assert client.get("/skip").headers[HEADER] == "flask-caching; fwd=bypass"


def test_a_failing_key_function_says_bypass_error() -> None:
    app, cache = make_app()

    def broken() -> str:
        raise RuntimeError("no key")

    @app.route("/k")
    @cache.cached(make_cache_key=broken, cache_status=True)
    def keyed() -> str:
        return "k"

    response = app.test_client().get("/k")
    assert response.data == b"k"
    assert response.headers[HEADER] == "flask-caching; fwd=bypass; detail=error"


def test_stale_value_served(monkeypatch: pytest.MonkeyPatch) -> None:
    app, cache = make_app()

    @app.route("/old")
    @cache.cached(timeout=10, stale_while_revalidate=60)
    def old() -> str:
        return "old"

    client = app.test_client()
    client.get("/old")
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 30)
    with app.app_context():
        # the refresh lock is held elsewhere: this request is served stale
        monkeypatch.setattr(cache.cache, "add", lambda *a, **k: False)
    response = client.get("/old")
    assert response.data == b"old"
    assert response.headers[HEADER] == "flask-caching; fwd=stale"


def test_decorator_argument_overrides_the_setting() -> None:
    app, cache = make_app()

    @app.route("/off")
    @cache.cached(cache_status=False)
    def off() -> str:
        return "off"

    client = app.test_client()
    assert HEADER not in client.get("/off").headers
    assert HEADER not in client.get("/off").headers

    other, cache2 = make_app(CACHE_STATUS_HEADER=False)

    @other.route("/on")
    @cache2.cached(cache_status=True)
    def on() -> str:
        return "on"

    @other.route("/plain")
    @cache2.cached()
    def plain() -> str:
        return "plain"

    client2 = other.test_client()
    assert client2.get("/on").headers[HEADER] == "flask-caching; fwd=miss; stored"
    assert client2.get("/on").headers[HEADER].startswith("flask-caching; hit; ttl=")
    assert HEADER not in client2.get("/plain").headers


def test_setting_covers_request_keyed_views_only() -> None:
    app, cache = make_app()

    @cache.cached(key_prefix="helper")
    def helper() -> str:
        return "h"

    @app.route("/uses")
    def uses() -> str:
        return helper()

    assert HEADER not in app.test_client().get("/uses").headers


def test_a_cached_abort_carries_the_header() -> None:
    app, cache = make_app()

    @app.route("/gone")
    @cache.cached()
    def gone() -> str:
        abort(404)

    client = app.test_client()
    assert client.get("/gone").status_code == 404
    again = client.get("/gone")
    assert again.status_code == 404
    assert again.headers[HEADER].startswith("flask-caching; hit")


def test_response_hit_indication_keeps_working() -> None:
    app, cache = make_app(CACHE_STATUS_HEADER=False)

    @app.route("/h")
    @cache.cached(response_hit_indication=True)
    def indicated() -> str:
        return "h"

    client = app.test_client()
    assert "hit_cache" not in client.get("/h").headers
    hit = client.get("/h")
    assert hit.headers["hit_cache"] == "True"
    assert HEADER not in hit.headers


def test_redis_hit_with_ttl(redis_server: t.Any) -> None:
    app, cache = make_app(CACHE_TYPE="RedisCache", CACHE_REDIS_URL=redis_server.url)

    @app.route("/r")
    @cache.cached(timeout=30)
    def on_redis() -> str:
        return "r"

    client = app.test_client()
    assert client.get("/r").headers[HEADER] == "flask-caching; fwd=miss; stored"
    assert client.get("/r").headers[HEADER] in (
        "flask-caching; hit; ttl=30",
        "flask-caching; hit; ttl=29",
    )
