"""The redis-server and memcached that released Flask-Caching's tests expect.

Its fixtures use whatever listens on 127.0.0.1:6360 (Redis) and :11212 (memcached) and
only start their own through pytest-xprocess otherwise. We start both ourselves, without
persistence, and stop them by PID afterwards. A port already taken is an error: the
suite would silently run against someone else's server.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

HOST = "127.0.0.1"
REDIS_PORT = 6360
MEMCACHED_PORT = 11212


class ServerError(RuntimeError):
    """A server could not be started (binary missing, port taken, died on start)."""


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((HOST, port)) == 0


def _argv(name: str, workdir: Path) -> list[str]:
    if name == "redis-server":
        return [
            *("redis-server", "--save", "", "--appendonly", "no"),
            *("--bind", HOST, "--port", str(REDIS_PORT), "--dir", str(workdir)),
        ]
    argv = ["memcached", "-l", HOST, "-p", str(MEMCACHED_PORT)]
    return argv + (["-u", "root"] if os.geteuid() == 0 else [])


@contextmanager
def _server(name: str, port: int, workdir: Path) -> Iterator[None]:
    """Run one server on its fixed port for the duration of the block."""
    if shutil.which(name) is None:
        raise ServerError(f"{name} is not installed (scripts/install-servers.sh)")
    if _listening(port):
        raise ServerError(
            f"{HOST}:{port} is already taken; the upstream suite would use that "
            f"server instead of ours. Stop whatever listens there and retry."
        )
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(_argv(name, workdir), stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 15
        while not _listening(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise ServerError(f"{name} did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        print(f"conformance: {name} pid {proc.pid} on {HOST}:{port}", flush=True)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def upstream_servers(workdir: Path) -> Iterator[None]:
    """Redis on 6360 and memcached on 11212, both stopped when the block ends."""
    workdir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        stack.enter_context(_server("redis-server", REDIS_PORT, workdir))
        stack.enter_context(_server("memcached", MEMCACHED_PORT, workdir))
        yield
