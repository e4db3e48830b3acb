"""One side of the benchmark: the same workload for our flask_caching or the released one.

Run by ``run.py`` with the interpreter of the side being measured (the two packages
share the import name ``flask_caching``, so each lives in its own virtualenv)::

    <venv>/bin/python benchmarks/workload.py --impl ours --mode timing ...

and prints JSON on stdout. Modes:

* ``serve``: answer timing requests (one case on one backend) sent by the runner;
* ``counts``: backend commands and round trips per operation (Redis, memcached);
* ``stampede``: 32 threads call one cold, slow memoized function at once;
* ``profile``: cProfile of one hit case (text, not JSON).

Requests go through ``app.wsgi_app(environ, start_response)`` with a prebuilt WSGI
environ: no HTTP server, no test client, the same driver for both sides.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import json
import logging
import os
import pstats
import shutil
import sys
import tempfile
import threading
import time
import typing as t
import uuid
from collections.abc import Callable, Iterable
from importlib import metadata

import bench_net

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

BACKENDS = ("simple", "filesystem", "redis", "memcached")
BODY = "x" * 2048
VALUE = "v" * 1024
MANY = {f"bench-key-{i}": VALUE for i in range(10)}

#: (case id, label); the order is the table's
CASES: tuple[tuple[str, str], ...] = (
    ("plain", "plain view, 2 KB (floor)"),
    ("view_hit", "@cached view hit"),
    ("view_qs_hit", "@cached query_string=True hit"),
    ("view_miss", "@cached unique paths (misses)"),
    ("memo_fn_hit", "@memoize function hit"),
    ("memo_method_hit", "@memoize method hit"),
    ("get", "get 1 KB"),
    ("set", "set 1 KB"),
    ("get_many", "get_many 10 x 1 KB"),
    ("set_many", "set_many 10 x 1 KB"),
)
#: cases measured for our side only: the signed serializer next to plain pickle
SIGNED_CASES: tuple[tuple[str, str], ...] = (
    ("signed_view_hit", "@cached view hit, pickle-signed"),
    ("signed_memo_fn_hit", "@memoize function hit, pickle-signed"),
)
#: operations whose commands and round trips are counted
COUNTED = (
    "view_hit",
    "view_qs_hit",
    "view_miss",
    "memo_fn_hit",
    "memo_method_hit",
    "get",
    "set",
    "get_many",
    "set_many",
)

STAMPEDE_THREADS = 32
STAMPEDE_SLEEP = 0.2


def load_flask_caching(impl: str) -> t.Any:
    """Import flask_caching and make sure it is the side we were asked to measure."""
    import flask_caching

    path = os.path.realpath(flask_caching.__file__)
    ours = path.startswith(os.path.join(os.path.realpath(ROOT), "src") + os.sep)
    if ours != (impl == "ours"):
        raise SystemExit(f"--impl {impl} but flask_caching was imported from {path}")
    return flask_caching


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in ("Flask-Caching", "Flask", "Werkzeug", "cachelib", "redis", "pylibmc"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    try:  # ours is distributed as Flask-Caching-NG; run.py reads "Flask-Caching"
        found["Flask-Caching"] = metadata.version("Flask-Caching-NG")
    except metadata.PackageNotFoundError:
        pass
    found["python"] = sys.version.split()[0]
    return found


class CountingHandler(logging.Handler):
    """Counts the warnings flask_caching logs (a fail-open path was taken)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.first: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if self.first is None:
            self.first = record.getMessage()[:300]


#: installed on the "flask_caching" logger by main() (never on import)
LOG = CountingHandler()


F = t.TypeVar("F", bound=Callable[..., t.Any])


def typed(decorator: t.Any) -> Callable[[F], F]:
    """Either side's decorator, typed for mypy (both packages share one name)."""
    return t.cast(Callable[[F], F], decorator)


class Ports(t.NamedTuple):
    redis: int
    memcached: int


