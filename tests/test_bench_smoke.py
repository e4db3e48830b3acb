"""The benchmark harness (benchmarks/) on a tiny workload, so it does not rot.

Nothing here asserts a timing: only that every case runs, its hits are hits, the
round-trip relay and the counters work, and the report renders.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import typing as t
from collections.abc import Iterator
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> Iterator[t.Any]:
    """The harness modules (they import each other as top-level modules)."""
    sys.path.insert(0, str(BENCH))
    try:
        import bench_net
        import workload

        spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
        assert spec is not None and spec.loader is not None
        run = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(run)
        yield argparse.Namespace(net=bench_net, run=run, workload=workload)
    finally:
        while str(BENCH) in sys.path:
            sys.path.remove(str(BENCH))


def ports(bench: t.Any, redis_port: int = 0, memcached_port: int = 0) -> t.Any:
    return bench.workload.Ports(redis_port, memcached_port)


@pytest.mark.parametrize("backend", ["simple", "filesystem"])
def test_every_case_runs_on_local_backends(
    bench: t.Any, backend: str, tmp_path: Path
) -> None:
    wl = bench.workload
    benches = wl.Benches("ours", [backend], ports(bench), str(tmp_path))
    try:
        assert benches.errors == {}
        timer = wl.Timer()
        for name, _label in (*wl.CASES, *wl.SIGNED_CASES):
            reply = timer.measure(benches.by_case[(backend, name)], name, 2, 0.0005)
            assert len(reply["wall"]) == len(reply["cpu"]) == 2, name
            assert min(reply["wall"]) > 0, name
        assert (
            benches.info[f"{backend}/signed"]["serializer"]
            != (benches.info[backend]["serializer"])
        )
    finally:
        benches.close()


def test_a_hit_that_misses_is_reported(bench: t.Any, tmp_path: Path) -> None:
    wl = bench.workload
    one = wl.Bench("ours", "simple", ports(bench), str(tmp_path))
    with pytest.raises(RuntimeError, match="not all hits"):
        one.verify("memo_fn_hit", {**one.calls, "memo_fn": -5}, 10)
    one.close()


@pytest.mark.redis
def test_counts_through_the_relay_on_redis(
    bench: t.Any, redis_server: t.Any, tmp_path: Path
) -> None:
    args = bench.workload.parse(["--impl", "ours", "--backends", "redis"])
    doc = bench.workload.mode_counts(
        args, ports(bench, redis_port=redis_server.port), str(tmp_path)
    )
    assert doc["errors"] == {}
    row = doc["results"]["redis"]
    assert set(row) == set(bench.workload.COUNTED)
    for entry in row.values():
        assert entry["round_trips"] >= 1
        assert entry["commands"] >= 1


@pytest.mark.memcached
def test_counts_through_the_relay_on_memcached(
    bench: t.Any, memcached_server: t.Any, tmp_path: Path
) -> None:
    args = bench.workload.parse(["--impl", "ours", "--backends", "memcached"])
    doc = bench.workload.mode_counts(
        args, ports(bench, memcached_port=memcached_server.port), str(tmp_path)
    )
    assert doc["errors"] == {}
    assert doc["results"]["memcached"]["get"]["commands"] == {"cmd_get": 1.0}
    assert doc["results"]["memcached"]["get"]["round_trips"] == 1


def test_relay_counts_one_burst_as_one_round_trip(bench: t.Any) -> None:
    import socket
    import threading

    net = bench.net
    with socket.socket() as listener:
        listener.bind((net.HOST, 0))
        listener.listen(1)
        echo_port = listener.getsockname()[1]

        def echo() -> None:
            conn, _ = listener.accept()
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data[-1:])

        thread = threading.Thread(target=echo, daemon=True)
        thread.start()
        relay = net.TurnCounter(echo_port).start()
        try:
            with socket.create_connection((net.HOST, relay.port)) as client:
                client.sendall(b"a" * 5000)  # one burst, however it is split
                client.recv(10)
                client.sendall(b"b")
                client.recv(10)
            assert relay.count() == 2
        finally:
            relay.close()
        thread.join(timeout=5)


def test_stampede_counts_runs(bench: t.Any, tmp_path: Path) -> None:
    args = bench.workload.parse(["--impl", "ours", "--backends", "simple"])
    doc = bench.workload.mode_stampede(args, ports(bench), str(tmp_path))
    row = doc["results"]["simple"]
    assert 1 <= row["nolock"]["runs"] <= bench.workload.STAMPEDE_THREADS
    assert row["nolock"]["errors"] == 0


def test_report_renders(bench: t.Any) -> None:
    run = bench.run
    results = run.Results()
    results.rounds = 1
    for comparison in run.comparisons(["simple"]):
        fast: dict[str, t.Any] = {"wall": [1e-5], "cpu": [1e-5]}
        slow: dict[str, t.Any] = {"wall": [2e-5], "cpu": [2e-5]}
        if comparison.a == ("ours", "get"):
            slow = {"error": "boom"}
        results.add_pair(comparison, fast, slow)
    args = argparse.Namespace(backends=["simple"], pairs=1, batch=0.01)
    text = run.render(results, args)
    assert "@memoize function hit" in text
    assert "2.00x" in text
    assert "upstream simple/get: boom" in text
    assert "targets:" in text
