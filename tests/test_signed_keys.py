"""``pickle-signed`` binds each entry to its key, on every backend that takes a
serializer (issue 14 item 11a).

Each test writes through a real backend (Redis and memcached servers, a
FileSystemCache directory, SimpleCache's dict), then copies the stored bytes as they
are under another key, the way someone with write access to the cache server would.
The copied entry must be a logged miss and never unpickled: the values written are
:class:`Flag` objects whose unpickling records itself in :data:`UNPICKLED`.
"""

from __future__ import annotations

import logging
import shutil
import typing as t
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask import Flask
from servers import MemcachedServer, RedisServer

from flask_caching.backends._memcached_drivers import ensure_sasl_plugin_path
from flask_caching.serializers import (
    JSONSerializer,
    PickleSerializer,
    SignedPickleSerializer,
    UnsafeValueError,
    dumps_for,
    loads_for,
    resolve_serializer,
)

ensure_sasl_plugin_path()  # before pylibmc is first imported

from flask_caching.backends.filesystemcache import FileSystemCache  # noqa: E402
from flask_caching.backends.memcache import (  # noqa: E402
    MemcachedCache,
    SpreadSASLMemcachedCache,
)
from flask_caching.backends.rediscache import RedisCache  # noqa: E402
from flask_caching.backends.simplecache import SimpleCache  # noqa: E402

#: what unpickling a Flag recorded: proof that stored bytes were (not) loaded
UNPICKLED: list[str] = []


def _unpickled(tag: str) -> str:
    UNPICKLED.append(tag)
    return tag


class Flag:
    """Pickles to a call of :func:`_unpickled`: loading it leaves a trace."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def __reduce__(self) -> tuple[t.Any, ...]:
        return (_unpickled, (self.tag,))


Backend = t.Any
Build = Callable[[list[str]], Backend]
Copy = Callable[[Backend, str, str], None]


@dataclass
class Store:
    """One backend kind: how to build it with secrets, and how to copy raw bytes."""

    make: Build
    copy: Copy
    #: a new backend object reads what an earlier one wrote (not SimpleCache)
    persists: bool = True
    #: every backend built, closed when the test ends
    made: list[Backend] = field(default_factory=list)

    def build(self, secrets: list[str]) -> Backend:
        backend = self.make(secrets)
        self.made.append(backend)
        return backend

    def close(self) -> None:
        for backend in self.made:
            getattr(backend, "close", lambda: None)()


def _signed(backend: Backend, secrets: list[str]) -> Backend:
    backend.serializer = SignedPickleSerializer(secrets)
    return backend


def _redis(server: RedisServer, prefix: str) -> Store:
    raw = server.client()

    def build(secrets: list[str]) -> Backend:
        config = {"CACHE_REDIS_URL": server.url, "CACHE_KEY_PREFIX": prefix}
        return _signed(RedisCache.factory(Flask(__name__), config, [], {}), secrets)

    def copy(backend: Backend, src: str, dst: str) -> None:
        p = backend.key_prefix
        data = raw.get(p + src)
        assert data is not None and data[:1] == b"\x03"
        raw.set(p + dst, data)

    store = Store(build, copy)
    store.made.append(raw)  # closed with the backends
    return store


def _memcached_copy(backend: Backend, src: str, dst: str) -> None:
    """Copy the item (bytes and flags untouched) through the backend's driver."""
    with backend._pool.reserve() as driver:
        item = driver.get(backend._map(src))
        assert item is not None and item.data[:1] == b"\x03"
        assert driver.set(backend._map(dst), item, 0)


def _memcached(server: MemcachedServer, prefix: str) -> Store:
    def build(secrets: list[str]) -> Backend:
        # pymemcache: the binding is in the codec, the same for every client, and a
        # plain pylibmc client run just before can leave the C stack in a state
        # that fails the spread backend's SASL login (see SaslPylibmcDriver)
        backend = MemcachedCache(
            [server.address], key_prefix=prefix, client="pymemcache"
        )
        return _signed(backend, secrets)

    return Store(build, _memcached_copy)


