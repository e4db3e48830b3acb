"""A WSGI app that uWSGI runs for ``tests/test_backend_uwsgi.py``.

``UWSGICache`` only works inside uWSGI, so the checks run here, in the server, and
``GET /`` answers ``{check name: "ok" or the failure}`` as JSON. The server must be
started with ``--cache2 name=mycache,items=100`` (default 64 KiB blocks).
"""

from __future__ import annotations

import json
import time
import traceback
import typing as t
from collections.abc import Callable

from flask import Flask, Response

from flask_caching.contrib.uwsgicache import UWSGICache
from flask_caching.exceptions import ConfigurationError

CONFIG = {"CACHE_UWSGI_NAME": "mycache", "CACHE_DEFAULT_TIMEOUT": 300}
CHECKS: dict[str, Callable[[UWSGICache], None]] = {}

app = Flask(__name__)


def check(func: Callable[[UWSGICache], None]) -> Callable[[UWSGICache], None]:
    CHECKS[func.__name__] = func
    return func


@check
def missing_key(cache: UWSGICache) -> None:
    assert cache.get("nothing") is None
    assert cache.has("nothing") is False


@check
def round_trips_types(cache: UWSGICache) -> None:
    values: list[t.Any] = [
        "text",
        "",
        0,
        -17,
        2**70,
        3.25,
        True,
        b"\x00\xff",
        [1, None],
    ]
    values += [("t", 2), {"n": {"d": [1]}}, {1, 2}]
    for index, value in enumerate(values):
        assert cache.set(f"v{index}", value) is True
    for index, value in enumerate(values):
        got = cache.get(f"v{index}")
        assert got == value and type(got) is type(value), (value, got)


@check
def none_is_stored(cache: UWSGICache) -> None:
    cache.set("none", None)
    assert cache.has("none") and cache.get("none") is None


@check
def add_does_not_overwrite(cache: UWSGICache) -> None:
    assert cache.add("a", "first") is True
    assert cache.add("a", "second") is False
    assert cache.get("a") == "first"


@check
def delete(cache: UWSGICache) -> None:
    cache.set("d", 1)
    assert cache.delete("d") is True
    assert cache.get("d") is None and cache.delete("d") is False


@check
def many(cache: UWSGICache) -> None:
    mapping = {f"s{i}": {"i": i} for i in range(10)}
    assert sorted(cache.set_many(mapping)) == sorted(mapping)
    assert cache.get_many("s3", "missing", "s1") == [{"i": 3}, None, {"i": 1}]
    assert cache.get_dict("s0", "zz") == {"s0": {"i": 0}, "zz": None}
    assert {"s0", "s1"} <= set(cache.delete_many("s0", "s1", "never"))
    assert cache.get_many("s0", "s1", "s2") == [None, None, {"i": 2}]


@check
def inc_dec(cache: UWSGICache) -> None:
    assert cache.inc("counter") == 1
    assert cache.inc("counter", 5) == 6
    assert cache.dec("counter", 10) == -4
    assert cache.dec("down", 2) == -2
    assert cache.get("counter") == -4


@check
def timeouts(cache: UWSGICache) -> None:
    cache.set("neg", "old")
    assert cache.set("neg", "new", timeout=-1) is True
    assert cache.get("neg") is None
    assert cache.add("neg-add", 1, timeout=-1) is False and not cache.has("neg-add")
    cache.set("short", "s", timeout=1)
    cache.set("forever", "f", timeout=0)
    time.sleep(1.1)
    assert cache.get("short") is None and cache.has("short") is False
    assert cache.get("forever") == "f"
    assert cache.add("short", "again") is True  # expired, though not yet swept
    assert cache.get("short") == "again"


@check
def too_large_is_refused(cache: UWSGICache) -> None:
    assert cache.set("huge", b"x" * 200_000) is False


@check
def clear(cache: UWSGICache) -> None:
    cache.set("c", 1)
    assert cache.clear() is True
    assert cache.get("c") is None


@check
def unknown_cache_name(cache: UWSGICache) -> None:
    try:
        UWSGICache(cache="nosuchcache")
    except ConfigurationError as exc:
        assert "nosuchcache" in str(exc) and "mycache" in str(exc)
    else:
        raise AssertionError("no error for an unknown cache name")


@check
def import_paths(cache: UWSGICache) -> None:
    from flask_caching.backends import UWSGICache as FromRegistry
    from flask_caching.backends.uwsgicache import UWSGICache as FromBackends

    assert FromRegistry is FromBackends is UWSGICache


@check
def built_on_cachelib(cache: UWSGICache) -> None:
    import pickle

    import cachelib
    import uwsgi

    assert isinstance(cache, cachelib.UWSGICache)
    assert cache.ignore_delete_many_errors is False
    # released Flask-Caching (cachelib) stores the bare pickle: ours reads it
    uwsgi.cache_update("theirs", pickle.dumps({"a": 1}), 0, "mycache")
    assert cache.get("theirs") == {"a": 1} and cache.has("theirs")
    assert cache.delete_many("theirs", "never-set") == ["theirs", "never-set"]


@check
def through_the_extension(cache: UWSGICache) -> None:
    from flask_caching import Cache

    ext_app = Flask("through_the_extension")
    ext = Cache(ext_app, config={"CACHE_TYPE": "UWSGICache", **CONFIG})
    calls: list[int] = []

    @ext.memoize(60)
    def double(number: int) -> int:
        calls.append(number)
        return 2 * number

    with ext_app.app_context():
        assert double(21) == 42 and double(21) == 42
    assert calls == [21]


@app.route("/")
def run_checks() -> Response:
    cache = UWSGICache.factory(app, CONFIG, [], {})
    results: dict[str, str] = {}
    for name, func in CHECKS.items():
        cache.clear()
        try:
            func(cache)
        except Exception:
            results[name] = traceback.format_exc()
        else:
            results[name] = "ok"
    return Response(json.dumps(results), mimetype="application/json")
