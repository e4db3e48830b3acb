"""Real cache servers for the tests, on free loopback ports, one process group each.

Redis (standalone, Sentinel, 3-master Cluster) and memcached (plain and SASL) start
here; ``conftest.py`` exposes them as fixtures. Every process is stopped by PID (its
process group) by the fixture finalizers and, should pytest die first, by an ``atexit``
hook; temp dirs go with them. A missing binary skips the tests that need it, except with
``CI=true`` where it fails them: CI must never silently test less.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import typing as t
from collections.abc import Callable, Sequence

import pytest

if t.TYPE_CHECKING:
    import redis

HOST = "127.0.0.1"
#: seconds a server gets to accept connections (and a group to settle)
READY_TIMEOUT = 15.0

_live: dict[int, ServerProcess] = {}

_PR_SET_PDEATHSIG = 1
_libc = (
    ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if os.name == "posix"
    else None
)


def _detach_and_die_with_parent() -> None:
    """In the child: own process group, and SIGKILL when pytest dies (Linux only).

    The ``atexit`` hook cannot run if pytest itself is SIGKILLed; this covers it.
    """
    os.setsid()
    if _libc is not None and hasattr(_libc, "prctl"):
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def in_ci() -> bool:
    """True when the CI variable says so: missing servers then fail the tests."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_binary(name: str) -> str:
    """Return the path of *name*, or skip (fail under CI) with a reason naming it."""
    path = shutil.which(name)
    if path is None:
        reason = (
            f"the {name!r} binary is not installed; "
            "run scripts/install-servers.sh as root to install the test servers"
        )
        if in_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return path


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class ServerError(RuntimeError):
    """A server did not start or did not become ready; the message has its log."""


