"""Stdlib-only helpers shared by the runner and the workload (either virtualenv).

* start/stop a private ``redis-server`` and ``memcached`` on free loopback ports;
* read their command counters over a raw socket (``INFO stats`` / ``stats``), so the
  counting never goes through the client library being measured;
* :class:`TurnCounter`, a loopback TCP relay that counts *round trips*. It holds
  the client's bytes until the client has been quiet for :data:`QUIET` seconds and
  then forwards them as one burst: one turn. A pipeline or a multi-key request is
  one round trip whatever its command count (the server never sees half of it, so
  it cannot answer early), and a client that waits for each reply shows one turn per
  reply, because nothing it waits for is sent until its burst is over.
"""

from __future__ import annotations

import os
import selectors
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import typing as t
from dataclasses import dataclass, field

HOST = "127.0.0.1"
#: a client silent this long has finished its burst (adds latency: counting only)
QUIET = 0.003


def placement() -> tuple[set[int], set[int]] | None:
    """CPUs for the timed workers and for the servers, or ``None`` (one CPU, or no
    affinity call here).

    Left to the scheduler, each long-lived worker settles on the server's CPU or the
    other one for the whole run, and that placement alone moved the Redis rows by
    +-20% from run to run. Both sides' workers share the first CPU (they take turns,
    never run at once) and the servers get the last, so both sides talk to the
    server across the same CPU boundary.
    """
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[0]}, {cpus[-1]}


def pin_to(cpus: set[int] | None) -> t.Callable[[], None] | None:
    """A ``preexec_fn`` that pins the child (and the threads it starts) to *cpus*."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def free_port() -> int:
    """A TCP port on the loopback interface that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _recv_until(sock: socket.socket, marker: bytes, limit: int = 1 << 20) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        data += chunk
        if len(data) > limit:
            raise ConnectionError("reply too long")
    return data


def redis_command(port: int, *args: str, timeout: float = 2.0) -> bytes:
    """Send one command to redis on *port* and return its raw reply."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        raw = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(b"".join(parts))
        head = _recv_until(sock, b"\r\n")
        if not head.startswith(b"$"):
            return head
        line, _, rest = head.partition(b"\r\n")
        size = int(line[1:])
        while len(rest) < size + 2:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("short redis reply")
            rest += chunk
        return rest[:size]


def redis_commands_processed(port: int) -> int:
    """``total_commands_processed`` from ``INFO stats``."""
    for line in redis_command(port, "INFO", "stats").decode().splitlines():
        if line.startswith("total_commands_processed:"):
            return int(line.split(":", 1)[1])
    raise RuntimeError("INFO stats has no total_commands_processed")


def memcached_stats(port: int, timeout: float = 2.0) -> dict[str, int]:
    """The integer fields of memcached's ``stats``."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(b"stats\r\n")
        data = _recv_until(sock, b"END\r\n")
    stats: dict[str, int] = {}
    for line in data.decode().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "STAT" and parts[2].isdigit():
            stats[parts[1]] = int(parts[2])
    return stats


#: memcached counters that count commands (per key for multi-key gets)
MEMCACHED_COUNTERS = (
    "cmd_get",
    "cmd_set",
    "cmd_touch",
    "delete_hits",
    "delete_misses",
    "incr_hits",
    "incr_misses",
    "decr_hits",
    "decr_misses",
    "cas_hits",
    "cas_misses",
    "cas_badval",
)


# -- servers ---------------------------------------------------------------------


