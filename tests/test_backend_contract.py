"""The backend contract: one set of capability tests that every backend must pass.

Backends are listed by name in :data:`BACKENDS`. To add one, write a maker
``(request, key_prefix, default_timeout) -> backend`` (import the backend inside it, so
this module imports even before the backend exists; get servers with
``request.getfixturevalue``) and add an entry::

    BACKENDS["memcached"] = Backend(make_memcached, marks=(pytest.mark.memcached,))

The flags on :class:`Backend` switch on the tests for what only some backends promise.
Backends are built directly, never through the Cache extension.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import os
import threading
import time
import typing as t
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from flask_caching.backends.base import BaseCache

Maker = Callable[[pytest.FixtureRequest, str, int], BaseCache]


@dataclass(frozen=True)
class Backend:
    """How to build one backend for the contract tests, and what it promises."""

    make: Maker
    marks: tuple[pytest.MarkDecorator, ...] = ()
    #: two instances with different prefixes share one store, and ``clear()`` on one
    #: leaves the other's keys alone
    scoped_clear: bool = False
    #: ``inc`` is atomic, so concurrent increments are never lost
    atomic_inc: bool = False
    #: the server's clock ticks whole seconds (memcached), so a 1 s timeout may end
    #: at once; expiry is tested with 2 s
    coarse_expiry: bool = False
    #: the cachelib class the backend subclasses (issue 13: built on cachelib)
    cachelib_class: str = "BaseCache"


def backend_class(module: str, name: str) -> t.Any:
    """Import ``flask_caching.backends.<module>.<name>``; skip if not written yet."""
    try:
        mod = importlib.import_module(f"flask_caching.backends.{module}")
    except ModuleNotFoundError as exc:
        if exc.name != f"flask_caching.backends.{module}":
            raise
        pytest.skip(f"flask_caching.backends.{module} does not exist yet")
    return getattr(mod, name)


def make_simple(request: pytest.FixtureRequest, prefix: str, timeout: int) -> BaseCache:
    cls = backend_class("simplecache", "SimpleCache")
    cache: BaseCache = cls(default_timeout=timeout)
    return cache


def make_filesystem(
    request: pytest.FixtureRequest, prefix: str, timeout: int
) -> BaseCache:
    cls = backend_class("filesystemcache", "FileSystemCache")
    path = request.getfixturevalue("tmp_path") / "cache"
    cache: BaseCache = cls(str(path), default_timeout=timeout)
    return cache


def make_redis(request: pytest.FixtureRequest, prefix: str, timeout: int) -> BaseCache:
    cls = backend_class("rediscache", "RedisCache")
    server = request.getfixturevalue("redis_server")
    cache: BaseCache = cls(port=server.port, key_prefix=prefix, default_timeout=timeout)
    return cache


def make_sentinel(
    request: pytest.FixtureRequest, prefix: str, timeout: int
) -> BaseCache:
    cls = backend_class("rediscache", "RedisSentinelCache")
    group = request.getfixturevalue("redis_sentinel")
    cache: BaseCache = cls(group.sentinels, key_prefix=prefix, default_timeout=timeout)
    return cache


def make_cluster(
    request: pytest.FixtureRequest, prefix: str, timeout: int
) -> BaseCache:
    cls = backend_class("rediscache", "RedisClusterCache")
    group = request.getfixturevalue("redis_cluster")
    cache: BaseCache = cls(group.startup, key_prefix=prefix, default_timeout=timeout)
    return cache


def require_module(name: str) -> None:
    """Skip unless *name* is installed, without importing it: pylibmc must be first
    imported by the backend, which points its libsasl2 at the SASL plugins."""
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed")


def make_memcached_with(client: str) -> Maker:
    """A maker for MemcachedCache driven by the client library *client*."""

    def make(request: pytest.FixtureRequest, prefix: str, timeout: int) -> BaseCache:
        require_module(client)
        cls = backend_class("memcache", "MemcachedCache")
        server = request.getfixturevalue("memcached_server")
        cache: BaseCache = cls([server.address], timeout, prefix, client=client)
        return cache

    return make


def make_memcached_sasl_as(name: str) -> Maker:
    """A maker for the SASL memcached backend class *name*."""

    def make(request: pytest.FixtureRequest, prefix: str, timeout: int) -> BaseCache:
        require_module("pylibmc")
        cls = backend_class("memcache", name)
        server = request.getfixturevalue("memcached_sasl_server")
        cache: BaseCache = cls(
            [server.address],
            timeout,
            prefix,
            username=server.username,
            password=server.password,
        )
        return cache

    return make


_redis = (pytest.mark.redis,)
_memcached = (pytest.mark.memcached,)

BACKENDS: dict[str, Backend] = {
    "simple": Backend(make_simple, atomic_inc=True, cachelib_class="SimpleCache"),
    "filesystem": Backend(
        make_filesystem, atomic_inc=True, cachelib_class="FileSystemCache"
    ),
    "redis": Backend(
        make_redis,
        _redis,
        scoped_clear=True,
        atomic_inc=True,
        cachelib_class="RedisCache",
    ),
    "sentinel": Backend(
        make_sentinel,
        _redis,
        scoped_clear=True,
        atomic_inc=True,
        cachelib_class="RedisCache",
    ),
    "cluster": Backend(
        make_cluster,
        _redis,
        scoped_clear=True,
        atomic_inc=True,
        cachelib_class="RedisCache",
    ),
    # memcached clear() is flush_all (every prefix), as released Flask-Caching's
    "memcached-pylibmc": Backend(
        make_memcached_with("pylibmc"),
        _memcached,
        atomic_inc=True,
        coarse_expiry=True,
        cachelib_class="MemcachedCache",
    ),
    "memcached-pymemcache": Backend(
        make_memcached_with("pymemcache"),
        _memcached,
        atomic_inc=True,
        coarse_expiry=True,
        cachelib_class="MemcachedCache",
    ),
    # python-memcached keeps sockets per thread (its Client is a threading.local)
    # and leaves those of ended threads to the garbage collector
    "memcached-python-memcached": Backend(
        make_memcached_with("memcache"),
        (
            *_memcached,
            pytest.mark.filterwarnings(
                "ignore::pytest.PytestUnraisableExceptionWarning"
            ),
        ),
        atomic_inc=True,
        coarse_expiry=True,
        cachelib_class="MemcachedCache",
    ),
    "memcached-sasl": Backend(
        make_memcached_sasl_as("SASLMemcachedCache"),
        _memcached,
        atomic_inc=True,
        coarse_expiry=True,
        cachelib_class="MemcachedCache",
    ),
    "memcached-spread": Backend(
        make_memcached_sasl_as("SpreadSASLMemcachedCache"),
        _memcached,
        atomic_inc=True,
        coarse_expiry=True,
        cachelib_class="MemcachedCache",
    ),
}


class Harness:
    """Builds backends of one kind with fresh key prefixes, and cleans up after them."""

    def __init__(self, name: str, request: pytest.FixtureRequest) -> None:
        self.name = name
        self.spec = BACKENDS[name]
        self._request = request
        self._made: list[BaseCache] = []

    def make(self, prefix: str | None = None, default_timeout: int = 300) -> BaseCache:
        prefix = prefix if prefix is not None else f"contract-{uuid.uuid4().hex[:8]}:"
        cache = self.spec.make(self._request, prefix, default_timeout)
        self._made.append(cache)
        return cache

    def close(self) -> None:
        for cache in self._made:
            if self.spec.scoped_clear:
                cache.clear()
            close = getattr(cache, "close", None)
            if close is not None:
                close()


@pytest.fixture(
    params=[pytest.param(name, marks=spec.marks) for name, spec in BACKENDS.items()]
)
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    harness = Harness(request.param, request)
    yield harness
    harness.close()


@pytest.fixture
def cache(harness: Harness) -> BaseCache:
    return harness.make()


VALUES: list[t.Any] = [
    "text",
    "",
    0,
    -17,
    2**70,
    3.25,
    True,
    False,
    b"\x00\xffbytes",
    ["a", 1, None],
    ("tuple", 2),
    {"nested": {"dict": [1, 2.5, "x"]}, "n": None},
    {1, 2, 3},
]


def test_missing_key_is_none(cache: BaseCache) -> None:
    assert cache.get("nothing-here") is None
    assert cache.has("nothing-here") is False


def test_set_get_round_trips_types(cache: BaseCache) -> None:
    for index, value in enumerate(VALUES):
        assert cache.set(f"value-{index}", value) is True
    for index, value in enumerate(VALUES):
        got = cache.get(f"value-{index}")
        assert got == value and type(got) is type(value), (index, value, got)


def test_a_returned_value_is_the_callers_copy(cache: BaseCache) -> None:
    value = {"list": [1, 2], "tuple": ("a", [3])}
    assert cache.set("mutable", value)
    got = cache.get("mutable")
    got["list"].append(99)
    got["tuple"][1].append(99)
    value["list"].append(100)
    assert cache.get("mutable") == {"list": [1, 2], "tuple": ("a", [3])}
    assert cache.set("frozen", ("x", 1, (2.5, b"y", None)))
    assert cache.get("frozen") == ("x", 1, (2.5, b"y", None))


def test_none_is_a_stored_value(cache: BaseCache) -> None:
    cache.set("none", None)
    assert cache.has("none")
    assert cache.get("none") is None


def test_set_overwrites(cache: BaseCache) -> None:
    cache.set("k", "one")
    cache.set("k", "two")
    assert cache.get("k") == "two"


def test_unicode_keys_and_values(cache: BaseCache) -> None:
    key = "clé-ключ-鍵-🔑"
    cache.set(key, "välue-值-🙂")
    assert cache.get(key) == "välue-值-🙂"
    assert cache.get_many(key, "plain") == ["välue-值-🙂", None]


def test_large_value(cache: BaseCache) -> None:
    blob = os.urandom(512 * 1024)
    cache.set("large", blob)
    assert cache.get("large") == blob
    text = "x" * 300_000
    cache.set("large-text", {"page": text})
    assert cache.get("large-text") == {"page": text}


def test_add_does_not_overwrite(cache: BaseCache) -> None:
    assert cache.add("a", "first") is True
    assert cache.add("a", "second") is False
    assert cache.get("a") == "first"


def test_delete(cache: BaseCache) -> None:
    cache.set("d", 1)
    assert cache.delete("d") is True
    assert cache.get("d") is None
    assert cache.has("d") is False
    assert cache.delete("d") is False


def test_has(cache: BaseCache) -> None:
    cache.set("h", "v")
    assert cache.has("h") is True
    assert cache.has("other") is False


def test_get_many_keeps_order_and_reports_misses(cache: BaseCache) -> None:
    cache.set("m1", "one")
    cache.set("m3", 3)
    assert cache.get_many("m3", "m2", "m1") == [3, None, "one"]
    assert cache.get_many() == []


def test_set_many(cache: BaseCache) -> None:
    mapping = {f"s{i}": {"i": i} for i in range(25)}
    assert sorted(cache.set_many(mapping)) == sorted(mapping)
    assert cache.get_many(*mapping) == list(mapping.values())
    assert cache.set_many({}) == []


def test_delete_many(cache: BaseCache) -> None:
    cache.set_many({"x1": 1, "x2": 2, "x3": 3})
    deleted = cache.delete_many("x1", "x2", "never-set")
    assert set(deleted) == {"x1", "x2", "never-set"}  # absent afterwards: deleted
    assert cache.get_many("x1", "x2", "x3") == [None, None, 3]
    assert cache.delete_many() == []


def test_is_built_on_cachelib(harness: Harness, cache: BaseCache) -> None:
    import cachelib

    assert isinstance(cache, getattr(cachelib, harness.spec.cachelib_class))
    assert isinstance(cache, BaseCache)
    # released Flask-Caching's default, not cachelib's (True)
    assert cache.ignore_delete_many_errors is False


def test_get_dict(cache: BaseCache) -> None:
    cache.set_many({"g1": "a", "g2": "b"})
    assert cache.get_dict("g1", "g2", "g3") == {"g1": "a", "g2": "b", "g3": None}


def test_inc_dec(cache: BaseCache) -> None:
    assert cache.inc("counter") == 1
    assert cache.inc("counter", 5) == 6
    assert cache.dec("counter") == 5
    assert cache.dec("counter", 10) == -5
    assert cache.get("counter") == -5
    assert cache.dec("down", 2) == -2
    cache.set("preset", 40)
    assert cache.inc("preset", 2) == 42
    assert cache.get("preset") == 42


def test_clear(cache: BaseCache) -> None:
    cache.set_many({"c1": 1, "c2": "two"})
    assert cache.clear() is True
    assert cache.get_many("c1", "c2") == [None, None]


def test_expiry(harness: Harness) -> None:
    """Default timeout applies, 0 never expires, a short timeout expires."""
    short = 2 if harness.spec.coarse_expiry else 1
    cache = harness.make(default_timeout=short)
    cache.set("default", "d")
    cache.set("forever", "f", timeout=0)
    cache.set("long", "l", timeout=dt.timedelta(minutes=5))
    cache.add("added-forever", "a", timeout=0)
    cache.set_many({"many-short": 1}, timeout=short)
    cache.set_many({"many-forever": 2}, timeout=0)
    assert cache.get("default") == "d"
    time.sleep(short + 0.1)
    assert cache.get("default") is None
    assert cache.has("default") is False
    assert cache.get("many-short") is None
    assert cache.get_many("forever", "long", "added-forever", "many-forever") == [
        "f",
        "l",
        "a",
        2,
    ]


def test_negative_timeout_is_already_expired(cache: BaseCache) -> None:
    cache.set("neg", "old")
    cache.set("neg", "new", timeout=-1)
    assert cache.get("neg") is None
    assert cache.has("neg") is False
    cache.add("neg-add", "x", timeout=-5)
    assert cache.get("neg-add") is None
    cache.set_many({"neg-many": 1}, timeout=-1)
    assert cache.get("neg-many") is None


def test_clear_with_prefix_spares_other_prefixes(harness: Harness) -> None:
    if not harness.spec.scoped_clear:
        pytest.skip(f"{harness.name}: clear() is not scoped by key prefix")
    tag = uuid.uuid4().hex[:8]
    mine = harness.make(prefix=f"mine-{tag}:")
    other = harness.make(prefix=f"other-{tag}:")
    longer = harness.make(prefix=f"mine-{tag}:x")  # the prefix extended, still mine
    mine.set_many({f"k{i}": i for i in range(50)})
    other.set_many({f"k{i}": i for i in range(50)})
    longer.set("y", 1)
    assert mine.clear() is True
    assert mine.get_many("k0", "k49") == [None, None]
    assert longer.get("y") is None
    assert other.get_many(*(f"k{i}" for i in range(50))) == list(range(50))


def test_thread_safety_smoke(harness: Harness) -> None:
    cache = harness.make()
    errors: list[BaseException] = []
    threads_n, rounds = 8, 40

    def work(n: int) -> None:
        try:
            for i in range(rounds):
                key = f"t{n}-{i % 5}"
                cache.set(key, (n, i))
                got = cache.get(key)
                assert got == (n, i), (key, got)
                assert cache.get_many(key, f"t{n}-missing") == [(n, i), None]
                cache.inc("shared")
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads_n)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not errors, errors[:3]
    if harness.spec.atomic_inc:
        assert cache.get("shared") == threads_n * rounds


# --- SimpleCache: cachelib's class, layout, clock and signature ----------------------
# (FileSystemCache's counterparts are in test_filesystem_shared.py)


class FakeClock:
    """Stands in for ``cachelib.simple.time``: whole seconds, moved by hand."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, now: float = 1_800_000_000):
        import cachelib.simple

        self.now = now
        monkeypatch.setattr(cachelib.simple, "time", self)

    def __call__(self) -> float:
        return self.now


