"""``@cache.cached``: views, pluggable views and plain functions, on SimpleCache and Redis."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import subprocess
import sys
import typing as t
from importlib.metadata import version
from pathlib import Path

import decorator_support as support
import pytest
from decorator_support import Backend, Calls, Clock, MakeApp
from flask import (
    Flask,
    Response,
    abort,
    make_response,
    request,
    send_file,
    session,
)
from flask.views import MethodView, View
from werkzeug.exceptions import NotFound

from flask_caching import SUPPORTED_HASH_FUNCTIONS, CachedResponse
from flask_caching.cached import DELETE_ATTR

# the shared fixtures, used by name
backend = support.backend
make_app = support.make_app
redis_backend = support.redis_backend
make_redis_app = support.make_redis_app
clock = support.clock


#: Flask 2.2 made a list a valid view result (the oldest stack, 2.1, answers 500)
FLASK_RETURNS_LISTS = tuple(int(p) for p in version("flask").split(".")[:2]) >= (2, 2)


def body(app: Flask, path: str, **kwargs: t.Any) -> bytes:
    response = app.test_client().get(path, **kwargs)
    assert response.status_code == 200, response.data
    return response.data


# -- keys ---------------------------------------------------------------------------


def test_default_key_is_view_and_request_path(make_app: MakeApp) -> None:
    app, cache = make_app()
    calls = Calls()

    @app.route("/a/<name>")
    @cache.cached()
    def view(name: str) -> str:
        return f"{name}-{calls()}"

    assert body(app, "/a/x") == b"x-1"
    assert body(app, "/a/x") == b"x-1"
    assert body(app, "/a/y") == b"y-2"
    with app.test_request_context("/a/x"):
        assert view.make_cache_key("x") == "view//a/x"
        assert cache.delete("view//a/x")
    assert body(app, "/a/x") == b"x-3"
    assert body(app, "/a/y") == b"y-2"


def test_key_prefix_string_with_and_without_path(make_app: MakeApp) -> None:
    app, cache = make_app()
    calls = Calls()

    @app.route("/p/<n>")
    @cache.cached(key_prefix="custom/%s")
    def with_path(n: str) -> str:
        return f"{n}-{calls()}"

    @app.route("/s/<n>")
    @cache.cached(key_prefix="same-for-all")
    def shared(n: str) -> str:
        return f"{n}-{calls()}"

    assert body(app, "/p/1") == b"1-1"
    assert body(app, "/p/2") == b"2-2"
    assert body(app, "/s/1") == b"1-3"
    assert body(app, "/s/2") == b"1-3"  # one key for every path
    with app.test_request_context("/p/1"):
        assert with_path.make_cache_key("1") == "custom//p/1"
        assert shared.make_cache_key("1") == "same-for-all"


def test_callable_key_prefix_is_called_per_request(make_app: MakeApp) -> None:
    app, cache = make_app()
    calls = Calls()
    prefixes: list[str] = []

    def prefix() -> str:
        prefixes.append(request.args.get("lang", "en"))
        return "lang-" + prefixes[-1]

    @app.route("/")
    @cache.cached(key_prefix=prefix)
    def view() -> str:
        return f"{request.args.get('lang', 'en')}-{calls()}"

    assert body(app, "/?lang=de") == b"de-1"
    assert body(app, "/?lang=fr") == b"fr-2"
    assert body(app, "/?lang=de") == b"de-1"
    assert prefixes == ["de", "fr", "de"]


def test_plain_function_with_key_prefix(make_app: MakeApp) -> None:
    app, cache = make_app()
    calls = Calls()

    @cache.cached(timeout=50, key_prefix="all_comments")
    def get_all_comments() -> list[str]:
        return [f"comment-{calls()}"]

    with app.app_context():
        assert get_all_comments() == ["comment-1"]
        assert get_all_comments() == ["comment-1"]
        assert cache.delete("all_comments")
        assert get_all_comments() == ["comment-2"]


def test_make_cache_key_gets_the_view_arguments(make_app: MakeApp) -> None:
    app, cache = make_app()
    calls = Calls()
    seen: list[tuple[tuple[t.Any, ...], dict[str, t.Any]]] = []

    def make_key(*args: t.Any, **kwargs: t.Any) -> str:
        seen.append((args, kwargs))
        data = request.get_json()
        return "post:" + ",".join(f"{k}={v}" for k, v in sorted(data.items()))

    @app.route("/hello/<int:item>", methods=["POST"])
    @cache.cached(timeout=60, make_cache_key=make_key)
    def hello(item: int) -> str:
        return f"{item}-{request.get_json()['q']}-{calls()}"

    client = app.test_client()
    assert client.post("/hello/3", json={"q": "a"}).data == b"3-a-1"
    assert client.post("/hello/3", json={"q": "a"}).data == b"3-a-1"
    assert client.post("/hello/3", json={"q": "b"}).data == b"3-b-2"
    assert seen[0] == ((), {"item": 3})
    with app.test_request_context("/hello/3", method="POST", json={"q": "a"}):
        assert hello.make_cache_key(item=3) == "post:q=a"


# -- query strings and hashing --------------------------------------------------------


def test_query_string_order_does_not_matter(make_app: MakeApp) -> None:
    app, cache = make_app()
    calls = Calls()

    @app.route("/q")
    @cache.cached(query_string=True)
    def view() -> str:
        return f"{sorted(request.args.items(multi=True))}-{calls()}"

    first = body(app, "/q?a=1&b=2")
    assert body(app, "/q?b=2&a=1") == first
    assert body(app, "/q?a=1&b=3") != first
    assert body(app, "/q?a=1") != first
    assert body(app, "/q?a=1&b=2&b=2") != first
    assert body(app, "/q") != first
    assert calls.count == 5
    # released 2.5.1's key for /q?b=2&a=1 (its documented example)
    released = "view//q640adf8deb08fffa83a5f3c6f566950fd7ba81491db12f5ab4269f059df4055a"
    with app.test_request_context("/q?b=2&a=1"):
        assert view.make_cache_key() == released
        assert cache.get(released) == first.decode()


def test_query_string_keeps_key_prefix_in_the_key(make_app: MakeApp) -> None:
    app, cache = make_app()
    calls = Calls()

    @app.route("/one")
    @cache.cached(query_string=True, key_prefix="one")
    def one() -> str:
        return f"one-{calls()}"

    @app.route("/two")
    @cache.cached(query_string=True, key_prefix="two")
    def two() -> str:
        return f"two-{calls()}"

    @app.route("/three")
    @cache.cached(query_string=True, key_prefix=lambda: "three")
    def three() -> str:
        return f"three-{request.args['x']}-{calls()}"

    assert body(app, "/one?x=1") == b"one-1"
    assert body(app, "/two?x=1") == b"two-2"
    assert body(app, "/one?x=1") == b"one-1"
    assert body(app, "/three?x=1") == b"three-1-3"
    assert body(app, "/three?x=2") == b"three-2-4"  # callable prefix + query args
    assert body(app, "/three?x=1") == b"three-1-3"
    pairs = str((("x", "1"),)).encode()
    with app.test_request_context("/one?x=1"):
        assert one.make_cache_key() == "one" + hashlib.sha256(pairs).hexdigest()
        assert three.make_cache_key() == "three" + hashlib.sha256(pairs).hexdigest()


def test_query_string_key_outside_a_request(make_app: MakeApp) -> None:
    app, cache = make_app()
    calls = Calls()

    @app.route("/q")
    @cache.cached(query_string=True)
    def view() -> str:
        return f"q-{calls()}"

    assert body(app, "/q?b=2&a=1") == b"q-1"
    with app.test_request_context("/q?a=1&b=2"):
        in_request = view.make_cache_key()
    with app.app_context():
        assert view.make_cache_key(path="/q", query_args={"a": 1, "b": "2"}) == (
            in_request
        )
        assert view.make_cache_key(path="/q", query_args="b=2&a=1") == in_request
        assert view.make_cache_key(path="/q", query_args=[("a", "1"), ("b", "2")]) == (
            in_request
        )
        assert view.make_cache_key(path="/q", query_args="a=1") != in_request
        assert cache.delete_cached(view, path="/q", query_args={"b": 2, "a": 1})
        assert not cache.delete_cached(view, path="/q", query_args={"b": 2, "a": 1})
    assert body(app, "/q?a=1&b=2") == b"q-2"


@pytest.mark.parametrize(
    "hash_method", SUPPORTED_HASH_FUNCTIONS, ids=lambda h: h.__name__
)
def test_every_supported_hash_method_caches(
    make_app: MakeApp, hash_method: t.Callable[..., t.Any]
) -> None:
    app, cache = make_app()
    calls = Calls()

    @app.route("/h")
    @cache.cached(query_string=True, hash_method=hash_method)
    def view() -> str:
        return f"{request.args['x']}-{calls()}"

    assert body(app, "/h?x=1") == b"1-1"
    assert body(app, "/h?x=2") == b"2-2"
    assert body(app, "/h?x=1") == b"1-1"
    with app.test_request_context("/h?x=1"):
        # released 2.5.1's key: the full hex digest of the sorted pairs' text
        digest = hash_method(str((("x", "1"),)).encode()).hexdigest()
        assert view.make_cache_key() == f"view//h{digest}"
        assert cache.get(f"view//h{digest}") == "1-1"


def test_hash_method_default_and_setting(make_app: MakeApp) -> None:
    app, cache = make_app()
    app_md5, cache_md5 = make_app(CACHE_HASH_METHOD=hashlib.md5)

    def decorate(c: t.Any, **options: t.Any) -> t.Any:
        @c.cached(query_string=True, **options)
        def view() -> str:
            return "x"

        return view

    with app.test_request_context("/h?a=1"):
        default = decorate(cache).make_cache_key()
        assert default == decorate(cache, hash_method=hashlib.sha256).make_cache_key()
        assert default != decorate(cache, hash_method=hashlib.md5).make_cache_key()
    with app_md5.test_request_context("/h?a=1"):
        assert decorate(cache_md5).make_cache_key() == (
            decorate(cache_md5, hash_method=hashlib.md5).make_cache_key()
        )
        # an explicit hash_method wins over the setting
        assert decorate(cache_md5, hash_method=hashlib.sha256).make_cache_key() == (
            default
        )


# -- options ----------------------------------------------------------------------------


def test_timeout_expires_entries(
    make_app: MakeApp, backend: Backend, clock: Clock
) -> None:
    app, cache = make_app()
    calls = Calls()

    @app.route("/")
    @cache.cached(timeout=10)
    def view() -> str:
        return str(calls())

    assert body(app, "/") == b"1"
    if backend.is_redis:  # the server expires the entry: a patched clock cannot
        assert 0 < backend.ttl("view//") <= 10
        return
    clock.advance(9)
    assert body(app, "/") == b"1"
    clock.advance(2)
    assert body(app, "/") == b"2"
    assert body(app, "/") == b"2"


def test_timeout_reaches_the_redis_server(
    make_redis_app: MakeApp, redis_backend: Backend
) -> None:
    backend = redis_backend
    app, cache = make_redis_app(CACHE_DEFAULT_TIMEOUT=300)

    @app.route("/t")
    @cache.cached(timeout=77)
    def timed() -> str:
        return "t"

    @app.route("/d")
    @cache.cached()
    def default() -> str:
        return "d"

    @app.route("/forever")
    @cache.cached(timeout=0)
    def forever() -> str:
        return "f"

    for path in ("/t", "/d", "/forever"):
        body(app, path)
    assert 70 < backend.ttl("view//t") <= 77
    assert 290 < backend.ttl("view//d") <= 300
    assert backend.ttl("view//forever") == -1


def test_cache_timeout_is_settable(
    make_app: MakeApp, backend: Backend, clock: Clock
) -> None:
    app, cache = make_app()
    calls = Calls()

    @app.route("/")
    @cache.cached(timeout=5)
    def view() -> str:
        return str(calls())

    assert view.cache_timeout == 5
    view.cache_timeout = 100
    assert body(app, "/") == b"1"
    if backend.is_redis:  # the server expires the entry: a patched clock cannot
        assert 90 < backend.ttl("view//") <= 100
        return
    clock.advance(50)
    assert body(app, "/") == b"1"
    clock.advance(51)
    assert body(app, "/") == b"2"


def test_unless_true_bypasses_the_cache(make_app: MakeApp) -> None:
    app, cache = make_app()
    calls = Calls()
    bypass = {"on": True}
    reads: list[str] = []

    @app.route("/")
    @cache.cached(unless=lambda: bypass["on"])
    def view() -> str:
        return str(calls())

    # the decorator reads through the Cache's public methods: count them
    for name in ("get", "get_many", "has"):
        original = getattr(cache, name)

        def counting(
            *args: t.Any, _name: str = name, _orig: t.Any = original, **kw: t.Any
        ) -> t.Any:
            reads.append(_name)
            return _orig(*args, **kw)

        setattr(cache, name, counting)
    assert body(app, "/") == b"1"
    assert body(app, "/") == b"2"
    assert reads == []  # bypassed entirely: not even a read
    with app.test_request_context("/"):
        assert cache.get("view//") is None
    reads.clear()
    bypass["on"] = False
    assert body(app, "/") == b"3"
    assert body(app, "/") == b"3"
    assert reads == ["get", "get"]  # one read of one key per call


def test_unless_may_take_the_view_and_its_arguments(make_app: MakeApp) -> None:
    app, cache = make_app()
    calls = Calls()
    seen: list[t.Any] = []

    def unless(f: t.Any, *args: t.Any, **kwargs: t.Any) -> bool:
        seen.append((f.__name__, args, kwargs))
        return bool(kwargs["n"] == "skip")

    @app.route("/<n>")
    @cache.cached(unless=unless)
    def view(n: str) -> str:
        return f"{n}-{calls()}"

    assert body(app, "/skip") == b"skip-1"
    assert body(app, "/skip") == b"skip-2"
    assert body(app, "/keep") == b"keep-3"
    assert body(app, "/keep") == b"keep-3"
    assert seen[0] == ("view", (), {"n": "skip"})


def test_forced_update_recomputes_and_overwrites(make_app: MakeApp) -> None:
    app, cache = make_app()
    calls = Calls()
    force = {"on": False, "asked": 0}

    def forced() -> bool:
        force["asked"] += 1
        return force["on"]

    @app.route("/")
    @cache.cached(forced_update=forced)
    def view() -> str:
        return str(calls())

    assert body(app, "/") == b"1"
    assert body(app, "/") == b"1"
    force["on"] = True
    assert body(app, "/") == b"2"
    assert body(app, "/") == b"3"
    force["on"] = False
    assert body(app, "/") == b"3"  # the forced result was stored
    assert force["asked"] == 5  # once per call


def test_response_filter_false_is_not_cached(make_app: MakeApp) -> None:
    app, cache = make_app()
    calls = Calls()

    @app.route("/<int:status>")
    @cache.cached(response_filter=lambda rv: rv[1] == 200)
    def view(status: int) -> tuple[str, int]:
        return str(calls()), status

    client = app.test_client()
    assert client.get("/500").data == b"1"
    assert client.get("/500").data == b"2"
    assert client.get("/200").data == b"3"
    assert client.get("/200").data == b"3"


def test_response_hit_indication_header(make_app: MakeApp) -> None:
    app, cache = make_app()

    @app.route("/")
    @cache.cached(response_hit_indication=True)
    def view() -> str:
        return "x"

    client = app.test_client()
    miss = client.get("/")
    hit = client.get("/")
    assert "hit_cache" not in miss.headers
    assert hit.headers["hit_cache"] == "True"
    assert hit.data == miss.data == b"x"


def test_no_hit_header_without_the_option(make_app: MakeApp) -> None:
    app, cache = make_app()

    @app.route("/")
    @cache.cached()
    def view() -> str:
        return "x"

    client = app.test_client()
    client.get("/")
    assert "hit_cache" not in client.get("/").headers


def test_is_stale_gets_the_cached_value(make_app: MakeApp) -> None:
    app, cache = make_app()
    calls = Calls()
    given: list[t.Any] = []
    stale = {"on": False}

    def is_stale(value: t.Any) -> bool:
        given.append(value)
        return stale["on"]

    @app.route("/s")
    @cache.cached(is_stale=is_stale)
    def text() -> str:
        return f"s{calls()}"

    @app.route("/r")
    @cache.cached(is_stale=is_stale)
    def response() -> Response:
        return make_response(f"r{calls()}", 201)

    assert body(app, "/s") == b"s1"
    assert given == []  # not asked on a miss
    assert body(app, "/s") == b"s1"
    assert given == ["s1"]
    stale["on"] = True
    assert body(app, "/s") == b"s2"
    stale["on"] = False
    assert body(app, "/s") == b"s2"

    client = app.test_client()
    assert client.get("/r").data == b"r3"
    assert client.get("/r").data == b"r3"
    assert isinstance(given[-1], Response)
    assert given[-1].status_code == 201 and given[-1].get_data() == b"r3"


def test_cache_none_for_functions(make_app: MakeApp) -> None:
    app, cache = make_app()
    calls: list[int] = []

    @cache.cached(key_prefix="none-not-cached")
    def plain() -> None:
        calls.append(1)

    @cache.cached(key_prefix="none-cached", cache_none=True)
    def keeping() -> None:
        calls.append(2)

    with app.app_context():
        for _ in range(3):
            assert plain() is None
            assert keeping() is None
    assert calls == [1, 2, 1, 1]


def test_source_check_changes_the_key(make_app: MakeApp) -> None:
    app, cache = make_app()
    app_on, cache_on = make_app(CACHE_SOURCE_CHECK=True)

    def build(c: t.Any, value: str, **options: t.Any) -> t.Any:
        if value == "a":

            @c.cached(key_prefix="shared", **options)
            def f() -> str:
                return "a"

        else:

            @c.cached(key_prefix="shared", **options)
            def f() -> str:
                return "b" + ""

        return f

    with app.app_context():
        assert build(cache, "a")() == "a"
        assert build(cache, "b")() == "a"  # same key, source ignored by default
        assert build(cache, "b").make_cache_key() == "shared"
        assert build(cache, "b", source_check=True)() == "b"
        checked = build(cache, "b", source_check=True)
        # released 2.5.1: the full hex digest of the source, with no separator
        source = inspect.getsource(checked.uncached).encode()
        assert checked.make_cache_key() == (
            "shared" + hashlib.sha256(source).hexdigest()
        )
    with app_on.app_context():
        assert build(cache_on, "a")() == "a"
        assert build(cache_on, "b")() == "b"  # CACHE_SOURCE_CHECK is the default
        assert build(cache_on, "a")() == "a"
        assert build(cache_on, "b", source_check=False).make_cache_key() == "shared"


def test_uncached_calls_the_function(make_app: MakeApp) -> None:
    app, cache = make_app()
    calls = Calls()

    @cache.cached(key_prefix="u")
    def f() -> int:
        return calls()

    with app.app_context():
        assert f() == 1
        assert f() == 1
        assert f.uncached() == 2
        assert f.uncached() == 3
        assert f() == 1


def test_options_are_checked_at_decoration_time(make_app: MakeApp) -> None:
    app, cache = make_app()
    with pytest.raises(ValueError, match="timeout"):
        cache.cached(timeout=-1)
    with pytest.raises(TypeError, match="forced_update"):
        cache.cached(forced_update=True)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key_prefix"):
        cache.cached(key_prefix=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unless"):
        cache.cached(unless="yes")  # type: ignore[arg-type]


# -- what views return ------------------------------------------------------------------


def test_return_types_survive_a_hit(make_app: MakeApp) -> None:
    app, cache = make_app()
    calls = Calls()

    @app.route("/str")
    @cache.cached()
    def as_str() -> str:
        return f"<p>{calls()}</p>"

    @app.route("/bytes")
    @cache.cached()
    def as_bytes() -> bytes:
        return f"b{calls()}".encode()

    @app.route("/dict")
    @cache.cached()
    def as_dict() -> dict[str, int]:
        return {"n": calls()}

    @app.route("/list")
    @cache.cached()
    def as_list() -> list[int]:
        return [calls(), 0]

    @app.route("/status")
    @cache.cached()
    def with_status() -> tuple[str, int]:
        return f"s{calls()}", 201

    @app.route("/headers")
    @cache.cached()
    def with_headers() -> tuple[str, int, dict[str, str]]:
        return f"h{calls()}", 202, {"X-Thing": "yes"}

    @app.route("/dict-status")
    @cache.cached()
    def dict_with_status() -> tuple[dict[str, int], int]:
        return {"n": calls()}, 203

    @app.route("/response")
    @cache.cached()
    def response() -> Response:
        rv = make_response(f"r{calls()}", 207)
        rv.headers["X-Custom"] = "1"
        rv.mimetype = "text/plain"
        return rv

    @app.route("/response-tuple")
    @cache.cached()
    def response_tuple() -> tuple[Response, int]:
        return make_response(f"rt{calls()}"), 208

    client = app.test_client()
    for path in (
        "/str",
        "/bytes",
        "/dict",
        "/list",
        "/status",
        "/headers",
        "/dict-status",
        "/response",
        "/response-tuple",
    ):
        before = calls.count
        miss = client.get(path)
        hit = client.get(path)
        assert calls.count == before + 1, path
        assert hit.status_code == miss.status_code, path
        assert hit.data == miss.data, path
        assert hit.headers == miss.headers, path
    assert client.get("/str").data == b"<p>1</p>"
    assert client.get("/dict").json == {"n": 3}
    with app.app_context():
        assert cache.get("view//list") == [4, 0]  # stored as returned
    if FLASK_RETURNS_LISTS:
        assert client.get("/list").json == [4, 0]
    assert client.get("/status").status_code == 201
    headers = client.get("/headers")
    assert (headers.status_code, headers.headers["X-Thing"]) == (202, "yes")
    assert client.get("/dict-status").status_code == 203
    rv = client.get("/response")
    assert (rv.status_code, rv.data, rv.mimetype) == (207, b"r8", "text/plain")
    assert rv.headers["X-Custom"] == "1"
    assert client.get("/response-tuple").status_code == 208


def test_cached_response_timeout_wins(
    make_app: MakeApp, backend: Backend, clock: Clock
) -> None:
    app, cache = make_app()
    calls = Calls()

    @app.route("/short")
    @cache.cached(timeout=1000)
    def short() -> CachedResponse:
        return CachedResponse(
            response=make_response(f"short-{calls()}", 201), timeout=5
        )

    @app.route("/long")
    @cache.cached(timeout=5)
    def long() -> CachedResponse:
        return CachedResponse(response=make_response(f"long-{calls()}"), timeout=1000)

    client = app.test_client()
    first = client.get("/short")
    assert (first.status_code, first.data) == (201, b"short-1")
    assert client.get("/long").data == b"long-2"
    if backend.is_redis:  # the server expires entries: a patched clock cannot
        assert 0 < backend.ttl("view//short") <= 5
        assert 900 < backend.ttl("view//long") <= 1000
        return
    clock.advance(10)
    assert client.get("/short").data == b"short-3"
    assert client.get("/long").data == b"long-2"


def test_generator_is_cached_as_its_full_body(make_app: MakeApp) -> None:
    """A generator of str is joined and cached, as in released 2.5.1. A Response
    streaming a generator is passed through, never buffered or stored (released
    cannot pickle it either), so it is computed on every request."""
    app, cache = make_app()
    calls = Calls()

    @app.route("/gen")
    @cache.cached()
    def gen() -> t.Iterator[str]:
        n = calls()

        def chunks() -> t.Iterator[str]:
            yield "a"
            yield "b"
            yield str(n)

        return chunks()

    @app.route("/streamed")
    @cache.cached()
    def streamed() -> t.Iterator[str]:
        # what stream_template_string (Flask >= 2.2) returns: a Jinja generator
        template = app.jinja_env.from_string("{% for i in items %}{{ i }},{% endfor %}")
        return template.generate(items=[calls(), "x"])

    @app.route("/stream-response")
    @cache.cached()
    def stream_response() -> Response:
        n = calls()
        return Response((part for part in ("s", str(n))), mimetype="text/plain")

    assert body(app, "/gen") == b"ab1"
    assert body(app, "/gen") == b"ab1"
    assert body(app, "/streamed") == b"2,x,"
    assert body(app, "/streamed") == b"2,x,"
    with app.app_context():
        assert cache.get("view//gen") == "ab1"  # stored as the joined str
        assert cache.get("view//streamed") == "2,x,"
    assert body(app, "/stream-response") == b"s3"
    assert body(app, "/stream-response") == b"s4"
    assert calls.count == 4
    with app.app_context():
        assert cache.get("view//stream-response") is None


def test_generators_are_joined_or_listed_and_other_iterators_are_kept(
    make_app: MakeApp,
) -> None:
    """Released 2.5.1's rule: only a generator is consumed. All bytes are joined
    into bytes; mixed items are cached as the list. Another iterator is returned
    (and stored) as it is, not joined."""
    app, cache = make_app()
    calls = Calls()

    @cache.cached(key_prefix="bytes")
    def chunks() -> t.Any:  # a generator, joined by the decorator
        n = calls()
        yield b"x"
        yield str(n).encode()

    @cache.cached(key_prefix="mixed")
    def mixed() -> t.Any:  # a generator, listed by the decorator
        n = calls()
        yield "x"
        yield n

    @cache.cached(key_prefix="iterator")
    def iterator() -> t.Iterator[bytes]:
        return iter([b"y", str(calls()).encode()])

    with app.app_context():
        assert chunks() == b"x1"
        assert chunks() == b"x1"
        assert cache.get("bytes") == b"x1"
        assert mixed() == ["x", 2]
        assert mixed() == ["x", 2]
        assert cache.get("mixed") == ["x", 2]
        first = iterator()
        assert not isinstance(first, (bytes, list))
        assert list(first) == [b"y", b"3"]
        again = iterator()  # a hit: the stored (pickled) iterator
        assert not isinstance(again, (bytes, list))
        assert list(again) == [b"y", b"3"]
    assert calls.count == 3


def test_a_file_response_is_passed_through_and_never_cached(
    make_app: MakeApp, tmp_path: Path
) -> None:
    app, cache = make_app()
    path = tmp_path / "page.txt"
    path.write_text("one")

    @app.route("/file")
    @cache.cached(private="allow")  # send_file says no-cache; store it if we could
    def file() -> Response:
        return send_file(path, mimetype="text/plain")

    def fetch() -> bytes:
        response = app.test_client().get("/file")
        try:
            return response.data
        finally:
            response.close()

    assert fetch() == b"one"
    path.write_text("two")
    assert fetch() == b"two"
    with app.app_context():
        assert cache.get("view//file") is None


def test_pluggable_views(make_app: MakeApp) -> None:
    app, cache = make_app()
    calls = Calls()

    class Plain(View):
        @cache.cached(timeout=50)
        def dispatch_request(self, name: str) -> str:
            return f"{name}-{calls()}"

    class Methods(MethodView):
        @cache.cached(timeout=50)
        def get(self) -> str:
            return f"get-{calls()}"

    app.add_url_rule("/plain/<name>", view_func=Plain.as_view("plain"))
    app.add_url_rule("/methods", view_func=Methods.as_view("methods"))
    assert body(app, "/plain/a") == b"a-1"
    assert body(app, "/plain/a") == b"a-1"
    assert body(app, "/plain/b") == b"b-2"
    assert body(app, "/methods") == b"get-3"
    assert body(app, "/methods") == b"get-3"


def test_async_view(make_app: MakeApp) -> None:
    app, cache = make_app()
    calls = Calls()

    @app.route("/async/<n>")
    @cache.cached()
    async def view(n: str) -> str:
        await asyncio.sleep(0)
        return f"{n}-{calls()}"

    assert body(app, "/async/a") == b"a-1"
    assert body(app, "/async/a") == b"a-1"
    assert body(app, "/async/b") == b"b-2"


def test_async_function_outside_flask_views(make_app: MakeApp) -> None:
    app, cache = make_app()
    calls = Calls()

    @cache.cached(key_prefix="coro")
    async def load() -> int:
        await asyncio.sleep(0)
        return calls()

    with app.app_context():
        assert asyncio.run(load()) == 1
        assert asyncio.run(load()) == 1
        assert asyncio.run(load.uncached()) == 2


def test_delete_cached_outside_a_request(make_app: MakeApp) -> None:
    app, cache = make_app()
    calls = Calls()

    @app.route("/item/<int:item>")
    @cache.cached()
    def item(item: int) -> str:
        return f"{item}-{calls()}"

    assert body(app, "/item/1") == b"1-1"
    assert body(app, "/item/2") == b"2-2"
    with app.app_context():
        assert item.make_cache_key(path="/item/1") == "view//item/1"
        assert cache.delete_cached(item, path="/item/1")
        with pytest.raises(TypeError, match="not a @cached"):
            cache.delete_cached(lambda: None, path="/item/1")

        @cache.memoize()
        def memoized(x: int) -> str:
            return f"m{x}-{calls()}"

        assert memoized(1) == "m1-3"
        with pytest.raises(TypeError, match="use delete_memoized"):
            cache.delete_cached(memoized, path="/item/1")
        assert memoized(1) == "m1-3"
    assert body(app, "/item/1") == b"1-4"
    assert body(app, "/item/2") == b"2-2"


def test_delete_cached_passes_view_args_to_make_cache_key(make_app: MakeApp) -> None:
    app, cache = make_app()
    calls = Calls()

    @app.route("/u/<int:user>")
    @cache.cached(make_cache_key=lambda user: f"user:{user}")
    def user(user: int) -> str:
        return f"{user}-{calls()}"

    assert body(app, "/u/7") == b"7-1"
    with app.app_context():
        assert cache.delete_cached(user, user=7)
    assert body(app, "/u/7") == b"7-2"


# -- delete_cached of a view with vary= / vary_on_session= ---------------------------


def greeting_app(make_app: MakeApp, **options: t.Any) -> tuple[Flask, t.Any, t.Any]:
    """A view at /greet/<name> that answers in the request's Accept-Language."""
    app, cache = make_app()
    calls = Calls()

    @app.route("/greet/<name>")
    @cache.cached(vary=["Accept-Language"], **options)
    def greet(name: str) -> str:
        lang = request.headers.get("Accept-Language", "en")
        return f"{name}:{lang}:{calls()}"

    return app, cache, greet


