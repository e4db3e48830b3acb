"""Fail-open decorators: the circuit breaker, outage logging, and values that cannot be stored.

The backend here is a SimpleCache that can be switched "down" (every call raises, as a
driver does when the server is gone) and counts the calls that reach it. Real servers
being killed and stopped are in ``test_outage.py``.
"""

from __future__ import annotations

import logging
import pickle
import threading
import typing as t
from collections.abc import Iterator

import pytest
from flask import Flask, render_template_string

from flask_caching import Cache
from flask_caching.backends.filesystemcache import FileSystemCache
from flask_caching.backends.simplecache import SimpleCache
from flask_caching.exceptions import ConfigurationError
from flask_caching.resilience import (
    CircuitBreaker,
    OnceEach,
    OutageLog,
    is_value_error,
)
from flask_caching.runtime import Runtime

LOGGER = "flask_caching"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FlakyCache(SimpleCache):
    """A SimpleCache that raises ConnectionError on every call while ``down``."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.down = False
        self.calls = 0

    def _touch(self) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionError("connection refused (simulated outage)")

    def get(self, key: str) -> t.Any:
        self._touch()
        return super().get(key)

    def get_many(self, *keys: str) -> list[t.Any]:
        self._touch()
        return [SimpleCache.get(self, key) for key in keys]

    def set(self, key: str, value: t.Any, timeout: t.Any = None) -> bool:
        self._touch()
        return super().set(key, value, timeout)

    def add(self, key: str, value: t.Any, timeout: t.Any = None) -> bool:
        self._touch()
        return super().add(key, value, timeout)

    def delete(self, key: str) -> bool:
        self._touch()
        return super().delete(key)


def records(
    caplog: pytest.LogCaptureFixture, level: int, text: str = ""
) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == LOGGER and r.levelno == level and text in r.getMessage()
    ]


# --- the breaker on its own ----------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    return caplog


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        breaker.failure("read", "k", ConnectionError("down"))


def test_breaker_opens_after_threshold_consecutive_failures(clock: FakeClock) -> None:
    breaker = CircuitBreaker("B", threshold=3, cooldown=5, clock=clock)
    fail(breaker, 2)
    assert breaker.allow() and not breaker.is_open
    breaker.success()  # a success in between resets the count
    fail(breaker, 2)
    assert breaker.allow()
    fail(breaker)
    assert breaker.is_open
    assert [breaker.allow() for _ in range(4)] == [False] * 4
    assert breaker.refused == 4
    clock.advance(4.9)
    assert not breaker.allow()


def test_half_open_lets_exactly_one_probe_through(clock: FakeClock) -> None:
    breaker = CircuitBreaker("B", threshold=1, cooldown=5, clock=clock)
    fail(breaker)
    clock.advance(5)
    assert breaker.allow() is True  # the probe
    assert breaker.allow() is False  # everyone else waits for its answer
    fail(breaker)  # the probe failed: another full cool-down
    clock.advance(4.9)
    assert breaker.allow() is False
    clock.advance(0.1)
    assert breaker.allow() is True
    breaker.success()
    assert not breaker.is_open
    assert all(breaker.allow() for _ in range(5))


def test_a_probe_that_never_reports_does_not_wedge_the_breaker(
    clock: FakeClock,
) -> None:
    breaker = CircuitBreaker("B", threshold=1, cooldown=2, clock=clock)
    fail(breaker)
    clock.advance(2)
    assert breaker.allow()  # this probe's caller dies without reporting
    clock.advance(2)
    assert breaker.allow()  # after another cool-down, someone else probes


def test_one_probe_among_many_threads(clock: FakeClock) -> None:
    breaker = CircuitBreaker("B", threshold=1, cooldown=1, clock=clock)
    fail(breaker)
    clock.advance(1)
    start = threading.Barrier(16)
    answers: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        start.wait(timeout=5)
        for _ in range(50):
            allowed = breaker.allow()
            with lock:
                answers.append(allowed)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(answers) == 800
    assert answers.count(True) == 1


def test_concurrent_failures_and_successes_keep_the_count_consistent() -> None:
    breaker = CircuitBreaker("B", threshold=10**9, cooldown=5)

    def worker() -> None:
        for _ in range(500):
            breaker.failure("read", "k", ConnectionError("x"))

    logging.getLogger(LOGGER).disabled = True
    try:
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert breaker.failures == 4000
        breaker.success()
        assert breaker.failures == 0
    finally:
        logging.getLogger(LOGGER).disabled = False


def test_one_warning_per_outage_and_one_info_on_recovery(
    clock: FakeClock, logs: pytest.LogCaptureFixture
) -> None:
    breaker = CircuitBreaker("RedisCache", threshold=3, cooldown=5, clock=clock)
    fail(breaker, 50)
    clock.advance(5)
    assert breaker.allow()
    fail(breaker)  # failed probe
    clock.advance(5)
    assert breaker.allow()
    clock.advance(0.5)
    breaker.success()
    warnings = records(logs, logging.WARNING)
    assert len(warnings) == 1
    assert "RedisCache" in warnings[0].getMessage()
    assert "ConnectionError: down" in warnings[0].getMessage()
    opened = records(logs, logging.INFO, "not trying calls for 5 s")
    assert len(opened) == 1
    recovered = records(logs, logging.INFO, "works again")
    assert len(recovered) == 1
    assert "after 10.5 s: 51 calls failed" in recovered[0].getMessage()
    # a second outage gets its own warning
    fail(breaker)
    assert len(records(logs, logging.WARNING)) == 2
    breaker.success()
    assert len(records(logs, logging.INFO, "works again")) == 2
    # nothing at all on the healthy path
    logs.clear()
    for _ in range(10):
        assert breaker.allow()
        breaker.success()
    assert not logs.records


def test_reads_and_writes_failing_together_are_one_outage(
    clock: FakeClock, logs: pytest.LogCaptureFixture
) -> None:
    log = OutageLog("B")
    reads = CircuitBreaker("B", 3, 5, clock, kind="reads", log=log)
    writes = CircuitBreaker("B", 3, 5, clock, kind="writes", log=log)
    writes.failure("write", "k", ConnectionError("down"))  # e.g. a read missed first
    fail(reads, 3)
    assert reads.is_open and not writes.is_open
    clock.advance(5)
    assert reads.allow()
    reads.success()  # reads are back, writes not proven yet: the outage goes on
    assert not records(logs, logging.INFO, "works again")
    clock.advance(1)
    writes.success()
    recovered = records(logs, logging.INFO, "works again")
    assert len(recovered) == 1
    assert "after 6.0 s: 4 calls failed" in recovered[0].getMessage()
    assert len(records(logs, logging.WARNING)) == 1


def test_cooldown_zero_never_opens_but_still_logs_once(
    clock: FakeClock, logs: pytest.LogCaptureFixture
) -> None:
    breaker = CircuitBreaker("B", threshold=1, cooldown=0, clock=clock)
    fail(breaker, 20)
    assert breaker.allow() and not breaker.is_open
    assert len(records(logs, logging.WARNING)) == 1


@pytest.mark.parametrize(
    ("threshold", "cooldown"),
    [
        (0, 5),
        (-1, 5),
        (1.5, 5),
        (True, 5),
        (3, -1),
        (3, "5"),
        (3, None),
        (3, float("nan")),
        (3, float("inf")),
    ],
)
def test_breaker_rejects_bad_parameters(threshold: t.Any, cooldown: t.Any) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker("B", threshold=threshold, cooldown=cooldown)


def test_once_each_is_bounded() -> None:
    once = OnceEach(limit=2)
    assert once.first("a") and once.first("b")
    assert not once.first("a")
    assert not once.first("c")  # full: later names go to DEBUG only


def test_value_errors_are_told_apart_from_backend_errors() -> None:
    import pickle

    assert is_value_error(TypeError("cannot pickle 'generator' object"))
    assert is_value_error(pickle.PicklingError("lambda"))
    assert is_value_error(AttributeError("Can't pickle local object"))
    assert not is_value_error(ConnectionError("refused"))
    assert not is_value_error(TimeoutError("timed out"))
    assert not is_value_error(OSError(28, "No space left on device"))


# --- the decorators over a failing backend ---------------------------------------------


class Counters:
    def __init__(self) -> None:
        self.view = 0
        self.memo = 0


def build_app(
    clock: FakeClock, debug: bool = False, **config: t.Any
) -> tuple[Flask, Cache, Counters, FlakyCache]:
    app = Flask(__name__)
    app.debug = debug
    app.config.update(CACHE_TYPE=FlakyCache, **config)
    cache = Cache(app)
    rt: Runtime = app.extensions["flask_caching"][cache]
    log = OutageLog("FlakyCache")
    for kind in ("reads", "writes"):
        old: CircuitBreaker = getattr(rt, kind)
        new = CircuitBreaker(
            old.name, old.threshold, old.cooldown, clock, kind=kind, log=log
        )
        setattr(rt, kind, new)
    counters = Counters()

    @cache.memoize(timeout=60)
    def square(n: int) -> int:
        counters.memo += 1
        return n * n

    @app.route("/page")
    @cache.cached(timeout=60)
    def page() -> str:
        counters.view += 1
        return "page body"

    @app.route("/square/<int:n>")
    def square_view(n: int) -> str:
        return f"square={square(n)}"

    @app.route("/fragment")
    def fragment() -> str:
        return render_template_string(
            "{% cache 60, 'frag' %}fragment {{ n }}{% endcache %}", n=7
        )

    t.cast(t.Any, app).square = square
    backend = t.cast(FlakyCache, app.extensions["cache"][cache])
    return app, cache, counters, backend


@pytest.fixture
def flaky(clock: FakeClock) -> Iterator[tuple[Flask, Cache, Counters, FlakyCache]]:
    yield build_app(clock)


def test_outage_is_served_uncached_and_the_backend_left_alone(
    flaky: tuple[Flask, Cache, Counters, FlakyCache],
    clock: FakeClock,
    logs: pytest.LogCaptureFixture,
) -> None:
    app, _cache, counters, backend = flaky
    client = app.test_client()
    assert client.get("/page").text == "page body"
    assert client.get("/square/4").text == "square=16"
    assert client.get("/page").text == "page body"
    assert (counters.view, counters.memo) == (1, 1)  # hits

    backend.down = True
    backend.calls = 0
    for _ in range(20):
        for url, body in (
            ("/page", "page body"),
            ("/square/4", "square=16"),
            ("/fragment", "fragment 7"),
        ):
            response = client.get(url)
            assert response.status_code == 200
            assert response.text == body
    # three failed reads opened the breaker; no request retried after a failure
    assert backend.calls == 3
    assert counters.view == 1 + 20 and counters.memo == 1 + 20
    assert len(records(logs, logging.WARNING)) == 1

    # the server comes back; after the cool-down one probe finds it and hits resume
    backend.down = False
    clock.advance(4)
    assert client.get("/page").text == "page body"
    assert backend.calls == 3 and counters.view == 22  # still cooling down
    clock.advance(1)
    assert client.get("/page").text == "page body"  # probe: a hit (SimpleCache kept it)
    assert counters.view == 22
    assert client.get("/square/4").text == "square=16"
    assert counters.memo == 21
    recovered = records(logs, logging.INFO, "works again")
    assert len(recovered) == 1
    assert "3 calls failed and 58 did not try it" in recovered[0].getMessage()


def test_a_failed_read_is_not_followed_by_a_write(
    flaky: tuple[Flask, Cache, Counters, FlakyCache],
) -> None:
    app, _cache, counters, backend = flaky
    client = app.test_client()
    backend.down = True
    client.get("/square/3")
    client.get("/page")
    assert backend.calls == 2  # one failed round trip per request, not two or three
    assert counters.memo == counters.view == 1


def test_a_backend_refusing_only_writes_keeps_serving_hits(
    flaky: tuple[Flask, Cache, Counters, FlakyCache],
    clock: FakeClock,
    logs: pytest.LogCaptureFixture,
) -> None:
    """Redis at maxmemory with noeviction: reads work, every write fails."""
    app, cache, counters, backend = flaky
    rt: Runtime = app.extensions["flask_caching"][cache]
    client = app.test_client()
    assert client.get("/square/1").text == "square=1"  # stored while writes work
    sets = []

    def oom_set(key: str, value: t.Any, timeout: t.Any = None) -> bool:
        sets.append(key)
        raise ConnectionError("OOM command not allowed (simulated)")

    backend.set = oom_set  # type: ignore[method-assign]
    for i in range(2, 12):
        assert client.get(f"/square/{i}").text == f"square={i * i}"
        assert client.get("/square/1").text == "square=1"  # still a hit
    assert len(sets) == 3  # the write breaker opened; reads never stopped
    assert rt.writes.is_open and not rt.reads.is_open
    assert counters.memo == 1 + 10
    # reads succeeding in between did not end the write outage: one warning in all
    warnings = records(logs, logging.WARNING)
    assert len(warnings) == 1 and "cache write of" in warnings[0].getMessage()
    assert not records(logs, logging.INFO, "works again")
    del backend.set  # writes work again
    clock.advance(5)
    assert client.get("/square/20").text == "square=400"
    assert client.get("/square/20").text == "square=400"
    assert counters.memo == 12  # stored by the probe, then a hit
    assert len(records(logs, logging.INFO, "works again")) == 1


def test_proxy_methods_report_errors_even_while_the_breaker_is_open(
    flaky: tuple[Flask, Cache, Counters, FlakyCache],
) -> None:
    app, cache, _counters, backend = flaky
    client = app.test_client()
    backend.down = True
    for _ in range(3):
        client.get("/page")
    rt: Runtime = app.extensions["flask_caching"][cache]
    assert rt.reads.is_open
    with app.app_context():
        with pytest.raises(ConnectionError):
            cache.get("x")
        with pytest.raises(ConnectionError):
            cache.set("x", 1)
        with pytest.raises(ConnectionError):
            cache.delete_memoized(t.cast(t.Any, app).square)


def test_debug_mode_raises_every_backend_error_and_never_bypasses(
    clock: FakeClock,
) -> None:
    app, cache, counters, backend = build_app(clock, debug=True)
    app.config["PROPAGATE_EXCEPTIONS"] = True
    client = app.test_client()
    backend.down = True
    for _ in range(6):
        with pytest.raises(ConnectionError):
            client.get("/page")
    rt: Runtime = app.extensions["flask_caching"][cache]
    assert not rt.reads.is_open
    assert backend.calls == 6  # each request saw the failure
    assert counters.view == 0


def test_settings_configure_the_breaker() -> None:
    app = Flask(__name__)
    app.config.update(
        CACHE_TYPE="SimpleCache", CACHE_FAILURE_THRESHOLD=7, CACHE_FAILURE_COOLDOWN=0.5
    )
    cache = Cache(app)
    rt: Runtime = app.extensions["flask_caching"][cache]
    for breaker in (rt.reads, rt.writes):
        assert (breaker.threshold, breaker.cooldown) == (7, 0.5)
    assert rt.reads.name == rt.writes.name == "SimpleCache"
    assert (rt.reads.kind, rt.writes.kind) == ("reads", "writes")
    assert rt.reads.log is rt.writes.log
    app2 = Flask(__name__)
    app2.config.update(CACHE_TYPE="SimpleCache")
    cache2 = Cache(app2)
    rt2: Runtime = app2.extensions["flask_caching"][cache2]
    assert (rt2.reads.threshold, rt2.reads.cooldown) == (3, 5.0)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("CACHE_FAILURE_THRESHOLD", 0),
        ("CACHE_FAILURE_THRESHOLD", 2.5),
        ("CACHE_FAILURE_THRESHOLD", True),
        ("CACHE_FAILURE_COOLDOWN", -1),
        ("CACHE_FAILURE_COOLDOWN", "5"),
        ("CACHE_FAILURE_COOLDOWN", False),
        ("CACHE_FAILURE_COOLDOWN", float("nan")),
        ("CACHE_FAILURE_COOLDOWN", float("inf")),
    ],
)
def test_bad_breaker_settings_fail_at_init_app_naming_the_setting(
    setting: str, value: t.Any
) -> None:
    app = Flask(__name__)
    app.config.update(CACHE_TYPE="SimpleCache", **{setting: value})
    with pytest.raises(ConfigurationError, match=setting):
        Cache(app)


# --- values that cannot be stored ---------------------------------------------------


@pytest.fixture(params=["simple", "filesystem"])
def local_app(request: pytest.FixtureRequest, tmp_path: t.Any) -> tuple[Flask, Cache]:
    app = Flask(__name__)
    if request.param == "simple":
        app.config.update(CACHE_TYPE="SimpleCache")
    else:
        app.config.update(CACHE_TYPE="FileSystemCache", CACHE_DIR=str(tmp_path))
    return app, Cache(app)


def make_lambda(n: int) -> t.Callable[[], int]:
    return lambda: n


def test_unpicklable_results_are_served_uncached_with_one_warning_naming_the_function(
    local_app: tuple[Flask, Cache], logs: pytest.LogCaptureFixture
) -> None:
    app, cache = local_app
    calls = {"fn": 0, "gen": 0, "lambdas": 0, "view": 0}

    @cache.memoize()
    def returns_a_lambda(n: int) -> t.Callable[[], int]:
        calls["fn"] += 1
        return make_lambda(n)

    @cache.memoize()
    def returns_a_generator(n: int) -> t.Any:
        # joined into a list and cached, as released Flask-Caching does
        calls["gen"] += 1
        return (i for i in range(n))

    @cache.memoize()
    def yields_lambdas(n: int) -> t.Iterator[t.Callable[[], int]]:
        calls["lambdas"] += 1
        return (make_lambda(i) for i in range(n))

    lock = threading.Lock()

    @app.route("/lock")
    @cache.cached(key_prefix="lock-view")
    def lock_view() -> str:
        calls["view"] += 1
        return t.cast(str, lock)  # not a valid view result, but not the cache's fault

    with app.test_request_context():
        for _ in range(3):
            assert returns_a_lambda(5)() == 5
            assert returns_a_generator(3) == [0, 1, 2]
            assert [g() for g in yields_lambdas(2)] == [0, 1]
    assert calls == {"fn": 3, "gen": 1, "lambdas": 3, "view": 0}
    warnings = records(logs, logging.WARNING)
    assert len(warnings) == 2, [w.getMessage() for w in warnings]
    assert "returns_a_lambda" in warnings[0].getMessage()
    assert "yields_lambdas" in warnings[1].getMessage()
    assert "pickle" in warnings[1].getMessage()
    rt: Runtime = app.extensions["flask_caching"][cache]
    assert rt.writes.failures == 0  # a bad value is not a backend outage


def test_a_cached_function_returning_an_unpicklable_value(
    local_app: tuple[Flask, Cache], logs: pytest.LogCaptureFixture
) -> None:
    app, cache = local_app

    @cache.cached(key_prefix="handler")
    def handler() -> t.Callable[[], int]:
        def inner() -> int:
            return 1

        return inner

    with app.test_request_context():
        assert handler()() == 1
        assert handler()() == 1
    warnings = records(logs, logging.WARNING)
    assert len(warnings) == 1
    assert "handler" in warnings[0].getMessage()


def test_debug_mode_raises_on_an_unpicklable_value(tmp_path: t.Any) -> None:
    app = Flask(__name__)
    app.debug = True
    app.config.update(CACHE_TYPE="SimpleCache")
    cache = Cache(app)

    @cache.memoize()
    def unpicklable() -> t.Callable[[], int]:
        return make_lambda(3)

    with (
        app.app_context(),
        pytest.raises((AttributeError, pickle.PicklingError), match="pickle"),
    ):
        unpicklable()


class TinyCache(SimpleCache):
    """Refuses values whose pickle is over 1000 bytes, as memcached does over -I."""

    def set(self, key: str, value: t.Any, timeout: t.Any = None) -> bool:
        if len(self.serializer.dumps(value)) > 1000:
            return False
        return super().set(key, value, timeout)


def test_a_value_over_the_size_limit_is_served_uncached_with_a_warning(
    logs: pytest.LogCaptureFixture,
) -> None:
    app = Flask(__name__)
    app.config.update(CACHE_TYPE=TinyCache)
    cache = Cache(app)
    calls = []

    @cache.memoize()
    def big(n: int) -> bytes:
        calls.append(n)
        return b"x" * n

    with app.app_context():
        assert big(10) == big(10) == b"x" * 10
        assert len(calls) == 1
        for _ in range(3):
            assert big(5000) == b"x" * 5000
    assert calls == [10, 5000, 5000, 5000]
    warnings = records(logs, logging.WARNING)
    assert len(warnings) == 1
    assert "big" in warnings[0].getMessage()
    assert "did not store it" in warnings[0].getMessage()


@pytest.mark.memcached
def test_a_value_over_memcached_item_size_is_served_uncached(
    memcached_server: t.Any, logs: pytest.LogCaptureFixture
) -> None:
    app = Flask(__name__)
    app.config.update(
        CACHE_TYPE="MemcachedCache",
        CACHE_MEMCACHED_SERVERS=[memcached_server.address],
        CACHE_KEY_PREFIX="fc-resilience-big:",
    )
    cache = Cache(app)
    calls = []

    @cache.memoize()
    def blob(n: int) -> bytes:
        calls.append(n)
        return bytes(n)

    two_mb = 2 * 1024 * 1024
    with app.app_context():
        assert blob(10) == blob(10)
        assert blob(two_mb) == bytes(two_mb)
        assert blob(two_mb) == bytes(two_mb)
    assert calls == [10, two_mb, two_mb]
    warnings = records(logs, logging.WARNING)
    assert len(warnings) == 1 and "blob" in warnings[0].getMessage()
    rt: Runtime = app.extensions["flask_caching"][cache]
    assert rt.writes.failures == 0


# --- bad input at the proxies and at decoration time -------------------------------


@pytest.mark.parametrize("key", [1, b"bytes", None, ("a",)])
def test_non_string_keys_go_to_the_backend_unchanged(key: t.Any) -> None:
    # thin proxies, as released: the backend decides (a dict key for SimpleCache)
    app = Flask(__name__)
    app.config.update(CACHE_TYPE="SimpleCache")
    cache = Cache(app)
    with app.app_context():
        assert cache.set(key, "value") is True
        assert cache.get(key) == "value"
        assert cache.add(key, "other") is False
        assert cache.set_many({key: "many"}) == [key]
        assert cache.get_many(key) == ["many"]


@pytest.mark.parametrize("timeout", [-1, -0.5, "-5", True, [60], object()])
@pytest.mark.parametrize("decorator", ["cached", "memoize"])
def test_bad_decorator_timeouts_fail_at_decoration_time(
    decorator: str, timeout: t.Any
) -> None:
    cache = Cache(config={"CACHE_TYPE": "SimpleCache"})
    with pytest.raises(ValueError, match="timeout"):
        getattr(cache, decorator)(timeout=timeout)


@pytest.mark.parametrize("timeout", [None, 0, 1, 2.5, "60"])
def test_good_decorator_timeouts_are_accepted(timeout: t.Any) -> None:
    # a numeric string is whole seconds, as released's normalize_timeout reads it
    cache = Cache(config={"CACHE_TYPE": "SimpleCache"})
    assert callable(cache.cached(timeout=timeout))
    assert callable(cache.memoize(timeout=timeout))


def test_filesystem_backend_also_serves_an_outage_uncached(
    tmp_path: t.Any, logs: pytest.LogCaptureFixture
) -> None:
    app = Flask(__name__)
    app.config.update(CACHE_TYPE="FileSystemCache", CACHE_DIR=str(tmp_path))
    cache = Cache(app)
    backend = t.cast(FileSystemCache, app.extensions["cache"][cache])
    calls = []

    @cache.memoize()
    def f(n: int) -> int:
        calls.append(n)
        return n

    def broken(*args: t.Any, **kwargs: t.Any) -> t.Any:
        raise OSError(5, "Input/output error")

    with app.app_context():
        backend.get_many = broken  # type: ignore[method-assign]
        assert [f(1) for _ in range(5)] == [1] * 5
    assert calls == [1] * 5
    assert len(records(logs, logging.WARNING)) == 1
