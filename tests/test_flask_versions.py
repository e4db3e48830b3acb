"""Ours imports and caches on every Flask we support, the oldest stack among them.

``python3 dev.py oldest`` runs the core suite in ``.venv-oldest`` (Flask 2.1.3,
Werkzeug 2.2.3, cachelib 0.9.0) with ``FLASK_CACHING_OLDEST_STACK=1``; there this
module also proves the run really is on that stack, so a resolver that quietly
upgraded a pin cannot pass it off as tested.
"""

from __future__ import annotations

import os
from importlib.metadata import version

from flask import Flask, session

from flask_caching import Cache

#: requirements/oldest.txt's pins of the libraries whose versions matter to us
OLDEST = {"flask": "2.1.3", "werkzeug": "2.2.3", "cachelib": "0.9.0"}


def make_app() -> tuple[Flask, Cache]:
    app = Flask(__name__)
    app.testing = True
    cache = Cache(app, config={"CACHE_TYPE": "SimpleCache"})
    return app, cache


def test_cached_view_is_served_from_the_cache_on_the_second_request() -> None:
    app, cache = make_app()
    calls = []

    @app.route("/hello/<name>")
    @cache.cached(timeout=60)
    def hello(name: str) -> str:
        calls.append(name)
        return f"hello {name} #{len(calls)}"

    client = app.test_client()
    first = client.get("/hello/ada")
    second = client.get("/hello/ada")
    assert first.status_code == second.status_code == 200
    assert first.get_data(as_text=True) == "hello ada #1"
    assert second.get_data(as_text=True) == "hello ada #1"
    assert calls == ["ada"]
    assert client.get("/hello/bob").get_data(as_text=True) == "hello bob #2"


def test_memoized_function_hits_for_equal_arguments() -> None:
    app, cache = make_app()
    calls = []

    @cache.memoize(timeout=60)
    def square(n: int) -> int:
        calls.append(n)
        return n * n

    with app.app_context():
        assert square(4) == 16
        assert square(4) == 16
        assert calls == [4]
        assert square(5) == 25
        assert calls == [4, 5]
        cache.delete_memoized(square, 4)
        assert square(4) == 16
        assert calls == [4, 5, 4]


def test_a_view_reading_the_session_is_not_stored() -> None:
    """The session check reads Flask's request context, whose API moved in Flask 2.2."""
    app, cache = make_app()
    app.secret_key = "test-only"
    calls = []

    @app.route("/me")
    @cache.cached(timeout=60)
    def me() -> str:
        calls.append(1)
        return f"hello {session.get('user', 'guest')}"

    client = app.test_client()
    assert client.get("/me").get_data(as_text=True) == "hello guest"
    assert client.get("/me").get_data(as_text=True) == "hello guest"
    assert len(calls) == 2


def _release(text: str) -> tuple[int, ...]:
    """``"2.1.3"`` -> ``(2, 1, 3)``; enough to order the final releases we pin."""
    return tuple(int(part) for part in text.split(".")[:3])


def test_installed_stack_is_supported_and_exact_on_the_oldest_run() -> None:
    installed = {name: version(name) for name in OLDEST}
    if os.environ.get("FLASK_CACHING_OLDEST_STACK") == "1":
        assert installed == OLDEST
    else:
        for name, floor in OLDEST.items():
            assert _release(installed[name]) >= _release(floor), name
