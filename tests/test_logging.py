"""What the ``flask_caching`` logger says: DEBUG per hit, miss, stored and refused
result (with the key), one INFO line at init_app naming the backend and where it
is (never a password or a secret key), and unknown CACHE_* settings once per app
with the nearest known name."""

from __future__ import annotations

import logging
import typing as t
import uuid

import pytest
from flask import Flask, make_response

from flask_caching import Cache
from flask_caching.settings import TABLE

LOGGER = "flask_caching"


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER and r.levelno == level
    ]


def new_app(**config: t.Any) -> Flask:
    app = Flask(f"log_{uuid.uuid4().hex[:6]}")
    app.config.update(CACHE_TYPE="SimpleCache")
    app.config.update(config)
    return app


def test_debug_lines_name_the_key(caplog: pytest.LogCaptureFixture) -> None:
    app = new_app()
    cache = Cache(app)

    @app.route("/page")
    @cache.cached()
    def page() -> str:
        return "p"

    @app.route("/cookie")
    @cache.cached()
    def cookie() -> t.Any:
        response = make_response("c")
        response.set_cookie("a", "b")
        return response

    caplog.set_level(logging.DEBUG, logger=LOGGER)
    client = app.test_client()
    client.get("/page")
    client.get("/page")
    client.get("/cookie")
    debug = messages(caplog, logging.DEBUG)
    assert any("miss, stored" in m and "'view//page'" in m for m in debug), debug
    assert any(m.startswith("cache hit") and "'view//page'" in m for m in debug)
    assert any("refused (private)" in m and "'view//cookie'" in m for m in debug)


def test_no_debug_lines_above_debug(caplog: pytest.LogCaptureFixture) -> None:
    app = new_app()
    cache = Cache(app)

    @cache.memoize()
    def f(x: int) -> int:
        return x

    caplog.set_level(logging.INFO, logger=LOGGER)
    with app.app_context():
        f(1)
        f(1)
    assert not any(r.levelno < logging.INFO for r in caplog.records)


def test_info_line_names_the_backend_and_where(
    caplog: pytest.LogCaptureFixture, tmp_path: t.Any
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    Cache(new_app())
    Cache(new_app(CACHE_TYPE="FileSystemCache", CACHE_DIR=str(tmp_path)))
    info = messages(caplog, logging.INFO)
    assert any("SimpleCache" in m and "in-process" in m for m in info), info
    assert any("FileSystemCache" in m and str(tmp_path) in m for m in info), info


def test_info_line_never_shows_a_password(
    caplog: pytest.LogCaptureFixture, redis_server: t.Any
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    secrets = ["url-pw-8f3a", "setting-pw-51c2", "flask-secret-77d0", "cache-key-19be"]
    app = new_app(
        CACHE_TYPE="RedisCache",
        CACHE_REDIS_URL=f"redis://:{secrets[0]}@127.0.0.1:{redis_server.port}/3",
        CACHE_REDIS_PASSWORD=secrets[1],
        SECRET_KEY=secrets[2],
        CACHE_SERIALIZER="pickle-signed",
        CACHE_SECRET_KEY=secrets[3],
    )
    Cache(app)  # no connection is made here: nothing to authenticate yet
    info = messages(caplog, logging.INFO)
    assert any(
        "RedisCache" in m and f"redis://127.0.0.1:{redis_server.port}/3" in m
        for m in info
    ), info
    text = "\n".join(r.getMessage() for r in caplog.records)
    for secret in secrets:
        assert secret not in text


def test_a_misspelled_setting_is_warned_once_per_app(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    app = new_app(CACHE_DEFALT_TIMEOUT=60, CACHE_FROBNICATE=1)
    Cache(app)
    Cache(app)  # a second Cache on the same app: no second warning
    warnings = messages(caplog, logging.WARNING)
    assert warnings == [
        "CACHE_DEFALT_TIMEOUT is not a Flask-Caching setting and is ignored: "
        "did you mean CACHE_DEFAULT_TIMEOUT?"
    ]
    unknown = [m for m in messages(caplog, logging.INFO) if "CACHE_FROBNICATE" in m]
    assert len(unknown) == 1 and "backend factory" in unknown[0]


def test_known_settings_are_not_warned(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    config = {name: default for name, (default, _types) in TABLE.items()}
    config.update(CACHE_TYPE="SimpleCache", CACHE_DIR=None)
    Cache(new_app(**config))
    assert not any(
        "not a Flask-Caching setting" in r.getMessage() for r in caplog.records
    )


def test_settings_given_to_cache_are_checked_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    Cache(new_app(), config={"CACHE_TYPE": "SimpleCache", "CACHE_TRESHOLD": 5})
    assert messages(caplog, logging.WARNING) == [
        "CACHE_TRESHOLD is not a Flask-Caching setting and is ignored: "
        "did you mean CACHE_THRESHOLD?"
    ]
