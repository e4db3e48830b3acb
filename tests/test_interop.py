"""Released Flask-Caching 2.5.1 and ours on one real store, each reading what the other wrote.

Every test runs on one cell: a backend (a private redis-server, a private memcached,
one directory for FileSystemCache) and a direction ``writer->reader``. The writer
computes or stores something, the reader must see exactly that (its own mark in a
result means it missed). ``released->released`` and ``ours->ours`` run on two
processes of the same side and are the controls: they pass whatever the storage
format, so a failing cross cell is a format difference, not the harness. Ours runs on
memcached with each client it supports; released uses pylibmc, as cachelib picks.
"""

from __future__ import annotations

import pickle
import typing as t
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from interop.codec import describe, encode
from interop.harness import Worker, WorkerPool
from interop.venv import (
    DEV_REQUIREMENTS,
    REQUIREMENTS,
    BuildFailed,
    ensure_released_venv,
    pins,
)
from servers import in_ci

ROOT = Path(__file__).resolve().parents[1]
OURS_PYTHON = ROOT / ".venv" / "bin" / "python"
#: what released.txt must pin exactly as requirements/dev.txt does
SHARED_PINS = ("flask", "werkzeug", "cachelib", "redis", "pylibmc", "pymemcache")


@dataclass(frozen=True)
class Side:
    """One implementation (with, for memcached, the client library ours is told to use)."""

    name: str
    released: bool
    options: dict[str, t.Any] = field(default_factory=dict, hash=False)


RELEASED = Side("released", True)
OURS = Side("ours", False)
SIDES = {
    "redis": (RELEASED, OURS),
    "filesystem": (RELEASED, OURS),
    "memcached": (
        RELEASED,
        Side("ours-pylibmc", False, {"CACHE_OPTIONS": {"client": "pylibmc"}}),
        Side("ours-pymemcache", False, {"CACHE_OPTIONS": {"client": "pymemcache"}}),
    ),
}
MARKS = {"redis": [pytest.mark.redis], "memcached": [pytest.mark.memcached]}
CELLS = [
    pytest.param(
        (backend, w, r),
        marks=MARKS.get(backend, []),
        id=f"{backend}:{w.name}->{r.name}",
    )
    for backend, sides in SIDES.items()
    for w in sides
    for r in sides
]

# -- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def released_python() -> Path:
    """``.venv-released``'s interpreter; built on first use (skip, or fail under CI)."""
    try:
        return ensure_released_venv()
    except BuildFailed as exc:
        reason = (
            f"cannot build .venv-released with Flask-Caching 2.5.1 from PyPI: {exc}"
        )
        if in_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def pool() -> Iterator[WorkerPool]:
    """Every worker of the session, killed by PID at its end."""
    workers = WorkerPool()
    yield workers
    workers.close()


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one directory both sides' FileSystemCache use."""
    return tmp_path_factory.mktemp("interop-fs")


def backend_config(request: pytest.FixtureRequest, backend: str) -> dict[str, t.Any]:
    """The Flask-Caching config of *backend*, on the session's server or directory."""
    if backend == "redis":
        server = request.getfixturevalue("redis_server")
        return {
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_HOST": server.host,
            "CACHE_REDIS_PORT": server.port,
        }
    if backend == "memcached":
        server = request.getfixturevalue("memcached_server")
        return {
            "CACHE_TYPE": "MemcachedCache",
            "CACHE_MEMCACHED_SERVERS": [server.address],
        }
    directory: Path = request.getfixturevalue("cache_dir")
    # FileSystemCache prunes past CACHE_THRESHOLD (500) files: start each test empty
    for entry in directory.iterdir():
        entry.unlink()
    return {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(directory)}


def side_worker(
    request: pytest.FixtureRequest,
    pool: WorkerPool,
    backend: str,
    side: Side,
    slot: str,
) -> Worker:
    """The worker of *side* on *backend* (slot ``b`` is a second process of a side)."""
    python = (
        request.getfixturevalue("released_python") if side.released else OURS_PYTHON
    )
    config = {**backend_config(request, backend), **side.options}
    return pool.get(f"{backend}/{side.name}.{slot}", python, config)


@dataclass
class Cell:
    """The two workers of a test: *writer* stores or computes, *reader* must see it."""

    backend: str
    writer: Worker
    reader: Worker
    token: str
    reader_side: Side


@pytest.fixture(params=CELLS)
def cell(request: pytest.FixtureRequest, pool: WorkerPool) -> Cell:
    backend, writer, reader = request.param
    first = side_worker(request, pool, backend, writer, "a")
    second = side_worker(
        request, pool, backend, reader, "b" if writer == reader else "a"
    )
    return Cell(backend, first, second, uuid.uuid4().hex[:12], reader)


