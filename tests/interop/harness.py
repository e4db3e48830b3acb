"""Workers seen from pytest: start one side's app in a subprocess and talk to it.

A :class:`Worker` is long-lived (one per side, backend and slot, for the session):
requests are JSON lines on its stdin, each reply is read with a timeout, and its
stderr goes to a log file quoted when something goes wrong. :class:`WorkerPool`
starts them on first use and kills them by PID at the end.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import tempfile
import threading
import typing as t
from pathlib import Path

from servers import _detach_and_die_with_parent

from .codec import Encoded, encode

WORKER = Path(__file__).resolve().with_name("worker.py")
ROOT = WORKER.parents[2]
#: seconds a worker gets to import Flask and flask_caching and say hello
START_TIMEOUT = 30.0
#: seconds one request may take (a few round trips to a loopback server)
REPLY_TIMEOUT = 15.0


class WorkerError(AssertionError):
    """The side's code raised while handling a request: a behaviour, not the harness."""


class WorkerDied(RuntimeError):
    """The worker exited, hung or spoke garbage: the harness or the side is broken."""


class Worker:
    """One side's app in a subprocess under *python*, labelled *label* in its marks."""

    def __init__(self, python: Path, label: str, config: dict[str, t.Any]) -> None:
        self.label = label
        fd, log_name = tempfile.mkstemp(
            prefix=f"interop-{label.replace('/', '-')}-", suffix=".log"
        )
        self.log_path = Path(log_name)
        env = {
            k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")
        }
        with os.fdopen(fd, "wb") as log:
            self.proc = subprocess.Popen(
                [str(python), str(WORKER)],
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                preexec_fn=_detach_and_die_with_parent,
            )
        self._replies: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        try:
            self.hello: dict[str, t.Any] = self._receive(START_TIMEOUT, "hello")
            self.call("configure", label=label, config=config)
        except BaseException:
            self.close()
            raise

    def _read(self) -> None:
        """Move the worker's reply lines to the queue; ``None`` marks its end."""
        stream = self.proc.stdout
        assert stream is not None
        try:
            for line in stream:
                self._replies.put(line)
        except (OSError, ValueError):  # the pipe closed under us at teardown
            pass
        self._replies.put(None)

    def log_tail(self, lines: int = 30) -> str:
        """The end of the worker's stderr."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return "(no log)"
        return f"--- {self.log_path} ---\n" + "\n".join(text)

    def _receive(self, timeout: float, op: str) -> t.Any:
        try:
            line = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise WorkerDied(
                f"{self.label}: no reply to {op!r} within {timeout}s\n{self.log_tail()}"
            ) from None
        if line is None:
            raise WorkerDied(
                f"{self.label} exited (status {self.proc.poll()}) during {op!r}"
                f"\n{self.log_tail()}"
            )
        try:
            reply = json.loads(line)
        except ValueError:
            raise WorkerDied(
                f"{self.label} answered {op!r} with {line[:200]!r}"
            ) from None
        if not reply["ok"]:
            error = reply["error"].rstrip()
            raise WorkerError(
                f"{self.label} raised {error.splitlines()[-1]} during {op!r}:\n{error}"
            )
        return reply["result"]

    def call(self, op: str, **request: t.Any) -> t.Any:
        """Send one request and return its result (WorkerError if the side raised)."""
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps({"op": op, **request}).encode() + b"\n")
            stdin.flush()
        except OSError as exc:
            raise WorkerDied(
                f"{self.label}: cannot send {op!r}: {exc}\n{self.log_tail()}"
            ) from exc
        return self._receive(REPLY_TIMEOUT, op)

    # -- the operations, typed -----------------------------------------------------

    def set(self, key: str, value: t.Any) -> bool:
        return bool(self.call("set", key=key, value=encode(value)))

    def get(self, key: str) -> tuple[Encoded, bool]:
        """The encoded value at *key* and whether ``has(key)`` is true."""
        result = self.call("get", key=key)
        return result["value"], result["has"]

    def delete(self, key: str) -> bool:
        return bool(self.call("delete", key=key))

    def request(self, path: str) -> str:
        """The body of GET *path*; a status other than 200 is a WorkerError."""
        result = self.call("request", path=path)
        if result["status"] != 200:
            raise WorkerError(f"{self.label}: GET {path} answered {result['status']}")
        return str(result["body"])

    def memo(self, token: str, n: int) -> str:
        return str(self.call("call", fn="memo", args=[token, n]))

    def balance(self, ident: str, token: str) -> str:
        return str(self.call("call", fn="balance", ident=ident, args=[token]))

    def delete_memoized(self, fn: str, *args: t.Any, ident: str | None = None) -> None:
        self.call("delete_memoized", fn=fn, ident=ident, args=list(args))

    def fragment(self, token: str) -> str:
        return str(self.call("fragment", token=token))

    def delete_fragment(self, token: str) -> bool:
        return bool(self.call("delete_fragment", token=token))

    def close(self) -> None:
        """Close stdin, give it a moment, then SIGKILL it by PID and reap it."""
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log_path.unlink(missing_ok=True)


class WorkerPool:
    """Workers by name, started on first use and all closed by :meth:`close`."""

    def __init__(self) -> None:
        self._workers: dict[str, Worker] = {}

    def get(self, name: str, python: Path, config: dict[str, t.Any]) -> Worker:
        """The worker called *name*, started (under *python*, on *config*) if new."""
        worker = self._workers.get(name)
        if worker is not None and worker.proc.poll() is not None:
            worker.close()  # died in an earlier test: start afresh
            worker = None
        if worker is None:
            worker = self._workers[name] = Worker(python, name, config)
        return worker

    def close(self) -> None:
        for worker in self._workers.values():
            worker.close()
        self._workers.clear()