class Bench:
    """One Flask app with one Cache on one backend, and every case as a callable."""

    def __init__(
        self,
        impl: str,
        backend: str,
        ports: Ports,
        workdir: str,
        extra: dict[str, t.Any] | None = None,
    ) -> None:
        from flask import Flask
        from werkzeug.test import EnvironBuilder

        fc = load_flask_caching(impl)
        self.impl = impl
        self.backend_id = backend
        self.app = app = Flask(f"bench_{backend}")
        # an error in a view raises here instead of becoming a logged 500
        app.config["PROPAGATE_EXCEPTIONS"] = True
        app.config.update(self.settings(impl, backend, ports, workdir))
        app.config.update(extra or {})
        self.cache = cache = fc.Cache(app)
        self.calls = {"view": 0, "miss": 0, "memo_fn": 0, "memo_method": 0}
        calls = self.calls

        @app.route("/plain")
        def plain() -> str:
            return BODY

        @app.route("/hit")
        @typed(cache.cached(timeout=300))
        def hit() -> str:
            calls["view"] += 1
            return BODY

        @app.route("/qs")
        @typed(cache.cached(timeout=300, query_string=True))
        def query() -> str:
            calls["view"] += 1
            return BODY

        @app.route("/miss/<int:n>")
        @typed(cache.cached(timeout=300))
        def miss(n: int) -> str:
            calls["miss"] += 1
            return BODY

        @typed(cache.memoize(timeout=300))
        def profile(user_id: int, lang: str = "en") -> dict[str, t.Any]:
            calls["memo_fn"] += 1
            return {"id": user_id, "lang": lang, "bio": "b" * 200}

        class Service:
            def __init__(self, ident: int) -> None:
                self.ident = ident

            def __repr__(self) -> str:
                return f"Service({self.ident})"

            @typed(cache.memoize(timeout=300))
            def score(self, n: int) -> int:
                calls["memo_method"] += 1
                return n * self.ident

        self.profile = profile
        self.service = Service(3)

        def environ(path: str, query: str = "") -> dict[str, t.Any]:
            builder = EnvironBuilder(path=path, query_string=query or None)
            try:
                return dict(builder.get_environ())
            finally:
                builder.close()

        self.env_plain = environ("/plain")
        self.env_hit = environ("/hit")
        self.env_qs = environ("/qs", "b=2&a=1&page=7")
        self.env_miss = environ("/miss/0")
        self.miss_ids = itertools.count(1)

    @staticmethod
    def settings(
        impl: str, backend: str, ports: Ports, workdir: str
    ) -> dict[str, t.Any]:
        prefix = f"bench-{impl}-{uuid.uuid4().hex[:8]}-"
        conf: dict[str, t.Any] = {
            "CACHE_DEFAULT_TIMEOUT": 300,
            "CACHE_KEY_PREFIX": prefix,
        }
        if backend == "simple":
            conf["CACHE_TYPE"] = "SimpleCache"
        elif backend == "filesystem":
            conf["CACHE_TYPE"] = "FileSystemCache"
            conf["CACHE_DIR"] = tempfile.mkdtemp(prefix="fs-", dir=workdir)
        elif backend == "redis":
            conf["CACHE_TYPE"] = "RedisCache"
            conf["CACHE_REDIS_HOST"] = bench_net.HOST
            conf["CACHE_REDIS_PORT"] = ports.redis
            conf["CACHE_REDIS_DB"] = 0
        elif backend.startswith("memcached"):
            conf["CACHE_TYPE"] = "MemcachedCache"
            conf["CACHE_MEMCACHED_SERVERS"] = [f"{bench_net.HOST}:{ports.memcached}"]
            if impl == "ours":  # released Flask-Caching takes no client choice
                client = "pymemcache" if backend.endswith("pymemcache") else "pylibmc"
                conf["CACHE_OPTIONS"] = {"client": client}
        else:
            raise SystemExit(f"unknown backend {backend!r}")
        return conf

    # -- drivers -----------------------------------------------------------------

    def request(
        self, make_environ: Callable[[], dict[str, t.Any]]
    ) -> Callable[[], None]:
        """A zero-argument call that serves one request through the WSGI callable."""
        wsgi = self.app.wsgi_app

        def write(data: bytes) -> None:
            pass

        def start_response(
            status: str, headers: t.Any, exc_info: t.Any = None
        ) -> t.Any:
            return write

        def call() -> None:
            body = wsgi(make_environ(), start_response)
            for _chunk in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()

        return call

    def check_response(self, environ: dict[str, t.Any]) -> None:
        """Fail loudly if a request does not return the 2 KB body with 200 OK."""
        seen: list[str] = []

        def start_response(
            status: str, headers: t.Any, exc_info: t.Any = None
        ) -> t.Any:
            seen.append(status)
            return lambda data: None

        body = self.app.wsgi_app(dict(environ), start_response)
        data = b"".join(body)
        close = getattr(body, "close", None)
        if close is not None:
            close()
        if seen != ["200 OK"] or data != BODY.encode():
            raise RuntimeError(f"{environ['PATH_INFO']}: {seen} {len(data)} bytes")

    def case(self, name: str) -> Callable[[], object]:
        """The operation of case *name*, ready to be called repeatedly."""
        cache, app = self.cache, self.app
        if name == "plain":
            env = self.env_plain
            return self.request(env.copy)
        if name in ("view_hit", "signed_view_hit"):
            env = self.env_hit
            return self.request(env.copy)
        if name == "view_qs_hit":
            env = self.env_qs
            return self.request(env.copy)
        if name == "view_miss":
            base, ids = self.env_miss, self.miss_ids

            def unique() -> dict[str, t.Any]:
                env = base.copy()
                env["PATH_INFO"] = f"/miss/{next(ids)}"
                return env

            return self.request(unique)
        profile, service = self.profile, self.service
        if name in ("memo_fn_hit", "signed_memo_fn_hit"):
            return lambda: profile(42, lang="fr")
        if name == "memo_method_hit":
            return lambda: service.score(5)
        with app.app_context():
            cache.set_many(MANY)
        if name == "get":
            return lambda: cache.get("bench-key-0")
        if name == "set":
            return lambda: cache.set("bench-key-0", VALUE)
        if name == "get_many":
            keys = list(MANY)
            return lambda: cache.get_many(*keys)
        if name == "set_many":
            return lambda: cache.set_many(MANY)
        raise SystemExit(f"unknown case {name!r}")

    def verify(self, name: str, before: dict[str, int], iterations: int) -> None:
        """After warm-up + timing: hits ran nothing, misses ran once per request."""
        after = self.calls
        if name in ("view_hit", "view_qs_hit", "signed_view_hit"):
            ran = after["view"] - before["view"]
        elif name == "view_miss":
            if after["miss"] - before["miss"] < iterations:
                raise RuntimeError("view_miss: some requests were not misses")
            return
        elif name in ("memo_fn_hit", "signed_memo_fn_hit"):
            ran = after["memo_fn"] - before["memo_fn"]
        elif name == "memo_method_hit":
            ran = after["memo_method"] - before["memo_method"]
        else:
            return
        if ran > 1:  # the first (warm-up) call is the only miss
            raise RuntimeError(f"{name}: the function ran {ran} times; not all hits")

    def values_ok(self, name: str) -> None:
        with self.app.app_context():
            if name == "get" and self.cache.get("bench-key-0") != VALUE:
                raise RuntimeError("get: wrong value")
            if name == "get_many" and list(self.cache.get_many(*MANY)) != list(
                MANY.values()
            ):
                raise RuntimeError("get_many: wrong values")
            if name.startswith("memo_fn") and self.profile(42, lang="fr")["id"] != 42:
                raise RuntimeError("memoize: wrong value")

    def close(self) -> None:
        with self.app.app_context():
            backend = self.cache.cache
        for attr in ("close", "disconnect_all"):
            fn = getattr(backend, attr, None)
            if callable(fn):
                try:
                    fn()
                except Exception:
                    pass
                break