def served_by(got: str, expected: str, cell: Cell, what: str) -> None:
    """Fail unless the reader got exactly what the writer computed: its own mark in
    *got* is a miss, anything else is a wrong value."""
    reader, writer = cell.reader.label, cell.writer.label
    if f"by {reader}#" in got:
        why = f"a miss: {reader} computed {got!r} itself instead of reading {writer}'s"
        pytest.fail(f"{what}: {why} entry", pytrace=False)
    if got != expected:
        why = (
            f"a wrong value: {reader} got {got[:300]!r}, {writer} computed {expected!r}"
        )
        pytest.fail(f"{what}: {why}", pytrace=False)


# -- the harness itself ------------------------------------------------------------


def test_released_pins_match_dev() -> None:
    """Both sides run the same libraries: released.txt pins what dev.txt pins."""
    released, dev = pins(REQUIREMENTS), pins(DEV_REQUIREMENTS)
    assert released["flask-caching"] == "2.5.1"
    for name in SHARED_PINS:
        assert released.get(name) == dev[name], f"{name}: released.txt != dev.txt"
    for name, version in released.items():
        assert name == "flask-caching" or dev.get(name) == version, name


@pytest.mark.parametrize("side", [RELEASED, OURS], ids=lambda s: s.name)
def test_each_side_imports_its_own_flask_caching(
    request: pytest.FixtureRequest, pool: WorkerPool, side: Side
) -> None:
    """The released worker runs PyPI's 2.5.1, ours runs src/; memoize names agree."""
    hello = side_worker(request, pool, "filesystem", side, "a").hello
    if side.released:
        assert hello["version"] == "2.5.1"
        assert "/.venv-released/" in hello["flask_caching"]
    else:
        assert hello["version"] != "2.5.1"
        assert hello["flask_caching"] == str(
            ROOT / "src" / "flask_caching" / "__init__.py"
        )
    assert hello["names"] == {
        "memo": "interop.app.memo",
        "balance": "interop.app.Account.balance",
    }
    venv = ".venv-released" if side.released else ".venv"
    assert Path(hello["python"]).parent.parent.name == venv


# -- values ------------------------------------------------------------------------

LARGE_STR = "interop \u2713 " * 20_000
LARGE_BYTES = bytes(range(256)) * 800
SAMPLES: dict[str, t.Any] = {
    "str": "hello",
    "str_empty": "",
    "str_unicode": "h\u00e9llo \u2603 \U0001f600\nline two",
    "str_digits": "12345",
    "bytes": b"\x00\x80binary\xff",
    "bytes_empty": b"",
    "int": 42,
    "int_zero": 0,
    "int_negative": -17,
    "int_big": 2**70,
    "float": 3.25,
    "float_negative_zero": -0.0,
    "float_tiny": 1e-300,
    "true": True,
    "false": False,
    "none_in_list": [None],
    "list": [1, "two", 3.0, b"four", None, True],
    "list_empty": [],
    "tuple": (1, "two", (3, 4)),
    "tuple_empty": (),
    "dict": {"a": 1, "b": [1, 2], "c": {"d": None}},
    "dict_mixed_keys": {1: "int", "1": "str", (1, 2): "tuple", None: "none"},
    "nested": {
        "rows": [{"id": i, "tags": ("x", i), "raw": bytes([i])} for i in range(5)]
    },
    "large_str": LARGE_STR,
    "large_bytes": LARGE_BYTES,
}
#: where released itself reads back something else than what was set (whoever set
#: it): on memcached it reads a bool as an int, True as 1. Ours may do better and read
#: True, so this applies to released readers only.
RELEASED_READS: dict[str, dict[str, t.Any]] = {"memcached": {"true": 1, "false": 0}}


def test_values_set_by_one_are_read_unchanged_by_the_other(cell: Cell) -> None:
    """Every common type, set by the writer, is read back identical by the reader."""
    wrong = []
    for name, value in SAMPLES.items():
        key = f"interop:{cell.token}:{name}"
        assert cell.writer.set(key, value), f"{cell.writer.label} could not set {name}"
        read, _ = cell.reader.get(key)
        expected = value
        if cell.reader_side.released:
            expected = RELEASED_READS.get(cell.backend, {}).get(name, value)
        if read != encode(expected):
            wrong.append(
                f"{name}: wrote {describe(encode(value))}, read {describe(read)}"
            )
    assert not wrong, f"{len(wrong)}/{len(SAMPLES)} values differ:\n" + "\n".join(wrong)


def test_bytes_that_look_like_a_pickle_stay_bytes(cell: Cell) -> None:
    """A bytes value that happens to be a valid pickle is still read as those bytes.

    Released stores bytes as they are (memcached: pylibmc, flags 0), so a reader that
    unpickles any stored value starting with a pickle opcode turns it into something else.
    """
    key = f"interop:{cell.token}:pickle-like"
    value = pickle.dumps(1, protocol=4)
    assert cell.writer.set(key, value)
    read, _ = cell.reader.get(key)
    assert read == encode(value), (
        f"wrote {describe(encode(value))}, read {describe(read)}"
    )