def test_simple_keeps_cachelibs_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    from cachelib.serializers import SimpleSerializer

    from flask_caching.backends.simplecache import SimpleCache

    clock = FakeClock(monkeypatch)
    cache = SimpleCache()
    assert isinstance(cache.serializer, SimpleSerializer)
    cache.set("a", {"x": 1}, timeout=60)
    cache.set("b", "text", timeout=0)
    cache.set("c", 3)
    assert cache._cache == {
        "a": (int(clock.now) + 60, SimpleSerializer().dumps({"x": 1})),
        "b": (0, SimpleSerializer().dumps("text")),
        "c": (int(clock.now) + 300, SimpleSerializer().dumps(3)),
    }


def test_simple_threshold_is_cachelibs_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    from flask_caching.backends.simplecache import SimpleCache

    cache = SimpleCache(threshold=2)
    for key in "abcd":
        cache.set(key, key)
    assert len(cache._cache) == 3  # pruned before an insert, when over the threshold
    clock = FakeClock(monkeypatch)
    cache = SimpleCache(threshold=3)
    cache.set("short", 1, timeout=5)
    cache.set("forever", 2, timeout=0)
    cache.set("long", 3, timeout=500)
    cache.set("longer", 4, timeout=900)
    clock.now += 10
    cache.set("new", 5, timeout=1000)  # the expired entry goes first
    assert sorted(cache._cache) == ["forever", "long", "longer", "new"]
    cache.set("newer", 6)  # then the one expiring soonest; never-expiring ones last
    assert sorted(cache._cache) == ["forever", "longer", "new", "newer"]