def needs_context(name: str) -> bool:
    """Proxy calls and memoized calls run inside one app context; views make their own."""
    return not (name == "plain" or "view" in name)


#: the environ each view case requests, for the response check
def _checked_environ(bench: Bench, name: str) -> dict[str, t.Any] | None:
    return {
        "plain": bench.env_plain,
        "view_hit": bench.env_hit,
        "signed_view_hit": bench.env_hit,
        "view_qs_hit": bench.env_qs,
    }.get(name)


class Timer:
    """Times one case in calibrated batches: wall and CPU seconds per operation.

    The first request for a case calibrates how many calls make a batch of about
    ``batch_seconds`` (which also warms it up). The runner asks the two sides for one
    batch each, alternately, so that both run under the same machine load.
    """

    def __init__(self) -> None:
        self.batch: dict[tuple[str, str], int] = {}

    def measure(
        self, bench: Bench, name: str, batches: int, batch_seconds: float
    ) -> dict[str, list[float]]:
        op = bench.case(name)
        before = dict(bench.calls)
        calls = 0
        walls: list[float] = []
        cpus: list[float] = []
        ctx = bench.app.app_context() if needs_context(name) else None
        if ctx is not None:
            ctx.push()
        try:
            environ = _checked_environ(bench, name)
            if environ is not None:
                bench.check_response(environ)
            key = (bench.backend_id, name)
            size = self.batch.get(key)
            if size is None:
                size = self.batch[key] = calibrate(op, batch_seconds)
            op()  # warm the context and connection of this request
            calls += 1
            wall, cpu = time.perf_counter, time.process_time
            for _ in range(batches):
                start, start_cpu = wall(), cpu()
                for _ in range(size):
                    op()
                walls.append((wall() - start) / size)
                cpus.append((cpu() - start_cpu) / size)
                calls += size
        finally:
            if ctx is not None:
                ctx.pop()
        bench.verify(name, before, calls)
        bench.values_ok(name)
        return {"wall": walls, "cpu": cpus}