def in_lang(app: Flask, path: str, lang: str) -> str:
    return body(app, path, headers={"Accept-Language": lang}).decode()


def test_delete_cached_drops_every_language_of_a_vary_view(make_app: MakeApp) -> None:
    app, cache, greet = greeting_app(make_app)
    assert in_lang(app, "/greet/a", "fr") == "a:fr:1"
    assert in_lang(app, "/greet/a", "de") == "a:de:2"
    assert in_lang(app, "/greet/a", "fr") == "a:fr:1"  # hits before the delete
    assert in_lang(app, "/greet/a", "de") == "a:de:2"
    with app.app_context():
        assert greet.make_cache_key(path="/greet/a") == "view//greet/a"  # base key
        assert cache.delete_cached(greet, path="/greet/a")
        assert not cache.delete_cached(greet, path="/greet/a")  # nothing left
    assert in_lang(app, "/greet/a", "de") == "a:de:3"
    assert in_lang(app, "/greet/a", "fr") == "a:fr:4"
    assert in_lang(app, "/greet/a", "fr") == "a:fr:4"  # cached again
    assert in_lang(app, "/greet/a", "de") == "a:de:3"


def test_delete_cached_of_one_path_keeps_the_variants_of_another(
    make_app: MakeApp,
) -> None:
    app, cache, greet = greeting_app(make_app)
    for path in ("/greet/a", "/greet/b"):
        for lang in ("fr", "de"):
            in_lang(app, path, lang)
    with app.app_context():
        assert cache.delete_cached(greet, path="/greet/a")
    assert in_lang(app, "/greet/b", "fr") == "b:fr:3"
    assert in_lang(app, "/greet/b", "de") == "b:de:4"
    assert in_lang(app, "/greet/a", "fr") == "a:fr:5"
    assert in_lang(app, "/greet/a", "de") == "a:de:6"


