"""The demo app (examples/demo.py): every page says hit or miss, age and lifetime;
the caches on a page live for different times; the stats page renders; the
``CACHE_*`` environment switches its backend (a directory needs no CACHE_DIR)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
import typing as t
import uuid
from pathlib import Path

import pytest
from flask import Flask
from servers import RedisServer

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo.py"


def _load_demo() -> t.Any:
    spec = importlib.util.spec_from_file_location("flask_caching_demo", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


demo = _load_demo()


def statuses(body: str) -> list[str]:
    """The last column of each row: the view's, the memoized function's, the
    fragment's."""
    return re.findall(r"<td>((?:hit|miss)[^<]*)</td></tr>", body)


def page(app: Flask) -> str:
    response = app.test_client().get("/")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "@@" not in body  # every placeholder was filled in
    header = response.headers.get("Cache-Status")
    if header is not None:
        assert f"Cache-Status: {header}" in body
    else:
        assert "No Cache-Status header" in body
    return body


@pytest.fixture
def app() -> Flask:
    made: Flask = demo.create_app({})
    return made


def test_first_request_misses_everything_and_says_how_long_each_lives(
    app: Flask,
) -> None:
    body = page(app)
    assert "rendered now (a miss)" in body
    assert statuses(body) == ["miss", "miss", "miss"]
    lifetimes = re.findall(r"age (\d+) s of (\d+) s, (\d+) s left", body)
    assert [ttl for _age, ttl, _left in lifetimes] == ["5", "30", "60"]
    assert all(int(age) <= 1 for age, _ttl, _left in lifetimes)


def test_second_request_is_the_stored_page(app: Flask) -> None:
    first = page(app)
    second = page(app)
    assert "the stored copy (a hit)" in second
    assert statuses(second)[0] == "hit"
    # the rows of the memoized function and the fragment are as they were when the
    # page was rendered, and say so
    assert statuses(second)[1:] == ["miss (when the page was rendered)"] * 2
    made_at = re.findall(r"<td>(\d\d:\d\d:\d\d)</td>", first)
    assert re.findall(r"<td>(\d\d:\d\d:\d\d)</td>", second) == made_at


def test_view_expiring_first_finds_the_longer_lived_caches_still_hits(
    app: Flask,
) -> None:
    page(app)
    with app.app_context():
        # what the 5 s timeout does to the view's entry: released's view key
        assert demo.cache.delete("view//")
    body = page(app)
    assert "rendered now (a miss)" in body
    assert statuses(body) == ["miss", "hit", "hit"]


def test_stats_page_shows_counters_or_says_why_not_and_the_backend(
    app: Flask,
) -> None:
    page(app)
    response = app.test_client().get("/stats")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "What the backend says (SimpleCache" in body
    assert "entries" in body
    if callable(getattr(demo.cache, "stats", None)):
        assert "<td>total</td>" in body
        for name in ("index", "slow_square", "clock"):
            assert re.search(rf"<tr><td>[^<]*{name}</td>", body), name
    else:
        assert "no cache.stats() yet" in body


def test_clear_empties_the_cache(app: Flask) -> None:
    page(app)
    assert app.test_client().get("/clear").status_code == 200
    assert statuses(page(app)) == ["miss", "miss", "miss"]


def test_cache_settings_come_from_the_environment_as_json_or_text() -> None:
    settings = demo.cache_settings(
        {
            "CACHE_TYPE": "RedisCache",
            "CACHE_DEFAULT_TIMEOUT": "60",
            "CACHE_IGNORE_ERRORS": "true",
            "HOME": "/root",
        }
    )
    assert settings == {
        "CACHE_TYPE": "RedisCache",
        "CACHE_DEFAULT_TIMEOUT": 60,
        "CACHE_IGNORE_ERRORS": True,
    }


def test_filesystem_cache_without_cache_dir_uses_a_temporary_directory() -> None:
    app = demo.create_app({"CACHE_TYPE": "FileSystemCache"})
    directory = app.config["CACHE_DIR"]
    try:
        assert os.path.isdir(directory)
        assert "rendered now (a miss)" in page(app)
        assert "the stored copy (a hit)" in page(app)
        assert os.listdir(directory)  # the entries are files there
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_filesystem_cache_keeps_a_given_cache_dir(tmp_path: Path) -> None:
    app = demo.create_app({"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(tmp_path)})
    assert app.config["CACHE_DIR"] == str(tmp_path)
    page(app)
    assert "the stored copy (a hit)" in page(app)
    assert os.listdir(tmp_path)


@pytest.mark.redis
def test_redis_from_the_environment(redis_server: RedisServer) -> None:
    prefix = f"demo-{uuid.uuid4().hex}:"
    app = demo.create_app(
        {
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_URL": redis_server.url,
            "CACHE_KEY_PREFIX": prefix,
        }
    )
    assert "rendered now (a miss)" in page(app)
    assert "the stored copy (a hit)" in page(app)
    client = redis_server.client()
    try:
        assert client.exists(f"{prefix}view//")
        stats = app.test_client().get("/stats").get_data(as_text=True)
        assert f"What the backend says (RedisCache, {redis_server.url}" in stats
    finally:
        client.delete(*client.keys(f"{prefix}*"))
        client.close()