def calibrate(op: Callable[[], object], seconds: float) -> int:
    """How many calls of *op* take about *seconds* (at least 3); also warms up."""
    op()
    calls = 0
    start = time.perf_counter()
    while True:
        op()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return max(3, calls)


def backend_info(bench: Bench) -> dict[str, t.Any]:
    with bench.app.app_context():
        backend = bench.cache.cache
    info: dict[str, t.Any] = {"class": type(backend).__name__}
    client = getattr(backend, "client_name", None)
    if client is None and hasattr(backend, "_client"):
        client = type(backend._client).__module__.split(".")[0]
    if client is not None:
        info["client"] = client
    serializer = getattr(backend, "serializer", None)
    if serializer is not None:
        info["serializer"] = type(serializer).__name__
    return info


# -- modes -----------------------------------------------------------------------


class Benches:
    """Per backend: the app for hits and proxy calls, one for misses, one signed."""

    def __init__(self, impl: str, backends: Iterable[str], ports: Ports, workdir: str):
        self.by_case: dict[tuple[str, str], Bench] = {}
        self.errors: dict[str, str] = {}
        self.info: dict[str, t.Any] = {}
        self.all: list[Bench] = []
        for backend in backends:
            try:
                hits = Bench(impl, backend, ports, workdir)
                misses = Bench(impl, backend, ports, workdir)
            except Exception as exc:
                self.errors[backend] = f"{type(exc).__name__}: {exc}"
                continue
            self.all += [hits, misses]
            self.info[backend] = backend_info(hits)
            for name, _label in CASES:
                self.by_case[(backend, name)] = misses if name == "view_miss" else hits
            if impl != "ours":
                continue
            try:
                signed = Bench(impl, backend, ports, workdir, extra=SIGNED_SETTINGS)
            except Exception as exc:
                self.errors[f"{backend}/signed"] = (
                    f"unsupported: {type(exc).__name__}: {exc}"
                )
                continue
            self.all.append(signed)
            self.info[f"{backend}/signed"] = backend_info(signed)
            for name, _label in SIGNED_CASES:
                self.by_case[(backend, name)] = signed

    def close(self) -> None:
        for bench in self.all:
            bench.close()


SIGNED_SETTINGS = {
    "CACHE_SERIALIZER": "pickle-signed",
    "CACHE_SECRET_KEY": "benchmark-secret-key",
}


