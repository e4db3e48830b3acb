"""Drop-in behaviours users of released Flask-Caching rely on (issue 12, point 3).

Not pinned by released Flask-Caching's own suite, but code written for it depends on
them: deleting memoized entries of a function that is not memoized, the exceptions a
proxy method raises when the server is down, what a custom ``CACHE_TYPE`` factory gets
and may return (both examples of the guide's "Custom Cache Backends" section, run as
printed from ``tests/the_app/custom.py``), and the live clients on the backends.
"""

from __future__ import annotations

import logging
import time
import typing as t
import uuid
from collections.abc import Callable

import pymemcache.exceptions
import pytest
import redis
from flask import Flask
from servers import MemcachedServer, RedisServer, free_port
from the_app import custom

from flask_caching import Cache

#: proxy calls that talk to the server, with arguments
PROXY_CALLS: list[tuple[str, tuple[t.Any, ...]]] = [
    ("get", ("k",)),
    ("set", ("k", "v")),
    ("add", ("k", "v")),
    ("delete", ("k",)),
    ("has", ("k",)),
    ("get_many", ("a", "b")),
    ("set_many", ({"a": 1, "b": 2},)),
    ("delete_many", ("a", "b")),
    ("inc", ("n",)),
    ("dec", ("n",)),
    ("clear", ()),
]


def make_app(**config: t.Any) -> tuple[Flask, Cache]:
    app = Flask(__name__)
    app.config.update(config)
    return app, Cache(app)


def prefix() -> str:
    return f"fc-dropin-{uuid.uuid4().hex[:8]}:"


# -- delete_memoized of what is not memoized ----------------------------------------


def test_deleting_memoized_entries_of_a_callable_that_is_not_memoized_does_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, cache = make_app(CACHE_TYPE="SimpleCache")
    runs: list[str] = []

    @app.route("/page")
    @cache.cached()
    def page() -> str:
        runs.append("page")
        return "the page"

    @cache.memoize()
    def square(n: int) -> int:
        runs.append(f"square({n})")
        return n * n

    def plain(n: int) -> int:
        return n

    class Plain:
        def method(self) -> int:
            return 1

    client = app.test_client()
    assert client.get("/page").text == "the page"
    with app.app_context():
        assert square(3) == 9
        before = dict(cache.cache._cache)  # type: ignore[attr-defined]
        caplog.set_level(logging.DEBUG, logger="flask_caching")
        for f in (page, plain, Plain().method, Plain, len, lambda: None):
            cache.delete_memoized(f)
            cache.delete_memoized(f, 3)
            cache.delete_memoized_verhash(f)
        assert cache.cache._cache == before  # type: ignore[attr-defined]
        assert square(3) == 9
    assert client.get("/page").text == "the page"
    assert runs == ["page", "square(3)"]  # both still hits
    notes = [r.getMessage() for r in caplog.records if r.name == "flask_caching"]
    assert any("not a @memoize-decorated function" in m for m in notes)
    assert all(r.levelno == logging.DEBUG for r in caplog.records)


@pytest.mark.parametrize("name", ["square", 42, None])
def test_deleting_memoized_entries_of_a_non_callable_is_a_type_error(
    name: t.Any,
) -> None:
    app, cache = make_app(CACHE_TYPE="SimpleCache")
    with app.app_context():
        with pytest.raises(TypeError, match="function reference"):
            cache.delete_memoized(name)
        with pytest.raises(TypeError, match="function reference"):
            cache.delete_memoized_verhash(name)


# -- proxy methods raise the driver's own exceptions --------------------------------


def assert_every_proxy_raises(
    cache: Cache, app: Flask, errors: type[BaseException] | tuple[type, ...]
) -> None:
    """Each proxy call raises *errors* (the driver's), and the decorators still
    fail open on the same dead server."""

    @cache.memoize()
    def double(n: int) -> int:
        return 2 * n

    with app.app_context():
        for method, args in PROXY_CALLS:
            with pytest.raises(errors):
                getattr(cache, method)(*args)
        assert double(4) == 8


@pytest.mark.redis
def test_redis_proxies_raise_redis_connection_error() -> None:
    app, cache = make_app(
        CACHE_TYPE="RedisCache",
        CACHE_REDIS_HOST="127.0.0.1",
        CACHE_REDIS_PORT=free_port(),  # nothing listens there
    )
    assert_every_proxy_raises(cache, app, redis.exceptions.ConnectionError)


