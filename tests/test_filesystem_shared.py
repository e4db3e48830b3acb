"""Several processes sharing one FileSystemCache directory never see a torn entry."""

from __future__ import annotations

import errno
import hashlib
import multiprocessing as mp
import os
import pickle
import struct
import threading
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


def _writer(path: str, marker: int, rounds: int, written: t.Any) -> None:
    cache = FileSystemCache(path, threshold=0)
    for i in range(rounds):
        # big values: a torn write would show up as a short or mixed payload
        cache.set("shared", (marker, i, bytes([marker]) * 200_000))
        written.set()


def _reader(path: str, rounds: int, queue: t.Any, written: t.Any) -> None:
    cache = FileSystemCache(path, threshold=0)
    # on a busy machine the reader may start well before either writer: reading
    # only from the first write on keeps "it saw entries" about the race
    if not written.wait(timeout=60):  # pragma: no cover - only on a hang
        queue.put((0, 0))
        return
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
    written = ctx.Event()
    procs = [
        ctx.Process(target=_writer, args=(str(tmp_path), 1, ROUNDS, written)),
        ctx.Process(target=_writer, args=(str(tmp_path), 2, ROUNDS, written)),
        ctx.Process(target=_reader, args=(str(tmp_path), ROUNDS, queue, written)),
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


# --- cachelib's format and signature ------------------------------------------------


class FakeClock:
    """Stands in for ``cachelib.file.time``: whole seconds, moved by hand."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, now: float = 1_800_000_000):
        import cachelib.file

        self.now = now
        monkeypatch.setattr(cachelib.file, "time", self)

    def __call__(self) -> float:
        return self.now


def test_entry_files_are_cachelib_files(
    tmp_path: t.Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cachelib.serializers import FileSystemSerializer

    clock = FakeClock(monkeypatch)
    cache = FileSystemCache(str(tmp_path), threshold=0)
    cache.set("page", {"a": [1, 2]}, timeout=60)
    cache.set("forever", "f", timeout=0)
    expected = FileSystemSerializer().dumps({"a": [1, 2]})
    page = tmp_path / hashlib.sha256(b"page").hexdigest()
    assert page.read_bytes() == struct.pack("I", int(clock.now) + 60) + expected
    forever = tmp_path / hashlib.sha256(b"forever").hexdigest()
    assert forever.read_bytes()[:4] == b"\0\0\0\0"
    assert entry_names(tmp_path) == sorted([page.name, forever.name])


def test_released_flask_caching_and_ours_read_each_others_files(
    tmp_path: t.Any,
) -> None:
    """cachelib's own FileSystemCache (what released Flask-Caching runs) and ours
    share one directory: values, counters and clear() work both ways."""
    import cachelib

    ours = FileSystemCache(tmp_path)
    # released Flask-Caching passes CACHE_FILE_HASH_METHOD (sha256): cachelib 0.9's
    # own default is md5
    theirs = cachelib.FileSystemCache(str(tmp_path), hash_method=hashlib.sha256)
    ours.set("ours", {"set": "by us"})
    theirs.set("theirs", ("set", b"by", "cachelib"), timeout=100)
    assert theirs.get("ours") == {"set": "by us"}
    assert ours.get("theirs") == ("set", b"by", "cachelib")
    ours.set("n", 5)
    assert theirs.inc("n") == 6 and ours.inc("n") == 7 and theirs.get("n") == 7
    assert ours.clear() is True
    assert theirs.get("theirs") is None and theirs._file_count == 0


def test_patched_cachelib_clock_moves_expiry(
    tmp_path: t.Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock(monkeypatch)
    cache = FileSystemCache(str(tmp_path), default_timeout=10)
    cache.set("default", 1)
    cache.set("forever", 2, timeout=0)
    clock.now += 10  # cachelib's rule: live through the last second
    assert cache.get("default") == 1 and cache.has("default")
    clock.now += 1
    assert cache.get("default") is None and not cache.has("default")
    assert cache.add("default", 3) is True  # an expired entry is taken over
    assert cache.get_many("default", "forever") == [3, 2]


def test_hash_method_names_the_files(tmp_path: t.Any) -> None:
    cache = FileSystemCache(str(tmp_path), hash_method=hashlib.md5, threshold=0)
    cache.set("k", 1)
    assert cache._hash_method is hashlib.md5
    assert entry_names(tmp_path) == [hashlib.md5(b"k").hexdigest()]


def test_constructor_takes_cachelibs_signature(tmp_path: t.Any) -> None:
    import inspect

    params = inspect.signature(FileSystemCache).parameters
    assert list(params) == [
        "cache_dir",
        "threshold",
        "default_timeout",
        "mode",
        "hash_method",
        "ignore_delete_many_errors",
        "ignore_errors",
    ]
    cache = FileSystemCache(str(tmp_path), 10, 20, 0o640, hashlib.sha1)
    assert (cache._threshold, cache.default_timeout, cache._mode) == (10, 20, 0o640)
    assert cache._hash_method is hashlib.sha1
    assert cache.ignore_delete_many_errors is False
    assert FileSystemCache(
        tmp_path, ignore_delete_many_errors=True
    ).ignore_delete_many_errors


def test_deprecated_ignore_errors_warns_and_sets_the_flag(tmp_path: t.Any) -> None:
    message = (
        "'ignore_errors' is deprecated and will be removed in the next version."
        " Use 'ignore_delete_many_errors' instead."
    )
    with pytest.warns(DeprecationWarning) as record:
        cache = FileSystemCache(str(tmp_path), ignore_errors=True)
    assert [str(w.message) for w in record] == [message]
    assert cache.ignore_delete_many_errors is True


def test_factory_reads_the_settings(tmp_path: t.Any) -> None:
    from flask import Flask

    app = Flask(__name__)
    config = {
        "CACHE_DIR": tmp_path / "pathlike",  # any os.PathLike
        "CACHE_THRESHOLD": 7,
        "CACHE_DEFAULT_TIMEOUT": 30,
        "CACHE_HASH_METHOD": hashlib.md5,  # keys only: files keep sha256
        "CACHE_IGNORE_ERRORS": True,
    }
    cache = FileSystemCache.factory(app, config, [], {"mode": 600})
    assert cache._path == str(tmp_path / "pathlike")
    assert (cache._threshold, cache.default_timeout, cache._mode) == (7, 30, 0o600)
    assert cache._hash_method is hashlib.sha256
    assert cache.ignore_delete_many_errors is True
    config["CACHE_FILE_HASH_METHOD"] = hashlib.sha1
    assert FileSystemCache.factory(app, config, [], {})._hash_method is hashlib.sha1
    cache.set("k", "v")
    assert os.listdir(tmp_path / "pathlike")


def test_files_of_earlier_versions_are_misses_and_go_with_clear(
    tmp_path: t.Any,
) -> None:
    cache = FileSystemCache(str(tmp_path))
    old = tmp_path / (hashlib.sha256(b"k").hexdigest() + ".fcache")
    old.write_bytes(struct.pack(">d", 0.0) + pickle.dumps("old format"))
    assert cache.get("k") is None and not cache.has("k")
    assert cache.clear() is True
    assert entry_names(tmp_path) == []


# --- what must not hang or be lost -------------------------------------------------


def _returns_quickly(func: t.Callable[[], t.Any], seconds: float = 5.0) -> t.Any:
    """Run *func* in a thread; fail (not hang) when it is still running after."""
    result: list[t.Any] = []
    worker = threading.Thread(target=lambda: result.append(func()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"{func} still running after {seconds} s"
    return result[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_planted_fifo_or_device_symlink_is_a_miss_not_a_hang(tmp_path: t.Any) -> None:
    cache = FileSystemCache(str(tmp_path))
    os.mkfifo(cache._get_filename("fifo"))
    os.symlink("/dev/zero", cache._get_filename("zero"))
    target = tmp_path / "elsewhere"
    target.write_bytes(struct.pack("I", 0) + pickle.dumps("planted"))
    os.symlink(target, cache._get_filename("link"))
    for key in ("fifo", "zero", "link"):
        assert _returns_quickly(lambda key=key: cache.get(key)) is None, key
        assert _returns_quickly(lambda key=key: cache.has(key)) is False, key
    assert _returns_quickly(lambda: cache.get_many("fifo", "zero", "link")) == [
        None,
        None,
        None,
    ]
    assert cache.set("fifo", "mine") and cache.get("fifo") == "mine"  # replaced


def test_inc_from_many_threads_loses_nothing(tmp_path: t.Any) -> None:
    cache = FileSystemCache(str(tmp_path))

    def bump() -> None:
        for _ in range(40):
            cache.inc("hits")

    workers = [threading.Thread(target=bump) for _ in range(16)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert cache.get("hits") == 640
    assert cache.dec("hits", 40) == 600


def _bump_in_a_process(path: str, rounds: int) -> None:
    cache = FileSystemCache(path)
    for _ in range(rounds):
        cache.inc("hits")


def test_inc_from_many_processes_loses_nothing(tmp_path: t.Any) -> None:
    ctx = mp.get_context("fork")
    procs = [
        ctx.Process(target=_bump_in_a_process, args=(str(tmp_path), 50))
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs)
    assert FileSystemCache(str(tmp_path)).get("hits") == 200
