"""FileSystemCache under a running app when the disk misbehaves: never a failed request.

A full disk (a real 64 KiB tmpfs when we may mount one, else skipped; plus simulated
ENOSPC in the middle of a write), unreadable, truncated or garbage entry files, the
directory removed or replaced under the app, and writer processes SIGKILLed mid-write.
Each case reads as a miss, the request answers, and the entry is repaired by the next
write. (Concurrent writers with big values are in ``test_filesystem_shared.py``.)
"""

from __future__ import annotations

import errno
import logging
import multiprocessing as mp
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import typing as t
from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from flask_caching import Cache
from flask_caching.backends.filesystemcache import FileSystemCache
from flask_caching.runtime import Runtime

LOGGER = "flask_caching"


class App:
    """An app on a FileSystemCache in *path*, with a memoized function and a view."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.app = Flask(__name__)
        self.app.config.update(
            CACHE_TYPE="FileSystemCache", CACHE_DIR=path, CACHE_THRESHOLD=0
        )
        self.cache = Cache(self.app)
        self.client = self.app.test_client()
        self.calls: list[t.Any] = []
        calls = self.calls

        @self.cache.memoize()
        def blob(n: int, size: int = 100) -> bytes:
            calls.append(n)
            return bytes([n % 256]) * size

        self.blob = blob

        @self.app.route("/page")
        @self.cache.cached()
        def page() -> str:
            calls.append("page")
            return "page body"

    @property
    def backend(self) -> FileSystemCache:
        return t.cast(FileSystemCache, self.app.extensions["cache"][self.cache])

    @property
    def runtime(self) -> Runtime:
        rt: Runtime = self.app.extensions["flask_caching"][self.cache]
        return rt

    def get_page(self) -> bool:
        """Request /page; True when it was a hit."""
        before = len(self.calls)
        response = self.client.get("/page")
        assert response.status_code == 200
        assert response.text == "page body"
        return len(self.calls) == before

    def page_file(self) -> str:
        with self.app.test_request_context("/page"):
            view: t.Any = self.app.view_functions["page"]
            key = view.make_cache_key()
        return self.backend._get_filename(key)

    def files(self) -> list[str]:
        return sorted(os.listdir(self.path)) if os.path.isdir(self.path) else []


@pytest.fixture
def site(tmp_path: t.Any) -> App:
    return App(str(tmp_path / "cache"))


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    return caplog


def warnings_of(caplog: pytest.LogCaptureFixture, text: str = "") -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER and r.levelno == logging.WARNING and text in r.getMessage()
    ]


def read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def temp_files(path: str) -> list[str]:
    return sorted(n for n in os.listdir(path) if n.startswith(".tmp-"))


# --- a full disk -------------------------------------------------------------------


@pytest.fixture
def tiny_disk() -> Iterator[str]:
    """A 64 KiB tmpfs, unmounted afterwards; skipped where we may not mount."""
    mount = shutil.which("mount")
    umount = shutil.which("umount")
    if os.geteuid() != 0 or mount is None or umount is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    where = tempfile.mkdtemp(prefix="fc-tiny-disk-")
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", "size=64k", "tmpfs", where],
        capture_output=True,
        timeout=10,
        check=False,
    )
    if done.returncode != 0:
        os.rmdir(where)
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run([umount, where], capture_output=True, timeout=10, check=False)
        if os.path.ismount(where):  # pragma: no cover - busy: detach it lazily
            subprocess.run([umount, "-l", where], timeout=10, check=False)
        os.rmdir(where)


def test_a_full_disk_serves_uncached_and_recovers(
    tiny_disk: str, logs: pytest.LogCaptureFixture
) -> None:
    site = App(os.path.join(tiny_disk, "cache"))
    size = 40 * 1024
    with site.app.app_context():
        assert site.blob(1, size) == site.blob(1, size)  # stored, then a hit
        assert site.calls == [1]
        for _ in range(5):  # no room for a second 40 KiB entry
            assert site.blob(2, size) == bytes([2]) * size
        assert site.calls == [1, 2, 2, 2, 2, 2]
        assert site.blob(1, size) == bytes([1]) * size  # the stored one still hits
        assert site.calls.count(1) == 1
    assert temp_files(site.path) == []  # failed writes left nothing behind
    assert len(warnings_of(logs, "cannot write")) == 1  # not one per request
    assert len(warnings_of(logs, "blob")) == 1
    assert site.runtime.writes.failures == 0  # a full disk is not a dead backend

    with site.app.app_context():
        site.cache.delete_memoized(site.blob, 1, size)  # frees the space
        assert site.backend.get("x") is None
        assert site.blob(2, size) == site.blob(2, size)  # stored again, then a hit
    assert site.calls[-1] == 2 and site.calls.count(2) == 6
    assert any(
        "work again" in r.getMessage() and r.levelno == logging.INFO
        for r in logs.records
    )


def test_enospc_in_the_middle_of_a_write_keeps_the_old_entry(
    site: App, monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture
) -> None:
    assert not site.get_page() and site.get_page()
    old = read_bytes(site.page_file())
    real_fdopen = os.fdopen

    class HalfWriter:
        """Writes half of what it is given, then the disk is full."""

        def __init__(self, fd: int, mode: str) -> None:
            self._f = real_fdopen(fd, mode)

        def write(self, data: bytes) -> int:
            self._f.write(data[: len(data) // 2])
            self._f.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __enter__(self) -> HalfWriter:
            return self

        def __exit__(self, *exc: object) -> None:
            self._f.close()

    monkeypatch.setattr(os, "fdopen", HalfWriter)
    with site.app.test_request_context():
        for n in range(3, 8):
            assert site.blob(n, 5000) == bytes([n]) * 5000
    # the page's entry was never touched by the failing writes: still whole, a hit
    assert read_bytes(site.page_file()) == old
    assert site.get_page()
    assert temp_files(site.path) == []
    assert len(warnings_of(logs, "No space left")) == 1
    monkeypatch.undo()
    with site.app.app_context():
        assert site.blob(3, 5000) == site.blob(3, 5000)
    assert site.calls.count(3) == 2  # written once the disk had room again


def test_no_temp_file_can_be_created(
    site: App, monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture
) -> None:
    def refuse(*args: t.Any, **kwargs: t.Any) -> t.Any:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    for _ in range(4):
        assert not site.get_page()
    assert len(warnings_of(logs, "Permission denied")) == 1
    monkeypatch.undo()
    assert not site.get_page() and site.get_page()


# --- damaged entries ----------------------------------------------------------------


def _truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "truncated": _truncate,
    "header-only": lambda data: data[:4],
    "header-and-a-bit": lambda data: data[:8],
    "shorter-than-header": lambda data: data[:3],
    "empty": lambda data: b"",
    "garbage-after-header": lambda data: data[:4] + b"\x80\x05garbage" * 10,
    "random-bytes": lambda data: os.urandom(len(data)),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_entry_is_a_miss_and_is_rewritten(
    site: App, damage: str, logs: pytest.LogCaptureFixture
) -> None:
    assert not site.get_page() and site.get_page()
    path = site.page_file()
    good = read_bytes(path)
    bad = DAMAGE[damage](good)
    with open(path, "wb") as f:
        f.write(bad)
    assert not site.get_page()  # a miss, answered
    repaired = read_bytes(path)
    assert repaired != bad and len(repaired) == len(good)
    assert site.get_page()
    assert site.runtime.reads.failures == 0


def test_an_unreadable_entry_is_a_miss_and_is_rewritten(
    site: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    # root reads files whatever their mode, so refuse the open() itself
    assert not site.get_page() and site.get_page()
    path = site.page_file()
    before = os.stat(path).st_ino
    real_open = os.open

    def guarded_open(file: t.Any, *args: t.Any, **kwargs: t.Any) -> t.Any:
        if file == path:
            raise PermissionError(errno.EACCES, "Permission denied", file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded_open)
    assert not site.get_page()
    assert os.stat(path).st_ino != before  # replaced by a fresh entry
    monkeypatch.undo()
    assert site.get_page()


def test_the_directory_removed_under_a_running_app_is_recreated(site: App) -> None:
    assert not site.get_page() and site.get_page()
    shutil.rmtree(site.path)
    assert not site.get_page()  # a miss, answered; the write recreated the directory
    assert os.path.isdir(site.path)
    assert site.get_page()


def test_the_directory_replaced_by_a_file_never_fails_a_request(
    site: App, logs: pytest.LogCaptureFixture
) -> None:
    assert not site.get_page()
    shutil.rmtree(site.path)
    with open(site.path, "w") as f:
        f.write("not a directory")
    for _ in range(3):
        assert not site.get_page()
    with site.app.app_context():
        assert site.cache.set("k", 1) is False  # proxies report it their way
        assert site.cache.get("k") is None
    assert len(warnings_of(logs, "cannot write")) == 1
    os.unlink(site.path)
    assert not site.get_page() and site.get_page()


# --- writers killed mid-write -------------------------------------------------------

BIG = 400_000


def _hammer(path: str, marker: int) -> None:
    """Write one key over and over (in a forked child) until killed; at most 5 s."""
    cache = FileSystemCache(path, threshold=0)
    body = bytes([marker]) * BIG
    deadline = time.monotonic() + 5
    i = 0
    while time.monotonic() < deadline:
        cache.set("shared", (marker, i, body))
        i += 1


def test_writers_killed_mid_write_never_leave_a_torn_entry(tmp_path: t.Any) -> None:
    """Two writer processes hammer one key with 400 KB values; one of them is
    SIGKILLed at a random moment, again and again, while this process reads."""
    path = str(tmp_path)
    ctx = mp.get_context("fork")  # instant children: no interpreter start-up
    reader = FileSystemCache(path, threshold=0)
    procs: list[t.Any] = []

    def spawn(marker: int) -> t.Any:
        proc = ctx.Process(target=_hammer, args=(path, marker), daemon=True)
        proc.start()
        procs.append(proc)
        return proc

    rng = random.Random(6)
    seen = torn = kills = 0
    try:
        live = [spawn(1), spawn(2)]
        deadline = time.monotonic() + 1.5
        # a busy machine may starve the writers for a while: go on until a whole
        # entry was read, for at most 10 s
        hard_deadline = deadline + 8.5
        next_kill = time.monotonic() + rng.uniform(0.02, 0.1)
        while time.monotonic() < deadline or (
            not seen and time.monotonic() < hard_deadline
        ):
            value = reader.get("shared")
            if value is not None:
                seen += 1
                marker, _i, body = value
                if body != bytes([marker]) * BIG:
                    torn += 1
            if time.monotonic() >= next_kill:
                victim = live.pop(0)
                os.kill(victim.pid, signal.SIGKILL)
                victim.join(timeout=10)
                kills += 1
                live.append(spawn(10 + kills % 200))
                next_kill = time.monotonic() + rng.uniform(0.02, 0.1)
    finally:
        for proc in procs:
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGKILL)
            proc.join(timeout=10)
    leftovers = temp_files(path)
    print(
        f"\nFAULT filesystem writers SIGKILLed: {kills} kills, {seen} reads of whole"
        f" entries, {torn} torn, {len(leftovers)} temp files left behind by the dead"
        " writers"
    )
    assert kills >= 5
    assert seen > 0
    assert torn == 0
    value = reader.get("shared")
    assert value is not None and value[2] == bytes([value[0]]) * BIG
    # temp files carry cachelib's suffix, so a released Flask-Caching sharing the
    # directory skips them too; what the dead writers left behind goes with clear()
    # once it is old enough
    assert all(name.endswith(".__wz_cache") for name in leftovers)
    fresh = os.path.join(path, ".tmp-in-flight.__wz_cache")
    with open(fresh, "wb") as f:
        f.write(b"a write still under way")
    with open(os.path.join(path, ".tmp-dead.__wz_cache"), "wb") as f:
        f.write(b"half an entry")
    old = time.time() - 3600
    for name in [*leftovers, ".tmp-dead.__wz_cache"]:
        os.utime(os.path.join(path, name), (old, old))
    assert reader.clear()
    assert temp_files(path) == [".tmp-in-flight.__wz_cache"]