@pytest.mark.memcached
def test_memcached_proxies_on_pylibmc_raise_pylibmc_errors() -> None:
    import pylibmc  # not on the oldest stack's core venv

    app, cache = make_app(
        CACHE_TYPE="MemcachedCache",
        CACHE_MEMCACHED_SERVERS=[f"127.0.0.1:{free_port()}"],
        CACHE_OPTIONS={"client": "pylibmc"},
    )
    assert_every_proxy_raises(cache, app, pylibmc.Error)


@pytest.mark.memcached
def test_memcached_proxies_on_pymemcache_raise_pymemcache_errors() -> None:
    app, cache = make_app(
        CACHE_TYPE="MemcachedCache",
        CACHE_MEMCACHED_SERVERS=[f"127.0.0.1:{free_port()}"],
        CACHE_OPTIONS={"client": "pymemcache"},
    )
    # pymemcache raises the socket's error (ConnectionRefusedError) or its own
    assert_every_proxy_raises(
        cache, app, (OSError, pymemcache.exceptions.MemcacheError)
    )


# -- custom CACHE_TYPE factories -----------------------------------------------------


def test_a_factory_receives_the_whole_app_config() -> None:
    seen: list[t.Mapping[str, t.Any]] = []

    def factory(
        app: Flask, config: t.Mapping[str, t.Any], args: t.Any, kwargs: t.Any
    ) -> t.Any:
        seen.append(config)
        return DictBackend()

    app = Flask(__name__)
    app.config.update(
        CACHE_TYPE=factory, MY_SERVICE_URL="svc://here", SECRET_KEY="s3cret"
    )
    Cache(app, config={"CACHE_DEFAULT_TIMEOUT": 42})
    [config] = seen
    assert config["MY_SERVICE_URL"] == "svc://here"  # not a CACHE_ key
    assert config["SECRET_KEY"] == "s3cret"
    assert config["CACHE_DEFAULT_TIMEOUT"] == 42  # Cache(config=...) wins
    assert config["CACHE_KEY_PREFIX"] == "flask_cache_"  # defaults filled in


class DictBackend:
    """Any object with the cache methods (no BaseCache): a dict behind them."""

    def __init__(self) -> None:
        self.data: dict[str, t.Any] = {}
        self.calls: list[str] = []

    def get(self, key: str) -> t.Any:
        self.calls.append("get")
        return self.data.get(key)

    def get_many(self, *keys: str) -> list[t.Any]:
        self.calls.append("get_many")
        return [self.data.get(k) for k in keys]

    def has(self, key: str) -> bool:
        return key in self.data

    def set(self, key: str, value: t.Any, timeout: t.Any = None) -> bool:
        self.calls.append("set")
        self.data[key] = value
        return True

    def add(self, key: str, value: t.Any, timeout: t.Any = None) -> bool:
        return self.data.setdefault(key, value) is value

    def set_many(self, mapping: dict[str, t.Any], timeout: t.Any = None) -> list[str]:
        self.calls.append("set_many")
        self.data.update(mapping)
        return list(mapping)

    def delete(self, key: str) -> bool:
        return self.data.pop(key, None) is not None

    def delete_many(self, *keys: str) -> list[str]:
        return [k for k in keys if self.data.pop(k, None) is not None]


def test_a_factory_may_return_any_object_with_the_cache_methods() -> None:
    backend = DictBackend()
    app, cache = make_app(CACHE_TYPE=lambda *args: backend)
    runs: list[int] = []

    @app.route("/page")
    @cache.cached()
    def page() -> str:
        runs.append(0)
        return "the page"

    @cache.memoize()
    def square(n: int) -> int:
        runs.append(n)
        return n * n

    client = app.test_client()
    assert client.get("/page").text == client.get("/page").text == "the page"
    with app.app_context():
        assert t.cast(t.Any, cache.cache) is backend
        assert square(3) == square(3) == 9
        assert cache.set("k", "v") is True and cache.get("k") == "v"
    assert runs == [0, 3]  # cached through the duck-typed object
    assert backend.data["view//page"] == "the page"