def test_delete_cached_inside_a_request_drops_every_variant(
    make_app: MakeApp,
) -> None:
    """Called from the view that changes the page: the caller's own vary values
    (its language, its session) do not narrow what is deleted."""
    app, cache, greet = greeting_app(make_app, vary_on_session=True)
    app.secret_key = "test-secret"
    deleted: list[bool] = []

    @app.route("/edit", methods=["POST"])
    def edit() -> str:
        deleted.append(cache.delete_cached(greet, path="/greet/a"))
        return "ok"

    assert in_lang(app, "/greet/a", "fr") == "a:fr:1"
    assert in_lang(app, "/greet/a", "de") == "a:de:2"
    client = app.test_client()
    response = client.post("/edit", headers={"Accept-Language": "it"})
    assert response.status_code == 200
    assert "Vary" not in response.headers  # the session was not read to delete
    assert deleted == [True]
    assert in_lang(app, "/greet/a", "fr") == "a:fr:3"
    assert in_lang(app, "/greet/a", "de") == "a:de:4"


def test_delete_cached_drops_every_session_of_a_vary_on_session_view(
    make_app: MakeApp,
) -> None:
    app, cache = make_app()
    app.secret_key = "test-secret"
    calls = Calls()

    @app.route("/me")
    @cache.cached(vary_on_session=True)
    def me() -> str:
        return f"{session.get('user', 'guest')}:{calls()}"

    alice, bob = app.test_client(), app.test_client()
    for client, user in ((alice, "alice"), (bob, "bob")):
        with client.session_transaction() as sess:
            sess["user"] = user
    for _ in range(2):
        assert alice.get("/me").text == "alice:1"
        assert bob.get("/me").text == "bob:2"
    with app.app_context():
        assert cache.delete_cached(me, path="/me")
    assert bob.get("/me").text == "bob:3"
    assert alice.get("/me").text == "alice:4"
    assert alice.get("/me").text == "alice:4"


