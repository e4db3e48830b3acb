"""Real cache servers failing under a running app: every request still answers, fast.

Each test drives a ``@cached`` view and a ``@memoize``-backed view with the Flask test
client, breaks a throwaway server (SIGKILL, SIGSTOP, corrupted values), and checks
that every response is a 200 with the right body. Latencies during the fault and the
number of requests served are printed (run with ``-s`` to see them)::

    FAULT redis kill: 400 requests in 0.31 s, p50 0.52 ms, p99 0.91 ms, max 1.8 ms

All loops are bounded in requests and seconds; servers are stopped by PID by their
fixtures, and a SIGSTOPped server always gets SIGCONT.
"""

from __future__ import annotations

import logging
import math
import pickle
import statistics
import time
import typing as t
import uuid
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from servers import MemcachedServer, RedisServer

from flask_caching import Cache
from flask_caching.backends.rediscache import DEFAULT_SOCKET_TIMEOUT
from flask_caching.resilience import DEFAULT_COOLDOWN
from flask_caching.runtime import Runtime

pytestmark = pytest.mark.slow

LOGGER = "flask_caching"
#: the latency budget per request while the server is dead (defaults, no tuning)
OUTAGE_P99 = 0.050
#: requests and seconds of traffic during a fault, whichever runs out first
FAULT_REQUESTS = 400
FAULT_SECONDS = 1.5
#: how long the SIGSTOP lasts, and the breaker's cool-down meanwhile
STOP_SECONDS = 2.5
STOP_COOLDOWN = 1.0
#: slack over the read timeout for one request against a stopped server
STOP_MARGIN = 0.25


class Site:
    """A small app: ``/page`` is ``@cached``, ``/square/<n>`` calls a memoized function."""

    def __init__(self, config: dict[str, t.Any]) -> None:
        self.app = Flask(__name__)
        self.app.config.update(config)
        self.cache = Cache(self.app)
        self.client: FlaskClient = self.app.test_client()
        self.page_calls = 0
        self.square_calls = 0
        cache = self.cache

        @cache.memoize(timeout=300)
        def square(n: int) -> int:
            self.square_calls += 1
            return n * n

        @self.app.route("/page")
        @cache.cached(timeout=300)
        def page() -> str:
            self.page_calls += 1
            return "the page"

        @self.app.route("/square/<int:n>")
        def square_view(n: int) -> str:
            return f"{n} squared is {square(n)}"

    @property
    def runtime(self) -> Runtime:
        rt: Runtime = self.app.extensions["flask_caching"][self.cache]
        return rt

    def request(self, i: int) -> float:
        """One request (alternating the two views); assert it; return its latency."""
        if i % 2:
            url, body = "/page", "the page"
        else:
            n = i % 7
            url, body = f"/square/{n}", f"{n} squared is {n * n}"
        start = time.perf_counter()
        response = self.client.get(url)
        elapsed = time.perf_counter() - start
        assert response.status_code == 200, (url, response.status_code)
        assert response.text == body
        return elapsed

    def traffic(self, seconds: float, limit: int = FAULT_REQUESTS) -> list[float]:
        """Requests until *seconds* pass or *limit* were made; their latencies."""
        latencies: list[float] = []
        deadline = time.monotonic() + seconds
        for i in range(limit):
            latencies.append(self.request(i))
            if time.monotonic() > deadline:
                break
        return latencies

    def hits(self) -> bool:
        """Do both views hit now? (A miss computes; the next identical call must not.)"""
        self.client.get("/page")
        self.client.get("/square/5")
        page, square = self.page_calls, self.square_calls
        assert self.client.get("/page").text == "the page"
        assert self.client.get("/square/5").text == "5 squared is 25"
        return (self.page_calls, self.square_calls) == (page, square)

    def wait_for_hits(self, within: float) -> tuple[float, int]:
        """Poll until both views hit again; (seconds it took, requests made)."""
        start = time.monotonic()
        requests = 0
        while time.monotonic() - start < within:
            requests += 4
            if self.hits():
                return time.monotonic() - start, requests
            time.sleep(0.05)
        raise AssertionError(f"no cache hits {within:.1f} s after the server came back")


