"""One computation per missing key: ``lock=True`` on @cached / @memoize.

Threads and asyncio tasks share a flight inside one process; processes share a lock
entry in a real backend (redis-server, memcached, a directory). Two ``Cache`` objects
on one server stand in for two processes where a subprocess would only add seconds.
Every thread pool, subprocess and wait here is bounded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import typing as t
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import cachelib.file
import pytest
from flask import Flask

from flask_caching import Cache
from flask_caching import locks as locks_mod
from flask_caching.backends.base import BaseCache
from flask_caching.exceptions import ConfigurationError
from flask_caching.runtime import Runtime

#: seconds any thread or subprocess of these tests may take before the test fails
BOUND = 20.0

BACKENDS = ["simple", "filesystem", "redis", "memcached"]
SHARED_BACKENDS = ["redis", "memcached", "filesystem"]


def config_for(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> dict[str, t.Any]:
    """CACHE_* settings for a fresh, empty namespace on the named backend."""
    prefix = f"lk{uuid.uuid4().hex[:10]}_"
    if name == "simple":
        return {"CACHE_TYPE": "SimpleCache"}
    if name == "filesystem":
        return {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(tmp_path / "fs")}
    if name == "redis-cluster":
        group = request.getfixturevalue("redis_cluster")
        return {
            "CACHE_TYPE": "RedisClusterCache",
            "CACHE_REDIS_CLUSTER": group.startup,
            "CACHE_KEY_PREFIX": prefix,
        }
    if name == "redis":
        server = request.getfixturevalue("redis_server")
        return {
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_URL": server.url,
            "CACHE_KEY_PREFIX": prefix,
        }
    assert name == "memcached"
    pytest.importorskip("flask_caching.backends.memcache")
    server = request.getfixturevalue("memcached_server")
    return {
        "CACHE_TYPE": "MemcachedCache",
        "CACHE_MEMCACHED_SERVERS": [server.address],
        "CACHE_KEY_PREFIX": prefix,
    }


def make_app(config: dict[str, t.Any]) -> tuple[Flask, Cache]:
    app = Flask(f"locks-{uuid.uuid4().hex[:6]}")
    return app, Cache(app, config=config)


def runtime(app: Flask, cache: Cache) -> Runtime:
    return t.cast(Runtime, app.extensions["flask_caching"][cache])


def run_threads(
    count: int, target: Callable[[int], t.Any], *, start: float | None = None
) -> list[t.Any]:
    """Call ``target(i)`` in *count* threads released together; results or the
    exceptions they raised, by index."""
    barrier = threading.Barrier(count)
    results: list[t.Any] = [None] * count

    def body(i: int) -> None:
        barrier.wait(timeout=BOUND)
        try:
            results[i] = target(i)
        except Exception as exc:
            results[i] = exc

    threads = [
        threading.Thread(target=body, args=(i,), daemon=True) for i in range(count)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join(BOUND)
        assert not th.is_alive(), "a caller hung"
    return results


@pytest.fixture(autouse=True)
def no_flight_left_behind() -> Iterator[None]:
    yield
    assert len(locks_mod.FLIGHTS) == 0


# --- in one process ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["memoize", "cached"])
def test_32_threads_on_a_cold_key_compute_once(kind: str) -> None:
    app, cache = make_app({"CACHE_TYPE": "SimpleCache"})
    runs: list[int] = []

    def slow(x: int) -> str:
        runs.append(x)
        time.sleep(0.2)
        return f"value-{x}"

    if kind == "memoize":
        f = cache.memoize(timeout=60, lock=True)(slow)
    else:
        f = cache.cached(timeout=60, key_prefix="cold", lock=True)(slow)

    def call(i: int) -> str:
        with app.app_context():
            return f(7)

    results = run_threads(32, call)
    assert results == ["value-7"] * 32
    assert runs == [7]


def test_cache_lock_setting_is_the_default() -> None:
    app, cache = make_app({"CACHE_TYPE": "SimpleCache", "CACHE_LOCK": True})
    runs: list[int] = []

    @cache.memoize(timeout=60)
    def f(x: int) -> int:
        runs.append(x)
        time.sleep(0.1)
        return x * 2

    @cache.memoize(timeout=60, lock=False)
    def g(x: int) -> int:
        runs.append(-x)
        time.sleep(0.1)
        return x * 3

    def call(i: int) -> tuple[int, int]:
        with app.app_context():
            return f(2), g(2)

    assert run_threads(8, call) == [(4, 6)] * 8
    assert runs.count(2) == 1
    assert runs.count(-2) == 8  # lock=False wins over CACHE_LOCK


def test_asyncio_tasks_share_one_computation_without_blocking_the_loop() -> None:
    app, cache = make_app({"CACHE_TYPE": "SimpleCache"})
    runs: list[int] = []

    @cache.memoize(timeout=60, lock=True)
    async def f(x: int) -> int:
        runs.append(x)
        await asyncio.sleep(0.2)
        return x + 1

    async def main() -> tuple[list[int], int]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        tick = asyncio.create_task(ticker())
        values = await asyncio.gather(*(f(1) for _ in range(16)))
        done.set()
        await tick
        return list(values), ticks

    with app.app_context():
        values, ticks = asyncio.run(main())
    assert values == [2] * 16
    assert runs == [1]
    assert ticks >= 10  # the waiting tasks never blocked the event loop


def test_event_loops_in_several_threads_share_one_computation() -> None:
    """Flask runs each async view in its own loop: the flight wakes them all."""
    app, cache = make_app({"CACHE_TYPE": "SimpleCache"})
    runs: list[int] = []

    @cache.memoize(timeout=60, lock=True)
    async def f(x: int) -> int:
        runs.append(x)
        await asyncio.sleep(0.2)
        return x + 1

    def call(i: int) -> int:
        with app.app_context():
            return asyncio.run(f(5))

    assert run_threads(8, call) == [6] * 8
    assert runs == [5]


def test_a_hit_with_locking_costs_one_get_many() -> None:
    app, cache = make_app({"CACHE_TYPE": "SimpleCache"})

    @cache.memoize(timeout=60, lock=True)
    def f(x: int) -> int:
        return x

    @cache.cached(timeout=60, key_prefix="hit-view", lock=True)
    def view() -> str:
        return "body"

    rt = runtime(app, cache)
    with app.app_context():
        f(1)
        view()
        spy = mock.Mock(wraps=rt.backend)
        rt.backend = spy
        assert f(1) == 1
        assert view() == "body"
    # memoize: its version key and value key together; the view: its one key
    assert [c[0] for c in spy.method_calls] == ["get_many", "get"]


def test_a_locked_miss_takes_rereads_and_releases_the_lock() -> None:
    app, cache = make_app({"CACHE_TYPE": "SimpleCache"})

    @cache.cached(timeout=60, key_prefix="miss-view", lock=True)
    def view() -> str:
        return "body"

    rt = runtime(app, cache)
    spy = mock.Mock(wraps=rt.backend)
    rt.backend = spy
    with app.app_context():
        assert view() == "body"
    assert [c[0] for c in spy.method_calls] == [
        "get",  # the miss
        "acquire_lock",
        "get",  # re-check under the lock
        "set",
        "release_lock",
    ]
    assert rt.backend.get(locks_mod.lock_key("miss-view")) is None


def test_a_reentrant_call_does_not_wait_for_itself() -> None:
    app, cache = make_app({"CACHE_TYPE": "SimpleCache"})

    @cache.memoize(timeout=60, lock=True, lock_timeout=5, args_to_ignore=["depth"])
    def f(x: int, depth: int = 0) -> int:
        if depth == 0:
            return f(x, depth=1) + 1  # the same key, from inside its computation
        return x

    started = time.monotonic()
    with app.app_context():
        assert f(10) in (10, 11)
    assert time.monotonic() - started < 1


# --- exceptions and results that are not stored -------------------------------------


def test_an_exception_releases_the_waiters_who_compute_for_themselves() -> None:
    app, cache = make_app({"CACHE_TYPE": "SimpleCache"})
    runs: list[int] = []
    guard = threading.Lock()

    @cache.memoize(timeout=60, lock=True, lock_timeout=5)
    def f(x: int) -> str:
        with guard:
            runs.append(x)
            first = len(runs) == 1
        time.sleep(0.3)
        if first:
            raise RuntimeError("boom")
        return "ok"

    def call(i: int) -> str:
        with app.app_context():
            return f(1)

    started = time.monotonic()
    results = run_threads(8, call)
    elapsed = time.monotonic() - started
    errors = [r for r in results if isinstance(r, RuntimeError)]
    assert len(errors) == 1 and str(errors[0]) == "boom"
    assert results.count("ok") == 7
    assert len(runs) == 8
    assert elapsed < 2  # released at once, not after the 5 s lease
    with app.app_context():
        rt = runtime(app, cache)
        assert rt.backend.get(locks_mod.lock_key(f.make_cache_key(1))) in (
            None,
            "fc-pass",
        )
        assert f(1) == "ok"
    assert len(runs) == 8  # a waiter's result was stored


@pytest.mark.parametrize("how", ["none", "response_filter"])
def test_an_uncacheable_result_releases_the_waiters_at_once(how: str) -> None:
    app, cache = make_app({"CACHE_TYPE": "SimpleCache"})
    runs: list[int] = []

    def slow() -> str | None:
        runs.append(1)
        time.sleep(0.3)
        return None if how == "none" else "private"

    f = cache.cached(
        timeout=60,
        key_prefix="uncacheable",
        lock=True,
        lock_timeout=5,
        response_filter=(lambda rv: False) if how == "response_filter" else None,
    )(slow)

    def call(i: int) -> t.Any:
        with app.app_context():
            return f()

    started = time.monotonic()
    results = run_threads(8, call)
    elapsed = time.monotonic() - started
    assert len(set(results)) == 1 and not isinstance(results[0], Exception)
    assert len(runs) == 8  # everyone computed, none was stored
    assert elapsed < 1.5  # in parallel after the first, not one after another


def test_remote_waiters_stop_waiting_when_the_holder_raises(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Two Caches on one redis-server: the second only sees the lock entry."""
    config = config_for("redis", request, tmp_path)
    app1, cache1 = make_app(config)
    app2, cache2 = make_app(config)
    runs: list[str] = []
    entered = threading.Event()

    def body(who: str) -> str:
        runs.append(who)
        if who == "holder":
            entered.set()
            time.sleep(0.3)
            raise RuntimeError("holder failed")
        return "from-waiter"

    # ``who`` is not part of the key: both wrap the same logical function
    f1 = cache1.memoize(
        timeout=60,
        lock=True,
        lock_timeout=5,
        make_name=lambda n: "rx",
        args_to_ignore=["who"],
    )(_two_args(body))
    f2 = cache2.memoize(
        timeout=60,
        lock=True,
        lock_timeout=5,
        make_name=lambda n: "rx",
        args_to_ignore=["who"],
    )(_two_args(body))

    def holder() -> t.Any:
        with app1.app_context():
            try:
                return f1(1, who="holder")
            except RuntimeError as exc:
                return exc

    out: list[t.Any] = []
    th = threading.Thread(target=lambda: out.append(holder()), daemon=True)
    th.start()
    assert entered.wait(BOUND)
    started = time.monotonic()
    with app2.app_context():
        assert f2(1, who="waiter") == "from-waiter"
    elapsed = time.monotonic() - started
    th.join(BOUND)
    assert isinstance(out[0], RuntimeError)
    assert runs == ["holder", "waiter"]
    assert elapsed < 1.5  # woken by the PASS marker, not by the 5 s lease