def test_none_set_by_one_is_a_stored_none_for_the_other(cell: Cell) -> None:
    """A stored ``None`` is there for the reader (``has``), not a miss that looks alike."""
    key = f"interop:{cell.token}:none"
    assert cell.writer.set(key, None)
    read, has = cell.reader.get(key)
    assert (read, has) == ({"t": "none"}, True), f"read {describe(read)}, has={has}"


# -- front ends --------------------------------------------------------------------


def test_cached_view(cell: Cell) -> None:
    path = f"/view/{cell.token}"
    body = cell.writer.request(path)
    served_by(cell.reader.request(path), body, cell, f"GET {path}")


def test_query_string_view(cell: Cell) -> None:
    """Same query, in either order, is a hit; another query is not."""
    path = f"/qs/{cell.token}"
    body = cell.writer.request(f"{path}?a=1&b=two")
    for query in ("a=1&b=two", "b=two&a=1"):
        got = cell.reader.request(f"{path}?{query}")
        served_by(got, body, cell, f"GET {path}?{query}")
    other = cell.reader.request(f"{path}?a=1&b=three")
    assert f"by {cell.reader.label}#" in other, "a different query hit the same entry"


def test_memoized_function(cell: Cell) -> None:
    result = cell.writer.memo(cell.token, 1)
    served_by(cell.reader.memo(cell.token, 1), result, cell, "memo(token, 1)")
    assert f"by {cell.reader.label}#" in cell.reader.memo(cell.token, 2)


def test_memoized_method(cell: Cell) -> None:
    """Keys hold ``repr(self)``: the same id is a hit, another id is not."""
    result = cell.writer.balance("acct-1", cell.token)
    got = cell.reader.balance("acct-1", cell.token)
    served_by(got, result, cell, "Account('acct-1').balance(token)")
    assert f"by {cell.reader.label}#" in cell.reader.balance("acct-2", cell.token)


def test_template_fragment(cell: Cell) -> None:
    result = cell.writer.fragment(cell.token)
    got = cell.reader.fragment(cell.token)
    served_by(got, result, cell, "{% cache 300, 'frag', token %}")


# -- deletes -------------------------------------------------------------------------
# The writer computes and checks it hits its own entry; the reader deletes; the writer
# must then compute afresh. This holds even where the reader cannot read the entry.


def cached_twice(compute: t.Callable[[], str], what: str) -> str:
    first = compute()
    assert compute() == first, f"{what}: the writer does not hit its own entry"
    return first


def test_delete_memoized_function(cell: Cell) -> None:
    """``delete_memoized(f)`` by the reader drops every entry of f for the writer."""
    w = cell.writer
    one = cached_twice(lambda: w.memo(cell.token, 1), "memo(token, 1)")
    two = cached_twice(lambda: w.memo(cell.token, 2), "memo(token, 2)")
    cell.reader.delete_memoized("memo")
    assert w.memo(cell.token, 1) != one, "memo(token, 1) survived delete_memoized(memo)"
    assert w.memo(cell.token, 2) != two, "memo(token, 2) survived delete_memoized(memo)"


def test_delete_memoized_with_arguments(cell: Cell) -> None:
    """``delete_memoized(f, *args)`` by the reader drops that call's entry only."""
    w = cell.writer
    one = cached_twice(lambda: w.memo(cell.token, 1), "memo(token, 1)")
    two = cached_twice(lambda: w.memo(cell.token, 2), "memo(token, 2)")
    cell.reader.delete_memoized("memo", cell.token, 1)
    assert w.memo(cell.token, 1) != one, "memo(token, 1) survived its delete_memoized"
    assert w.memo(cell.token, 2) == two, (
        "delete_memoized(memo, token, 1) dropped (token, 2)"
    )


def test_delete_memoized_method(cell: Cell) -> None:
    """``delete_memoized(obj.method)`` by the reader drops that instance's entries."""
    w = cell.writer
    mine = cached_twice(lambda: w.balance("acct-1", cell.token), "acct-1 balance")
    other = cached_twice(lambda: w.balance("acct-2", cell.token), "acct-2 balance")
    cell.reader.delete_memoized("balance", ident="acct-1")
    assert w.balance("acct-1", cell.token) != mine, "acct-1's entry survived"
    assert w.balance("acct-2", cell.token) == other, "acct-2's entry was dropped too"


def test_delete_value(cell: Cell) -> None:
    """``cache.delete(key)`` by the reader removes a value the writer set."""
    key = f"interop:{cell.token}:doomed"
    assert cell.writer.set(key, "doomed")
    assert cell.writer.get(key) == (encode("doomed"), True)
    cell.reader.delete(key)
    read, has = cell.writer.get(key)
    assert (read, has) == ({"t": "none"}, False), f"still there: {describe(read)}"


def test_delete_fragment(cell: Cell) -> None:
    """Deleting ``make_template_fragment_key`` by the reader re-renders for the writer."""
    w = cell.writer
    rendered = cached_twice(lambda: w.fragment(cell.token), "the fragment")
    cell.reader.delete_fragment(cell.token)
    assert w.fragment(cell.token) != rendered, "the fragment survived its delete"
