"""``SpreadSASLMemcachedCache`` on a real SASL memcached: released Flask-Caching
2.5.1's chunk format, both ways.

2.5.1 stores a spread value as the protocol 2 pickle of the value cut into
``chunksize`` pieces under ``key.0``, ``key.1``, ... (plain bytes items, flags 0).
Items are read here with a pylibmc client that hands back the stored flags and
bytes untouched, and released's writes are made with a plain ``pylibmc.Client``
``set_multi`` of the pieces, which is what 2.5.1 sends.
"""

from __future__ import annotations

import os
import pickle
import typing as t
import uuid
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from sasl_support import sasl_client as _client
from servers import MemcachedServer

from flask_caching import Cache
from flask_caching.backends._memcached_drivers import ensure_sasl_plugin_path
from flask_caching.serializers import JSONSerializer

ensure_sasl_plugin_path()  # before pylibmc is first imported

from flask_caching.backends.memcache import SpreadSASLMemcachedCache  # noqa: E402

pylibmc = pytest.importorskip("pylibmc")
pytestmark = pytest.mark.memcached

#: small chunks keep the values small; the defaults are tested once, with 3 MB
CHUNK = 1000
Build = Callable[..., SpreadSASLMemcachedCache]


def text(size: int) -> str:
    """A str whose protocol 2 pickle is *size* bytes plus a few (bytes grow 1.5x:
    protocol 2 pickles them as latin-1 text)."""
    return os.urandom(size // 2 + 1).hex()[:size]


#: what the pickle gadget below did when something unpickled it
UNPICKLED: list[str] = []


def _record(tag: str) -> str:
    UNPICKLED.append(tag)
    return tag


class Gadget:
    """Unpickling this runs :func:`_record`: proof that a pickle was loaded."""

    def __reduce__(self) -> tuple[t.Any, ...]:
        return (_record, ("unpickled",))


class FlagsClient(pylibmc.Client):  # type: ignore[misc,name-defined]
    """A pylibmc client reading items as ``(flags, bytes)``, nothing decoded."""

    def deserialize(self, data: bytes, flags: int) -> tuple[int, bytes]:
        return flags, data


@pytest.fixture
def build(memcached_sasl_server: MemcachedServer) -> Iterator[Build]:
    made: list[SpreadSASLMemcachedCache] = []

    def build(**options: t.Any) -> SpreadSASLMemcachedCache:
        config = {
            "CACHE_MEMCACHED_SERVERS": [memcached_sasl_server.address],
            "CACHE_KEY_PREFIX": f"s-{uuid.uuid4().hex[:8]}:",
            "CACHE_DEFAULT_TIMEOUT": None,
            "CACHE_MEMCACHED_USERNAME": memcached_sasl_server.username,
            "CACHE_MEMCACHED_PASSWORD": memcached_sasl_server.password,
        }
        cache = SpreadSASLMemcachedCache.factory(Flask(__name__), config, [], options)
        made.append(cache)
        return cache

    yield build
    for cache in made:
        cache.close()


@pytest.fixture
def raw(memcached_sasl_server: MemcachedServer) -> Iterator[t.Any]:
    """Reads stored items as ``(flags, bytes)``."""
    client = _client(memcached_sasl_server, FlagsClient)
    yield client
    client.disconnect_all()


@pytest.fixture
def released(memcached_sasl_server: MemcachedServer) -> Iterator[t.Any]:
    """A plain pylibmc client, as released Flask-Caching drives it."""
    client = _client(memcached_sasl_server, pylibmc.Client)
    yield client
    client.disconnect_all()


def pieces(value: t.Any, size: int = CHUNK) -> list[bytes]:
    """The chunks released Flask-Caching stores for *value*."""
    data = pickle.dumps(value, 2)
    return [data[i : i + size] for i in range(0, len(data), size)]


def write_as_released(
    client: t.Any,
    cache: SpreadSASLMemcachedCache,
    key: str,
    value: t.Any,
    size: int = CHUNK,
) -> int:
    """Store *value* the way released Flask-Caching's ``set`` does; the chunk count."""
    chunks = pieces(value, size)
    prefix = cache.key_prefix
    client.set_multi({f"{prefix}{key}.{n}": c for n, c in enumerate(chunks)})
    return len(chunks)


def stored(raw: t.Any, cache: SpreadSASLMemcachedCache, key: str) -> dict[str, t.Any]:
    """Every item on the server for *key*: the plain one and ``key.0..key.31``."""
    names = [key, *(f"{key}.{n}" for n in range(32))]
    found = raw.get_multi([cache.key_prefix + name for name in names])
    return {name[len(cache.key_prefix) :]: item for name, item in found.items()}


def test_3mb_round_trips_with_the_defaults(build: Build, raw: t.Any) -> None:
    cache = build()
    blob = os.urandom(3 * 1024 * 1024)
    assert cache.set("blob", blob) is True
    assert cache.get("blob") == blob
    items = stored(raw, cache, "blob")
    expected = pieces(blob, 1048448)  # protocol 2 pickles bytes as latin-1 text
    assert len(expected) == 5
    assert items == {f"blob.{n}": (0, chunk) for n, chunk in enumerate(expected)}
    assert cache.delete("blob") is True and cache.get("blob") is None


def test_the_items_are_released_s(build: Build, raw: t.Any) -> None:
    cache = build(chunksize=CHUNK)
    value = {"rows": list(range(900)), "name": "héllo"}
    assert cache.set("k", value, timeout=60) is True
    expected = pieces(value)
    assert len(expected) > 2
    assert stored(raw, cache, "k") == {
        f"k.{n}": (0, chunk) for n, chunk in enumerate(expected)
    }


def test_what_released_writes_is_read(
    build: Build, released: t.Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = build(chunksize=CHUNK)
    value = [os.urandom(50).hex() for _ in range(200)]
    assert write_as_released(released, cache, "k", value) > 2
    write_as_released(released, cache, "small", (1, 2.5))
    released.set(cache.key_prefix + "plain", "a plain item")  # set_many's form
    calls: list[list[str]] = []
    driver_class = type(cache._pool.template)
    real = driver_class.get_multi

    def counted(driver: t.Any, keys: list[str]) -> dict[str, t.Any]:
        calls.append(keys)
        return real(driver, keys)

    monkeypatch.setattr(driver_class, "get_multi", counted)
    assert cache.get("k") == value
    assert cache.get_many("small", "k", "plain", "nothing") == [
        (1, 2.5),
        value,
        "a plain item",
        None,
    ]
    assert len(calls) == 2  # one request each, every chunk key included
    assert cache.has("k") and cache.has("plain") and not cache.has("nothing")
    assert cache.get_dict("small") == {"small": (1, 2.5)}


def test_a_gap_is_a_miss(build: Build, released: t.Any) -> None:
    cache = build(chunksize=CHUNK)
    value = list(range(2000))
    assert write_as_released(released, cache, "k", value) > 3
    released.delete(cache.key_prefix + "k.1")
    assert cache.get("k") is None
    assert cache.get_many("k") == [None]
    assert cache.has("k") is False


def test_garbage_and_foreign_items_are_misses(build: Build, released: t.Any) -> None:
    cache = build(chunksize=CHUNK)
    prefix = cache.key_prefix
    released.set(prefix + "junk.0", b"\x80\x02not a pickle")
    released.set(prefix + "text.0", "a str item (flags 16) is no chunk")
    assert cache.get_many("junk", "text") == [None, None]


def test_more_than_maxchunk_raises(build: Build, raw: t.Any) -> None:
    # add and set_many store one plain item when the value fits one (as released
    # does), so items are made small here to make them spread too
    cache = build(chunksize=CHUNK, maxchunk=3, maximum_value_length=2048)
    fits = text(3 * CHUNK - 100)
    assert cache.set("fits", fits) is True and cache.get("fits") == fits
    too_big = text(3 * CHUNK)
    with pytest.raises(ValueError, match="maxchunk=3"):
        cache.set("big", too_big)
    assert cache.add("big", too_big) is False
    assert cache.set_many({"big": too_big, "ok": 1}) == ["ok"]
    assert stored(raw, cache, "big") == {}
    assert cache.add("fits2", fits) is True and cache.get("fits2") == fits
    assert len(stored(raw, cache, "fits2")) == 3
    assert cache.set_many({"many": fits}) == ["many"] and cache.get("many") == fits


def test_a_shorter_value_after_a_longer_one(
    build: Build, raw: t.Any, released: t.Any
) -> None:
    cache = build(chunksize=CHUNK)
    longer, shorter = text(5 * CHUNK), text(CHUNK // 2)
    cache.set("k", longer)
    cache.set("k", shorter)
    assert cache.get("k") == shorter
    assert stored(raw, cache, "k")["k.0"] == (0, pieces(shorter)[0])
    assert "k.1" not in stored(raw, cache, "k")  # where a read stops
    # released leaves the longer value's chunks; its shorter pickle still reads
    write_as_released(released, cache, "r", longer)
    write_as_released(released, cache, "r", shorter)
    assert len(stored(raw, cache, "r")) > 1
    assert cache.get("r") == shorter


def test_a_shorter_json_value_after_a_longer_one(build: Build) -> None:
    cache = build(chunksize=CHUNK)
    cache.serializer = JSONSerializer()
    longer, shorter = ["x" * 40] * 200, {"a": [1, 2, 3]}
    assert cache.set("k", longer) is True and cache.get("k") == longer
    assert cache.set("k", shorter) is True and cache.get("k") == shorter


def test_delete_removes_every_chunk(build: Build, raw: t.Any) -> None:
    cache = build(chunksize=CHUNK)
    cache.set("k", text(4 * CHUNK))
    cache.set("k", "plain form too", chunk=False)
    cache.set("other", text(2 * CHUNK))
    assert len(stored(raw, cache, "k")) == 6  # 5 chunks and the plain item
    assert cache.delete("k") is True
    assert stored(raw, cache, "k") == {}
    assert cache.delete("k") is False
    assert cache.delete_many("other", "nothing") == ["other", "nothing"]
    assert stored(raw, cache, "other") == {}
    assert cache.set("k", 1) is True and cache.get("k") == 1  # the connection is fine


def test_json_never_unpickles_a_forged_chunk(build: Build, released: t.Any) -> None:
    cache = build(chunksize=CHUNK)
    cache.serializer = JSONSerializer()
    gadget = pickle.dumps(Gadget(), 2)
    assert pickle.loads(gadget) == "unpickled" and UNPICKLED == ["unpickled"]
    UNPICKLED.clear()
    released.set_multi({f"{cache.key_prefix}evil.0": gadget})
    released.set(cache.key_prefix + "evil2", Gadget())  # a pickled plain item
    assert cache.get("evil") is None and cache.get_many("evil", "evil2") == [None, None]
    assert UNPICKLED == []
    assert cache.set("k", {"a": "b" * 3000}) is True
    assert cache.get("k") == {"a": "b" * 3000}


def test_plain_items_and_chunk_false(build: Build, raw: t.Any) -> None:
    cache = build(chunksize=CHUNK)
    assert cache.set("k", "text", chunk=False) is True
    assert stored(raw, cache, "k") == {"k": (16, b"text")}  # pylibmc's item
    assert cache.get("k", chunk=False) == "text" and cache.get("k") == "text"
    assert cache.set_many({"m": 7}) == ["m"]
    assert stored(raw, cache, "m") == {"m": (4, b"7")}
    assert cache.set("m", 8) is True and cache.get_many("m") == [8]
    assert cache.set_many({"m": 9}) == ["m"] and cache.get("m") == 9  # key.0 gone


def test_add_and_inc_see_both_forms(build: Build, raw: t.Any) -> None:
    cache = build(chunksize=CHUNK)
    big = text(3 * CHUNK)
    assert cache.add("big", big) is True and cache.get("big") == big
    assert cache.add("big", 1) is False and cache.add("big", big) is False
    assert cache.set("n", 5) is True
    assert cache.add("n", 1) is False
    assert cache.inc("n") == 6 and cache.inc("n", 2) == 8 and cache.dec("n") == 7
    assert stored(raw, cache, "n") == {"n": (4, b"7")}
    cache.set("s", "not a number")
    with pytest.raises(TypeError):
        cache.inc("s")


def test_decorators_read_and_write_spread_values(
    memcached_sasl_server: MemcachedServer, released: t.Any
) -> None:
    prefix = f"d-{uuid.uuid4().hex[:8]}:"
    app = Flask(__name__)
    app.config.update(
        CACHE_TYPE="SpreadSASLMemcachedCache",
        CACHE_MEMCACHED_SERVERS=[memcached_sasl_server.address],
        CACHE_MEMCACHED_USERNAME=memcached_sasl_server.username,
        CACHE_MEMCACHED_PASSWORD=memcached_sasl_server.password,
        CACHE_KEY_PREFIX=prefix,
        CACHE_OPTIONS={"chunksize": CHUNK},
    )
    cache = Cache(app)
    calls: list[int] = []

    @app.route("/page")
    @cache.cached()
    def page() -> str:
        return "computed"

    @cache.memoize()
    def rows(n: int) -> list[str]:
        calls.append(n)
        return ["row"] * n

    backend = cache.cache
    assert isinstance(backend, SpreadSASLMemcachedCache)
    try:
        served = "written by released " * 200
        write_as_released(released, backend, "view//page", served)
        with app.test_client() as client:
            assert client.get("/page").get_data(as_text=True) == served
        with app.app_context():
            assert rows(500) == rows(500) == ["row"] * 500
        assert calls == [500]
    finally:
        backend.close()