def test_delete_cached_with_query_args_drops_the_variants_of_that_query(
    make_app: MakeApp,
) -> None:
    app, cache, greet = greeting_app(make_app, query_string=True)
    for lang in ("fr", "de"):
        in_lang(app, "/greet/a?page=1&q=x", lang)
        in_lang(app, "/greet/a?page=2&q=x", lang)
    with app.app_context():
        assert cache.delete_cached(
            greet, path="/greet/a", query_args={"q": "x", "page": 1}
        )
    assert in_lang(app, "/greet/a?q=x&page=1", "fr") == "a:fr:5"
    assert in_lang(app, "/greet/a?q=x&page=1", "de") == "a:de:6"
    assert in_lang(app, "/greet/a?page=2&q=x", "fr") == "a:fr:2"  # another query
    assert in_lang(app, "/greet/a?page=2&q=x", "de") == "a:de:4"


def test_delete_cached_of_a_vary_view_is_not_served_stale(
    make_app: MakeApp, clock: Clock
) -> None:
    """Deleted variants are misses, not stale entries within the window."""
    app, cache, greet = greeting_app(
        make_app, timeout=10, stale_while_revalidate=600, lock=True
    )
    assert in_lang(app, "/greet/a", "fr") == "a:fr:1"
    clock.advance(20)  # stale, within the window: served while refreshing
    with app.app_context():
        assert cache.delete_cached(greet, path="/greet/a")
    assert in_lang(app, "/greet/a", "fr") == "a:fr:2"
    assert in_lang(app, "/greet/a", "fr") == "a:fr:2"


