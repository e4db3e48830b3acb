"""What the memcached backends store: the flags and bytes of every item, per client.

Released Flask-Caching 2.5.1 leaves values to pylibmc; ours must write the very same
items with every client library we drive (so a mixed fleet shares one memcached) and
read what pylibmc, python-memcached and pymemcache write. Items are read and planted
with a plain socket, so no client library stands between the test and the server.
Under a serializer of ours (JSON, signed pickle) forged items are misses: nothing is
unpickled or inflated (issue 14, item 1).
"""

from __future__ import annotations

import pickle
import socket
import typing as t
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from servers import HOST, MEMCACHED_CLIENTS, MemcachedServer

from flask_caching.backends._memcached_drivers import ensure_sasl_plugin_path
from flask_caching.serializers import JSONSerializer, SignedPickleSerializer

ensure_sasl_plugin_path()  # before pylibmc is first imported

from flask_caching.backends.memcache import MemcachedCache  # noqa: E402

pytestmark = pytest.mark.memcached


CLIENTS = MEMCACHED_CLIENTS

#: what pylibmc 1.6 writes for each value (measured with a plain pylibmc.Client and
#: a socket ``get``; test_the_table_is_what_pylibmc_writes keeps it honest)
TABLE: list[tuple[str, t.Any, int, bytes]] = [
    ("str", "héllo", 16, "héllo".encode()),
    ("empty-str", "", 16, b""),
    ("bytes", b"ab\x00\xff", 0, b"ab\x00\xff"),
    ("int", 42, 4, b"42"),
    ("negative", -7, 4, b"-7"),
    ("huge", 2**70, 4, str(2**70).encode()),
    ("true", True, 2, b"1"),
    ("false", False, 2, b"0"),
    ("float", 1.5, 1, pickle.dumps(1.5, pickle.HIGHEST_PROTOCOL)),
    ("list", [1, "a"], 1, pickle.dumps([1, "a"], pickle.HIGHEST_PROTOCOL)),
    ("dict", {"a": 1}, 1, pickle.dumps({"a": 1}, pickle.HIGHEST_PROTOCOL)),
    ("tuple", (1, 2), 1, pickle.dumps((1, 2), pickle.HIGHEST_PROTOCOL)),
    ("none", None, 1, pickle.dumps(None, pickle.HIGHEST_PROTOCOL)),
]
IDS = [row[0] for row in TABLE]