def _two_args(body: Callable[[str], str]) -> Callable[..., str]:
    def f(x: int, who: str) -> str:
        return body(who)

    return f


def test_waiting_is_bounded_by_the_lock_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A holder that never finishes (its lease outlives the wait) is given up on."""
    app, cache = make_app({"CACHE_TYPE": "SimpleCache"})
    runs: list[int] = []

    @cache.memoize(timeout=60, lock=True, lock_timeout=0.5)
    def f(x: int) -> int:
        runs.append(x)
        return x

    rt = runtime(app, cache)
    with app.app_context():
        key = f.make_cache_key(3)
        assert rt.backend.acquire_lock(locks_mod.lock_key(key), "someone-else", 60)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="flask_caching"):
            assert f(3) == 3
        elapsed = time.monotonic() - started
    assert runs == [3]
    assert 1.4 <= elapsed < 3  # lock_timeout + its margin (min(2 * lease, 1.5 s))
    assert "computing without it" in caplog.text
    # the other owner's lock is untouched
    assert rt.backend.get(locks_mod.lock_key(key)) == "someone-else"


# --- the backend lock ---------------------------------------------------------------


@pytest.mark.parametrize("name", [*BACKENDS, "redis-cluster"])
def test_release_is_owner_checked(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    app, cache = make_app(config_for(name, request, tmp_path))
    backend: BaseCache = runtime(app, cache).backend
    key = locks_mod.lock_key("owner-check")
    assert backend.acquire_lock(key, "token-a", 5)
    assert not backend.acquire_lock(key, "token-b", 5)
    assert not backend.release_lock(key, "token-b")
    assert backend.get(key) == "token-a"
    assert backend.release_lock(key, "token-a")
    assert backend.get(key) is None
    assert backend.acquire_lock(key, "token-b", 5)
    assert backend.release_lock(key, "token-b")
    assert not backend.release_lock(key, "token-b")  # nothing left to release


def test_a_backend_without_lock_methods_locks_with_add_and_frees_the_lock() -> None:
    app, cache = make_app({"CACHE_TYPE": "cachelib.SimpleCache"})
    rt = runtime(app, cache)
    assert not hasattr(rt.backend, "acquire_lock")
    assert not hasattr(rt.backend, "release_lock")
    held: list[t.Any] = []

    @cache.cached(timeout=60, key_prefix="foreign", lock=True)
    def slow() -> str:
        held.append(rt.backend.get(locks_mod.lock_key("foreign")))
        time.sleep(0.2)
        return "value"

    def call(i: int) -> str:
        with app.app_context():
            return slow()

    assert run_threads(8, call) == ["value"] * 8
    assert len(held) == 1 and isinstance(held[0], str) and held[0]
    assert rt.backend.get(locks_mod.lock_key("foreign")) is None


def test_filesystem_add_over_an_expired_entry_has_one_winner(tmp_path: Path) -> None:
    """The lease takeover: many racing add()s replace an expired file, one wins."""
    from flask_caching.backends.filesystemcache import FileSystemCache

    backend = FileSystemCache(str(tmp_path / "race"), threshold=0)
    real = cachelib.file.time
    for round_ in range(25):
        key = f"expired-{round_}"
        # written through the backend by a clock two minutes back: expired at once
        with mock.patch.object(cachelib.file, "time", lambda: real() - 120):
            assert backend.set(key, "old", timeout=60)
        assert not backend.has(key) and os.path.exists(backend._filename(key))
        wins = run_threads(
            12, lambda i, key=key: backend.add(key, f"owner-{i}", timeout=60)
        )
        assert wins.count(True) == 1, wins
        winner = wins.index(True)
        assert backend.get(key) == f"owner-{winner}"


def test_lock_settings_are_checked() -> None:
    for bad in (
        {"CACHE_LOCK_TIMEOUT": 0},
        {"CACHE_LOCK_TIMEOUT": True},
        {"CACHE_LOCK": "yes"},
    ):
        with pytest.raises(ConfigurationError, match=next(iter(bad))):
            make_app({"CACHE_TYPE": "SimpleCache", **bad})
    with pytest.raises(ConfigurationError, match="CACHE_STALE_IF_ERROR"):
        make_app({"CACHE_TYPE": "SimpleCache", "CACHE_STALE_IF_ERROR": -1})
    app, cache = make_app({"CACHE_TYPE": "SimpleCache", "CACHE_LOCK_TIMEOUT": 2.5})
    settings = runtime(app, cache).settings
    assert (settings.lock, settings.lock_timeout) == (False, 2.5)


def test_lock_options_are_checked_at_decoration_time() -> None:
    app, cache = make_app({"CACHE_TYPE": "SimpleCache"})
    with pytest.raises(ValueError, match="lock_timeout"):
        cache.memoize(lock=True, lock_timeout=0)
    with pytest.raises(TypeError, match="lock_timeout"):
        cache.cached(lock=True, lock_timeout="10")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="lock must be"):
        cache.memoize(lock="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stale_while_revalidate"):
        cache.cached(stale_while_revalidate=-1)


# --- across processes ---------------------------------------------------------------

#: a worker process: per command line (JSON), build the app, say "ready", wait for
#: "go", call the memoized function from N threads at once, print the results
WORKER = textwrap.dedent(
    """
    import json, os, sys, threading, time
    from flask import Flask
    from flask_caching import Cache

    for command in sys.stdin:
        config, counter, key, threads, delay, lease = json.loads(command)
        app = Flask("worker")
        cache = Cache(app, config=config)

        def compute(name):  # only ``name`` is in the key, as in the parent
            with open(counter, "a") as fh:
                fh.write(f"{os.getpid()}\\n")
            time.sleep(delay)
            return f"{name}@{os.getpid()}"

        # the parent's function has this namespace too: one version key for both
        compute.__module__, compute.__qualname__ = "stampede", "compute"
        compute = cache.memoize(timeout=60, lock=True, lock_timeout=lease)(compute)

        print("ready", flush=True)
        sys.stdin.readline()
        barrier = threading.Barrier(threads)
        results = []

        def call():
            barrier.wait()
            with app.app_context():
                results.append(compute(key))

        pool = [threading.Thread(target=call) for _ in range(threads)]
        for th in pool:
            th.start()
        for th in pool:
            th.join()
        print(json.dumps(results), flush=True)
    """
)


class Worker:
    """One worker subprocess; stopped by PID (SIGKILL) when the module is done."""

    def __init__(self, script: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def line(self) -> str:
        """The next output line, or fail the test if none comes in time."""
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        out: list[str] = []
        th = threading.Thread(target=lambda: out.append(stdout.readline()), daemon=True)
        th.start()
        th.join(BOUND)
        assert out and out[0], "a worker did not answer in time"
        return out[0].strip()

    def start_round(self, *args: t.Any) -> None:
        self.send(json.dumps(list(args)))
        assert self.line() == "ready"

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(BOUND)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


class Pool:
    """Worker processes shared by this module's tests (Python start-up is the slow
    part); a test that kills one takes it out of the pool."""

    def __init__(self, script: Path, size: int) -> None:
        self.script = script
        self.idle = [Worker(script) for _ in range(size)]
        self.all = list(self.idle)

    def take(self, n: int) -> list[Worker]:
        while len(self.idle) < n:
            worker = Worker(self.script)
            self.idle.append(worker)
            self.all.append(worker)
        taken, self.idle = self.idle[:n], self.idle[n:]
        return taken

    def give_back(self, workers: list[Worker]) -> None:
        self.idle.extend(w for w in workers if w.proc.poll() is None)

    def close(self) -> None:
        for worker in self.all:
            worker.kill()


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pool]:
    script = tmp_path_factory.mktemp("workers") / "worker.py"
    script.write_text(WORKER)
    workers = Pool(script, 4)
    yield workers
    workers.close()


def _read_lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


@pytest.mark.slow
@pytest.mark.parametrize("name", SHARED_BACKENDS)
def test_4_processes_x_8_threads_compute_once(
    name: str, request: pytest.FixtureRequest, tmp_path: Path, pool: Pool
) -> None:
    config = config_for(name, request, tmp_path)
    counter = tmp_path / "runs.txt"
    key = uuid.uuid4().hex
    workers = pool.take(4)
    try:
        for w in workers:
            w.start_round(config, str(counter), key, 8, 0.3, 10)
        for w in workers:
            w.send("go")
        results = [json.loads(w.line()) for w in workers]
    finally:
        pool.give_back(workers)
    values = [v for batch in results for v in batch]
    assert len(values) == 32
    assert len(set(values)) == 1, set(values)
    runs = _read_lines(counter)
    print(f"{name}: {len(runs)} run(s) for 4 processes x 8 threads")
    assert len(runs) == 1


@pytest.mark.slow
@pytest.mark.parametrize("name", SHARED_BACKENDS)
def test_a_killed_holder_blocks_nobody_past_its_lease(
    name: str, request: pytest.FixtureRequest, tmp_path: Path, pool: Pool
) -> None:
    config = config_for(name, request, tmp_path)
    counter = tmp_path / "runs.txt"
    key = uuid.uuid4().hex
    lease = 1.0
    [holder] = pool.take(1)
    try:
        holder.start_round(config, str(counter), key, 1, 60, lease)
        holder.send("go")
        deadline = time.monotonic() + BOUND
        while not _read_lines(counter):  # the holder took the lock and computes
            assert time.monotonic() < deadline
            time.sleep(0.01)

        app, cache = make_app(config)
        mine: list[int] = []

        def body(name: str) -> str:
            mine.append(1)
            with open(counter, "a") as fh:
                fh.write(f"{os.getpid()}\n")
            time.sleep(0.1)
            return f"{name}@{os.getpid()}"

        # the worker's namespace: memoize keys (version key included) are shared
        body.__module__, body.__qualname__ = "stampede", "compute"
        compute = cache.memoize(timeout=60, lock=True, lock_timeout=lease)(body)

        lock_key = ""
        with app.app_context():
            lock_key = locks_mod.lock_key(compute.make_cache_key(key))
        backend = runtime(app, cache).backend
        killed_at = 0.0

        def call(i: int) -> t.Any:
            nonlocal killed_at
            if i == 0:
                time.sleep(0.2)
                held = backend.get(lock_key)  # the waiters' key is the holder's
                holder.kill()  # SIGKILL, mid-computation
                killed_at = time.monotonic()
                return held
            with app.app_context():
                return compute(key)

        results = run_threads(9, call)
        elapsed = time.monotonic() - killed_at
    finally:
        holder.kill()
    assert isinstance(results[0], str) and len(results[0]) == 24  # a live lock token
    assert results[1:] == [f"{key}@{os.getpid()}"] * 8
    assert len(_read_lines(counter)) == 2  # the dead holder's run, and one more
    assert mine == [1]
    print(f"{name}: waiters got the value {elapsed:.2f}s after the holder died")
    assert elapsed < lease + 2
    with app.app_context():
        assert compute(key) == f"{key}@{os.getpid()}"  # and it was stored
    assert mine == [1]


def test_redis_leases_are_not_rounded_up_to_seconds(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    app, cache = make_app(config_for("redis", request, tmp_path))
    backend: BaseCache = runtime(app, cache).backend
    key = locks_mod.lock_key("short-lease")
    assert backend.acquire_lock(key, "a", 0.3)
    assert not backend.acquire_lock(key, "b", 0.3)
    time.sleep(0.4)
    assert backend.acquire_lock(key, "b", 0.3)  # SET NX PX 300 ran out
    assert backend.release_lock(key, "b")


def _lock_refusing_factory(
    app: Flask, config: t.Any, args: t.Any, kwargs: t.Any
) -> BaseCache:
    from flask_caching.backends.simplecache import SimpleCache

    class LockRefusing(SimpleCache):
        """Reads work, every write fails: a server refusing writes (maxmemory)."""

        def acquire_lock(self, key: str, token: str, timeout: float) -> bool:
            raise ConnectionError("lock write refused (simulated)")

        def set(self, key: str, value: t.Any, timeout: t.Any = None) -> bool:
            raise ConnectionError("write refused (simulated)")

        add = set

    return LockRefusing()


def test_a_failing_lock_write_counts_towards_the_breaker_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Flask(__name__)
    cache = Cache(app, config={"CACHE_TYPE": _lock_refusing_factory})
    runs: list[int] = []

    @cache.memoize(lock=True)
    def f(x: int) -> int:
        runs.append(x)
        return x

    with app.app_context(), caplog.at_level(logging.WARNING, "flask_caching"):
        assert [f(i) for i in range(5)] == list(range(5))  # served, uncached
        writes = cache._runtime().writes
        # the lock writes count like any other failed write: the breaker opens
        assert writes.failures >= 3 and writes.is_open
    assert runs == list(range(5))
    outage_warnings = [r for r in caplog.records if r.name == "flask_caching"]
    assert len(outage_warnings) == 1, [r.getMessage() for r in outage_warnings]
