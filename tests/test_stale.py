"""``stale_while_revalidate`` and ``stale_if_error``.

Entries with a staleness window keep the value under its usual key and
``(fresh_until, versions)`` beside it in ``<key>:fc-meta``. With SimpleCache the wall
clock is virtual (``time.time`` is patched: ``fresh_until`` and SimpleCache's expiry
both read it), so no test sleeps through a timeout; the Redis test uses real time
because the server expires keys itself.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import typing as t
import uuid
from collections.abc import Callable, Iterator
from unittest import mock

import pytest
from flask import Flask

from flask_caching import Cache
from flask_caching import locks as locks_mod
from flask_caching.runtime import Runtime

BOUND = 20.0
#: the refresh takes this long; callers served stale must not wait for it
REFRESH = 0.5


class Clock:
    """``time.time`` plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0
        self._real = time.time

    def __call__(self) -> float:
        return self._real() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(time, "time", fake)
    return fake


@pytest.fixture(autouse=True)
def no_flight_left_behind() -> Iterator[None]:
    yield
    assert len(locks_mod.FLIGHTS) == 0


def make_app(config: dict[str, t.Any] | None = None) -> tuple[Flask, Cache]:
    app = Flask(f"stale-{uuid.uuid4().hex[:6]}")
    return app, Cache(app, config=config or {"CACHE_TYPE": "SimpleCache"})


def runtime(app: Flask, cache: Cache) -> Runtime:
    return t.cast(Runtime, app.extensions["flask_caching"][cache])


class Source:
    """A function's body: counts runs, is slow after the first, can be told to fail."""

    def __init__(self) -> None:
        self.runs = 0
        self.fail = False
        self._guard = threading.Lock()

    def __call__(self, x: int) -> str:
        with self._guard:
            self.runs += 1
            run = self.runs
        if run > 1:
            time.sleep(REFRESH)
        if self.fail:
            raise RuntimeError(f"refresh {run} failed")
        return f"v{run}"

    def function(self) -> Callable[[int], str]:
        """A plain function running this body: memoize names keys by a function's
        module and qualname, as released Flask-Caching does."""

        def compute(x: int) -> str:
            return self(x)

        return compute