class ServerProcess:
    """One server process in its own process group, restartable on the same port.

    Fault tests use :meth:`kill`, :meth:`stop` (SIGSTOP: the port still accepts
    connections but nothing answers), :meth:`cont` and :meth:`restart`.
    """

    #: the signal :meth:`terminate` sends first
    stop_signal: int = signal.SIGTERM

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        port: int,
        workdir: str,
        probe: Callable[[int], bool],
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.host = HOST
        self.port = port
        self.workdir = workdir
        self.env = env
        self.log_path = os.path.join(workdir, f"{name}.log")
        self._probe = probe
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The PID (and process group id) of the running server."""
        assert self.proc is not None, f"{self.name} is not running"
        return self.proc.pid

    def start(self) -> None:
        """Start the process and wait until it answers on its port."""
        env = None if self.env is None else {**os.environ, **self.env}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_detach_and_die_with_parent,
            )
        _live[id(self)] = self
        self.wait_ready()

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Probe the port until the server answers, it exits, or *timeout* passes."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(
                    f"{self.name} exited with status {self.proc.returncode}"
                    f" on port {self.port}\n{self.log_tail()}"
                )
            try:
                if self._probe(self.port):
                    return
            except OSError as exc:
                last = exc
            time.sleep(0.02)
        raise ServerError(
            f"{self.name} did not answer on port {self.port} within {timeout}s"
            f" (last error: {last!r})\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log, for error messages."""
        try:
            with open(self.log_path, errors="replace") as log:
                tail = log.readlines()[-lines:]
        except OSError:
            return "(no log)"
        return f"--- {self.log_path} ---\n" + "".join(tail)

    def _signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """SIGKILL the process group and reap it: an abrupt crash."""
        self._signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGSTOP the process group: connections hang instead of failing."""
        self._signal(signal.SIGSTOP)

    def cont(self) -> None:
        """SIGCONT the process group after :meth:`stop`."""
        self._signal(signal.SIGCONT)

    def terminate(self) -> None:
        """Stop the server gracefully, SIGKILL it after 5 s."""
        if self.proc is None:
            return
        self._signal(self.stop_signal)
        self._signal(signal.SIGCONT)  # a stopped process must run to see SIGTERM
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self) -> None:
        """Stop the server (whatever its state) and start it again on the same port."""
        self.terminate()
        self.start()

    def close(self) -> None:
        """Stop the server for good and delete its temp dir."""
        self.terminate()
        _live.pop(id(self), None)
        shutil.rmtree(self.workdir, ignore_errors=True)


@atexit.register
def _stop_everything() -> None:
    for server in list(_live.values()):
        server.close()


# --- redis -----------------------------------------------------------------------


def _redis_ping(port: int) -> bool:
    with socket.create_connection((HOST, port), timeout=0.5) as sock:
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))


class RedisServer(ServerProcess):
    """A redis-server (or sentinel) process."""

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def client(self, **kwargs: t.Any) -> redis.Redis:
        """A plain redis-py client for inspecting the server from a test."""
        import redis

        kwargs.setdefault("socket_timeout", 5)
        return redis.Redis(host=HOST, port=self.port, **kwargs)


def start_redis(*extra: str, name: str = "redis") -> RedisServer:
    """Start a redis-server without persistence on a free port; extra args appended."""
    binary = require_binary("redis-server")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix=f"fc-{name}-")
    argv = [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly"]
    argv += ["no", "--dir", workdir, "--logfile", "", *extra]
    server = RedisServer(name, argv, port=port, workdir=workdir, probe=_redis_ping)
    _start_or_clean(server)
    return server


def _start_or_clean(server: ServerProcess) -> None:
    try:
        server.start()
    except BaseException:
        server.close()
        raise


def _wait_until(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise ServerError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def _info(server: RedisServer, section: str) -> dict[str, t.Any]:
    with server.client() as client:
        info: dict[str, t.Any] = client.info(section)
        return info


class SentinelGroup:
    """A master, one replica and one sentinel watching them (quorum 1)."""

    def __init__(self, master_name: str = "mymaster") -> None:
        self.master_name = master_name
        self.servers: list[RedisServer] = []
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        fast_sync = ("--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0")
        self.master = start_redis(*fast_sync, name="sentinel-master")
        self.servers.append(self.master)
        self.replica = start_redis(
            *fast_sync, "--replicaof", HOST, str(self.master.port), name="replica"
        )
        self.servers.append(self.replica)
        _wait_until(
            "the replica to sync",
            lambda: (
                _info(self.replica, "replication").get("master_link_status") == "up"
            ),
            READY_TIMEOUT,
        )
        binary = require_binary("redis-server")
        port = free_port()
        workdir = tempfile.mkdtemp(prefix="fc-sentinel-")
        conf = os.path.join(workdir, "sentinel.conf")
        name = self.master_name
        with open(conf, "w") as fh:
            fh.write(
                f"port {port}\nbind {HOST}\ndir {workdir}\n"
                f"sentinel monitor {name} {HOST} {self.master.port} 1\n"
                f"sentinel down-after-milliseconds {name} 400\n"
                f"sentinel failover-timeout {name} 5000\n"
            )
        self.sentinel = RedisServer(
            "sentinel", [binary, conf, "--sentinel"], port=port, workdir=workdir,
            probe=_redis_ping,
        )  # fmt: skip
        _start_or_clean(self.sentinel)
        self.servers.append(self.sentinel)
        _wait_until("the sentinel to see the replica", self._replica_known, 10)

    def _replica_known(self) -> bool:
        with self.sentinel.client(decode_responses=True) as client:
            replicas = client.sentinel_slaves(self.master_name)
        return any(
            not (entry["is_disconnected"] or entry["is_sdown"]) for entry in replicas
        )

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        """The sentinel addresses, as CACHE_REDIS_SENTINELS wants them."""
        return [(HOST, self.sentinel.port)]

    def master_port(self) -> int:
        """The port of the master as clients discover it (``SENTINEL MASTER``).

        During a failover ``GET-MASTER-ADDR-BY-NAME`` already names the replica being
        promoted, while clients, which read ``SENTINEL MASTER(S)``, still get the old
        master until the switch completes; this waits for what clients see.
        """
        with self.sentinel.client(decode_responses=True) as client:
            state = client.sentinel_master(self.master_name)
        return int(state["port"])

    def wait_for_failover(self, old_port: int, timeout: float = 20) -> int:
        """Wait until clients are sent to a promoted replica; return its port."""
        _wait_until(
            "the sentinel to switch to the replica",
            lambda: self.master_port() != old_port,
            timeout,
        )
        new_port = self.master_port()
        assert new_port == self.replica.port, "promoted an unknown server"
        _wait_until(
            "the promoted replica to act as master",
            lambda: _info(self.replica, "replication").get("role") == "master",
            timeout,
        )
        return new_port

    def close(self) -> None:
        for server in reversed(self.servers):
            server.close()


class ClusterGroup:
    """A Redis Cluster of three masters (no replicas), waited on to cluster_state:ok."""

    def __init__(self, size: int = 3) -> None:
        self.nodes: list[RedisServer] = []
        try:
            self._start(size)
        except BaseException:
            self.close()
            raise

    def _start(self, size: int) -> None:
        cli = require_binary("redis-cli")
        for _ in range(size):
            self.nodes.append(
                start_redis(
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", "nodes.conf",
                    "--cluster-port", str(free_port()),
                    "--cluster-node-timeout", "2000",
                    name="cluster-node",
                )
            )  # fmt: skip
        addresses = [f"{HOST}:{node.port}" for node in self.nodes]
        result = subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise ServerError(
                f"redis-cli --cluster create failed:\n{result.stdout}{result.stderr}"
            )
        _wait_until("cluster_state:ok on every node", self._ok, READY_TIMEOUT)

    def _ok(self) -> bool:
        for node in self.nodes:
            with node.client(decode_responses=True) as client:
                if client.cluster("INFO").get("cluster_state") != "ok":
                    return False
        return True

    @property
    def startup(self) -> str:
        """The nodes as CACHE_REDIS_CLUSTER wants them: ``host:port,host:port``."""
        return ",".join(f"{HOST}:{node.port}" for node in self.nodes)

    def close(self) -> None:
        for node in reversed(self.nodes):
            node.close()


# --- memcached -------------------------------------------------------------------

_BINARY_HEADER = struct.Struct("!BBHBBHIIQ")
_MC_GET = 0x00
_MC_SASL_AUTH = 0x21
MC_STATUS_OK = 0x00
MC_STATUS_AUTH_ERROR = 0x20


def memcached_binary_request(port: int, opcode: int, key: bytes, value: bytes) -> int:
    """Send one binary-protocol request on a new connection; return the status."""
    with socket.create_connection((HOST, port), timeout=2) as sock:
        header = _BINARY_HEADER.pack(
            0x80, opcode, len(key), 0, 0, 0, len(key) + len(value), 0, 0
        )
        sock.sendall(header + key + value)
        reply = _recv_exactly(sock, _BINARY_HEADER.size)
        status: int = _BINARY_HEADER.unpack(reply)[5]
        _recv_exactly(sock, _BINARY_HEADER.unpack(reply)[6])
        return status


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("memcached closed the connection")
        data += chunk
    return data


def _memcached_version(port: int) -> bool:
    with socket.create_connection((HOST, port), timeout=0.5) as sock:
        sock.sendall(b"version\r\n")
        return sock.recv(64).startswith(b"VERSION")


def _memcached_answers(port: int) -> bool:
    memcached_binary_request(port, _MC_GET, b"probe", b"")
    return True


class MemcachedServer(ServerProcess):
    """A memcached process; ``username``/``password`` are set when it requires SASL."""

    username: str | None = None
    password: str | None = None
    #: memcached lingers a second on SIGTERM and holds nothing worth a clean exit
    stop_signal = signal.SIGKILL

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"


def _memcached_argv(port: int, extra: Sequence[str]) -> list[str]:
    argv = [require_binary("memcached"), "-l", HOST, "-p", str(port), "-U", "0"]
    if os.geteuid() == 0:
        argv += ["-u", "root"]
    return [*argv, "-m", "64", *extra]


def start_memcached(*extra: str) -> MemcachedServer:
    """Start a plain memcached on a free port; extra args appended."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="fc-memcached-")
    server = MemcachedServer(
        "memcached",
        _memcached_argv(port, extra),
        port=port,
        workdir=workdir,
        probe=_memcached_version,
    )
    _start_or_clean(server)
    return server


