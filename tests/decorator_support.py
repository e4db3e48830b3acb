"""Fixtures and helpers shared by the decorator, template and signal tests.

``make_app`` builds a Flask app with a ``Cache`` on the backend named by the
``backend`` fixture, which runs each test twice: on ``SimpleCache`` and on a real
redis-server (the session server of ``conftest.py``, with a key prefix of its own).
Test modules import the fixtures by name::

    from decorator_support import backend, clock, make_app  # noqa: F401
"""

from __future__ import annotations

import time
import typing as t
import uuid
from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from flask_caching import Cache

if t.TYPE_CHECKING:
    from servers import RedisServer

MakeApp = Callable[..., tuple[Flask, Cache]]


class Backend:
    """Which backend a test runs on, and how to reach it."""

    def __init__(self, name: str, server: RedisServer | None = None) -> None:
        self.name = name
        self.server = server
        self.prefix = f"fc-test-{uuid.uuid4().hex[:10]}:"

    @property
    def is_redis(self) -> bool:
        return self.server is not None

    def config(self) -> dict[str, t.Any]:
        if self.server is None:
            return {"CACHE_TYPE": "SimpleCache"}
        return {
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_URL": self.server.url,
            "CACHE_KEY_PREFIX": self.prefix,
        }

    def ttl(self, key: str) -> int:
        """Seconds the server still keeps *key* (-1: no expiry, -2: absent)."""
        assert self.server is not None, "TTLs are read from redis only"
        with self.server.client() as client:
            return int(client.ttl(self.prefix + key))

    def __repr__(self) -> str:
        return self.name


@pytest.fixture(params=["simple", "redis"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """SimpleCache, then a real redis-server."""
    if request.param == "simple":
        return Backend("simple")
    server: RedisServer = request.getfixturevalue("redis_server")
    return Backend("redis", server)


@pytest.fixture
def make_app(backend: Backend) -> Iterator[MakeApp]:
    """``make_app(**settings)`` -> ``(app, cache)`` on the current backend.

    ``template_folder=``, ``with_jinja2_ext=`` and ``debug=`` are passed on; other
    keyword arguments are CACHE_* settings. Backends are closed when the test ends.
    """
    yield from _app_factory(backend)


@pytest.fixture
def redis_backend(redis_server: RedisServer) -> Backend:
    """The session redis-server, with a key prefix of this test's own."""
    return Backend("redis", redis_server)


@pytest.fixture
def make_redis_app(redis_backend: Backend) -> Iterator[MakeApp]:
    """Like ``make_app``, always on the real redis-server (``redis_backend``)."""
    yield from _app_factory(redis_backend)


def _app_factory(backend: Backend) -> Iterator[MakeApp]:
    made: list[Flask] = []

    def make(
        template_folder: str | None = None,
        with_jinja2_ext: bool = True,
        debug: bool = False,
        **settings: t.Any,
    ) -> tuple[Flask, Cache]:
        app = Flask("decorator_tests", template_folder=template_folder)
        app.debug = debug
        cache = Cache(
            app,
            with_jinja2_ext=with_jinja2_ext,
            config={**backend.config(), **settings},
        )
        made.append(app)
        return app, cache

    yield make
    for app in made:
        for store in app.extensions.get("cache", {}).values():
            close = getattr(store, "close", None)
            if close is not None:
                close()


class Clock:
    """Moves ``time.time`` forward so entries go stale without sleeping."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.offset = 0.0
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() + self.offset)

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


class Calls:
    """Counts calls of the functions under test and numbers their results."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> int:
        self.count += 1
        return self.count