def timed_threads(
    count: int, target: Callable[[int], t.Any]
) -> list[tuple[t.Any, float]]:
    """``target(i)`` in *count* threads released together: (result, seconds) each."""
    barrier = threading.Barrier(count)
    out: list[tuple[t.Any, float]] = [(None, 0.0)] * count

    def body(i: int) -> None:
        barrier.wait(timeout=BOUND)
        started = time.monotonic()
        try:
            result = target(i)
        except Exception as exc:
            result = exc
        out[i] = (result, time.monotonic() - started)

    threads = [
        threading.Thread(target=body, args=(i,), daemon=True) for i in range(count)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join(BOUND)
        assert not th.is_alive(), "a caller hung"
    return out


def split(
    results: list[tuple[t.Any, float]], value: t.Any
) -> tuple[list[float], list[float]]:
    """Latencies of the callers that got *value*, and of the others."""
    got = [s for r, s in results if r == value]
    rest = [s for r, s in results if r != value]
    return got, rest


# --- stale while revalidate ---------------------------------------------------------


def test_stale_value_is_served_at_once_while_one_caller_refreshes(clock: Clock) -> None:
    app, cache = make_app()
    source = Source()
    f = cache.memoize(timeout=10, stale_while_revalidate=60)(source.function())
    with app.app_context():
        assert f(1) == "v1"
    clock.advance(11)  # stale now, within the window

    def call(i: int) -> str:
        with app.app_context():
            return f(1)

    results = timed_threads(8, call)
    stale, fresh = split(results, "v1")
    assert [r for r, _ in results].count("v2") == 1  # the one refresher
    assert len(stale) == 7
    assert source.runs == 2  # exactly one refresh
    assert fresh[0] >= REFRESH  # the refresher computed inline
    print(
        f"SWR SimpleCache: stale callers max {max(stale) * 1000:.1f} ms, refresher {fresh[0]:.2f} s"
    )
    assert max(stale) < REFRESH / 2  # nobody else waited for the refresh
    with app.app_context():
        started = time.monotonic()
        assert f(1) == "v2"
        assert time.monotonic() - started < REFRESH / 2


def test_stale_entries_across_processes_refresh_once(
    request: pytest.FixtureRequest,
) -> None:
    """Two Caches on one redis-server (two processes, as far as locking can tell):
    one refresh in all, stale values for everyone else, the TTL covers the window."""
    server = request.getfixturevalue("redis_server")
    config = {
        "CACHE_TYPE": "RedisCache",
        "CACHE_REDIS_URL": server.url,
        "CACHE_KEY_PREFIX": f"swr{uuid.uuid4().hex[:8]}_",
    }
    source = Source()
    body = source.function()  # one function: both Caches share its version key
    pairs = [make_app(config) for _ in range(2)]
    fs = [
        cache.memoize(timeout=1, stale_while_revalidate=30, make_name=lambda n: "swr")(
            body
        )
        for _app, cache in pairs
    ]
    app0 = pairs[0][0]
    with app0.app_context():
        assert fs[0](1) == "v1"
        key = fs[0].make_cache_key(1)
    with server.client() as client:
        for stored in (key, key + ":fc-meta"):
            ttl = client.pttl(config["CACHE_KEY_PREFIX"] + stored)
            assert 30_000 < ttl <= 31_000  # timeout + stale_while_revalidate
    time.sleep(1.1)

    def call(i: int) -> str:
        app = pairs[i % 2][0]
        with app.app_context():
            return fs[i % 2](1)

    results = timed_threads(8, call)
    stale, fresh = split(results, "v1")
    assert [r for r, _ in results].count("v2") == 1
    assert source.runs == 2
    print(
        f"SWR Redis x2: stale callers max {max(stale) * 1000:.1f} ms, refresher {fresh[0]:.2f} s"
    )
    assert max(stale) < 0.2
    with pairs[1][0].app_context():
        assert fs[1](1) == "v2"


def test_async_callers_get_the_stale_value_while_one_task_refreshes(
    clock: Clock,
) -> None:
    app, cache = make_app()
    runs: list[float] = []

    @cache.memoize(timeout=10, stale_while_revalidate=60)
    async def f(x: int) -> str:
        runs.append(time.monotonic())
        if len(runs) > 1:
            await asyncio.sleep(REFRESH)
        return f"v{len(runs)}"

    async def timed() -> tuple[str, float]:
        started = time.monotonic()
        value = await f(1)
        return value, time.monotonic() - started

    with app.app_context():
        assert asyncio.run(f(1)) == "v1"
        clock.advance(11)

        async def main() -> list[tuple[str, float]]:
            return list(await asyncio.gather(*(timed() for _ in range(8))))

        results = asyncio.run(main())
    stale, fresh = split(results, "v1")
    assert len(runs) == 2 and len(stale) == 7 and len(fresh) == 1
    assert max(stale) < 0.1


def test_a_cached_view_serves_its_stale_response(clock: Clock) -> None:
    app, cache = make_app()
    source = Source()

    @app.route("/page")
    @cache.cached(timeout=10, stale_while_revalidate=60)
    def page() -> str:
        return source(0)

    assert app.test_client().get("/page").data == b"v1"
    clock.advance(11)

    def call(i: int) -> bytes:
        return app.test_client().get("/page").data

    results = timed_threads(4, call)
    stale, _fresh = split(results, b"v1")
    assert sorted(r for r, _ in results) == [b"v1", b"v1", b"v1", b"v2"]
    assert max(stale) < 0.1
    assert app.test_client().get("/page").data == b"v2"


def test_a_fresh_hit_with_stale_options_costs_one_get_many(clock: Clock) -> None:
    app, cache = make_app()
    f = cache.memoize(timeout=10, stale_while_revalidate=60, stale_if_error=60)(
        Source().function()
    )
    rt = runtime(app, cache)
    with app.app_context():
        f(1)
        spy = mock.Mock(wraps=rt.backend)
        rt.backend = spy
        assert f(1) == "v1"
        assert [c[0] for c in spy.method_calls] == ["get_many"]
        clock.advance(11)
        spy.reset_mock()
        assert f(1) == "v2"  # the refresh: read, lock, re-read, write, release
    names = [c[0] for c in spy.method_calls]
    assert names[:3] == ["get_many", "acquire_lock", "get_many"]
    assert names[-1] == "release_lock"


class Recorder:
    """Wraps a backend and records (thread id, method name) of every call."""

    def __init__(self, backend: t.Any) -> None:
        self.backend = backend
        self.calls: list[tuple[int, str]] = []

    def __getattr__(self, name: str) -> t.Any:
        attr = getattr(self.backend, name)
        if not callable(attr):
            return attr

        def record(*args: t.Any, **kwargs: t.Any) -> t.Any:
            self.calls.append((threading.get_ident(), name))
            return attr(*args, **kwargs)

        return record

    def of(self, ident: int) -> list[str]:
        return [name for who, name in self.calls if who == ident]


def test_a_stale_hit_costs_one_get_many_while_a_refresh_runs(clock: Clock) -> None:
    app, cache = make_app()
    source = Source()
    f = cache.memoize(timeout=10, stale_while_revalidate=60)(source.function())
    rt = runtime(app, cache)
    with app.app_context():
        f(1)
    clock.advance(11)
    recorder = Recorder(rt.backend)
    rt.backend = recorder  # type: ignore[assignment]

    def refresh() -> None:
        with app.app_context():
            f(1)

    th = threading.Thread(target=refresh, daemon=True)
    th.start()
    deadline = time.monotonic() + BOUND
    while source.runs < 2:  # the 0.5 s refresh is under way
        assert time.monotonic() < deadline
        time.sleep(0.005)
    with app.app_context():
        assert f(1) == "v1"
    th.join(BOUND)
    assert recorder.of(threading.get_ident()) == ["get_many"]
    assert "acquire_lock" in recorder.of(th.ident or 0)


def test_entries_are_kept_for_timeout_plus_the_window(clock: Clock) -> None:
    app, cache = make_app()
    f = cache.memoize(timeout=10, stale_while_revalidate=30, stale_if_error=50)(
        Source().function()
    )
    rt = runtime(app, cache)
    with app.app_context():
        f(1)
        key = f.make_cache_key(1)
    clock.advance(59)
    assert rt.backend.get(key) is not None  # 10 + max(30, 50)
    clock.advance(2)
    assert rt.backend.get(key) is None


def test_past_the_window_the_caller_waits_for_the_new_value(clock: Clock) -> None:
    app, cache = make_app()
    source = Source()
    # stale_if_error keeps the entry in the backend; it is still not served fresh
    f = cache.memoize(timeout=10, stale_while_revalidate=5, stale_if_error=100)(
        source.function()
    )
    with app.app_context():
        f(1)
        clock.advance(16)
        started = time.monotonic()
        assert f(1) == "v2"
    assert time.monotonic() - started >= REFRESH


def test_an_invalidated_entry_is_never_served_stale(clock: Clock) -> None:
    app, cache = make_app()
    source = Source()
    f = cache.memoize(timeout=10, stale_while_revalidate=60)(source.function())
    with app.app_context():
        f(1)
        clock.advance(11)
        cache.delete_memoized(f)
        assert f(1) == "v2"


def test_the_cold_path_is_locked_too(clock: Clock) -> None:
    app, cache = make_app()
    runs: list[int] = []

    @cache.memoize(timeout=10, stale_while_revalidate=60)
    def f(x: int) -> int:
        runs.append(x)
        time.sleep(0.2)
        return x

    def call(i: int) -> int:
        with app.app_context():
            return f(4)

    assert [r for r, _ in timed_threads(16, call)] == [4] * 16
    assert runs == [4]


def test_stale_settings_are_the_defaults(clock: Clock) -> None:
    app, cache = make_app(
        {"CACHE_TYPE": "SimpleCache", "CACHE_STALE_WHILE_REVALIDATE": 60}
    )
    source = Source()
    f = cache.memoize(timeout=10)(source.function())
    with app.app_context():
        f(1)
    clock.advance(11)

    def call(i: int) -> str:
        with app.app_context():
            return f(1)

    results = timed_threads(4, call)
    assert sorted(r for r, _ in results) == ["v1", "v1", "v1", "v2"]


def test_the_value_stays_readable_by_a_plain_get_with_its_meta_beside(
    clock: Clock,
) -> None:
    """Released Flask-Caching reads the value of a stale-while-revalidate entry with
    a plain get; our freshness sits in a key of its own, and an entry written
    without it (by released Flask-Caching) is fresh while the backend keeps it."""
    app, cache = make_app()
    source = Source()
    f = cache.memoize(timeout=10, stale_while_revalidate=60)(source.function())
    with app.app_context():
        before = time.time()
        assert f(1) == "v1"
        key = f.make_cache_key(1)
        assert cache.get(key) == "v1"
        fresh_until, versions = cache.get(key + ":fc-meta")
        assert before + 10 <= fresh_until <= time.time() + 10
        assert tuple(versions) == ()
        clock.advance(11)
        assert cache.get(key) == "v1"  # still readable while stale
        assert f(1) == "v2"  # the only caller refreshes it inline
        assert cache.get(key) == "v2"
        cache.delete(key + ":fc-meta")
        cache.set(key, "written by released", timeout=10)
        assert f(1) == "written by released"
        assert source.runs == 2


# --- refresh failures and stale_if_error --------------------------------------------


def test_stale_if_error_serves_the_stale_value_and_logs(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    app, cache = make_app()
    source = Source()
    f = cache.memoize(timeout=10, stale_if_error=60)(source.function())
    with app.app_context():
        assert f(1) == "v1"
        clock.advance(11)
        source.fail = True
        with caplog.at_level(logging.WARNING, logger="flask_caching"):
            assert f(1) == "v1"
        assert "stale_if_error" in caplog.text and "refresh 2 failed" in caplog.text
        clock.advance(60)  # past the window: the error reaches the caller
        with pytest.raises(RuntimeError, match="refresh 3 failed"):
            f(1)
        source.fail = False
        assert f(1) == "v4"


def test_a_failed_refresh_without_stale_if_error_raises_to_the_refresher_only(
    clock: Clock,
) -> None:
    app, cache = make_app()
    source = Source()
    f = cache.memoize(timeout=10, stale_while_revalidate=60)(source.function())
    with app.app_context():
        f(1)
    clock.advance(11)
    source.fail = True

    def call(i: int) -> str:
        with app.app_context():
            return f(1)

    results = [r for r, _ in timed_threads(6, call)]
    errors = [r for r in results if isinstance(r, RuntimeError)]
    assert len(errors) == 1 and results.count("v1") == 5
    source.fail = False
    with app.app_context():  # nothing stayed locked: the next caller refreshes
        assert f(1) == "v3"
    assert source.runs == 3


def test_stale_while_revalidate_with_stale_if_error_never_raises(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    app, cache = make_app()
    source = Source()
    f = cache.memoize(timeout=10, stale_while_revalidate=60, stale_if_error=60)(
        source.function()
    )
    with app.app_context():
        f(1)
    clock.advance(11)
    source.fail = True

    def call(i: int) -> str:
        with app.app_context():
            return f(1)

    with caplog.at_level(logging.WARNING, logger="flask_caching"):
        results = [r for r, _ in timed_threads(6, call)]
    assert results == ["v1"] * 6
    assert source.runs == 2
    assert caplog.text.count("stale_if_error") == 1


def test_stale_options_are_checked() -> None:
    _app, cache = make_app()
    with pytest.raises(ValueError, match="stale_if_error"):
        cache.memoize(stale_if_error=-5)
    with pytest.raises(TypeError, match="stale_while_revalidate"):
        cache.memoize(stale_while_revalidate="1m")  # type: ignore[arg-type]
