"""CACHE_SERIALIZER end to end: forged values in a real Redis never become code."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import pickle
import typing as t
import uuid

import pytest
from flask import Flask
from servers import RedisServer

from flask_caching import Cache
from flask_caching.exceptions import ConfigurationError
from flask_caching.serializers import JSONSerializer, SignedPickleSerializer


class _CreatesFile:
    """Unpickling this object creates a directory: the stand-in for arbitrary code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[t.Any, ...]:
        return (os.mkdir, (self.path,))


def _app(**config: t.Any) -> tuple[Flask, Cache]:
    app = Flask(__name__)
    app.config.update(config)
    return app, Cache(app)


@pytest.mark.redis
def test_forged_pickle_in_redis_is_a_miss_and_never_runs(
    redis_server: RedisServer, tmp_path: t.Any, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = f"forge-{uuid.uuid4().hex[:8]}:"
    app, cache = _app(
        CACHE_TYPE="RedisCache",
        CACHE_REDIS_URL=redis_server.url,
        CACHE_KEY_PREFIX=prefix,
        CACHE_SERIALIZER="pickle-signed",
        SECRET_KEY="app-secret",
    )
    runs: list[int] = []

    @app.route("/page")
    @cache.cached(timeout=60)
    def page() -> str:
        runs.append(1)
        return "fresh page"

    with app.test_request_context("/page"):
        key = page.make_cache_key()
    marker = tmp_path / "pwned"
    forged = pickle.dumps(_CreatesFile(str(marker)))
    # an attacker with write access to the cache server plants a raw pickle,
    # and also one with a made-up signature prefix
    client = redis_server.client()
    client.set(prefix + key, forged)

    with caplog.at_level(logging.WARNING, logger="flask_caching"):
        response = app.test_client().get("/page")
    assert response.status_code == 200
    assert response.data == b"fresh page"
    assert runs == [1]
    assert not marker.exists()
    assert any("flask_caching" == r.name for r in caplog.records)
    # the forged entry was replaced by a signed one, which is a hit next time
    assert app.test_client().get("/page").data == b"fresh page"
    assert runs == [1]
    stored = client.get(prefix + key)
    assert stored is not None and stored[:1] == b"\x03"  # signed, bound to its key

    client.set(prefix + key, b"\x01" + b"\x00" * 32 + forged)
    assert app.test_client().get("/page").data == b"fresh page"
    assert not marker.exists()
    assert runs == [1, 1]


@pytest.mark.redis
def test_plain_pickle_default_would_run_the_payload(
    redis_server: RedisServer, tmp_path: t.Any
) -> None:
    """The control: without signing, the same planted bytes do execute."""
    prefix = f"ctl-{uuid.uuid4().hex[:8]}:"
    app, cache = _app(
        CACHE_TYPE="RedisCache",
        CACHE_REDIS_URL=redis_server.url,
        CACHE_KEY_PREFIX=prefix,
    )
    marker = tmp_path / "ran"
    redis_server.client().set(prefix + "k", pickle.dumps(_CreatesFile(str(marker))))
    with app.app_context():
        cache.get("k")
    assert marker.exists()


@pytest.mark.redis
def test_json_serializer_refuses_non_json_at_set_time(
    redis_server: RedisServer,
) -> None:
    app, cache = _app(
        CACHE_TYPE="RedisCache",
        CACHE_REDIS_URL=redis_server.url,
        CACHE_KEY_PREFIX=f"json-{uuid.uuid4().hex[:8]}:",
        CACHE_SERIALIZER="json",
    )
    with app.app_context():
        assert isinstance(cache.cache.serializer, JSONSerializer)  # type: ignore[attr-defined]
        cache.set("ok", {"a": [1, 2.5, None, "x"], "b": b"bytes", "c": (1, 2)})
        assert cache.get("ok") == {"a": [1, 2.5, None, "x"], "b": b"bytes", "c": (1, 2)}
        with pytest.raises(TypeError, match="JSONSerializer cannot store"):
            cache.set("bad", {1, 2})


def test_json_serializer_carries_views_and_memoize() -> None:
    app, cache = _app(CACHE_TYPE="SimpleCache", CACHE_SERIALIZER="json")
    runs: list[int] = []

    @app.route("/v")
    @cache.cached()
    def view() -> tuple[str, int, dict[str, str]]:
        runs.append(1)
        return "body", 201, {"X-A": "1"}

    @cache.memoize()
    def f(x: int) -> dict[str, t.Any]:
        runs.append(x)
        return {"x": x, "t": (x, x)}

    client = app.test_client()
    for _ in range(2):
        r = client.get("/v")
        assert (r.status_code, r.data, r.headers["X-A"]) == (201, b"body", "1")
    with app.app_context():
        assert f(5) == f(5) == {"x": 5, "t": (5, 5)}
    assert runs == [1, 5]


class _PlainJSON:
    """A serializer with no tuple type: tuples come back as lists."""

    def dumps(self, value: t.Any) -> bytes:
        return json.dumps(value).encode()

    def loads(self, data: bytes) -> t.Any:
        return json.loads(data)


def test_a_serializer_that_returns_tuples_as_lists_still_hits() -> None:
    app, cache = _app(CACHE_TYPE="SimpleCache", CACHE_SERIALIZER=_PlainJSON())
    runs: list[int] = []

    @cache.cached(key_prefix="fn")
    def g() -> dict[str, int]:
        runs.append(0)
        return {"g": 0}

    @cache.memoize()
    def f(x: int) -> dict[str, int]:
        runs.append(x)
        return {"x": x}

    with app.app_context():
        assert g() == g() == {"g": 0}
        assert f(5) == f(5) == {"x": 5}
        assert cache.get("fn") == {"g": 0}  # the value itself, no envelope
    assert runs == [0, 5]


#: Flask 2.2 turned a returned list into a JSON response; 2.1 refuses it
FLASK_LISTS_ARE_JSON = tuple(
    int(part) for part in importlib.metadata.version("flask").split(".")[:2]
) >= (2, 2)


def test_a_view_tuple_under_a_serializer_without_tuples_reads_back_its_list() -> None:
    """A view's (body, status, headers) is stored as the tuple, as released
    Flask-Caching stores it, so what a hit serves is what the serializer gives back:
    one that turns tuples into lists makes the hit a JSON array (released does the
    same). CACHE_SERIALIZER='json' keeps tuples (test above)."""
    app, cache = _app(CACHE_TYPE="SimpleCache", CACHE_SERIALIZER=_PlainJSON())

    runs: list[int] = []

    @app.route("/v")
    @cache.cached()
    def view() -> tuple[str, int, dict[str, str]]:
        runs.append(1)
        return "body", 201, {"X-A": "1"}

    client = app.test_client()
    r = client.get("/v")
    assert (r.status_code, r.data, r.headers.get("X-A")) == (201, b"body", "1")
    with app.test_request_context("/v"):
        assert cache.get(view.make_cache_key()) == ["body", 201, {"X-A": "1"}]
    hit = client.get("/v")
    if FLASK_LISTS_ARE_JSON:
        assert (hit.status_code, hit.json) == (200, ["body", 201, {"X-A": "1"}])
    else:  # Flask < 2.2 cannot make a response of a list: released fails alike
        assert hit.status_code == 500
    assert len(runs) == 1


def test_a_view_tuple_is_stored_as_its_response() -> None:
    """With the default serializer the same view is a hit, rebuilt from the stored
    response: status, headers and body as the view made them."""
    app, cache = _app(CACHE_TYPE="SimpleCache")
    runs: list[int] = []

    @app.route("/v")
    @cache.cached()
    def view() -> tuple[dict[str, int], int, dict[str, str]]:
        runs.append(1)
        return {"n": 1}, 201, {"X-A": "1"}

    client = app.test_client()
    for _ in range(3):
        r = client.get("/v")
        assert (r.status_code, r.json, r.headers.get("X-A")) == (201, {"n": 1}, "1")
        assert r.mimetype == "application/json"
    assert len(runs) == 1
    with app.test_request_context("/v"):
        stored = cache.get(view.make_cache_key())
    assert stored == ({"n": 1}, 201, {"X-A": "1"})  # the tuple, as released stores


def test_secret_key_rotation_through_settings() -> None:
    old_app, old_cache = _app(
        CACHE_TYPE="SimpleCache", CACHE_SERIALIZER="pickle-signed", SECRET_KEY="old"
    )
    with old_app.app_context():
        data = old_cache.cache.serializer.dumps(["v"])  # type: ignore[attr-defined]
    new_app, new_cache = _app(
        CACHE_TYPE="SimpleCache",
        CACHE_SERIALIZER="pickle-signed",
        CACHE_SECRET_KEY=["new", "old"],
    )
    with new_app.app_context():
        serializer = new_cache.cache.serializer  # type: ignore[attr-defined]
        assert isinstance(serializer, SignedPickleSerializer)
        assert serializer.loads(data) == ["v"]
    fallback_app, fallback_cache = _app(
        CACHE_TYPE="SimpleCache",
        CACHE_SERIALIZER="pickle-signed",
        SECRET_KEY="new",
        SECRET_KEY_FALLBACKS=["old"],
    )
    with fallback_app.app_context():
        assert fallback_cache.cache.serializer.loads(data) == ["v"]  # type: ignore[attr-defined]


def test_signed_serializer_without_any_secret_fails_at_init_app() -> None:
    with pytest.raises(ConfigurationError, match="CACHE_SECRET_KEY"):
        _app(CACHE_TYPE="SimpleCache", CACHE_SERIALIZER="pickle-signed")


def test_unknown_serializer_names_the_setting() -> None:
    with pytest.raises(ConfigurationError, match="CACHE_SERIALIZER"):
        _app(CACHE_TYPE="SimpleCache", CACHE_SERIALIZER="yaml")


def test_serializer_on_a_backend_without_one_only_warns() -> None:
    # as released Flask-Caching: the backend is kept, with no serializer forced on it
    with pytest.warns(UserWarning, match="does not use a serializer"):
        app, cache = _app(
            CACHE_TYPE="custom_backends.GuideStyleCache",
            REDIS_SERVERS="x",
            CACHE_SERIALIZER="json",
        )
    with app.app_context():
        assert type(cache.cache).__name__ == "GuideStyleCache"
        assert not hasattr(cache.cache, "serializer")
