#!/usr/bin/env python3
"""Benchmark flask_caching side by side with the released Flask-Caching.

    python3 benchmarks/run.py            # full run (a few minutes)
    python3 benchmarks/run.py --quick    # smoke run (well under a minute once set up)

Needs only python3 (stdlib) to start. Our side runs in the project's ``.venv`` (made
here, as ``dev.py`` would, if missing); the released Flask-Caching is installed in
``benchmarks/.venv-upstream`` with the same Flask, Werkzeug, cachelib, redis and
pylibmc versions as ``requirements/dev.txt`` pins. A private ``redis-server`` and
``memcached`` are started on free loopback ports and stopped (by PID) at the end.

Each side is ``<venv>/bin/python benchmarks/workload.py --impl ...`` printing JSON.
Timing rounds alternate which side goes first; the table shows medians per operation
and ``ratio`` = released time / our time (> 1 means we are faster).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import typing as t
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:  # bench_net and workload are siblings
    sys.path.insert(0, str(HERE))

import bench_net  # noqa: E402

OURS_VENV = ROOT / ".venv"
UPSTREAM_VENV = HERE / ".venv-upstream"
UPSTREAM = "Flask-Caching==2.5.1"
#: taken from requirements/dev.txt so both sides run on the same libraries
SHARED_PINS = ("flask", "werkzeug", "cachelib", "redis", "pylibmc", "blinker")
#: client libraries our side needs beyond requirements/demo.txt (pymemcache for
#: the extra round-trip rows of MemcachedCache with CACHE_OPTIONS client=pymemcache)
OURS_CLIENTS = ("redis", "pylibmc", "pymemcache")
WORKLOAD = HERE / "workload.py"

BACKEND_NAMES = {
    "simple": "SimpleCache",
    "filesystem": "FileSystemCache",
    "redis": "RedisCache",
    "memcached": "MemcachedCache",
    "memcached-pymemcache": "MemcachedCache[pymemcache]",
}
HITS = ("view_hit", "view_qs_hit", "memo_fn_hit", "memo_method_hit")


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- environments ----------------------------------------------------------------


def pins(names: tuple[str, ...] = SHARED_PINS) -> list[str]:
    """``name==version`` lines of requirements/dev.txt for *names* (lowercase)."""
    found = []
    for line in (ROOT / "requirements" / "dev.txt").read_text().splitlines():
        name, sep, _version = line.strip().partition("==")
        if sep and name.lower() in names:
            found.append(line.strip())
    return found


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def pip_install(venv: Path, *requirements: str) -> None:
    cmd = [str(python_of(venv)), "-m", "pip", "install", "-q", *requirements]
    log("+ " + " ".join(cmd[1:]))
    subprocess.run(cmd, check=True, cwd=ROOT)


def make_venv(venv: Path) -> None:
    log(f"creating {venv.relative_to(ROOT)}")
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)


def ensure_ours() -> Path:
    """The project's .venv, with the package and the redis/memcached clients.

    A missing .venv is made as ``dev.py`` makes it (requirements/demo.txt plus the
    package, editable) with the client libraries pinned in requirements/dev.txt; an
    existing one only gets what it lacks.
    """
    python = python_of(OURS_VENV)
    clients = pins(OURS_CLIENTS)
    if not python.exists():
        make_venv(OURS_VENV)
        demo = str(ROOT / "requirements" / "demo.txt")
        pip_install(OURS_VENV, "-r", demo, *clients, "-e", str(ROOT))
        return python
    probe = subprocess.run(
        [str(python), "-c", "import flask_caching, redis, pylibmc, pymemcache"],
        capture_output=True,
        cwd=HERE,
    )
    if probe.returncode != 0:
        pip_install(OURS_VENV, *clients, "-e", str(ROOT))
    return python


def ensure_upstream() -> Path:
    """benchmarks/.venv-upstream with the released package, rebuilt when pins change."""
    wanted = [UPSTREAM, *pins()]
    stamp = UPSTREAM_VENV / "bench-requirements.txt"
    if python_of(UPSTREAM_VENV).exists() and stamp.exists():
        if stamp.read_text().split() == wanted:
            return python_of(UPSTREAM_VENV)
    make_venv(UPSTREAM_VENV)
    pip_install(UPSTREAM_VENV, *wanted)
    stamp.write_text("\n".join(wanted) + "\n")
    return python_of(UPSTREAM_VENV)


# -- running the sides -------------------------------------------------------------


def run_side(
    python: Path, impl: str, mode: str, ports: tuple[int, int], *extra: str
) -> dict[str, t.Any]:
    cmd = [
        str(python),
        str(WORKLOAD),
        "--impl",
        impl,
        "--mode",
        mode,
        "--redis-port",
        str(ports[0]),
        "--memcached-port",
        str(ports[1]),
        *extra,
    ]
    try:
        done = subprocess.run(
            cmd, stdout=subprocess.PIPE, text=True, cwd=HERE, timeout=300
        )
    except subprocess.TimeoutExpired:
        return {"failed": f"{impl} {mode}: timed out"}
    if done.returncode != 0:
        return {"failed": f"{impl} {mode}: exit status {done.returncode}"}
    if mode == "profile":
        return {"text": done.stdout}
    return t.cast(dict[str, t.Any], json.loads(done.stdout.strip().splitlines()[-1]))


class Worker:
    """One side's ``workload.py --mode serve`` process, asked for one case at a time."""

    def __init__(
        self,
        python: Path,
        impl: str,
        ports: tuple[int, int],
        backends: list[str],
        cpus: set[int] | None = None,
    ) -> None:
        self.impl = impl
        self.process = subprocess.Popen(
            [
                str(python),
                str(WORKLOAD),
                "--impl",
                impl,
                "--mode",
                "serve",
                "--redis-port",
                str(ports[0]),
                "--memcached-port",
                str(ports[1]),
                "--backends",
                *backends,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=HERE,
            preexec_fn=bench_net.pin_to(cpus),
        )
        self.hello = self._read() or {"errors": {"start": "worker did not start"}}
        self.final: dict[str, t.Any] = {}

    def _read(self) -> dict[str, t.Any] | None:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        return t.cast(dict[str, t.Any], json.loads(line)) if line.strip() else None

    def ask(self, backend: str, case: str, batch_seconds: float) -> dict[str, t.Any]:
        """One calibrated batch of *case*: ``{"wall": [s/op], "cpu": [s/op]}``."""
        if self.process.poll() is not None:
            return {"error": f"worker exited with status {self.process.returncode}"}
        assert self.process.stdin is not None
        request = {
            "backend": backend,
            "case": case,
            "batches": 1,
            "batch_seconds": batch_seconds,
        }
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        reply = self._read()
        if reply is None:
            return {"error": f"worker exited with status {self.process.wait()}"}
        return reply

    def close(self) -> None:
        try:
            if self.process.poll() is None:
                assert self.process.stdin is not None
                self.process.stdin.write("\n")
                self.process.stdin.close()
                self.final = self._read() or {}
                self.process.wait(timeout=30)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


class Comparison(t.NamedTuple):
    """Two measurements taken in alternating batches; ratio = time of b / time of a."""

    kind: str  # "released", "floor" or "signed"
    backend: str
    a: tuple[str, str]  # (impl, case): the one whose speed is judged
    b: tuple[str, str]  # (impl, case): the reference


def comparisons(backends: list[str]) -> list[Comparison]:
    """Every pairing one round measures."""
    import workload

    found = []
    for backend in backends:
        for case, _ in workload.CASES:
            found.append(
                Comparison("released", backend, ("ours", case), ("upstream", case))
            )
        for impl in ("ours", "upstream"):
            found.append(
                Comparison("floor", backend, (impl, "view_hit"), (impl, "plain"))
            )
        for case, _ in workload.SIGNED_CASES:
            base = case.removeprefix("signed_")
            found.append(Comparison("signed", backend, ("ours", case), ("ours", base)))
    return found


class Results:
    """Everything measured, per side."""

    def __init__(self) -> None:
        #: (impl, backend, case) -> wall seconds per operation, one per batch
        self.batches: dict[tuple[str, str, str], list[float]] = {}
        #: (kind, backend, impl, case) -> [(wall ratio, cpu ratio)] of paired batches
        self.pairs: dict[tuple[str, str, str, str], list[tuple[float, float]]] = {}
        self.errors: dict[str, dict[str, str]] = {"ours": {}, "upstream": {}}
        self.counts: dict[str, dict[str, t.Any]] = {}
        self.stampede: dict[str, dict[str, t.Any]] = {"ours": {}, "upstream": {}}
        self.versions: dict[str, dict[str, t.Any]] = {}
        self.backends: dict[str, dict[str, t.Any]] = {}
        self.warnings: dict[str, int] = {"ours": 0, "upstream": 0}
        self.rounds = 0
        #: where the timed workers and the servers run (see bench_net.placement)
        self.placement = "not pinned"

    def add_pair(
        self, comparison: Comparison, a: dict[str, t.Any], b: dict[str, t.Any]
    ) -> None:
        for (impl, case), reply in ((comparison.a, a), (comparison.b, b)):
            if "error" in reply:
                key = f"{comparison.backend}/{case}"
                self.errors[impl].setdefault(key, str(reply["error"]))
        if "error" in a or "error" in b:
            return
        if comparison.kind != "floor":  # the same cases are measured for "released"
            for (impl, case), reply in ((comparison.a, a), (comparison.b, b)):
                key3 = (impl, comparison.backend, case)
                self.batches.setdefault(key3, []).extend(reply["wall"])
        pair_key = (comparison.kind, comparison.backend, *comparison.a)
        ratios = self.pairs.setdefault(pair_key, [])
        walls = zip(a["wall"], b["wall"], a["cpu"], b["cpu"], strict=True)
        for wa, wb, ca, cb in walls:
            ratios.append((wb / wa, cb / ca if ca > 0 else float("nan")))

    def median(self, impl: str, backend: str, case: str) -> float | None:
        values = self.batches.get((impl, backend, case))
        return statistics.median(values) if values else None

    def ratio(
        self, kind: str, backend: str, impl: str, case: str, cpu: bool = False
    ) -> float | None:
        """Median of the paired-batch ratios (> 1: *case* of *impl* is faster)."""
        pairs = self.pairs.get((kind, backend, impl, case))
        if not pairs:
            return None
        values = [p[1] if cpu else p[0] for p in pairs]
        values = [v for v in values if v == v]  # drop NaN (no CPU time measured)
        return statistics.median(values) if values else None

    def interval(
        self, kind: str, backend: str, impl: str, case: str
    ) -> tuple[float, float] | None:
        """A 95% confidence interval for :meth:`ratio` (wall), or ``None``."""
        pairs = self.pairs.get((kind, backend, impl, case))
        return median_interval([p[0] for p in pairs]) if pairs else None


def median_interval(
    values: list[float], confidence: float = 0.95
) -> tuple[float, float] | None:
    """A distribution-free confidence interval for the median of *values*.

    The true median lies below the k-th smallest sample with probability
    P(Binomial(n, 1/2) < k); the interval runs from the k-th smallest to the k-th
    largest sample, with the largest k that keeps the coverage at *confidence*.
    ``None`` if there are too few samples (fewer than 6) for a 95% interval.
    """
    ordered = sorted(values)
    n = len(ordered)
    tail = (1 - confidence) / 2
    below = 0.0  # P(Binomial(n, 1/2) < k), for the k tried
    k = 0
    while True:
        nxt = below + math.comb(n, k) / 2**n
        if nxt > tail:
            break
        below, k = nxt, k + 1
    if k == 0:
        return None
    return ordered[k - 1], ordered[n - k]


def timing(
    args: argparse.Namespace,
    sides: dict[str, Path],
    ports: tuple[int, int],
    results: Results,
    started: float,
    cpus: set[int] | None = None,
) -> None:
    """Rounds over every comparison; its two sides alternate batch by batch.

    Every round starts a new worker process per side. The same code ran in two
    processes can differ by several percent for the whole life of the processes
    (where hash tables and objects land in memory), so one pair of processes for a
    whole run could decide a row; a pair per round puts that spread into the
    intervals instead.
    """
    todo = comparisons(args.backends)
    for round_no in range(args.rounds):
        workers = {
            impl: Worker(python, impl, ports, args.backends, cpus)
            for impl, python in sides.items()
        }
        try:
            for impl, worker in workers.items():
                results.backends.setdefault(impl, worker.hello.get("backends", {}))
                for key, message in worker.hello.get("errors", {}).items():
                    results.errors[impl].setdefault(key, message)
            _timing_round(args, todo, workers, results)
        finally:
            for impl, worker in workers.items():
                worker.close()
                results.versions[impl] = worker.final.get("versions", {})
                warnings = worker.final.get("log_warnings", {}).get("count", 0)
                results.warnings[impl] = results.warnings.get(impl, 0) + warnings
        results.rounds += 1
        log(
            f"timing round {round_no + 1}/{args.rounds} done "
            f"({time.monotonic() - started:.0f}s)"
        )


def _timing_round(
    args: argparse.Namespace,
    todo: list[Comparison],
    workers: dict[str, Worker],
    results: Results,
) -> None:
    """One round: every comparison, *args.pairs* alternating batch pairs each."""
    for comparison in todo:
        first, second = comparison.a, comparison.b
        for pair_no in range(args.pairs):
            replies: dict[tuple[str, str], dict[str, t.Any]] = {}
            order = (first, second) if pair_no % 2 == 0 else (second, first)
            for impl, case in order:
                replies[(impl, case)] = workers[impl].ask(
                    comparison.backend, case, args.batch
                )
            results.add_pair(comparison, replies[first], replies[second])
            if any("error" in r for r in replies.values()):
                break


def measure(args: argparse.Namespace) -> Results:
    started = time.monotonic()
    ours = ensure_ours()
    upstream = ensure_upstream()
    log(f"environments ready in {time.monotonic() - started:.0f}s")
    results = Results()
    placed = bench_net.placement()
    worker_cpus, server_cpus = placed if placed else (None, None)
    results.placement = (
        f"timed workers on CPU {sorted(worker_cpus)}, servers on CPU {sorted(server_cpus)}"
        if worker_cpus and server_cpus
        else "not pinned (one CPU)"
    )
    redis = bench_net.start_redis(server_cpus)
    memcached = bench_net.start_memcached(server_cpus)
    log(
        f"redis-server pid {redis.pid} port {redis.port}; "
        f"memcached pid {memcached.pid} port {memcached.port}; {results.placement}"
    )
    ports = (redis.port, memcached.port)
    sides = {"ours": ours, "upstream": upstream}
    backends = ["--backends", *args.backends]
    try:
        timing(args, sides, ports, results, started, worker_cpus)
        for impl in ("ours", "upstream"):
            results.counts[impl] = run_side(
                sides[impl], impl, "counts", ports, *backends
            )
        log("command and round-trip counts done")
        for backend in args.backends:
            for impl in ("ours", "upstream"):
                doc = run_side(
                    sides[impl], impl, "stampede", ports, "--backends", backend
                )
                if "failed" in doc:
                    results.stampede[impl][backend] = {"failed": doc["failed"]}
                else:
                    results.stampede[impl][backend] = doc["results"][backend]
        log(f"stampedes done ({time.monotonic() - started:.0f}s)")
        if args.profile:
            for backend, case in (("simple", "view_hit"), ("redis", "memo_fn_hit")):
                doc = run_side(
                    ours,
                    "ours",
                    "profile",
                    ports,
                    "--backends",
                    backend,
                    "--case",
                    case,
                    "--top",
                    str(args.top),
                )
                print(doc.get("text") or doc.get("failed"))
    finally:
        for server in (redis, memcached):
            server.stop()
        log("servers stopped")
    log(f"total {time.monotonic() - started:.0f}s")
    return results


# -- reporting ---------------------------------------------------------------------


def us(value: float | None) -> str:
    return "err" if value is None else f"{value * 1e6:.1f}"


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def fmt_span(span: tuple[float, float] | None) -> str:
    return "[n/a]" if span is None else f"[{span[0]:.2f}-{span[1]:.2f}]"


def case_labels() -> dict[str, str]:
    # workload.py imports flask lazily, so its tables can be read without it
    import workload

    labels = dict(workload.CASES)
    labels.update(workload.SIGNED_CASES)
    return labels


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs, {model}, {platform.system()} {platform.release()}"


def render(results: Results, args: argparse.Namespace) -> str:
    labels = case_labels()
    out: list[str] = []
    ver_ours = results.versions.get("ours", {})
    ver_up = results.versions.get("upstream", {})
    out.append(f"machine: {machine()}; Python {ver_ours.get('python', '?')}")
    libs = ", ".join(
        f"{k} {v}" for k, v in ver_ours.items() if k not in ("python", "Flask-Caching")
    )
    out.append(
        f"ours: flask_caching {ver_ours.get('Flask-Caching', '?')} (this checkout); "
        f"released: Flask-Caching {ver_up.get('Flask-Caching', '?')}; both on {libs}"
    )
    mc_ours = results.backends.get("ours", {}).get("memcached", {}).get("client", "?")
    mc_up = results.backends.get("upstream", {}).get("memcached", {}).get("client", "?")
    out.append(f"memcached client: ours {mc_ours}, released {mc_up}")
    out.append(f"placement: {results.placement}")
    out.append(
        f"{results.rounds} rounds x {args.pairs} alternating batch pairs of "
        f"~{args.batch * 1000:.0f} ms; us = median microseconds per operation; "
        "ratio = median of paired released/ours times (> 1: ours is faster); "
        "cpu = the same on process CPU time"
    )
    out.append("")
    head = (
        f"{'backend':<16} {'operation':<38} {'ours us':>9} {'released us':>12} "
        f"{'ratio':>7} {'95% interval':>13} {'cpu':>7}"
    )
    out.append(head)
    out.append("-" * len(head))
    for backend in args.backends:
        name = BACKEND_NAMES[backend]
        for case, label in labels.items():
            if case.startswith("signed_"):
                continue
            mine = results.median("ours", backend, case)
            theirs = results.median("upstream", backend, case)
            wall = results.ratio("released", backend, "ours", case)
            cpu = results.ratio("released", backend, "ours", case, cpu=True)
            span = results.interval("released", backend, "ours", case)
            out.append(
                f"{name:<16} {label:<38} {us(mine):>9} {us(theirs):>12} "
                f"{fmt_ratio(wall):>7} {fmt_span(span):>13} {fmt_ratio(cpu):>7}"
            )
        floor = results.ratio("floor", backend, "ours", "view_hit")
        floor_up = results.ratio("floor", backend, "upstream", "view_hit")
        out.append(
            f"{name:<16} {'view hit speed / plain view speed':<38} "
            f"{fmt_ratio(floor):>9} {fmt_ratio(floor_up):>12}"
        )
    out.append("")
    out.append(
        "signed serializer (ours only): pickle-signed next to the default pickle"
    )
    head2 = (
        f"{'backend':<16} {'operation':<38} {'signed us':>9} {'pickle us':>12} "
        f"{'speed':>7} {'cpu':>7}"
    )
    out.append(head2)
    out.append("-" * len(head2))
    for backend in args.backends:
        for case, label in labels.items():
            if not case.startswith("signed_"):
                continue
            base = case.removeprefix("signed_")
            out.append(
                f"{BACKEND_NAMES[backend]:<16} {label:<38} "
                f"{us(results.median('ours', backend, case)):>9} "
                f"{us(results.median('ours', backend, base)):>12} "
                f"{fmt_ratio(results.ratio('signed', backend, 'ours', case)):>7} "
                f"{fmt_ratio(results.ratio('signed', backend, 'ours', case, True)):>7}"
            )
    out.append("")
    out.extend(render_counts(results, labels))
    out.append("")
    out.extend(render_stampede(results, args))
    errors = [
        (impl, k, v) for impl, side in results.errors.items() for k, v in side.items()
    ]
    if errors or any(results.warnings.values()):
        out.append("")
        out.append("errors (rows marked err):")
        for impl, key, message in errors:
            out.append(f"  {impl} {key}: {message}")
        for impl, count in results.warnings.items():
            if count:
                out.append(
                    f"  {impl}: flask_caching logged {count} warnings (fail-open paths)"
                )
    out.append("")
    out.extend(render_targets(results, args))
    return "\n".join(out)


def describe_commands(value: t.Any) -> str:
    if value is None:
        return "err"
    if isinstance(value, (int, float)):
        return f"{value:g}"
    if not value:
        return "0"
    short = {"cmd_get": "get", "cmd_set": "set", "cmd_touch": "touch"}
    return ", ".join(f"{n:g} {short.get(k, k)}" for k, n in sorted(value.items()))


def count_of(
    results: Results, impl: str, backend: str, case: str
) -> dict[str, t.Any] | None:
    doc = results.counts.get(impl, {})
    return t.cast(
        dict[str, t.Any] | None, doc.get("results", {}).get(backend, {}).get(case)
    )


def render_counts(results: Results, labels: dict[str, str]) -> list[str]:
    out = [
        "backend commands and round trips per operation (redis: INFO stats "
        "total_commands_processed; memcached: stats cmd_* deltas, multi-key get counts "
        "each key; round trips counted by a loopback relay)"
    ]
    head = (
        f"{'backend':<26} {'operation':<30} {'ours cmds':>12} {'released cmds':>14} "
        f"{'ours rt':>8} {'released rt':>12}"
    )
    out.append(head)
    out.append("-" * len(head))
    backends = ["redis", "memcached", "memcached-pymemcache"]
    from workload import COUNTED

    for backend in backends:
        for case in COUNTED:
            mine = count_of(results, "ours", backend, case)
            theirs = count_of(results, "upstream", backend, case)
            if mine is None and theirs is None:
                continue
            up_cmds = describe_commands(theirs["commands"]) if theirs else "n/a"
            up_rt = f"{theirs['round_trips']:g}" if theirs else "n/a"
            out.append(
                f"{BACKEND_NAMES[backend]:<26} {labels[case].replace(' 1 KB', ''):<30} "
                f"{describe_commands(mine['commands']) if mine else 'err':>12} {up_cmds:>14} "
                f"{format(mine['round_trips'], 'g') if mine else 'err':>8} {up_rt:>12}"
            )
    for impl in ("ours", "upstream"):
        doc = results.counts.get(impl, {})
        for key, message in {
            **doc.get("errors", {}),
            **({"run": doc["failed"]} if "failed" in doc else {}),
        }.items():
            out.append(f"  {impl} {key}: {message}")
    return out


def render_stampede(results: Results, args: argparse.Namespace) -> list[str]:
    from workload import STAMPEDE_SLEEP, STAMPEDE_THREADS

    out = [
        f"cold stampede: {STAMPEDE_THREADS} threads call one memoized function that "
        f"takes {STAMPEDE_SLEEP} s; how many times it ran (wall seconds)"
    ]
    head = f"{'backend':<16} {'ours':>16} {'ours lock=True':>18} {'released':>16}"
    out.append(head)
    out.append("-" * len(head))

    def cell(entry: dict[str, t.Any] | None) -> str:
        if not entry:
            return "err"
        if "failed" in entry:
            return "crashed"
        if entry.get("runs") is None:
            return "n/a"
        text = f"{entry['runs']} ({entry['wall']:.2f}s)"
        if entry.get("errors"):
            text += f" {entry['errors']} err"
        return text

    for backend in args.backends:
        mine = results.stampede["ours"].get(backend, {})
        theirs = results.stampede["upstream"].get(backend, {})
        out.append(
            f"{BACKEND_NAMES[backend]:<16} {cell(mine.get('nolock') if 'failed' not in mine else mine):>16} "
            f"{cell(mine.get('lock') if 'failed' not in mine else mine):>18} "
            f"{cell(theirs.get('nolock') if 'failed' not in theirs else theirs):>16}"
        )
    for impl in ("ours", "upstream"):
        for backend, row in results.stampede[impl].items():
            for variant, entry in row.items():
                if isinstance(entry, dict) and entry.get("first_error"):
                    out.append(f"  {impl} {backend} {variant}: {entry['first_error']}")
    return out


def render_targets(results: Results, args: argparse.Namespace) -> list[str]:
    controls = [
        fmt_ratio(results.ratio("released", backend, "ours", "plain"))
        + " "
        + fmt_span(results.interval("released", backend, "ours", "plain"))
        for backend in args.backends
    ]
    out = [
        "noise control: the plain view (the same code on both sides) came out at "
        + ", ".join(controls),
        "targets:",
    ]

    def verdict(ok: bool | None) -> str:
        return "n/a " if ok is None else ("PASS" if ok else "FAIL")

    if "simple" in args.backends:
        rel = results.ratio("floor", "simple", "ours", "view_hit")
        ok = None if rel is None else rel >= 0.90
        out.append(
            f"  {verdict(ok)} SimpleCache view hit >= 0.90x the plain view: "
            f"{fmt_ratio(rel)}"
        )
    slower, parity = [], []
    for backend in args.backends:
        for case in case_labels():
            if case.startswith("signed_") or case == "plain":
                continue  # the plain view runs no caching code: it is the control
            rel = results.ratio("released", backend, "ours", case)
            span = results.interval("released", backend, "ours", case)
            row = f"{BACKEND_NAMES[backend]} {case} {fmt_ratio(rel)} {fmt_span(span)}"
            # too few pairs for an interval (--quick): the median alone decides
            if rel is None or (span[1] if span else rel) < 1.0:
                slower.append(row)
            elif rel < 1.0:
                parity.append(row)
    out.append(
        f"  {verdict(not slower)} every row at least as fast as released (no row's "
        "95% interval wholly below 1.00x)"
        + (": slower or missing: " + "; ".join(slower) if slower else "")
    )
    if parity:
        out.append(
            "       median below 1.00x, interval reaching 1.00x (parity within "
            "noise): " + "; ".join(parity)
        )
    if "redis" in args.backends:
        for case in ("memo_fn_hit", "memo_method_hit"):
            rel = results.ratio("released", "redis", "ours", case)
            ok = None if rel is None else rel >= 1.8
            out.append(
                f"  {verdict(ok)} Redis {case} >= 1.8x released: {fmt_ratio(rel)}"
            )
    for backend in ("redis", "memcached"):
        if backend not in args.backends:
            continue
        bad = []
        for case in HITS:
            entry = count_of(results, "ours", backend, case)
            if entry is None:
                bad.append(f"{case} err")
                continue
            cmds = entry["commands"]
            one_cmd = cmds == 1 if backend == "redis" else True
            if entry["round_trips"] != 1 or not one_cmd:
                bad.append(
                    f"{case} {describe_commands(cmds)} cmds/{entry['round_trips']:g} rt"
                )
        out.append(
            f"  {verdict(not bad)} {BACKEND_NAMES[backend]}: every hit = 1 "
            f"{'command and ' if backend == 'redis' else ''}round trip"
            + (": " + "; ".join(bad) if bad else "")
        )
        bad = []
        for case in ("get_many", "set_many"):
            entry = count_of(results, "ours", backend, case)
            if entry is None or entry["round_trips"] != 1:
                trips = f"{entry['round_trips']:g}" if entry else "err"
                bad.append(f"{case} {trips} rt")
        out.append(
            f"  {verdict(not bad)} {BACKEND_NAMES[backend]}: get_many and set_many "
            "of 10 keys = 1 round trip each" + (": " + "; ".join(bad) if bad else "")
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument(
        "--rounds", type=int, help="timing rounds per side (default 5; quick 2)"
    )
    parser.add_argument(
        "--pairs",
        type=int,
        help="batch pairs per comparison per round (default 6; quick 2)",
    )
    parser.add_argument(
        "--batch",
        type=float,
        help="seconds a batch lasts (default 0.02; quick 0.005)",
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        default=["simple", "filesystem", "redis", "memcached"],
        choices=["simple", "filesystem", "redis", "memcached"],
    )
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile two of our hits"
    )
    parser.add_argument("--top", type=int, default=25, help="profile entries to print")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 2 if args.quick else 5
    if args.pairs is None:
        args.pairs = 2 if args.quick else 6
    if args.batch is None:
        args.batch = 0.005 if args.quick else 0.02
    results = measure(args)
    print(render(results, args))
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "batches": {"/".join(k): v for k, v in results.batches.items()},
                    "pairs": {"/".join(k): v for k, v in results.pairs.items()},
                    "errors": results.errors,
                    "counts": results.counts,
                    "stampede": results.stampede,
                    "versions": results.versions,
                    "backends": results.backends,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