def mode_serve(
    args: argparse.Namespace, ports: Ports, workdir: str
) -> dict[str, t.Any]:
    """Answer timing requests from the runner, one JSON line each.

    Reads ``{"backend", "case", "batches", "batch_seconds"}`` lines on stdin and
    answers ``{"wall": [...], "cpu": [...]}`` (seconds per operation, one per batch)
    or ``{"error": ...}``; an empty line or EOF ends the session.
    """
    benches = Benches(args.impl, args.backends, ports, workdir)
    timer = Timer()
    hello = {"ready": True, "backends": benches.info, "errors": benches.errors}
    print(json.dumps(hello), flush=True)
    for line in sys.stdin:
        if not line.strip():
            break
        request = json.loads(line)
        bench = benches.by_case.get((request["backend"], request["case"]))
        if bench is None:
            reply: dict[str, t.Any] = {"error": "not available"}
        else:
            try:
                reply = dict(
                    timer.measure(
                        bench,
                        request["case"],
                        request["batches"],
                        request["batch_seconds"],
                    )
                )
            except Exception as exc:
                reply = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(reply), flush=True)
    benches.close()
    return {}


class Snapshot(t.NamedTuple):
    turns: int
    redis: int
    memcached: dict[str, int]


def mode_counts(
    args: argparse.Namespace, ports: Ports, workdir: str
) -> dict[str, t.Any]:
    """Commands (server counters) and round trips (relay) per operation."""
    backends = [b for b in args.backends if b in ("redis", "memcached")]
    if args.impl == "ours" and "memcached" in backends:
        backends.append("memcached-pymemcache")
    results: dict[str, dict[str, t.Any]] = {}
    errors: dict[str, str] = {}
    info: dict[str, t.Any] = {}
    per_op = 10
    for backend in backends:
        target = ports.redis if backend == "redis" else ports.memcached
        relay = bench_net.TurnCounter(target).start()
        relayed = (
            Ports(relay.port, ports.memcached)
            if backend == "redis"
            else Ports(ports.redis, relay.port)
        )

        def snap(
            relay: bench_net.TurnCounter = relay, backend: str = backend
        ) -> Snapshot:
            turns = relay.count()
            if backend == "redis":
                return Snapshot(
                    turns, bench_net.redis_commands_processed(ports.redis), {}
                )
            return Snapshot(turns, 0, bench_net.memcached_stats(ports.memcached))

        try:
            bench = Bench(args.impl, backend, relayed, workdir)
            info[backend] = backend_info(bench)
            row = results.setdefault(backend, {})
            # INFO itself counts as a command: measure what two snapshots cost
            first, second = snap(), snap()
            info_cost = second.redis - first.redis
            for name in COUNTED:
                try:
                    op = bench.case(name)
                    ctx = bench.app.app_context() if needs_context(name) else None
                    if ctx is not None:
                        ctx.push()
                    try:
                        for _ in range(3):
                            op()
                        before = snap()
                        for _ in range(per_op):
                            op()
                        after = snap()
                    finally:
                        if ctx is not None:
                            ctx.pop()
                except Exception as exc:
                    errors[f"{backend}/{name}"] = f"{type(exc).__name__}: {exc}"
                    continue
                entry: dict[str, t.Any] = {
                    "round_trips": (after.turns - before.turns) / per_op
                }
                if backend == "redis":
                    entry["commands"] = (
                        after.redis - before.redis - info_cost
                    ) / per_op
                else:
                    entry["commands"] = {
                        counter: (after.memcached.get(counter, 0) - value) / per_op
                        for counter, value in before.memcached.items()
                        if counter in bench_net.MEMCACHED_COUNTERS
                        and after.memcached.get(counter, 0) != value
                    }
                row[name] = entry
            bench.close()
        except Exception as exc:
            errors[backend] = f"{type(exc).__name__}: {exc}"
        finally:
            relay.close()
    return {"results": results, "errors": errors, "backends": info}