def test_a_vary_view_called_outside_a_request_is_deleted_too(
    make_app: MakeApp,
) -> None:
    """Outside a request a vary function has no variants: its base key entry is
    stamped with the same version, so delete_cached drops it as well."""
    app, cache = make_app()
    calls = Calls()

    @cache.cached(key_prefix="sidebar", vary=["Accept-Language"])
    def sidebar() -> int:
        return calls()

    with app.app_context():
        assert sidebar() == sidebar() == 1
        assert cache.delete_cached(sidebar)
        assert sidebar() == sidebar() == 2


def test_the_version_key_of_a_vary_view_expires(
    make_redis_app: MakeApp, redis_backend: Backend
) -> None:
    """One version key per path and query: they must not pile up on the server."""
    app, cache = make_redis_app()

    @app.route("/greet/<name>")
    @cache.cached(timeout=60, vary=["Accept-Language"], query_string=True)
    def greet(name: str) -> str:
        return name

    in_lang(app, "/greet/a?q=1", "fr")
    with app.app_context():
        entry_key = greet.make_cache_key(path="/greet/a", query_args="q=1")
        version_key = getattr(greet, DELETE_ATTR)(path="/greet/a", query_args="q=1")
    assert version_key.startswith("fc-vary-ver:{")
    assert version_key.endswith("}" + entry_key)
    assert 60 < redis_backend.ttl(version_key) <= 120
    assert redis_backend.ttl(entry_key) == -2  # only variants are stored


