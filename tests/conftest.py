"""Shared fixtures: the real cache servers from ``servers.py``.

Session-scoped servers are shared by every test and must be left usable (tests scope
their keys with a unique prefix). Tests that break a server (kill, SIGSTOP, failover)
take one of the function-scoped throwaway fixtures instead.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest
from servers import (
    ClusterGroup,
    MemcachedServer,
    RedisServer,
    SentinelGroup,
    in_ci,
    start_memcached,
    start_memcached_sasl,
    start_redis,
)

from flask_caching.backends._memcached_drivers import ensure_sasl_plugin_path

# before any test module imports pylibmc (the guide's example module does, at its
# top): libsasl2 reads SASL_PATH when pylibmc loads it
ensure_sasl_plugin_path()

#: skips that describe what a backend cannot do, not something missing here
DESIGNED_SKIPS = ("clear() is not scoped by key prefix",)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    """Under CI=true a skip (a missing server, client library or tool) is a failure."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and in_ci() and not hasattr(report, "wasxfail"):
        reason = str(report.longrepr)
        if not any(designed in reason for designed in DESIGNED_SKIPS):
            report.outcome = "failed"
            report.longrepr = (
                f"skipped under CI=true, which must run everything: {reason}"
            )


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A standalone redis-server shared by the session."""
    server = start_redis()
    yield server
    server.close()


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[SentinelGroup]:
    """Master + replica + sentinel (master name "mymaster") shared by the session."""
    group = SentinelGroup()
    yield group
    group.close()


@pytest.fixture
def redis_sentinel_failover() -> Iterator[SentinelGroup]:
    """A private Sentinel group that a test may fail over (e.g. kill the master)."""
    group = SentinelGroup()
    yield group
    group.close()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[ClusterGroup]:
    """A 3-master Redis Cluster shared by the session."""
    group = ClusterGroup()
    yield group
    group.close()


@pytest.fixture
def throwaway_redis() -> Iterator[RedisServer]:
    """A private redis-server to kill(), stop(), cont() or restart() on its port."""
    server = start_redis(name="throwaway-redis")
    yield server
    server.close()


@pytest.fixture(scope="session")
def memcached_server() -> Iterator[MemcachedServer]:
    """A plain memcached shared by the session."""
    server = start_memcached()
    yield server
    server.close()


@pytest.fixture(scope="session")
def memcached_sasl_server() -> Iterator[MemcachedServer]:
    """A memcached that requires SASL PLAIN; see ``.username`` and ``.password``."""
    server = start_memcached_sasl()
    yield server
    server.close()


@pytest.fixture
def throwaway_memcached() -> Iterator[MemcachedServer]:
    """A private memcached to kill(), stop(), cont() or restart() on its port."""
    server = start_memcached()
    yield server
    server.close()