def start_memcached_sasl(
    username: str = "fcuser", password: str = "fc-secret-pw"
) -> MemcachedServer:
    """Start memcached with SASL PLAIN over its own sasldb, and prove it needs auth."""
    saslpasswd2 = require_binary("saslpasswd2")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="fc-memcached-sasl-")
    db = os.path.join(workdir, "memcached-sasl.db")
    made = subprocess.run(
        [saslpasswd2, "-a", "memcached", "-c", "-p", "-f", db, username],
        input=password.encode(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    if made.returncode != 0:
        shutil.rmtree(workdir, ignore_errors=True)
        raise ServerError(f"saslpasswd2 failed: {made.stderr.decode(errors='replace')}")
    with open(os.path.join(workdir, "memcached.conf"), "w") as conf:
        conf.write(f"mech_list: plain\nsasldb_path: {db}\n")
    server = MemcachedServer(
        "memcached-sasl",
        _memcached_argv(port, ["-S"]),
        port=port,
        workdir=workdir,
        probe=_memcached_answers,
        env={"SASL_CONF_PATH": workdir},
    )
    server.username, server.password = username, password
    _start_or_clean(server)
    try:
        _check_sasl(server, username, password)
    except BaseException:
        server.close()
        raise
    return server


def _check_sasl(server: MemcachedServer, username: str, password: str) -> None:
    anonymous = memcached_binary_request(server.port, _MC_GET, b"probe", b"")
    if anonymous != MC_STATUS_AUTH_ERROR:
        raise ServerError(
            f"memcached -S answered an unauthenticated GET with status {anonymous:#x}"
            f" instead of {MC_STATUS_AUTH_ERROR:#x}\n{server.log_tail()}"
        )
    plain = f"\0{username}\0{password}".encode()
    status = memcached_binary_request(server.port, _MC_SASL_AUTH, b"PLAIN", plain)
    if status != MC_STATUS_OK:
        raise ServerError(
            f"SASL PLAIN login to memcached failed with status {status:#x};"
            " is libsasl2-modules installed? (scripts/install-servers.sh)"
            f"\n{server.log_tail()}"
        )


def memcached_client_param(name: str) -> t.Any:
    """A pytest parameter for memcached client library *name*: skipped when it is
    not installed (a failure under CI), python-memcached's GC'd sockets tolerated."""
    import importlib.util

    marks = [
        pytest.mark.skipif(
            not importlib.util.find_spec(name), reason=f"{name} not installed"
        )
    ]
    if name == "memcache":  # python-memcached leaves per-thread sockets to the GC
        marks.append(
            pytest.mark.filterwarnings(
                "ignore::pytest.PytestUnraisableExceptionWarning"
            )
        )
    return pytest.param(name, marks=marks)


#: every memcached client we support, as pytest parameters
MEMCACHED_CLIENTS = [
    memcached_client_param(name) for name in ("pylibmc", "pymemcache", "memcache")
]