# -- failures ---------------------------------------------------------------------------


class Broken:
    """A backend whose every call fails."""

    default_timeout = 300

    def __getattr__(self, name: str) -> t.Any:
        def fail(*args: t.Any, **kwargs: t.Any) -> t.Any:
            raise ConnectionError(f"backend down ({name})")

        return fail


def broken_backend(app: Flask, config: t.Any, args: t.Any, kwargs: t.Any) -> Broken:
    return Broken()


def test_backend_errors_serve_fresh_results_and_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Flask(__name__)
    from flask_caching import Cache

    cache = Cache(app, config={"CACHE_TYPE": broken_backend})
    calls = Calls()

    @app.route("/")
    @cache.cached()
    def view() -> str:
        return str(calls())

    with caplog.at_level(logging.WARNING, logger="flask_caching"):
        assert body(app, "/") == b"1"
        assert body(app, "/") == b"2"
    records = [r for r in caplog.records if r.name == "flask_caching"]
    assert records and all(r.levelno == logging.WARNING for r in records)
    assert "backend down" in records[0].getMessage()


def test_backend_errors_raise_in_debug_mode() -> None:
    app = Flask(__name__)
    app.debug = True
    from flask_caching import Cache

    cache = Cache(app, config={"CACHE_TYPE": broken_backend})

    @cache.cached(key_prefix="x")
    def f() -> str:
        return "fresh"

    with app.app_context(), pytest.raises(ConnectionError, match="backend down"):
        f()