def _spread(server: MemcachedServer, prefix: str) -> Store:
    def build(secrets: list[str]) -> Backend:
        config = {
            "CACHE_MEMCACHED_SERVERS": [server.address],
            "CACHE_KEY_PREFIX": prefix,
            "CACHE_MEMCACHED_USERNAME": server.username,
            "CACHE_MEMCACHED_PASSWORD": server.password,
        }
        backend = SpreadSASLMemcachedCache.factory(
            Flask(__name__), config, [], {"chunksize": 1000}
        )
        return _signed(backend, secrets)

    def copy(backend: Backend, src: str, dst: str) -> None:
        """Copy every chunk (and the plain item, if any) to the other key's names."""
        names, target = backend._names(src), backend._names(dst)
        with backend._pool.reserve() as driver:
            found = driver.get_multi([names.plain, *names.chunks])
            assert found, "nothing stored"
            pairs = zip(
                [names.plain, *names.chunks],
                [target.plain, *target.chunks],
                strict=True,
            )
            moved = {new: found[old] for old, new in pairs if old in found}
            assert not driver.set_multi(moved, 0)

    return Store(build, copy)


def _filesystem(directory: Path) -> Store:
    def build(secrets: list[str]) -> Backend:
        return _signed(FileSystemCache(str(directory)), secrets)

    def copy(backend: Backend, src: str, dst: str) -> None:
        shutil.copyfile(backend._get_filename(src), backend._get_filename(dst))

    return Store(build, copy)


def _simple() -> Store:
    def copy(backend: Backend, src: str, dst: str) -> None:
        backend._cache[dst] = backend._cache[src]

    return Store(lambda secrets: _signed(SimpleCache(), secrets), copy, False)


KINDS = ["redis", "memcached", "spread", "filesystem", "simple"]
#: the kinds whose entries outlive the backend object (SimpleCache's live in it)
PERSISTENT = KINDS[:-1]


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    kind: str = request.param
    prefix = f"sk-{uuid.uuid4().hex[:8]}:"
    if kind == "redis":
        made = _redis(request.getfixturevalue("redis_server"), prefix)
    elif kind == "memcached":
        made = _memcached(request.getfixturevalue("memcached_server"), prefix)
    elif kind == "spread":
        pytest.importorskip("pylibmc")
        made = _spread(request.getfixturevalue("memcached_sasl_server"), prefix)
    elif kind == "filesystem":
        made = _filesystem(tmp_path / "cache")
    else:
        made = _simple()
    UNPICKLED.clear()
    yield made
    made.close()
    UNPICKLED.clear()


def _value(tag: str) -> list[t.Any]:
    """A Flag beside text: more than one chunk for the spread backend (1000 B)."""
    return [Flag(tag), "x" * 3000]


def _read(tag: str) -> list[str]:
    """What :func:`_value` reads back as (unpickling a Flag gives its tag)."""
    return [tag, "x" * 3000]


def _refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "flask_caching" and r.levelno == logging.WARNING
    ]


