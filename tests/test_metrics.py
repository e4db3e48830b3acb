"""CACHE_METRICS: the counters and the backend latency in Prometheus, in one process
and summed over the workers of a real gunicorn (prometheus_client multiprocess mode).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import typing as t
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from flask import Flask
from servers import HOST, free_port

from flask_caching import Cache
from flask_caching.exceptions import ConfigurationError

prometheus_client = pytest.importorskip("prometheus_client")

BOUND = 30.0


def sample(
    registry: t.Any, name: str, labels: dict[str, str], suffix: str = ""
) -> float:
    """The value of the sample *name* whose labels include *labels* and whose
    ``function`` label ends with *suffix*."""
    total = 0.0
    found = False
    for family in registry.collect():
        for s in family.samples:
            if s.name != name:
                continue
            if not s.labels.get("function", "").endswith(suffix):
                continue
            if all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
                found = True
    assert found, f"no sample {name} {labels} {suffix}"
    return total


def make_app(**config: t.Any) -> tuple[Flask, Cache]:
    app = Flask(f"metrics_{uuid.uuid4().hex[:6]}")
    app.config.update(CACHE_TYPE="SimpleCache", CACHE_METRICS=True)
    app.config.update(config)
    return app, Cache(app)


def test_counters_and_latency_are_exported() -> None:
    registry = prometheus_client.REGISTRY
    app, cache = make_app()
    name = f"view_{uuid.uuid4().hex[:8]}"

    def view() -> str:
        return "v"

    view.__name__ = view.__qualname__ = name
    app.add_url_rule("/v", name, cache.cached()(view))
    before = (
        sample(
            registry,
            "flask_caching_backend_seconds_count",
            {"cache": "SimpleCache", "operation": "get"},
        )
        if _has_latency(registry)
        else 0.0
    )
    client = app.test_client()
    for _ in range(3):
        assert client.get("/v").data == b"v"
    events = "flask_caching_events_total"
    assert sample(registry, events, {"event": "hits"}, "." + name) == 2
    assert sample(registry, events, {"event": "misses"}, "." + name) == 1
    assert sample(registry, events, {"event": "stale"}, "." + name) == 0
    after = sample(
        registry,
        "flask_caching_backend_seconds_count",
        {"cache": "SimpleCache", "operation": "get"},
    )
    assert after - before == 3
    with app.app_context():
        # cache.stats() tells the same counts
        own = cache.stats()["functions"]
    assert [v["hits"] for k, v in own.items() if k.endswith(name)] == [2]


def _has_latency(registry: t.Any) -> bool:
    return any(
        s.name == "flask_caching_backend_seconds_count"
        and s.labels.get("operation") == "get"
        and s.labels.get("cache") == "SimpleCache"
        for family in registry.collect()
        for s in family.samples
    )


def test_second_cache_gets_its_own_label() -> None:
    app = Flask("two_caches")
    app.config.update(CACHE_TYPE="SimpleCache", CACHE_METRICS=True)
    Cache(app)
    second = Cache(app)

    @second.memoize()
    def only_on_second(x: int) -> int:
        return x

    with app.app_context():
        only_on_second(1)
    value = sample(
        prometheus_client.REGISTRY,
        "flask_caching_events_total",
        {"cache": "SimpleCache#1", "event": "misses"},
        ".only_on_second",
    )
    assert value >= 1


def test_without_prometheus_client_init_app_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    app = Flask("no_prom")
    app.config.update(CACHE_TYPE="SimpleCache", CACHE_METRICS=True)
    with pytest.raises(ConfigurationError) as info:
        Cache(app)
    message = str(info.value)
    assert "CACHE_METRICS" in message and "metrics" in message
    assert "prometheus_client" in message


def test_metrics_off_by_default_exports_nothing_new() -> None:
    app = Flask("no_metrics")
    app.config.update(CACHE_TYPE="SimpleCache")
    cache = Cache(app)
    name = f"quiet_{uuid.uuid4().hex[:8]}"

    def quiet() -> str:
        return "q"

    quiet.__qualname__ = name
    wrapped = cache.memoize()(quiet)
    with app.app_context():
        wrapped()
    assert not any(
        s.labels.get("function", "").endswith(name)
        for family in prometheus_client.REGISTRY.collect()
        for s in family.samples
    )


# -- gunicorn, two workers, multiprocess mode -------------------------------------

APP_SOURCE = textwrap.dedent(
    """
    import os
    import time

    from flask import Flask
    from flask_caching import Cache

    app = Flask("gunicorn_metrics")
    app.config.update(CACHE_TYPE="SimpleCache", CACHE_METRICS=True)
    cache = Cache(app)

    @app.before_request
    def pace():
        time.sleep(0.01)  # so concurrent requests spread over the workers

    @app.after_request
    def who(response):
        response.headers["X-Worker"] = str(os.getpid())
        return response

    @app.route("/page")
    @cache.cached()
    def page():
        return "page"
    """
)


@pytest.fixture
def gunicorn_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """gunicorn, 2 sync workers, on a free loopback port, PROMETHEUS_MULTIPROC_DIR
    a fresh directory; stopped by PID."""
    pytest.importorskip("gunicorn")
    (tmp_path / "fc_gunicorn_app.py").write_text(APP_SOURCE)
    multiproc = tmp_path / "prom"
    multiproc.mkdir()
    port = free_port()
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(multiproc))
    argv = [sys.executable, "-m", "gunicorn", "--workers", "2", "--worker-class"]
    argv += ["sync", "--bind", f"{HOST}:{port}", "--chdir", str(tmp_path)]
    argv += ["--log-level", "warning", "fc_gunicorn_app:app"]
    proc = subprocess.Popen(argv, env=env, start_new_session=True)
    base = f"http://{HOST}:{port}"
    try:
        _wait_until_up(proc, base + "/page")
        yield base, multiproc
    finally:
        _stop(proc)


def _wait_until_up(proc: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not answer in time")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # the master stops its workers
        try:
            proc.wait(timeout=BOUND)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group the master leads
            proc.wait(timeout=BOUND)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"page"
        return str(response.headers["X-Worker"])


def test_counters_summed_over_gunicorn_workers(
    gunicorn_server: tuple[str, Path],
) -> None:
    base, multiproc = gunicorn_server
    workers: list[str] = [_get(base + "/page")]  # the readiness probe's one too
    workers.append(_get(base + "/page"))
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(5):  # bounded: at most 5 x 40 requests
            workers += pool.map(_get, [base + "/page"] * 40)
            if len(set(workers)) == 2:
                break
    assert len(set(workers)) == 2, "the requests never reached the second worker"
    requests = len(workers) + 1  # + the readiness probe
    registry = prometheus_client.CollectorRegistry()
    from prometheus_client import multiprocess

    multiprocess.MultiProcessCollector(registry, path=str(multiproc))  # type: ignore[no-untyped-call]
    events = "flask_caching_events_total"
    labels = {"cache": "SimpleCache", "function": "fc_gunicorn_app.page"}
    # SimpleCache lives in each worker: each worker's first request was its miss
    assert sample(registry, events, {**labels, "event": "misses"}) == 2
    assert sample(registry, events, {**labels, "event": "hits"}) == requests - 2
    latency = "flask_caching_backend_seconds_count"
    gets = sample(registry, latency, {"cache": "SimpleCache", "operation": "get"})
    sets = sample(registry, latency, {"cache": "SimpleCache", "operation": "set"})
    assert (gets, sets) == (requests, 2)