def test_simple_patched_cachelib_clock_moves_expiry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flask_caching.backends.simplecache import SimpleCache

    clock = FakeClock(monkeypatch)
    cache = SimpleCache(default_timeout=10)
    cache.set("default", 1)
    cache.set("forever", 2, timeout=0)
    clock.now += 9.5
    assert cache.get("default") == 1 and cache.has("default")
    clock.now += 0.5
    assert cache.get("default") is None and not cache.has("default")
    assert cache.get_many("default", "forever") == [None, 2]
    assert cache.add("default", 3) is True
    assert cache.get("default") == 3


def test_simple_patched_time_time_moves_expiry_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flask_caching.backends.simplecache import SimpleCache

    cache = SimpleCache()
    cache.set("k", "v", timeout=10)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 11)
    assert cache.get("k") is None


def test_simple_constructor_takes_released_signature() -> None:
    import inspect

    from flask_caching.backends.simplecache import SimpleCache

    params = inspect.signature(SimpleCache).parameters
    assert [(p.name, p.default) for p in params.values()] == [
        ("threshold", 500),
        ("default_timeout", 300),
        ("ignore_delete_many_errors", False),
        ("ignore_errors", None),
    ]
    cache = SimpleCache(10, 20, True)
    assert (cache._threshold, cache.default_timeout) == (10, 20)
    assert cache.ignore_delete_many_errors is True
    message = (
        "'ignore_errors' is deprecated and will be removed in the next version."
        " Use 'ignore_delete_many_errors' instead."
    )
    with pytest.warns(DeprecationWarning) as record:
        cache = SimpleCache(ignore_errors=True)
    assert [str(w.message) for w in record] == [message]
    assert cache.ignore_delete_many_errors is True