def test_an_entry_copied_under_another_key_is_a_logged_miss(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    backend = store.build(["secret"])
    assert backend.set("price:basic", _value("basic"))
    store.copy(backend, "price:basic", "price:premium")
    with caplog.at_level(logging.WARNING, logger="flask_caching"):
        assert backend.get("price:premium") is None
        assert backend.get_many("price:premium") == [None]
    assert UNPICKLED == []
    messages = _refusals(caplog)
    assert messages and all("not unpickled" in m for m in messages), messages
    assert backend.get("price:basic") == _read("basic")  # the original still reads
    assert UNPICKLED == ["basic"]


def test_set_many_and_add_entries_are_bound_too(store: Store) -> None:
    backend = store.build(["secret"])
    backend.set_many({"a": _value("a"), "b": _value("b")})
    assert backend.add("c", _value("c"))
    store.copy(backend, "a", "b")
    store.copy(backend, "c", "d")
    assert backend.get_many("a", "b", "c", "d") == [_read("a"), None, _read("c"), None]
    assert UNPICKLED == ["a", "c"]


@pytest.mark.parametrize("store", PERSISTENT, indirect=True)
def test_a_new_backend_object_reads_what_an_earlier_one_wrote(store: Store) -> None:
    assert store.build(["secret"]).set("page", {"html": "<p>hi</p>"})
    assert store.build(["secret"]).get("page") == {"html": "<p>hi</p>"}
    assert store.build(["another secret"]).get("page") is None


def test_secret_rotation_first_signs_all_verify(store: Store) -> None:
    def backend(secrets: list[str], earlier: Backend) -> Backend:
        # SimpleCache's entries live in the object: give it the new secrets instead
        return store.build(secrets) if store.persists else _signed(earlier, secrets)

    old = store.build(["old"])
    assert old.set("written-before", "old value")
    rotated = backend(["new", "old"], old)
    assert rotated.get("written-before") == "old value"  # old entries still verify
    assert rotated.set("written-after", "new value")
    only_new = backend(["new"], rotated)  # the old secret dropped
    assert only_new.get("written-after") == "new value"  # the first secret signed
    assert only_new.get("written-before") is None


def test_counters_and_locks_work_under_the_signed_serializer(store: Store) -> None:
    backend = store.build(["secret"])
    assert backend.set("n", 5)
    assert backend.inc("n") == 6
    assert backend.dec("n", 2) == 4
    assert backend.get("n") == 4
    assert backend.acquire_lock("lock", "token-1", 10)
    assert not backend.release_lock("lock", "token-2")
    assert backend.release_lock("lock", "token-1")
    assert backend.get("lock") is None


@pytest.mark.parametrize("kind", ["redis", "memcached"])
def test_copies_across_key_prefixes_do_not_verify(
    request: pytest.FixtureRequest, kind: str
) -> None:
    """The bound name is prefix + key: the same key under another prefix (another
    app or tenant sharing the server and the secret) does not verify."""
    server = request.getfixturevalue(f"{kind}_server")
    make = _redis if kind == "redis" else _memcached
    stores = [make(server, f"{name}-{uuid.uuid4().hex[:6]}:") for name in "ab"]
    try:
        one, two = (store.build(["shared"]) for store in stores)
        UNPICKLED.clear()
        assert one.set("profile", Flag("one's"))
        assert two.set("profile", "two's")
        if kind == "redis":
            with server.client() as raw:
                raw.set(two.key_prefix + "profile", raw.get(one.key_prefix + "profile"))
        else:
            with one._pool.reserve() as driver:
                item = driver.get(one._map("profile"))
                assert driver.set(two._map("profile"), item, 0)
        assert two.get("profile") is None
        assert UNPICKLED == []
        assert one.get("profile") == "one's"
    finally:
        for store in stores:
            store.close()


# -- the serializer itself ----------------------------------------------------------


def test_bound_entries_verify_only_under_their_key() -> None:
    s = SignedPickleSerializer(["secret"])
    data = s.dumps_for("a", Flag("x"))
    UNPICKLED.clear()
    for other in ("b", "", "a ", "A", b"b"):
        with pytest.raises(UnsafeValueError):
            s.loads_for(other, data)
    with pytest.raises(UnsafeValueError):
        s.loads(data)  # the key-less pair is bound to the empty key
    assert UNPICKLED == []
    assert s.loads_for("a", data) == "x" and s.loads_for(b"a", data) == "x"
    assert s.loads(s.dumps([1])) == [1] == s.loads_for("", s.dumps([1]))
    with pytest.raises(UnsafeValueError):
        s.loads_for("k", s.dumps([1]))


def test_the_key_length_is_signed_so_key_and_payload_cannot_trade_bytes() -> None:
    s = SignedPickleSerializer(["secret"])
    # the same bytes split differently between key and payload must not verify
    data = s.dumps_for("ab", "v")
    for key in ("a", "abc", "ab\x00"):
        with pytest.raises(UnsafeValueError):
            s.loads_for(key, data)
    surrogate = "k\udcff"  # lone surrogates are keys too (memcached hashes them)
    assert s.loads_for(surrogate, s.dumps_for(surrogate, 1)) == 1


def test_other_serializers_ignore_the_key() -> None:
    """Only the signed serializer binds: the default's bytes are released's."""
    pickle_s, json_s = PickleSerializer(), JSONSerializer()
    assert pickle_s.dumps_for("k", {"a": 1}) == pickle_s.dumps({"a": 1})
    assert json_s.dumps_for("k", {"a": 1}) == json_s.dumps({"a": 1})
    assert json_s.loads_for("other", json_s.dumps("v")) == "v"

    class Plain:  # no dumps_for: the helpers fall back to dumps/loads
        def dumps(self, value: t.Any) -> bytes:
            return repr(value).encode()

        def loads(self, data: bytes) -> t.Any:
            return data.decode()

    assert dumps_for(Plain(), "k", 1) == b"1" and loads_for(Plain(), "k", b"1") == "1"
    wrapped = resolve_serializer(Plain())  # given the stream pair, key-less
    assert wrapped.dumps_for("k", 2) == b"2"  # type: ignore[attr-defined]


def test_a_wrapped_keyed_serializer_keeps_its_binding() -> None:
    inner = SignedPickleSerializer(["secret"])

    class Keyed:  # dumps/loads and the key-aware pair, but no dump/load
        dumps, loads = inner.dumps, inner.loads
        dumps_for, loads_for = inner.dumps_for, inner.loads_for

    wrapped: t.Any = resolve_serializer(Keyed())
    data = wrapped.dumps_for("k", "v")
    assert data == inner.dumps_for("k", "v")
    assert wrapped.loads_for("k", data) == "v"
    with pytest.raises(UnsafeValueError):
        wrapped.loads_for("j", data)
