"""Several processes sharing one FileSystemCache directory never see a torn entry."""

from __future__ import annotations

import errno
import hashlib
import multiprocessing as mp
import os
import typing as t

import pytest
from decorator_support import Clock

from flask_caching.backends.filesystemcache import FileSystemCache

ROUNDS = 150
#: cachelib's count file, kept beside the entries
COUNT_FILE = hashlib.sha256(b"__wz_cache_count").hexdigest()


def entry_names(path: t.Any) -> list[str]:
    """The entry files in *path*: not temp files, not cachelib's count file."""
    return sorted(
        n
        for n in os.listdir(path)
        if not n.startswith(".tmp-")
        and not n.endswith(".__wz_cache")
        and n != COUNT_FILE
    )


def _writer(path: str, marker: int, rounds: int) -> None:
    cache = FileSystemCache(path, threshold=0)
    for i in range(rounds):
        # big values: a torn write would show up as a short or mixed payload
        cache.set("shared", (marker, i, bytes([marker]) * 200_000))


def _reader(path: str, rounds: int, queue: t.Any) -> None:
    cache = FileSystemCache(path, threshold=0)
    bad = 0
    seen = 0
    for _ in range(rounds * 2):
        value = cache.get("shared")
        if value is None:
            continue
        seen += 1
        marker, _i, body = value
        if len(body) != 200_000 or body != bytes([marker]) * 200_000:
            bad += 1
    queue.put((seen, bad))


def test_two_writer_processes_and_a_reader_never_see_a_corrupt_entry(
    tmp_path: t.Any,
) -> None:
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(str(tmp_path), 1, ROUNDS)),
        ctx.Process(target=_writer, args=(str(tmp_path), 2, ROUNDS)),
        ctx.Process(target=_reader, args=(str(tmp_path), ROUNDS, queue)),
    ]
    for p in procs:
        p.start()
    try:
        seen, bad = queue.get(timeout=60)
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():  # pragma: no cover - only on a hang
                p.kill()
    assert all(p.exitcode == 0 for p in procs)
    assert bad == 0
    assert seen > 0
    leftovers = [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")]
    assert leftovers == []


def test_add_is_exclusive_across_processes(tmp_path: t.Any) -> None:
    ctx = mp.get_context("fork")
    queue = ctx.Queue()

    def racer(n: int) -> None:
        queue.put((n, FileSystemCache(str(tmp_path)).add("lock", n, timeout=30)))

    procs = [ctx.Process(target=racer, args=(n,)) for n in range(6)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    winners = [n for n, ok in results if ok]
    assert len(winners) == 1
    assert FileSystemCache(str(tmp_path)).get("lock") == winners[0]


def test_threshold_prunes_expired_then_oldest(tmp_path: t.Any) -> None:
    cache = FileSystemCache(str(tmp_path), threshold=3)
    for i in range(5):
        cache.set(f"k{i}", i)
    names = entry_names(tmp_path)
    assert len(names) <= 3
    assert cache.get("k4") == 4


def test_threshold_removes_expired_entries_before_any_live_one(
    tmp_path: t.Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(monkeypatch)
    cache = FileSystemCache(str(tmp_path), threshold=10)
    for i in range(4):
        cache.set(f"short{i}", i, timeout=10)
    for i in range(6):
        cache.set(f"live{i}", i)
    clock.advance(20)  # the directory is full: 4 expired entries, 6 live ones
    cache.set("new", "n")
    names = entry_names(tmp_path)
    assert len(names) == 7  # the expired files are gone, every live one is kept
    live = [f"live{i}" for i in range(6)]
    assert cache.get_many(*live, "new") == [*range(6), "n"]


@pytest.mark.parametrize("ignore", [False, True])
def test_a_file_that_cannot_be_removed_fails_delete_many_unless_ignored(
    tmp_path: t.Any, monkeypatch: pytest.MonkeyPatch, ignore: bool
) -> None:
    cache = FileSystemCache(
        str(tmp_path), threshold=0, ignore_delete_many_errors=ignore
    )
    cache.set_many({"a": 1, "stuck": 2, "b": 3})
    stuck = cache._get_filename("stuck")
    real_unlink = os.unlink

    def unlink(path: t.Any, *args: t.Any, **kwargs: t.Any) -> None:
        if path == stuck:  # root removes any file, so refuse this one here
            raise PermissionError(errno.EACCES, "Permission denied", path)
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    if ignore:
        assert cache.delete_many("a", "stuck", "b", "never-set") == [
            "a",
            "b",
            "never-set",
        ]
    else:  # every key is tried, then the one still there is named
        with pytest.raises(RuntimeError, match=r"Failed to delete keys: \['stuck'\]"):
            cache.delete_many("a", "stuck", "b", "never-set")
    assert cache.get_many("a", "stuck", "b") == [None, 2, None]
    cache.set_many({f"c{i}": i for i in range(20)})
    assert cache.clear() is False  # a file is left, so the cache is not clear
    assert cache.get("stuck") == 2
    left = entry_names(tmp_path)
    if ignore:  # everything else went
        assert left == [os.path.basename(stuck)]
    else:  # clear stopped at the file it could not remove
        assert os.path.basename(stuck) in left and len(left) > 1


@pytest.mark.parametrize(
    ("mode", "expected"), [(600, 0o600), (0o640, 0o640), (755, 0o755)]
)
def test_mode_accepts_three_digit_octal(
    tmp_path: t.Any, mode: int, expected: int
) -> None:
    cache = FileSystemCache(str(tmp_path), mode=mode)
    cache.set("k", 1)
    (name,) = entry_names(tmp_path)
    assert os.stat(tmp_path / name).st_mode & 0o777 == expected


def test_bad_mode_is_rejected(tmp_path: t.Any) -> None:
    from flask_caching.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="mode"):
        FileSystemCache(str(tmp_path), mode=99999)


def test_threshold_holds_when_several_processes_write(tmp_path: t.Any) -> None:
    """Each writer counts only its own writes between listings; the directory
    must still stay near the threshold, not grow to writers x threshold."""
    ctx = mp.get_context("fork")
    started = ctx.Barrier(4)

    def writer(n: int) -> None:
        cache = FileSystemCache(str(tmp_path), threshold=50)
        cache.set(f"w{n}-first", 0)  # every writer lists the directory nearly empty
        started.wait(timeout=30)
        for i in range(48):
            cache.set(f"w{n}-{i}", i)

    procs = [ctx.Process(target=writer, args=(n,)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs)
    entries = entry_names(tmp_path)
    # a tenth of the threshold per writer between listings, at most
    assert len(entries) <= 50 + 4 * 6