def test_key_errors_raise_in_debug_mode(make_app: MakeApp) -> None:
    app, cache = make_app(debug=True)

    def bad_key() -> str:
        raise LookupError("no key today")

    @cache.cached(key_prefix=bad_key)
    def f() -> str:
        return "fresh"

    with app.app_context(), pytest.raises(LookupError, match="no key today"):
        f()


def test_key_errors_serve_fresh_results(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    app, cache = make_app()

    def bad_key() -> str:
        raise RuntimeError("no key today")

    @app.route("/")
    @cache.cached(key_prefix=bad_key)
    def view() -> str:
        return "fresh"

    with caplog.at_level(logging.WARNING, logger="flask_caching"):
        assert body(app, "/") == b"fresh"
        assert body(app, "/") == b"fresh"
    assert "no key today" in caplog.text
    # a broken key function warns once, not on every request
    assert len([r for r in caplog.records if "no key today" in r.getMessage()]) == 1


# -- typing ---------------------------------------------------------------------------


def test_decorated_functions_keep_their_signature_for_type_checkers() -> None:
    """``mypy --strict`` over tests/typing: signatures survive the decorators.

    The files there also assert, with ``# type: ignore[code]`` lines that strict
    mode requires to be needed, that wrong calls are errors.
    """
    pytest.importorskip("mypy")  # a dev tool: the oldest-stack venv has none
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "tests/typing"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success" in done.stdout


# -- released 2.5.1's storage: the value itself under the view's key -------------------


def test_the_stored_value_is_the_views_own_value(make_app: MakeApp) -> None:
    """No envelope: ``cache.get(view.make_cache_key())`` is what the view returned."""
    app, cache = make_app()
    calls = Calls()

    @app.route("/text")
    @cache.cached()
    def text() -> str:
        return f"body-{calls()}"

    @app.route("/dict")
    @cache.cached()
    def as_dict() -> dict[str, int]:
        return {"a": calls()}

    @app.route("/tuple")
    @cache.cached()
    def as_tuple() -> tuple[str, int, dict[str, str]]:
        return f"t{calls()}", 201, {"X-A": "1"}

    @app.route("/response")
    @cache.cached(private="allow")  # stored, without the cookie
    def response() -> Response:
        rv = make_response(f"r{calls()}", 207)
        rv.headers["X-Custom"] = "1"
        rv.set_cookie("secret", "1")
        return rv

    client = app.test_client()
    for path in ("/text", "/dict", "/tuple", "/response"):
        client.get(path)
    with app.test_request_context("/text"):
        assert text.make_cache_key() == "view//text"
        assert cache.get(text.make_cache_key()) == "body-1"
    with app.test_request_context("/dict"):
        assert cache.get(as_dict.make_cache_key()) == {"a": 2}
    with app.test_request_context("/tuple"):
        assert cache.get(as_tuple.make_cache_key()) == ("t3", 201, {"X-A": "1"})
    with app.test_request_context("/response"):
        stored = cache.get(response.make_cache_key())
    assert isinstance(stored, Response)
    assert (stored.status_code, stored.get_data()) == (207, b"r4")
    assert stored.headers["X-Custom"] == "1"
    assert "Set-Cookie" not in stored.headers  # never kept in a shared entry


def test_a_value_set_under_the_views_key_is_served(make_app: MakeApp) -> None:
    """Entries written by other code (released Flask-Caching, ``cache.set``) are hits."""
    app, cache = make_app()
    calls = Calls()

    @app.route("/page/<int:n>")
    @cache.cached()
    def page(n: int) -> str:
        return f"computed-{n}-{calls()}"

    with app.app_context():
        cache.set("view//page/1", "preset")
    assert body(app, "/page/1") == b"preset"
    assert body(app, "/page/2") == b"computed-2-1"
    assert calls.count == 1


def test_a_reassigned_make_cache_key_is_honoured(make_app: MakeApp) -> None:
    """As released: ``view.make_cache_key = f`` makes f the key function, called
    with the view arguments and ``use_request=True``."""
    app, cache = make_app()
    calls = Calls()
    seen: list[tuple[tuple[t.Any, ...], dict[str, t.Any]]] = []

    @app.route("/item/<int:item>")
    @cache.cached()
    def item(item: int) -> str:
        return f"{item}-{calls()}"

    def by_language(*args: t.Any, **kwargs: t.Any) -> str:
        seen.append((args, kwargs))
        return "lang:" + request.args.get("lang", "en")

    item.make_cache_key = by_language  # type: ignore[method-assign]
    assert body(app, "/item/1?lang=de") == b"1-1"
    assert body(app, "/item/2?lang=de") == b"1-1"  # one key per language
    assert body(app, "/item/2?lang=fr") == b"2-2"
    assert seen[0] == ((), {"item": 1, "use_request": True})
    with app.app_context():
        assert cache.get("lang:de") == "1-1"
        assert cache.get("view//item/1") is None


def test_make_cache_key_with_view_args_uses_url_for(make_app: MakeApp) -> None:
    """Outside a request, ``make_cache_key(**view_args)`` builds the path with
    ``url_for``, so ``delete_cached(view, **view_args)`` finds the entry."""
    app, cache = make_app()
    app.config["SERVER_NAME"] = "localhost"  # url_for outside a request needs it
    calls = Calls()

    @app.route("/user/<int:user>/posts/<slug>")
    @cache.cached()
    def posts(user: int, slug: str) -> str:
        return f"{user}-{slug}-{calls()}"

    assert body(app, "/user/7/posts/new") == b"7-new-1"
    with app.app_context():
        assert posts.make_cache_key(user=7, slug="new") == "view//user/7/posts/new"
        assert posts.make_cache_key(7, "new") == "view//user/7/posts/new"
        assert cache.get(posts.make_cache_key(user=7, slug="new")) == "7-new-1"
        assert cache.delete_cached(posts, user=7, slug="new")
        assert cache.get("view//user/7/posts/new") is None
    assert body(app, "/user/7/posts/new") == b"7-new-2"


def test_an_http_exception_is_cached_and_raised_again(make_app: MakeApp) -> None:
    """Released 2.5.1 caches an ``abort(404)`` and raises it again on hits."""
    app, cache = make_app()
    calls = Calls()

    @app.route("/gone")
    @cache.cached()
    def gone() -> str:
        calls()
        abort(404)

    client = app.test_client()
    for _ in range(3):
        assert client.get("/gone").status_code == 404
    assert calls.count == 1
    with app.app_context():
        assert isinstance(cache.get("view//gone"), NotFound)


def test_falsy_values_are_hits_and_a_cached_none_costs_one_has(
    make_app: MakeApp,
) -> None:
    """As released: a hit is any value but None; under ``cache_none=True`` a None
    read is told from a miss by one ``has(key)`` through the Cache."""
    app, cache = make_app()
    calls = Calls()
    seen: list[str] = []

    @cache.cached(key_prefix="zero")
    def zero() -> int:
        calls()
        return 0

    @cache.cached(key_prefix="empty")
    def empty() -> str:
        calls()
        return ""

    @cache.cached(key_prefix="none", cache_none=True)
    def nothing() -> None:
        calls()

    for name in ("get", "get_many", "has", "set", "set_many", "add"):
        original = getattr(cache, name)

        def counting(
            *args: t.Any, _name: str = name, _orig: t.Any = original, **kw: t.Any
        ) -> t.Any:
            seen.append(_name)
            return _orig(*args, **kw)

        setattr(cache, name, counting)
    with app.app_context():
        assert (zero(), zero(), empty(), empty()) == (0, 0, "", "")
        assert calls.count == 2
        seen.clear()
        assert nothing() is None
        assert seen == ["get", "has", "set"]  # a miss, then stored
        seen.clear()
        assert nothing() is None
        assert seen == ["get", "has"]  # a hit: None, and the key is there
        assert calls.count == 3


def test_query_string_and_source_check_hash_into_one_digest(
    make_app: MakeApp,
) -> None:
    """Released 2.5.1 feeds the sorted pairs, then the source, to one hash object."""
    app, cache = make_app()

    @app.route("/q")
    @cache.cached(query_string=True, source_check=True)
    def view() -> str:
        return "q"

    digest = hashlib.sha256(str((("a", "1"), ("b", "2"))).encode())
    digest.update(inspect.getsource(view.uncached).encode())
    assert body(app, "/q?b=2&a=1") == b"q"
    with app.test_request_context("/q?a=1&b=2"):
        assert view.make_cache_key() == "view//q" + digest.hexdigest()
        assert cache.get("view//q" + digest.hexdigest()) == "q"


def test_a_stale_while_revalidate_entry_keeps_the_value_under_the_views_key(
    make_app: MakeApp,
) -> None:
    """Our staleness data sits in a key of our own beside released's key, so
    ``cache.get(view.make_cache_key())`` is still the value."""
    app, cache = make_app()

    @app.route("/s")
    @cache.cached(timeout=10, stale_while_revalidate=60)
    def view() -> str:
        return "fresh"

    assert body(app, "/s") == b"fresh"
    with app.test_request_context("/s"):
        key = view.make_cache_key()
        assert key == "view//s"
        assert cache.get(key) == "fresh"
        fresh_until, versions = cache.get(key + ":fc-meta")
    assert isinstance(fresh_until, float) and versions == ()


def test_init_app_again_gives_a_view_the_new_backend() -> None:
    from flask_caching import Cache

    app = Flask(__name__)
    cache = Cache(app, config={"CACHE_TYPE": "SimpleCache"})
    calls = Calls()

    @app.route("/")
    @cache.cached()
    def view() -> str:
        return str(calls())

    assert [body(app, "/"), body(app, "/")] == [b"1", b"1"]
    cache.init_app(app, config={"CACHE_TYPE": "SimpleCache"})  # a new, empty one
    assert [body(app, "/"), body(app, "/")] == [b"2", b"2"]


def test_one_view_on_two_apps_keeps_their_entries_apart() -> None:
    from flask_caching import Cache

    cache = Cache(config={"CACHE_TYPE": "SimpleCache"})
    calls = Calls()

    @cache.cached()
    def view() -> str:
        return str(calls())

    apps = [Flask(f"app{n}") for n in range(2)]
    for app in apps:
        cache.init_app(app)
        app.add_url_rule("/", "view", view)
    seen = [body(app, "/") for _ in range(3) for app in apps]
    assert seen == [b"1", b"2"] * 3  # each app's hit is its own entry
