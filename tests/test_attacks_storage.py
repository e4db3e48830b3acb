"""Issue 14 on storage and keys: entries stay right when the serializer changes, when
arguments cannot be keyed or objects are collected, when threads increment at once,
and when someone copies, forges or plants entries.

Items 5, 6, 9, 10, 11a and 11d of the issue; one test (or one small parametrized
group) per item. Redis tests run on a real redis-server.
"""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import threading
import typing as t
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from flask_caching import Cache

if t.TYPE_CHECKING:
    from servers import RedisServer

#: the most a read of a planted file may take, in seconds
BOUND = 2.0


def filesystem_cache(directory: Path, **settings: t.Any) -> tuple[Flask, Cache]:
    app = Flask(__name__)
    config = {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(directory)}
    return app, Cache(app, config={**config, **settings})


def simple_cache() -> tuple[Flask, Cache]:
    app = Flask(__name__)
    return app, Cache(app, config={"CACHE_TYPE": "SimpleCache"})


def memoized_square(cache: Cache, runs: list[int]) -> Callable[[int], int]:
    """The same memoized function (one qualified name) on *cache*."""

    @cache.memoize(timeout=60)
    def square(x: int) -> int:
        runs.append(x)
        return x * x

    return square


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param({"CACHE_SERIALIZER": "pickle"}, {"CACHE_SERIALIZER": "json"}),
        pytest.param(
            {"CACHE_SERIALIZER": "pickle-signed", "CACHE_SECRET_KEY": "old-key"},
            {"CACHE_SERIALIZER": "pickle-signed", "CACHE_SECRET_KEY": "new-key"},
            id="signing-key-rotated",
        ),
    ],
)
def test_item5_memoize_keeps_caching_after_the_serializer_changes(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    before: dict[str, str],
    after: dict[str, str],
) -> None:
    app, cache = filesystem_cache(tmp_path, **before)
    with app.app_context():
        assert memoized_square(cache, [])(3) == 9  # the version file, the old way
    app, cache = filesystem_cache(tmp_path, **after)
    runs: list[int] = []
    square = memoized_square(cache, runs)
    with app.app_context():
        assert [square(3) for _ in range(5)] == [9] * 5
    assert runs == [3]


class BadRepr:
    """An argument whose ``repr`` raises: no key can be built from it."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def self_referencing() -> dict[str, t.Any]:
    loop: dict[str, t.Any] = {"name": "loop"}
    loop["self"] = loop
    return loop


def test_item6_an_argument_that_cannot_be_keyed_runs_the_function(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, cache = simple_cache()
    runs: list[tuple[str, str]] = []

    @cache.memoize(timeout=60)
    def describe(value: t.Any) -> str:
        runs.append(("memoize", type(value).__name__))
        return type(value).__name__

    @cache.cached(timeout=60, make_cache_key=lambda value: f"describe/{value!r}")
    def describe_cached(value: t.Any) -> str:
        runs.append(("cached", type(value).__name__))
        return type(value).__name__

    caplog.set_level(logging.WARNING, logger="flask_caching")
    with app.app_context():
        for f in (describe, describe_cached):
            assert [f(BadRepr()), f(BadRepr())] == ["BadRepr", "BadRepr"]
            assert f(self_referencing()) == "dict"
            assert f(self_referencing()) == "dict"
    # no key for BadRepr: computed each time; the loop's repr is "{...}", a key
    assert runs.count(("memoize", "BadRepr")) == runs.count(("cached", "BadRepr")) == 2
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) >= 2 and all("failed" in r.getMessage() for r in warned)


class Plain:
    """An object with the default repr (``<Plain object at 0x...>``)."""

    def __init__(self, value: int) -> None:
        self.value = value

    def current(self) -> int:
        return self.value


def test_item9_default_repr_objects_never_share_memoized_values() -> None:
    app, cache = simple_cache()

    @cache.memoize(timeout=60)
    def value_of(obj: Plain) -> int:
        return obj.value

    class Holder(Plain):
        @cache.memoize(timeout=60)
        def current(self) -> int:
            return self.value

    wrong = 0
    gc.collect()
    with app.app_context():
        for n in range(200):
            obj, holder = Plain(n), Holder(n)
            wrong += value_of(obj) != n
            wrong += holder.current() != n
            del obj, holder
            gc.collect(0)  # the young generation: a full collection each time is slow
    assert wrong == 0


def test_item10_filesystem_inc_from_many_threads_loses_nothing(
    tmp_path: Path,
) -> None:
    app, cache = filesystem_cache(tmp_path)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(40):
                cache.inc("hits")
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    with app.app_context():
        threads = [threading.Thread(target=work, daemon=True) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads)
        assert errors == [] and cache.get("hits") == 640


@pytest.mark.redis
def test_item11a_a_signed_entry_copied_under_another_key_does_not_verify(
    redis_server: RedisServer,
) -> None:
    prefix = f"atk-{uuid.uuid4().hex[:8]}:"
    app = Flask(__name__)
    cache = Cache(
        app,
        config={
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_URL": redis_server.url,
            "CACHE_KEY_PREFIX": prefix,
            "CACHE_SERIALIZER": "pickle-signed",
            "CACHE_SECRET_KEY": "attack-secret",
        },
    )
    with app.app_context():
        assert cache.set("price:basic", "9.99")
        assert cache.set("price:premium", "99.00")
        with redis_server.client() as raw:
            signed = raw.get(prefix + "price:basic")
            assert signed is not None and b"9.99" in signed
            raw.set(prefix + "price:premium", signed)
        assert cache.get("price:premium") is None


#: reads one key of a FileSystemCache in a child process: a read that never ends
#: or fills memory is killed there, not in the test run
READ_ONE = """
import resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
from flask import Flask
from flask_caching import Cache
app = Flask("reader")
cache = Cache(app, config={"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": sys.argv[1]})
with app.app_context():
    started = time.monotonic()
    value = cache.get(sys.argv[2])
    print(repr(value), time.monotonic() - started)
"""


def _entry_file(directory: Path, cache: Cache, key: str) -> Path:
    """The file *key* is stored in, found by writing it (names are the backend's)."""
    assert cache.set("warm-up", 1)  # the count file and the like exist from here
    before = set(directory.iterdir())
    assert cache.set(key, "the real page")
    (made,) = set(directory.iterdir()) - before
    return made


@pytest.mark.parametrize("plant", ["fifo", "dev-zero"])
def test_item11d_a_planted_fifo_or_device_is_a_quick_miss(
    tmp_path: Path, plant: str
) -> None:
    app, cache = filesystem_cache(tmp_path)
    with app.app_context():
        path = _entry_file(tmp_path, cache, "view//page")
    path.unlink()
    if plant == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    try:
        done = subprocess.run(
            [sys.executable, "-c", READ_ONE, str(tmp_path), "view//page"],
            capture_output=True,
            text=True,
            timeout=BOUND * 5,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"reading a planted {plant} did not end in {BOUND * 5}s")
    assert done.returncode == 0, done.stderr[-2000:]
    value, took = done.stdout.split()
    assert value == "None" and float(took) < BOUND
