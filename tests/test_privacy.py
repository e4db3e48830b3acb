"""@cache.cached never serves one user's page to another.

Responses that set a cookie, answer an Authorization request or say Cache-Control
private/no-store/no-cache or Vary: * are not stored unless the view opts in (vary=,
vary_on_session=, make_cache_key=, private="allow" or the CACHE_PRIVATE_RESPONSES
setting). A view that reads the session while it runs is cached per session from then
on (reads by before_request hooks do not count). A stored response never keeps
Set-Cookie, and it replays its Vary header on hits.
"""

from __future__ import annotations

import logging
import typing as t
import uuid
from collections.abc import Callable

import pytest
from flask import Flask, Response, g, make_response, request, session
from flask.testing import FlaskClient

from flask_caching import Cache
from flask_caching.cached import VARY_VERSION_PREFIX
from flask_caching.entry import META_SUFFIX
from flask_caching.exceptions import ConfigurationError
from flask_caching.privacy import Guard, parse_vary

if t.TYPE_CHECKING:
    from servers import RedisServer


class Counter:
    """Counts how often a view body ran."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> int:
        self.n += 1
        return self.n


def make_app(**settings: t.Any) -> tuple[Flask, Cache]:
    app = Flask(__name__)
    app.secret_key = "test-secret"
    config = {"CACHE_TYPE": "SimpleCache", **settings}
    return app, Cache(app, config=config)


def stored_payloads(cache: Cache) -> list[t.Any]:
    """Every value the views stored in the SimpleCache backend (values are stored
    as returned; meta and vary version keys are left out)."""
    backend = cache.cache
    keys = list(backend._cache)  # type: ignore[attr-defined]
    payloads = []
    for key in keys:
        if key.endswith(META_SUFFIX) or key.startswith(VARY_VERSION_PREFIX):
            continue
        value = backend.get(key)
        if value is not None:
            payloads.append(value)
    return payloads


def stored_set_cookies(value: t.Any) -> list[str]:
    """The Set-Cookie headers a stored view result would replay."""
    if isinstance(value, Response):
        return value.headers.getlist("Set-Cookie")
    if isinstance(value, tuple):
        found: list[str] = []
        for part in value[1:]:
            if isinstance(part, dict):
                part = list(part.items())
            if isinstance(part, list):
                found += [v for k, v in part if k.lower() == "set-cookie"]
        return found
    return []


def log_in(client: FlaskClient, user: str) -> None:
    with client.session_transaction() as sess:
        sess["user"] = user


@pytest.fixture
def warnings_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="flask_caching")
    return caplog


def warning_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "flask_caching" and r.levelno == logging.WARNING
    ]


# -- each rule: refused by default, stored when opted in -----------------------


def cookie_view(counter: Counter) -> Callable[[], Response]:
    def view() -> Response:
        response = make_response(f"page {counter()}")
        response.set_cookie("visitor", f"v{counter.n}")
        return response

    return view


def test_response_setting_a_cookie_is_not_stored(warnings_log: t.Any) -> None:
    app, cache = make_app()
    calls = Counter()
    app.route("/")(cache.cached()(cookie_view(calls)))
    client = app.test_client()
    assert client.get("/").text == "page 1"
    assert client.get("/").text == "page 2"
    assert stored_payloads(cache) == []
    assert "sets a cookie" in warning_lines(warnings_log)[0]


def test_cookie_is_never_replayed_to_the_next_visitor() -> None:
    app, cache = make_app()
    calls = Counter()
    app.route("/")(cache.cached(private="allow")(cookie_view(calls)))
    first = app.test_client().get("/")
    assert first.headers.getlist("Set-Cookie")[0].startswith("visitor=v1")
    second = app.test_client().get("/")
    assert second.text == "page 1"  # a hit...
    assert "Set-Cookie" not in second.headers  # ...without the first visitor's cookie
    assert calls.n == 1
    [payload] = stored_payloads(cache)
    assert isinstance(payload, Response)  # the Response object, as released stores
    assert payload.get_data(as_text=True) == "page 1"
    assert stored_set_cookies(payload) == []
    assert first.headers.getlist("Set-Cookie")  # the scrub copied, not mutated


def test_set_cookie_in_a_tuple_result_is_scrubbed_too() -> None:
    app, cache = make_app()
    calls = Counter()

    @app.route("/")
    @cache.cached(private="allow")
    def view() -> tuple[str, int, dict[str, str]]:
        return f"page {calls()}", 200, {"Set-Cookie": "token=secret"}

    assert app.test_client().get("/").headers["Set-Cookie"] == "token=secret"
    second = app.test_client().get("/")
    assert (second.text, calls.n) == ("page 1", 1)
    assert "Set-Cookie" not in second.headers
    [payload] = stored_payloads(cache)
    # stored as a Response copy without the cookie (a tuple cannot drop it in place)
    assert isinstance(payload, Response) and payload.get_data() == b"page 1"
    assert stored_set_cookies(payload) == []


def test_view_reading_the_session_is_cached_per_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # the view itself read the session: from then on it is keyed on the session
    # (as vary_on_session=True), so each visitor gets their own page, never another's
    caplog.set_level(logging.INFO, logger="flask_caching")
    app, cache = make_app()
    calls = Counter()

    @app.route("/")
    @cache.cached()
    def view() -> str:  # a plain string: the rule still applies
        calls()
        return f"hello {session.get('user', 'guest')}"

    alice, bob, carol = app.test_client(), app.test_client(), app.test_client()
    guests = app.test_client(), app.test_client()
    log_in(alice, "alice")
    log_in(bob, "bob")
    log_in(carol, "carol")
    for _ in range(3):
        assert alice.get("/").text == "hello alice"
        assert bob.get("/").text == "hello bob"
        assert carol.get("/").text == "hello carol"
        for guest in guests:
            assert guest.get("/").text == "hello guest"
    # the first answer was made before the view was known to read the session and
    # is not stored; then one computation per session, visitors without one share
    assert calls.n == 1 + 3 + 1
    assert all(stored_set_cookies(p) == [] for p in stored_payloads(cache))
    notes = [
        r.getMessage()
        for r in caplog.records
        if r.name == "flask_caching"
        and r.levelno >= logging.INFO
        and "session" in r.getMessage()
    ]
    assert len(notes) == 1 and "cached per session" in notes[0]


def test_session_reads_by_hooks_do_not_count_and_vary_on_session_keys_them(
    warnings_log: t.Any,
) -> None:
    # a before_request hook reading the session on every request no longer turns
    # caching off: only reads made while the view runs count. A view that depends
    # on what such a hook took from the session says so with vary_on_session.
    app, cache = make_app()
    calls = Counter()

    @app.before_request
    def load_user() -> None:
        g.user = session.get("user", "guest")

    @app.route("/board")
    @cache.cached()
    def board() -> str:
        calls()
        return f"scoreboard {calls.n}"

    @app.route("/me")
    @cache.cached(vary_on_session=True)
    def me() -> str:
        return f"hello {g.user}"

    alice, bob = app.test_client(), app.test_client()
    log_in(alice, "alice")
    assert alice.get("/board").text == "scoreboard 1"
    assert bob.get("/board").text == "scoreboard 1"  # shared: it never read it
    assert calls.n == 1
    for _ in range(2):
        assert alice.get("/me").text == "hello alice"
        assert bob.get("/me").text == "hello guest"
    assert warning_lines(warnings_log) == []


def test_vary_on_session_keeps_two_users_apart() -> None:
    app, cache = make_app()
    calls = Counter()

    @app.route("/me")
    @cache.cached(vary_on_session=True)
    def me() -> str:
        calls()
        return f"hello {session.get('user', 'guest')}"

    alice, bob, guest = app.test_client(), app.test_client(), app.test_client()
    log_in(alice, "alice")
    log_in(bob, "bob")
    for _ in range(2):
        assert alice.get("/me").text == "hello alice"
        assert bob.get("/me").text == "hello bob"
        assert guest.get("/me").text == "hello guest"
    assert calls.n == 3  # one computation per session, then hits
    hit = bob.get("/me")
    assert "Cookie" in hit.headers["Vary"]


def test_vary_on_session_does_not_store_the_session_refresh_cookie() -> None:
    app, cache = make_app()
    calls = Counter()

    @app.route("/")
    @cache.cached(vary_on_session=True)
    def view() -> str:
        calls()
        return f"hello {session.get('user', 'guest')}"

    client = app.test_client()
    with client.session_transaction() as sess:
        sess["user"] = "alice"
        sess.permanent = True  # Flask re-signs the cookie on every response
    assert "Set-Cookie" in client.get("/").headers
    hit = client.get("/")  # a new cookie value, the same session: still a hit
    assert (hit.text, calls.n) == ("hello alice", 1)
    assert "Set-Cookie" in hit.headers  # Flask's own refresh, added after us
    payloads = stored_payloads(cache)
    assert payloads
    for payload in payloads:
        assert stored_set_cookies(payload) == []


def test_make_cache_key_waives_the_session_rule() -> None:
    app, cache = make_app()
    calls = Counter()

    def per_user() -> str:
        return "me/" + str(session.get("user", "guest"))

    @app.route("/me")
    @cache.cached(make_cache_key=per_user)
    def me() -> str:
        calls()
        return f"hello {session.get('user', 'guest')}"

    alice, bob = app.test_client(), app.test_client()
    log_in(alice, "alice")
    log_in(bob, "bob")
    for _ in range(2):
        assert alice.get("/me").text == "hello alice"
        assert bob.get("/me").text == "hello bob"
    assert calls.n == 2


def test_answer_to_an_authorization_request_is_not_stored(
    warnings_log: t.Any,
) -> None:
    app, cache = make_app()
    calls = Counter()

    @app.route("/api")
    @cache.cached()
    def api() -> str:
        calls()
        return f"data for {request.headers.get('Authorization')}"

    client = app.test_client()
    assert client.get("/api", headers={"Authorization": "Bearer a"}).text.endswith(
        "Bearer a"
    )
    assert client.get("/api", headers={"Authorization": "Bearer b"}).text.endswith(
        "Bearer b"
    )
    assert calls.n == 2
    assert "Authorization" in warning_lines(warnings_log)[0]


def test_vary_on_authorization_keys_one_entry_per_credential() -> None:
    app, cache = make_app()
    calls = Counter()

    @app.route("/api")
    @cache.cached(vary=["Authorization"])
    def api() -> str:
        calls()
        return f"data for {request.headers.get('Authorization')}"

    client = app.test_client()
    for _ in range(2):
        for token in ("Bearer a", "Bearer b"):
            rv = client.get("/api", headers={"Authorization": token})
            assert rv.text == f"data for {token}"
            assert rv.headers["Vary"] == "Authorization"
    assert calls.n == 2


def test_cache_control_public_allows_sharing_an_authenticated_answer() -> None:
    app, cache = make_app()
    calls = Counter()

    @app.route("/docs")
    @cache.cached()
    def docs() -> Response:
        response = make_response(f"docs {calls()}")
        response.headers["Cache-Control"] = "public, max-age=60"
        return response

    client = app.test_client()
    assert client.get("/docs", headers={"Authorization": "Bearer a"}).text == "docs 1"
    assert client.get("/docs", headers={"Authorization": "Bearer b"}).text == "docs 1"


@pytest.mark.parametrize(
    ("header", "value", "reason"),
    [
        ("Cache-Control", "private", "Cache-Control: private"),
        ("Cache-Control", "no-store", "Cache-Control: no-store"),
        ("Cache-Control", "max-age=0, no-cache", "Cache-Control: no-cache"),
        ("Vary", "*", "Vary: *"),
        ("Vary", "Accept-Language", "accept-language"),
    ],
)
def test_response_marked_private_is_stored_only_when_allowed(
    warnings_log: t.Any, header: str, value: str, reason: str
) -> None:
    app, cache = make_app()
    calls = Counter()

    def view() -> Response:
        response = make_response(f"page {calls()}")
        response.headers[header] = value
        return response

    app.add_url_rule("/default", "default", cache.cached()(view))
    app.add_url_rule("/allowed", "allowed", cache.cached(private="allow")(view))
    client = app.test_client()
    assert client.get("/default").text == "page 1"
    assert client.get("/default").text == "page 2"
    assert reason in warning_lines(warnings_log)[0]
    first = client.get("/allowed")
    again = client.get("/allowed")
    assert again.text == first.text == "page 3"
    assert again.headers[header] == value  # replayed as stored


def test_cache_control_private_is_stored_per_session() -> None:
    app, cache = make_app()
    calls = Counter()

    @app.route("/")
    @cache.cached(vary_on_session=True)
    def view() -> Response:
        response = make_response(f"{session.get('user')} {calls()}")
        response.headers["Cache-Control"] = "private"
        return response

    alice, bob = app.test_client(), app.test_client()
    log_in(alice, "alice")
    log_in(bob, "bob")
    assert [alice.get("/").text, alice.get("/").text] == ["alice 1", "alice 1"]
    assert bob.get("/").text == "bob 2"


def test_response_vary_covered_by_the_key_is_stored() -> None:
    app, cache = make_app()
    calls = Counter()

    @app.route("/")
    @cache.cached(vary=["Accept-Language"])
    def view() -> Response:
        response = make_response(f"page {calls()}")
        response.vary.add("Accept-Language")
        return response

    client = app.test_client()
    assert client.get("/").text == client.get("/").text == "page 1"


# -- vary=[...] ------------------------------------------------------------------


def test_vary_on_a_header_keeps_variants_apart_and_replays_vary() -> None:
    app, cache = make_app()
    calls = Counter()

    @app.route("/greet")
    @cache.cached(vary=["Accept-Language"])
    def greet() -> str:
        calls()
        lang = request.headers.get("Accept-Language", "en")
        return {"fr": "bonjour", "de": "hallo"}.get(lang, "hello")

    client = app.test_client()
    for _ in range(2):
        for lang, text in (("fr", "bonjour"), ("de", "hallo"), ("en", "hello")):
            rv = client.get("/greet", headers={"Accept-Language": lang})
            assert rv.text == text
            assert rv.headers["Vary"] == "Accept-Language"
    assert client.get("/greet").text == "hello"  # no header: its own variant
    assert calls.n == 4


def test_vary_on_a_named_cookie_ignores_other_cookies() -> None:
    app, cache = make_app()
    calls = Counter()

    @app.route("/")
    @cache.cached(vary=["Cookie:lang"])
    def view() -> str:
        calls()
        return "lang=" + request.cookies.get("lang", "-")

    # cookies sent as a header: the test client's set_cookie signature differs
    # between Werkzeug 2.2 (the oldest stack) and 3.x
    client = app.test_client(use_cookies=False)
    one = {"Cookie": "lang=fr; _ga=analytics-1"}
    two = {"Cookie": "lang=fr; _ga=analytics-2"}
    assert client.get("/", headers=one).text == "lang=fr"
    hit = client.get("/", headers=two)
    assert hit.text == "lang=fr"
    assert hit.headers["Vary"] == "Cookie"
    assert client.get("/", headers={"Cookie": "lang=de; _ga=x"}).text == "lang=de"
    assert calls.n == 2


def test_views_that_did_not_opt_in_keep_their_plain_key() -> None:
    app, cache = make_app()

    @app.route("/plain")
    @cache.cached()
    def plain() -> str:
        return "plain"

    @app.route("/varied")
    @cache.cached(vary=["Accept-Language"])
    def varied() -> str:
        return "varied"

    with app.test_request_context("/plain", headers={"Accept-Language": "fr"}):
        assert plain.make_cache_key() == "view//plain"
    with app.test_request_context("/varied", headers={"Accept-Language": "fr"}):
        fr = varied.make_cache_key()
    with app.test_request_context("/varied", headers={"Accept-Language": "de"}):
        de = varied.make_cache_key()
    assert fr != de
    for key in (fr, de):  # {cluster hash tag}, base key, vary digest
        assert key.startswith("{") and "}view//varied:vary=" in key


# -- errors, warnings, settings, validation --------------------------------------


def test_server_errors_are_not_stored_unless_a_filter_accepts_them() -> None:
    app, cache = make_app()
    calls = Counter()

    def broken() -> tuple[str, int]:
        return f"down {calls()}", 503

    app.add_url_rule("/a", "a", cache.cached()(broken))
    app.add_url_rule("/b", "b", cache.cached(response_filter=lambda rv: True)(broken))
    client = app.test_client()
    assert [client.get("/a").text, client.get("/a").text] == ["down 1", "down 2"]
    first = client.get("/b")
    assert first.status_code == 503
    assert client.get("/b").text == first.text == "down 3"


def test_a_500_response_object_is_not_stored() -> None:
    app, cache = make_app()
    calls = Counter()

    @app.route("/")
    @cache.cached()
    def view() -> Response:
        return Response(f"oops {calls()}", status=500)

    client = app.test_client()
    assert [client.get("/").text, client.get("/").text] == ["oops 1", "oops 2"]
    assert stored_payloads(cache) == []


def test_session_note_is_logged_once_per_view(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="flask_caching")
    app, cache = make_app()

    @app.route("/a")
    @cache.cached()
    def a() -> str:
        return str(session.get("user"))

    @app.route("/b")
    @cache.cached()
    def b() -> str:
        return str(session.get("user"))

    client = app.test_client()
    for _ in range(3):
        client.get("/a")
        client.get("/b")
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "flask_caching"
        and r.levelno >= logging.INFO
        and "session" in r.getMessage()
    ]
    assert len(lines) == 2
    assert ".a read" in lines[0] and ".b read" in lines[1]
    assert all("cached per session" in line for line in lines)


def test_setting_allows_private_responses_and_a_view_can_still_skip() -> None:
    app, cache = make_app(CACHE_PRIVATE_RESPONSES="allow")
    calls = Counter()

    @app.route("/shared")
    @cache.cached()
    def shared() -> str:
        calls()
        return f"hello {session.get('user', 'guest')}"

    @app.route("/strict")
    @cache.cached(private="skip")
    def strict() -> str:
        calls()
        return f"hello {session.get('user', 'guest')}"

    client = app.test_client()
    assert client.get("/shared").text == client.get("/shared").text
    assert client.get("/strict").text == "hello guest"
    client.get("/strict")
    assert calls.n == 3


def test_bad_setting_fails_at_init_app_naming_it() -> None:
    with pytest.raises(ConfigurationError, match="CACHE_PRIVATE_RESPONSES"):
        make_app(CACHE_PRIVATE_RESPONSES="sometimes")


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"private": "yes"}, ValueError),
        ({"vary": ["Cookie:"]}, ValueError),
        ({"vary": ["X-Lang:fr"]}, ValueError),
        ({"vary": ["Accept Language"]}, ValueError),
        ({"vary": [1]}, TypeError),
    ],
)
def test_bad_options_fail_at_decoration(
    options: dict[str, t.Any], error: type[Exception]
) -> None:
    _app, cache = make_app()
    with pytest.raises(error):
        cache.cached(**options)


def test_vary_accepts_a_single_name_and_drops_duplicates() -> None:
    assert parse_vary("Accept-Language") == parse_vary(
        ["Accept-Language", "accept-language"]
    )
    assert [(v.header, v.cookie) for v in parse_vary(["Cookie: lang "])] == [
        ("Cookie", "lang")
    ]


def test_plain_function_outside_a_request_is_unaffected() -> None:
    app, cache = make_app()
    calls = Counter()

    @cache.cached(key_prefix="report")
    def report() -> Response:
        response = Response(f"report {calls()}")
        response.headers["Cache-Control"] = "private"
        response.set_cookie("a", "b")
        return response

    with app.app_context():
        assert report().get_data() == b"report 1"
        hit = report()
        assert hit.get_data() == b"report 1"
        assert "Set-Cookie" not in hit.headers


def test_async_view_is_screened_too(warnings_log: t.Any) -> None:
    pytest.importorskip("asgiref")
    app, cache = make_app()
    calls = Counter()

    @app.route("/")
    @cache.cached()
    async def view() -> str:
        calls()
        return str(session.get("user"))

    client = app.test_client()
    client.get("/")
    client.get("/")
    assert calls.n == 2


def test_guard_key_part_is_empty_without_opt_in() -> None:
    guard = Guard("v", lambda: "skip")
    app, _cache = make_app()
    with app.test_request_context("/", headers={"Accept-Language": "fr"}):
        assert guard.key_part(lambda data=b"": None) == ""


# -- a real server ----------------------------------------------------------------


@pytest.mark.redis
def test_two_users_never_share_a_page_on_redis(redis_server: RedisServer) -> None:
    app, cache = make_app(
        CACHE_TYPE="RedisCache",
        CACHE_REDIS_URL=redis_server.url,
        CACHE_KEY_PREFIX=f"fc-privacy-{uuid.uuid4().hex[:8]}:",
    )
    calls = Counter()

    @app.route("/me")
    @cache.cached(vary_on_session=True)
    def me() -> str:
        calls()
        return f"hello {session.get('user', 'guest')}"

    @app.route("/leaky")
    @cache.cached()
    def leaky() -> str:
        calls()
        return f"hello {session.get('user', 'guest')}"

    try:
        alice, bob = app.test_client(), app.test_client()
        log_in(alice, "alice")
        log_in(bob, "bob")
        for _ in range(3):
            assert alice.get("/me").text == "hello alice"
            assert bob.get("/me").text == "hello bob"
            assert alice.get("/leaky").text == "hello alice"
            assert bob.get("/leaky").text == "hello bob"
        # /me once per user; /leaky is learned to read the session on its first
        # call (not stored), then once per user
        assert calls.n == 2 + 3
        assert "Cookie" in bob.get("/me").headers["Vary"]
    finally:
        with app.app_context():
            cache.clear()
        close = getattr(cache.cache, "close", None)
        if close is not None:
            close()