def test_the_guides_base_cache_subclass_that_skips_super_init() -> None:
    app, cache = make_app(
        CACHE_TYPE="the_app.custom.RedisCache", REDIS_SERVERS="redis-a:6379"
    )
    runs: list[int] = []

    @cache.memoize()
    def square(n: int) -> int:
        runs.append(n)
        return n * n

    @app.route("/page")
    @cache.cached()
    def page() -> str:
        runs.append(0)
        return "the page"

    with app.app_context():
        backend = cache.cache
        assert type(backend) is custom.RedisCache
        assert backend.default_timeout == 300  # BaseCache's, though __init__ skipped it
        # BaseCache stores nothing: every call computes, and answers right
        assert cache.set("k", "v") is True
        assert cache.get("k") is None
        assert square(3) == square(3) == 9
    client = app.test_client()
    assert client.get("/page").text == client.get("/page").text == "the page"
    assert runs == [3, 3, 0, 0]


@pytest.mark.memcached
def test_the_guides_factory_returning_a_bare_pylibmc_client(
    memcached_server: MemcachedServer,
) -> None:
    import pylibmc  # not on the oldest stack's core venv

    app, cache = make_app(
        CACHE_TYPE="the_app.custom.pylibmccache",
        CACHE_MEMCACHED_SERVERS=[memcached_server.address],
    )
    key = prefix() + "k"
    with app.app_context():
        assert type(cache.cache) is pylibmc.Client
        assert cache.set(key, "v") is True
        assert cache.get(key) == "v"
        assert cache.add(key, "w") is False
        client_class: t.Any = pylibmc.Client
        other = client_class([memcached_server.address], binary=True)
        assert other.get(key) == "v"  # really on the server
        assert cache.delete(key) is True
        assert other.get(key) is None
    runs: list[int] = []

    @cache.memoize()
    def square(n: int) -> int:
        runs.append(n)
        return n * n

    @app.route("/page")
    @cache.cached()
    def page() -> str:
        runs.append(0)
        return "the page"

    client = app.test_client()
    assert client.get("/page").text == client.get("/page").text == "the page"
    with app.app_context():
        assert square(3) == square(3) == 9  # answers right, cached or not


# -- the live clients ----------------------------------------------------------------


@pytest.mark.memcached
@pytest.mark.parametrize("library", ["pylibmc", "pymemcache"])
def test_memcached_client_attribute_is_the_live_client(
    memcached_server: MemcachedServer, library: str
) -> None:
    key_prefix = prefix()
    app, cache = make_app(
        CACHE_TYPE="MemcachedCache",
        CACHE_MEMCACHED_SERVERS=[memcached_server.address],
        CACHE_KEY_PREFIX=key_prefix,
        CACHE_OPTIONS={"client": library},
    )
    with app.app_context():
        live = cache.cache._client  # type: ignore[attr-defined]
        assert cache.set("k", "v", timeout=2)
        assert live.touch(key_prefix + "k", 300)  # memcached's expire
        live.set(key_prefix + "raw", "written directly")
        assert cache.get("raw") == "written directly"
        time.sleep(2.2)
        assert cache.get("k") == "v"  # the touch moved its expiry
        live.delete(key_prefix + "k")
        assert cache.get("k") is None


@pytest.mark.redis
def test_redis_client_attributes_are_the_live_clients(
    redis_server: RedisServer,
) -> None:
    key_prefix = prefix()
    app, cache = make_app(
        CACHE_TYPE="RedisCache",
        CACHE_REDIS_URL=redis_server.url,
        CACHE_KEY_PREFIX=key_prefix,
    )
    with app.app_context():
        backend: t.Any = cache.cache
        assert backend.key_prefix == key_prefix
        read, write = backend._read_client, backend._write_client
        assert cache.set("k", "v", timeout=0)
        assert write.expire(backend.key_prefix + "k", 100) is True
        assert 98 <= read.ttl(key_prefix + "k") <= 100
        with redis_server.client() as raw:
            assert 98 <= raw.ttl(key_prefix + "k") <= 100  # on the real server
        channel = key_prefix + "events"
        pubsub = read.pubsub()
        try:
            pubsub.subscribe(channel)
            assert wait_for(pubsub.get_message)["type"] == "subscribe"
            assert write.publish(channel, "hello") == 1
            message = wait_for(pubsub.get_message)
            assert (message["type"], message["data"]) == ("message", b"hello")
        finally:
            pubsub.close()


def wait_for(poll: Callable[..., t.Any], within: float = 5.0) -> t.Any:
    """The first non-None result of ``poll(timeout=...)`` within *within* seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = poll(timeout=0.1)
        if found is not None:
            return found
    raise AssertionError(f"nothing within {within} s")