def report(name: str, latencies: list[float], extra: str = "") -> dict[str, float]:
    """Print (for ``-s``) and return the latency figures of one fault."""
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    figures = {
        "requests": len(latencies),
        "seconds": sum(latencies),
        "p50": statistics.median(latencies),
        "p99": cuts[98],
        "max": max(latencies),
    }
    print(
        f"\nFAULT {name}: {len(latencies)} requests in {figures['seconds']:.2f} s,"
        f" p50 {figures['p50'] * 1000:.2f} ms, p99 {figures['p99'] * 1000:.2f} ms,"
        f" max {figures['max'] * 1000:.1f} ms{extra}"
    )
    return figures


def flask_caching_records(
    caplog: pytest.LogCaptureFixture, level: int, text: str = ""
) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == LOGGER and r.levelno == level and text in r.getMessage()
    ]


# --- the servers ------------------------------------------------------------------

Target = tuple[str, t.Any, Callable[[], dict[str, t.Any]]]


def redis_config(server: RedisServer) -> dict[str, t.Any]:
    return {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": server.url}


def memcached_config(server: MemcachedServer, client: str) -> dict[str, t.Any]:
    return {
        "CACHE_TYPE": "MemcachedCache",
        "CACHE_MEMCACHED_SERVERS": [server.address],
        "CACHE_OPTIONS": {"client": client},
    }


@pytest.fixture(params=["redis", "memcached-pylibmc", "memcached-pymemcache"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """A throwaway server to break, and the settings of an app using it."""
    name = request.param
    if name == "redis":
        redis: RedisServer = request.getfixturevalue("throwaway_redis")
        yield name, redis, lambda: redis_config(redis)
    else:
        client = name.partition("-")[2]
        pytest.importorskip(client)
        memcached: MemcachedServer = request.getfixturevalue("throwaway_memcached")
        yield name, memcached, lambda: memcached_config(memcached, client)


# --- kill, then restart on the same port -------------------------------------------


@pytest.mark.redis
@pytest.mark.memcached
def test_killed_server_every_request_answers_fast_and_hits_resume_after_restart(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    name, server, config = target
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    site = Site(config())
    assert site.hits()  # warm and working

    server.kill()
    latencies = site.traffic(FAULT_SECONDS)
    figures = report(f"{name} kill", latencies)
    assert figures["p99"] < OUTAGE_P99
    assert site.runtime.reads.is_open  # the breaker took over

    server.restart()
    took, polled = site.wait_for_hits(within=DEFAULT_COOLDOWN + 4)
    print(f"FAULT {name} restart: hits resumed {took:.2f} s later ({polled} requests)")

    warnings = flask_caching_records(caplog, logging.WARNING)
    assert len(warnings) == 1, [w.getMessage() for w in warnings]
    assert len(flask_caching_records(caplog, logging.INFO, "works again")) == 1


@pytest.mark.redis
def test_probes_during_a_long_outage_stay_fast(
    throwaway_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A short cool-down: several probes meet the dead server before it returns."""
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    site = Site({**redis_config(throwaway_redis), "CACHE_FAILURE_COOLDOWN": 0.2})
    assert site.hits()
    throwaway_redis.kill()
    latencies: list[float] = []
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and len(latencies) < FAULT_REQUESTS:
        latencies.append(site.request(len(latencies)))
        time.sleep(0.002)
    probes = len(flask_caching_records(caplog, logging.DEBUG, "probing"))
    figures = report(
        "redis kill, 0.2 s cool-down", latencies, f"; {probes} failed probes"
    )
    assert probes >= 3
    # p99, as in the other outage tests: a single slow request on a loaded 2-core
    # machine is scheduling, not the cache
    assert figures["p99"] < OUTAGE_P99
    throwaway_redis.restart()
    took, polled = site.wait_for_hits(within=2)
    print(f"FAULT redis restart: hits resumed {took:.2f} s later ({polled} requests)")
    assert len(flask_caching_records(caplog, logging.WARNING)) == 1


# --- SIGSTOP: the port accepts connections, nothing answers -------------------------


@pytest.mark.redis
@pytest.mark.memcached
def test_stopped_server_costs_each_request_at_most_the_read_timeout(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    name, server, config = target
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    # a 1 s cool-down, so probes meet the stopped server too (and the test is short)
    site = Site({**config(), "CACHE_FAILURE_COOLDOWN": STOP_COOLDOWN})
    assert site.hits()
    read_timeout = DEFAULT_SOCKET_TIMEOUT  # memcached's default is the same 0.5 s
    server.stop()
    try:
        latencies = site.traffic(STOP_SECONDS, limit=FAULT_REQUESTS)
    finally:
        server.cont()
    slow = sum(1 for x in latencies if x > 0.1)
    figures = report(
        f"{name} SIGSTOP",
        latencies,
        f"; {slow} requests waited for the {read_timeout} s read timeout",
    )
    assert figures["max"] < read_timeout + STOP_MARGIN
    # the first failures open the breaker; then only its probes wait
    probes = math.ceil(STOP_SECONDS / STOP_COOLDOWN) + 1
    assert slow <= site.runtime.reads.threshold + probes
    took, polled = site.wait_for_hits(within=STOP_COOLDOWN + 4)
    print(f"FAULT {name} SIGCONT: hits resumed {took:.2f} s later ({polled} requests)")
    assert len(flask_caching_records(caplog, logging.WARNING)) == 1


# --- corrupted values ---------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(lambda raw: b"!" + b"\x80\x05not a pickle at all", id="garbage"),
        pytest.param(lambda raw: b"\x80\x05not a pickle at all", id="garbage-legacy"),
        pytest.param(lambda raw: raw[: len(raw) // 2], id="truncated"),
        pytest.param(lambda raw: b"!", id="mark-only"),
    ],
)
def test_a_corrupted_redis_value_is_a_miss_and_is_rewritten(
    redis_server: RedisServer,
    corrupt: Callable[[bytes], bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    prefix = f"fc-corrupt-{uuid.uuid4().hex[:8]}:"
    site = Site({**redis_config(redis_server), "CACHE_KEY_PREFIX": prefix})
    assert site.hits()
    page_key = prefix.encode() + b"view//page"
    with redis_server.client() as raw_client:
        names = sorted(raw_client.keys(prefix + "*"))
        values = [n for n in names if not n.endswith(b"_memver")]
        assert len(values) == 2 and page_key in values  # the page and square(5)
        (square_key,) = [n for n in values if n != page_key]
        # released Flask-Caching's bytes: b"!" + pickle of the str, the int as digits
        assert raw_client.get(square_key) == b"25"
        raw_page = raw_client.get(page_key)
        assert raw_page[:1] == b"!" and pickle.loads(raw_page[1:]) == "the page"
        for n in values:
            raw_client.set(n, corrupt(raw_page))  # a pickle that does not load
        page, square = site.page_calls, site.square_calls
        assert site.client.get("/page").text == "the page"
        assert site.client.get("/square/5").text == "5 squared is 25"
        assert (site.page_calls, site.square_calls) == (page + 1, square + 1)  # misses
        # rewritten with real entries
        assert raw_client.get(page_key) == raw_page
        assert raw_client.get(square_key) == b"25"
    assert site.hits()
    assert site.runtime.reads.failures == 0  # unreadable data is not an outage
    assert not flask_caching_records(caplog, logging.WARNING)


@pytest.mark.redis
def test_foreign_redis_bytes_are_read_as_bytes_as_cachelib_reads_them(
    redis_server: RedisServer,
) -> None:
    # bytes in no known format belong to another program: cachelib (and released
    # Flask-Caching) hand them back unchanged instead of calling them a miss
    prefix = f"fc-foreign-{uuid.uuid4().hex[:8]}:"
    site = Site({**redis_config(redis_server), "CACHE_KEY_PREFIX": prefix})
    with redis_server.client() as raw_client:
        raw_client.set(prefix + "text", b"plain text")
        raw_client.set(prefix + "empty", b"")
        raw_client.set(prefix + "digits", b"42")
    with site.app.app_context():
        assert site.cache.get_many("text", "empty", "digits") == [
            b"plain text",
            b"",
            42,
        ]