@dataclass
class Server:
    """A server process this module started; :meth:`stop` ends it by its PID."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    workdir: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _redis_ready(port: int) -> bool:
    try:
        return redis_command(port, "PING", timeout=0.5).startswith(b"+PONG")
    except OSError:
        return False


def _memcached_ready(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as sock:
            sock.sendall(b"version\r\n")
            return _recv_until(sock, b"\r\n").startswith(b"VERSION")
    except OSError:
        return False


def _start(
    name: str,
    build: list[str],
    ready: object,
    attempts: int = 3,
    cpus: set[int] | None = None,
) -> Server:
    binary = shutil.which(name)
    if binary is None:
        raise RuntimeError(
            f"{name} is not installed; run 'bash scripts/install-servers.sh' "
            "(or 'apt-get install redis-server memcached')"
        )
    assert callable(ready)
    last = ""
    for _ in range(attempts):
        port = free_port()
        workdir = tempfile.mkdtemp(prefix=f"bench-{name}-")
        args = [binary, *(arg.replace("{port}", str(port)) for arg in build)]
        args = [arg.replace("{dir}", workdir) for arg in args]
        with open(os.path.join(workdir, "log"), "wb") as log:
            process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                preexec_fn=pin_to(cpus),
            )
        server = Server(name, port, process, workdir)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            if ready(port):
                return server
            time.sleep(0.05)
        with open(os.path.join(workdir, "log"), "rb") as f:
            last = f.read()[-2000:].decode(errors="replace")
        server.stop()
    raise RuntimeError(f"{name} did not start: {last}")


def start_redis(cpus: set[int] | None = None) -> Server:
    """A private redis-server on a free loopback port, without persistence."""
    return _start(
        "redis-server",
        [
            "--port",
            "{port}",
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "{dir}",
            "--daemonize",
            "no",
        ],
        _redis_ready,
        cpus=cpus,
    )


def start_memcached(cpus: set[int] | None = None) -> Server:
    """A private memcached on a free loopback port (TCP only, 64 MB)."""
    extra = ["-u", "root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    return _start(
        "memcached",
        ["-l", HOST, "-p", "{port}", "-U", "0", "-m", "64", *extra],
        _memcached_ready,
        cpus=cpus,
    )


# -- round-trip counting relay -----------------------------------------------------


@dataclass
class _Pair:
    client: socket.socket
    server: socket.socket
    pending: bytearray = field(default_factory=bytearray)
    deadline: float = 0.0


@dataclass
class TurnCounter:
    """A relay on a free loopback port to ``target_port``, counting round trips."""

    target_port: int
    port: int = 0
    turns: int = 0
    _listener: socket.socket | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pairs: dict[int, _Pair] = field(default_factory=dict)

    def start(self) -> TurnCounter:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, 0))
        listener.listen(64)
        listener.setblocking(False)
        self._listener = listener
        self.port = int(listener.getsockname()[1])
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def count(self, settle: float = 0.01) -> int:
        """Turns so far, after letting in-flight bytes pass through."""
        time.sleep(settle)
        with self._lock:
            return self.turns

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        assert self._listener is not None
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ, None)
        try:
            while not self._stop.is_set():
                waiting = [p for p in self._pairs.values() if p.pending]
                timeout = QUIET / 3 if waiting else 0.1
                for key, _ in selector.select(timeout=timeout):
                    if key.data is None:
                        self._accept(selector)
                    else:
                        self._relay(selector, key.fileobj, key.data)  # type: ignore[arg-type]
                now = time.monotonic()
                for pair in list(self._pairs.values()):
                    if pair.pending and now >= pair.deadline:
                        with self._lock:
                            self.turns += 1
                        pair.server.sendall(bytes(pair.pending))
                        pair.pending.clear()
        finally:
            for pair in list(self._pairs.values()):
                pair.client.close()
                pair.server.close()
            self._listener.close()
            selector.close()

    def _accept(self, selector: selectors.BaseSelector) -> None:
        assert self._listener is not None
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        server = socket.create_connection((HOST, self.target_port))
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pair = _Pair(client, server)
        self._pairs[client.fileno()] = pair
        selector.register(client, selectors.EVENT_READ, pair)
        selector.register(server, selectors.EVENT_READ, pair)

    def _relay(
        self, selector: selectors.BaseSelector, sock: socket.socket, pair: _Pair
    ) -> None:
        try:
            data = sock.recv(1 << 20)
        except OSError:
            data = b""
        if not data:
            for end in (pair.client, pair.server):
                selector.unregister(end)
                end.close()
            self._pairs = {k: v for k, v in self._pairs.items() if v is not pair}
            return
        if sock is pair.client:
            pair.pending += data
            pair.deadline = time.monotonic() + QUIET
        else:
            pair.client.sendall(data)