def mode_stampede(
    args: argparse.Namespace, ports: Ports, workdir: str
) -> dict[str, t.Any]:
    """32 threads call one cold memoized function that takes 0.2 s; count its runs."""
    results: dict[str, dict[str, t.Any]] = {}
    for backend in args.backends:
        bench = Bench(args.impl, backend, ports, workdir)
        row = results.setdefault(backend, {})
        for variant, options in (("nolock", {}), ("lock", {"lock": True})):
            try:
                decorate = bench.cache.memoize(timeout=300, **options)
            except TypeError as exc:
                row[variant] = {"runs": None, "note": f"n/a ({exc})"}
                continue
            row[variant] = stampede(bench, decorate)
        bench.close()
    return {"results": results}


def stampede(bench: Bench, decorate: Callable[[t.Any], t.Any]) -> dict[str, t.Any]:
    runs = 0
    lock = threading.Lock()

    def slow_report(report_id: str) -> str:
        nonlocal runs
        with lock:
            runs += 1
        time.sleep(STAMPEDE_SLEEP)
        return f"report {report_id}"

    report = decorate(slow_report)
    token = uuid.uuid4().hex
    barrier = threading.Barrier(STAMPEDE_THREADS)
    failures: list[str] = []
    results: list[str] = []

    def worker() -> None:
        try:
            with bench.app.app_context():
                barrier.wait(timeout=10)
                results.append(report(token))
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=worker) for _ in range(STAMPEDE_THREADS)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    wall = time.perf_counter() - start
    wrong = sum(1 for r in results if r != f"report {token}")
    return {
        "runs": runs,
        "wall": wall,
        "errors": len(failures) + wrong,
        "first_error": failures[0] if failures else None,
    }


def mode_profile(args: argparse.Namespace, ports: Ports, workdir: str) -> str:
    """cProfile of one case on one backend: ``--case view_hit --backends simple``."""
    backend = args.backends[0]
    bench = Bench(args.impl, backend, ports, workdir)
    op = bench.case(args.case)
    ctx = bench.app.app_context() if needs_context(args.case) else None
    if ctx is not None:
        ctx.push()
    iterations = args.calls
    for _ in range(max(10, iterations // 20)):
        op()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(iterations):
        op()
    profiler.disable()
    if ctx is not None:
        ctx.pop()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    out.write(f"== {args.impl} {backend} {args.case}: {iterations} calls ==\n")
    for order in ("tottime", "cumulative"):
        out.write(f"-- sorted by {order} --\n")
        stats.sort_stats(order).print_stats(args.top)
    out.write("-- flask_caching's own functions, sorted by tottime --\n")
    stats.sort_stats("tottime").print_stats(r"flask_caching[/\\]", args.top)
    return out.getvalue()


def parse(argv: Iterable[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--impl", choices=("ours", "upstream"), required=True)
    parser.add_argument(
        "--mode",
        choices=("serve", "counts", "stampede", "profile"),
        default="serve",
    )
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS))
    parser.add_argument("--redis-port", type=int, default=0)
    parser.add_argument("--memcached-port", type=int, default=0)
    parser.add_argument("--calls", type=int, default=3000, help="profile: calls")
    parser.add_argument("--case", default="view_hit")
    parser.add_argument("--top", type=int, default=25)
    return parser.parse_args(list(argv) if argv is not None else None)


def main(argv: Iterable[str] | None = None) -> int:
    args = parse(argv)
    ports = Ports(args.redis_port, args.memcached_port)
    load_flask_caching(args.impl)
    package_logger = logging.getLogger("flask_caching")
    package_logger.addHandler(LOG)
    package_logger.propagate = False  # counted, not printed over the JSON protocol
    workdir = tempfile.mkdtemp(prefix=f"bench-{args.impl}-")
    try:
        if args.mode == "profile":
            sys.stdout.write(mode_profile(args, ports, workdir))
            return 0
        modes = {
            "serve": mode_serve,
            "counts": mode_counts,
            "stampede": mode_stampede,
        }
        doc = modes[args.mode](args, ports, workdir)
        doc.update(impl=args.impl, mode=args.mode, versions=versions())
        doc["log_warnings"] = {"count": LOG.count, "first": LOG.first}
        json.dump(doc, sys.stdout)
        sys.stdout.write("\n")
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