class Raw:
    """A plain ASCII-protocol connection: ``get`` and ``set`` items as stored."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=5)
        self.buf = b""

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self.buf += self.sock.recv(65536)
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _exact(self, size: int) -> bytes:
        while len(self.buf) < size:
            self.buf += self.sock.recv(65536)
        data, self.buf = self.buf[:size], self.buf[size:]
        return data

    def get(self, key: str) -> tuple[int, bytes] | None:
        self.sock.sendall(b"get " + key.encode() + b"\r\n")
        head = self._line()
        if head == b"END":
            return None
        _, _, flags, size = head.split()
        data = self._exact(int(size) + 2)[:-2]
        assert self._line() == b"END"
        return int(flags), data

    def set(self, key: str, flags: int, data: bytes) -> None:
        head = f"set {key} {flags} 0 {len(data)}\r\n".encode()
        self.sock.sendall(head + data + b"\r\n")
        assert self._line() == b"STORED"


@pytest.fixture
def raw(memcached_server: MemcachedServer) -> Iterator[Raw]:
    conn = Raw(memcached_server.port)
    yield conn
    conn.sock.close()


@pytest.fixture
def build(
    memcached_server: MemcachedServer,
) -> Iterator[Callable[..., MemcachedCache]]:
    made: list[MemcachedCache] = []

    def build(client: str, prefix: str | None = None, **kw: t.Any) -> MemcachedCache:
        pre = prefix or f"i-{uuid.uuid4().hex[:8]}:"
        cache = MemcachedCache(
            [memcached_server.address], 300, pre, client=client, **kw
        )
        made.append(cache)
        return cache

    yield build
    for cache in made:
        cache.close()


def test_the_table_is_what_pylibmc_writes(
    memcached_server: MemcachedServer, raw: Raw
) -> None:
    pylibmc = pytest.importorskip("pylibmc")
    plain = pylibmc.Client([memcached_server.address])
    try:
        for name, value, flags, data in TABLE:
            plain.set(f"table:{name}", value)
            assert raw.get(f"table:{name}") == (flags, data), name
    finally:
        plain.disconnect_all()


@pytest.mark.parametrize("client", CLIENTS)
def test_each_client_writes_pylibmc_items(
    build: Callable[..., MemcachedCache], raw: Raw, client: str
) -> None:
    cache = build(client)
    for name, value, flags, data in TABLE:
        assert cache.set(name, value)
        assert raw.get(cache._keys(name)) == (flags, data), name
    assert cache.set_many({f"many-{name}": row[0] for name, *row in TABLE})
    for name, _, flags, data in TABLE:
        assert raw.get(cache._keys(f"many-{name}")) == (flags, data), name
    cache.delete("n")
    assert cache.inc("n", 5) == 5 and raw.get(cache._keys("n")) == (4, b"5")


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(("name", "value", "flags", "data"), TABLE, ids=IDS)
def test_each_client_reads_every_planted_item(
    build: Callable[..., MemcachedCache],
    raw: Raw,
    client: str,
    name: str,
    value: t.Any,
    flags: int,
    data: bytes,
) -> None:
    cache = build(client)
    raw.set(cache._keys(name), flags, data)
    for got in (cache.get(name), cache.get_many(name, "absent")[0]):
        assert got == value and type(got) is type(value)


@pytest.mark.parametrize("writer", CLIENTS)
@pytest.mark.parametrize("reader", CLIENTS)
def test_every_client_reads_every_other_clients_writes(
    build: Callable[..., MemcachedCache], writer: str, reader: str
) -> None:
    out = build(writer)
    into = build(reader, prefix=out.key_prefix)
    out.set_many({name: value for name, value, *_ in TABLE})
    got = into.get_many(*IDS)
    assert got == [row[1] for row in TABLE]
    assert [type(v) for v in got] == [type(row[1]) for row in TABLE]


@pytest.mark.parametrize("client", CLIENTS)
def test_other_libraries_formats_are_read(
    build: Callable[..., MemcachedCache], raw: Raw, client: str
) -> None:
    cache = build(client)
    planted = {
        "memcache-int": (2, b"17", 17),  # python-memcached writes int with flag 2
        "zlib-text": (24, zlib.compress("grüße".encode()), "grüße"),
        "zlib-pickle": (9, zlib.compress(pickle.dumps([1, 2])), [1, 2]),
        "foreign": (0, b"written by another program", b"written by another program"),
        "digits": (0, b"123", b"123"),  # bytes stay bytes, even when they look numeric
        # what looks like a pickle too: pylibmc (released) reads it as bytes
        "pickle-like": (0, pickle.dumps({"v": 1}), pickle.dumps({"v": 1})),
    }
    for name, (flags, data, _) in planted.items():
        raw.set(cache._keys(name), flags, data)
    for name, (*_, value) in planted.items():
        assert cache.get(name) == value, name
    for name, flags, data in [
        ("unknown-flags", 256, b"x"),
        ("bad-pickle", 1, b"\x80\x05junk"),
        ("bad-utf8", 16, b"\xff"),
        ("bad-int", 4, b"4x"),
        ("bad-zlib", 8, b"not zlib"),
    ]:
        raw.set(cache._keys(name), flags, data)
        assert cache.get(name) is None and raw.get(cache._keys(name)), name


@pytest.mark.parametrize(
    "client", [c for c in CLIENTS if c.values[0] != "pylibmc"]
)  # libmemcached inflates in C before any hook: see the backend's docstring
def test_an_inflation_bomb_is_a_miss(
    build: Callable[..., MemcachedCache], raw: Raw, client: str
) -> None:
    cache = build(client)
    bomb = zlib.compress(b"\0" * (80 * 1024 * 1024), 9)
    assert len(bomb) < 1024 * 1024
    raw.set(cache._keys("bomb"), 8, bomb)
    assert cache.get("bomb") is None


def forged_pickle(evidence: Path) -> bytes:
    """A pickle that creates *evidence* when unpickled."""

    class Payload:
        def __reduce__(self) -> tuple[t.Any, tuple[str]]:
            import os

            return os.mkdir, (str(evidence),)

    return pickle.dumps(Payload())


SERIALIZERS = [
    pytest.param(JSONSerializer, id="json"),
    pytest.param(lambda: SignedPickleSerializer("secret"), id="pickle-signed"),
]


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("make_serializer", SERIALIZERS)
def test_forged_items_never_run_under_our_serializers(
    build: Callable[..., MemcachedCache],
    raw: Raw,
    tmp_path: Path,
    client: str,
    make_serializer: Callable[[], t.Any],
) -> None:
    cache = build(client)
    cache.serializer = make_serializer()
    evidence = tmp_path / "ran"
    payload = forged_pickle(evidence)
    forged = {
        "pickled": (1, payload),
        "pickled-zlib": (9, zlib.compress(payload)),
        "zlib": (8, zlib.compress(b"x" * 1000)),
        "text": (16, b"forged page"),
        "bare-pickle": (0, payload),
    }
    for name, (flags, data) in forged.items():
        raw.set(cache._keys(name), flags, data)
    assert cache.get_many(*forged) == [None] * len(forged)
    for name in forged:
        assert cache.get(name) is None, name
    assert not evidence.exists()
    # what the serializer writes it reads back: its bytes with flags 0, ints decimal
    assert cache.set("doc", {"a": [1, 2]}) and cache.get("doc") == {"a": [1, 2]}
    stored = raw.get(cache._keys("doc"))
    assert stored is not None and stored[0] == 0
    assert cache.serializer.loads_for(cache.key_prefix + "doc", stored[1]) == {
        "a": [1, 2]
    }
    assert cache.set("n", 41) and raw.get(cache._keys("n")) == (4, b"41")
    assert cache.inc("n") == 42 and cache.get("n") == 42


@pytest.mark.parametrize("client", CLIENTS)
def test_the_default_serializer_unpickles_what_pylibmc_pickled(
    build: Callable[..., MemcachedCache], raw: Raw, tmp_path: Path, client: str
) -> None:
    """The contrast to the test above: under pickle, as in released Flask-Caching on
    pylibmc, a pickled item is unpickled (whoever can write to memcached can run
    code; the serializers module says so)."""
    cache = build(client)
    evidence = tmp_path / "ran"
    raw.set(cache._keys("pickled"), 1, forged_pickle(evidence))
    cache.get("pickled")
    assert evidence.exists()


@pytest.mark.parametrize("client", CLIENTS)
def test_shares_a_cache_with_cachelib_on_pylibmc(
    build: Callable[..., MemcachedCache],
    memcached_server: MemcachedServer,
    client: str,
) -> None:
    """Released Flask-Caching's MemcachedCache is cachelib's on pylibmc: each side
    reads the other's entries, and deletes are seen by both."""
    pytest.importorskip("pylibmc")
    import cachelib

    ours = build(client)
    theirs = cachelib.MemcachedCache(
        [memcached_server.address], key_prefix=ours.key_prefix
    )
    values = {name: value for name, value, *_ in TABLE}
    assert theirs.set_many(values) == list(values)
    got = ours.get_many(*values)
    assert got == list(values.values())
    assert [type(v) for v in got] == [type(v) for v in values.values()]
    mine = {f"ours-{name}": value for name, value in values.items()}
    assert ours.set_many(mine) == list(mine)
    assert theirs.get_many(*mine) == list(values.values())  # pylibmc: a bool as 1/0
    assert theirs.delete("ours-str") and ours.get("ours-str") is None
    assert ours.delete("str") and theirs.get("str") is None
    assert ours.inc("ours-int") == 43 and theirs.get("ours-int") == 43