def test_delete_many_names_the_keys_left_unless_told_to_ignore() -> None:
    from flask_caching.backends.simplecache import SimpleCache

    class Stubborn(SimpleCache):
        """Refuses to delete keys starting with 'keep'."""

        def delete(self, key: str) -> bool:
            return False if key.startswith("keep") else super().delete(key)

    cache = Stubborn()
    cache.set_many({"a": 1, "keep1": 2, "keep2": 3})
    with pytest.raises(RuntimeError) as caught:
        cache.delete_many("a", "keep1", "gone", "keep2")
    assert str(caught.value) == "Failed to delete keys: ['keep1', 'keep2']"
    assert cache.get_many("a", "keep1") == [None, 2]  # the others were deleted
    lenient = Stubborn(ignore_delete_many_errors=True)
    lenient.set_many({"a": 1, "keep": 2})
    assert lenient.delete_many("a", "keep", "gone") == ["a", "gone"]


def test_simple_uses_an_assigned_serializer_for_every_get_and_set() -> None:
    import json

    from cachelib.serializers import SimpleSerializer

    from flask_caching.backends.simplecache import SimpleCache

    class JSONSerializer:  # cachelib 0.9 has none of its own
        def dumps(self, value: t.Any) -> bytes:
            return json.dumps(value).encode()

        def loads(self, data: bytes) -> t.Any:
            return json.loads(data)

    class Counting(SimpleSerializer):
        def __init__(self) -> None:
            self.dumped = self.loaded = 0

        def dumps(self, value: t.Any, protocol: int = 5) -> bytes:
            self.dumped += 1
            return super().dumps(value, protocol) or b""

        def loads(self, bvalue: bytes) -> t.Any:
            self.loaded += 1
            return super().loads(bvalue)

    cache = SimpleCache()
    counting = Counting()
    cache.serializer = counting
    cache.set("s", "hello")  # immutable values are serialized too
    assert cache.get("s") == "hello" and cache.get_many("s") == ["hello"]
    assert (counting.dumped, counting.loaded) == (1, 2)
    cache.serializer = JSONSerializer()
    cache.set("j", {"a": 1})
    assert cache._cache["j"][1] == b'{"a": 1}'
    assert cache.get("j") == {"a": 1}


