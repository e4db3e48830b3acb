"""Issue 14 on ``@cached`` views, on a real redis-server: hostile requests and odd
sessions never get one visitor's page to another, nor a wrong page to anyone.

Items 2, 3, 4, 7, 8, 11b and 12 of the issue; one test (or one small parametrized
group) per item. The other items are in ``test_attacks_storage.py`` and
``test_attacks_memcached.py``.
"""

from __future__ import annotations

import threading
import typing as t
import uuid
from collections.abc import Iterator

import pytest
from flask import (
    Flask,
    Response,
    make_response,
    request,
    session,
    stream_with_context,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask.testing import FlaskClient

from flask_caching import Cache

if t.TYPE_CHECKING:
    from servers import RedisServer

pytestmark = pytest.mark.redis

#: how long a test waits on a generator it drives, at most
WAIT = 3.0


class Counter:
    """Counts the computations of a view."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> int:
        self.n += 1
        return self.n


def make_app(server: RedisServer, **settings: t.Any) -> tuple[Flask, Cache]:
    """An app caching in *server* under a key prefix of its own."""
    app = Flask(__name__)
    app.secret_key = "attack-secret"
    config = {
        "CACHE_TYPE": "RedisCache",
        "CACHE_REDIS_URL": server.url,
        "CACHE_KEY_PREFIX": f"atk-{uuid.uuid4().hex[:8]}:",
        **settings,
    }
    return app, Cache(app, config=config)


def log_in(client: FlaskClient, user: str) -> None:
    with client.session_transaction() as sess:
        sess["user"] = user


def test_item2_streamed_page_reading_the_session_is_never_shared(
    redis_server: RedisServer,
) -> None:
    app, cache = make_app(redis_server)

    @app.route("/me")
    @cache.cached(timeout=60)
    def me() -> Response:
        def body() -> Iterator[str]:
            yield "hello "
            yield session.get("user", "stranger")

        return Response(stream_with_context(body()))

    alice = app.test_client()
    log_in(alice, "alice")
    assert alice.get("/me").get_data(as_text=True) == "hello alice"
    for _ in range(2):
        anonymous = app.test_client()
        page = anonymous.get("/me").get_data(as_text=True)
        assert page == "hello stranger"


def test_item3_an_encoded_ampersand_is_another_query(
    redis_server: RedisServer,
) -> None:
    app, cache = make_app(redis_server)
    runs = Counter()

    @app.route("/list")
    @cache.cached(timeout=60, query_string=True)
    def listing() -> str:
        runs()
        return repr(sorted(request.args.items(multi=True)))

    client = app.test_client()
    forged = client.get("/list?category=1%26sort%3Dprice").get_data(as_text=True)
    real = client.get("/list?category=1&sort=price").get_data(as_text=True)
    assert forged == repr([("category", "1&sort=price")])
    assert real == repr([("category", "1"), ("sort", "price")])
    assert runs.n == 2
    # both are cached, each under its own entry
    assert client.get("/list?sort=price&category=1").get_data(as_text=True) == real
    assert runs.n == 2


def test_item4_a_stream_is_passed_through_as_it_is_produced(
    redis_server: RedisServer,
) -> None:
    app, cache = make_app(redis_server)
    first_read = threading.Event()
    state = {"waited_out": False, "finished": False}

    @app.route("/events")
    @cache.cached(timeout=60)
    def events() -> Response:
        def stream() -> Iterator[str]:
            yield "data: 1\n\n"
            # a buffering cache reaches this before the client read anything
            state["waited_out"] = not first_read.wait(WAIT)
            yield "data: 2\n\n"
            state["finished"] = True

        return Response(stream_with_context(stream()), mimetype="text/event-stream")

    response = app.test_client().get("/events", buffered=False)
    chunks = t.cast(Iterator[bytes], iter(response.response))
    assert next(chunks) == b"data: 1\n\n"
    assert not state["finished"]
    first_read.set()
    assert b"".join(chunks) == b"data: 2\n\n"
    response.close()
    assert state == {"waited_out": False, "finished": True}


def test_item4_an_endless_stream_is_read_in_part_and_closed(
    redis_server: RedisServer,
) -> None:
    app, cache = make_app(redis_server)
    state = {"made": 0, "closed": False}

    @app.route("/ticks")
    @cache.cached(timeout=60)
    def ticks() -> Response:
        def stream() -> Iterator[str]:
            try:
                while state["made"] < 20_000:  # "endless", bounded for old code
                    state["made"] += 1
                    yield f"data: {state['made']}\n\n"
            finally:
                state["closed"] = True

        return Response(stream(), mimetype="text/event-stream")

    response = app.test_client().get("/ticks", buffered=False)
    chunks = t.cast(Iterator[bytes], iter(response.response))
    got = [next(chunks) for _ in range(3)]
    assert got == [b"data: 1\n\n", b"data: 2\n\n", b"data: 3\n\n"]
    response.close()
    assert state["closed"] and state["made"] <= 4


def test_item7_post_reaches_the_view_and_head_reads_the_get_entry(
    redis_server: RedisServer,
) -> None:
    app, cache = make_app(redis_server)
    runs = Counter()

    @app.route("/item", methods=["GET", "POST"])
    @cache.cached(timeout=60)
    def item() -> str:
        return f"{request.method} #{runs()}"

    client = app.test_client()
    assert client.post("/item").get_data(as_text=True) == "POST #1"
    assert client.get("/item").get_data(as_text=True) == "GET #2"  # not the POST's
    assert client.post("/item").get_data(as_text=True) == "POST #3"
    assert client.get("/item").get_data(as_text=True) == "GET #2"
    head = client.head("/item")
    assert head.status_code == 200 and runs.n == 3
    assert head.headers["Content-Length"] == str(len("GET #2"))


def test_item7_the_guides_post_example_keeps_caching(
    redis_server: RedisServer,
) -> None:
    app, cache = make_app(redis_server)
    runs = Counter()

    def make_key() -> str:
        data = request.get_json()
        return ",".join(f"{k}={v}" for k, v in data.items())

    @app.route("/hello", methods=["POST"])
    @cache.cached(timeout=60, make_cache_key=make_key)
    def hello() -> str:
        return f"hello {request.get_json()['name']} #{runs()}"

    client = app.test_client()
    for _ in range(3):
        page = client.post("/hello", json={"name": "ann"}).get_data(as_text=True)
        assert page == "hello ann #1"
    page = client.post("/hello", json={"name": "bo"}).get_data(as_text=True)
    assert page == "hello bo #2"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({"If-None-Match": '"v1"'}, 304, id="304"),
        pytest.param({"Range": "bytes=0-3"}, 206, id="206"),
    ],
)
def test_item8_partial_and_not_modified_answers_are_never_stored(
    redis_server: RedisServer, headers: dict[str, str], status: int
) -> None:
    app, cache = make_app(redis_server)
    runs = Counter()
    body = "0123456789 the whole page"

    @app.route("/doc")
    @cache.cached(timeout=60)
    def doc() -> t.Any:
        runs()
        response = make_response(body)
        response.set_etag("v1")
        return response.make_conditional(
            request, accept_ranges=True, complete_length=len(body)
        )

    client = app.test_client()
    assert client.get("/doc", headers=headers).status_code == status
    for _ in range(2):
        full = client.get("/doc")
        assert full.status_code == 200
        assert full.get_data(as_text=True) == body
    assert runs.n == 2  # the conditional answer was not stored; the full one was


@pytest.mark.parametrize(
    "forged",
    [
        pytest.param(("x", 0), id="tuple-status-0"),
        pytest.param(7, id="int"),
        pytest.param(["x", 0], id="list"),
        pytest.param({"not": {"a": "view"}}, id="dict"),
        pytest.param(b"\xff\xfe", id="bytes"),
    ],
)
def test_item11b_a_forged_json_entry_is_neither_a_500_nor_status_0(
    redis_server: RedisServer, forged: t.Any
) -> None:
    """A hit of a view must be something a view returns; anything else (a tuple
    with status 0, an int) is a miss: the view answers and its page replaces it."""
    app, cache = make_app(redis_server, CACHE_SERIALIZER="json")

    @app.route("/page")
    @cache.cached(timeout=60)
    def page() -> str:
        return "page"

    with app.test_request_context("/page"):
        key = page.make_cache_key()
    assert cache.set(key, forged)
    response = app.test_client().get("/page")
    assert 100 <= response.status_code < 500
    if not isinstance(forged, (list, dict, bytes)):  # those are view results
        assert response.data == b"page"
        assert cache.get(key) == "page"  # the forged entry is replaced


class AlwaysAccessed(SecureCookieSession):
    """A session class that cannot track access: ``accessed`` is always True."""

    @property
    def accessed(self) -> bool:
        return True

    @accessed.setter
    def accessed(self, value: bool) -> None:
        pass


class AlwaysAccessedInterface(SecureCookieSessionInterface):
    session_class = AlwaysAccessed


def test_item12_the_privacy_decision_is_about_the_view(
    redis_server: RedisServer,
) -> None:
    app, cache = make_app(redis_server)
    app.session_interface = AlwaysAccessedInterface()
    board_runs, me_runs = Counter(), Counter()

    @app.before_request
    def load_user() -> None:
        request.environ["user"] = session.get("user")  # every request reads it

    @app.route("/scoreboard")
    @cache.cached(timeout=60)
    def scoreboard() -> str:
        return f"scores #{board_runs()}"

    @app.route("/me")
    @cache.cached(timeout=60)
    def me() -> str:
        me_runs()
        return f"page of {session.get('user', 'nobody')}"

    visitors: dict[str, FlaskClient] = {}
    for name in ("alice", "bob", "anonymous"):
        visitors[name] = client = app.test_client()
        if name != "anonymous":
            log_in(client, name)
    pages = [c.get("/scoreboard").get_data(as_text=True) for c in visitors.values()]
    assert pages == ["scores #1"] * 3 and board_runs.n == 1

    # the first computation teaches the view that it reads the session (a visitor
    # who is none of the three, so what follows counts only their own requests)
    warm_up = app.test_client()
    log_in(warm_up, "carol")
    assert warm_up.get("/me").get_data(as_text=True) == "page of carol"
    before = me_runs.n
    for round_ in range(2):
        for name, client in visitors.items():
            expected = "page of nobody" if name == "anonymous" else f"page of {name}"
            assert client.get("/me").get_data(as_text=True) == expected, round_
    assert me_runs.n - before == 3  # the second request of each was a hit


def test_item11b_a_helper_keyed_by_the_path_may_cache_anything(
    redis_server: RedisServer,
) -> None:
    """Only the request's own view is held to view results: a helper function
    cached under the default ``view/%s`` key inside a request caches an int."""
    app, cache = make_app(redis_server)
    runs: list[int] = []

    @cache.cached(timeout=60)
    def helper() -> int:
        runs.append(1)
        return 7

    @app.route("/page")
    def page() -> str:
        return str(helper() + helper())

    client = app.test_client()
    assert client.get("/page").data == b"14"
    assert client.get("/page").data == b"14"
    assert len(runs) == 1