def test_simple_factory_reads_the_settings() -> None:
    from flask import Flask

    from flask_caching.backends.simplecache import SimpleCache

    config = {
        "CACHE_THRESHOLD": 12,
        "CACHE_DEFAULT_TIMEOUT": 40,
        "CACHE_IGNORE_ERRORS": True,
    }
    cache = SimpleCache.factory(Flask(__name__), config, [], {})
    assert (cache._threshold, cache.default_timeout) == (12, 40)
    assert cache.ignore_delete_many_errors is True
    cache = SimpleCache.factory(Flask(__name__), config, [], {"threshold": 3})
    assert cache._threshold == 3  # CACHE_OPTIONS win


@pytest.mark.parametrize("name", ["simple", "filesystem"])
def test_add_from_many_threads_has_one_winner(
    request: pytest.FixtureRequest, name: str
) -> None:
    cache = BACKENDS[name].make(request, "", 300)
    for round_ in range(10):
        key = f"race-{round_}"
        barrier = threading.Barrier(12)
        wins: list[bool] = []

        def racer(
            n: int,
            key: str = key,
            barrier: threading.Barrier = barrier,
            wins: list[bool] = wins,
        ) -> None:
            barrier.wait(timeout=10)
            wins.append(cache.add(key, n))

        workers = [threading.Thread(target=racer, args=(n,)) for n in range(12)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        assert wins.count(True) == 1, (key, wins)


@pytest.mark.parametrize("name", ["simple", "filesystem"])
def test_inc_from_16_threads_loses_nothing(
    request: pytest.FixtureRequest, name: str
) -> None:
    cache = BACKENDS[name].make(request, "", 300)

    def bump() -> None:
        for _ in range(40):
            cache.inc("hits")

    workers = [threading.Thread(target=bump) for _ in range(16)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert cache.get("hits") == 640
