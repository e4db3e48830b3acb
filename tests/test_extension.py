"""The Cache extension: settings precedence, backend selection, apps and proxies."""

from __future__ import annotations

import base64
import hashlib
import typing as t
from collections import OrderedDict

import cachelib
import custom_backends
import decorator_support as support
import pytest
from decorator_support import Clock
from flask import Flask

from flask_caching import Cache
from flask_caching.backends import BUILTIN, DEPRECATED
from flask_caching.backends.filesystemcache import FileSystemCache
from flask_caching.backends.nullcache import NullCache
from flask_caching.backends.simplecache import SimpleCache
from flask_caching.exceptions import ConfigurationError

clock = support.clock  # the shared fixture, used by name


def make_app(**config: t.Any) -> Flask:
    app = Flask(__name__)
    app.config.update(config)
    return app


def test_default_is_null_cache_with_a_warning() -> None:
    app = make_app()
    with pytest.warns(UserWarning, match="NullCache"):
        cache = Cache(app)
    with app.app_context():
        assert isinstance(cache.cache, NullCache)
        assert cache.set("a", 1) is True
        assert cache.get("a") is None


def test_null_warning_can_be_silenced(recwarn: pytest.WarningsRecorder) -> None:
    app = make_app(CACHE_NO_NULL_WARNING=True)
    Cache(app)
    assert not [w for w in recwarn if "NullCache" in str(w.message)]


def test_backend_is_registered_per_cache_object() -> None:
    app = make_app(CACHE_TYPE="SimpleCache")
    cache = Cache(app)
    assert isinstance(app.extensions["cache"][cache], SimpleCache)


def test_precedence_init_app_over_constructor_over_app_config() -> None:
    app = make_app(
        CACHE_TYPE="SimpleCache", CACHE_DEFAULT_TIMEOUT=10, CACHE_THRESHOLD=7
    )
    cache = Cache(config={"CACHE_DEFAULT_TIMEOUT": 20, "CACHE_KEY_PREFIX": "c_"})
    cache.init_app(app, config={"CACHE_DEFAULT_TIMEOUT": 30})
    with app.app_context():
        backend = cache.cache
        assert backend.default_timeout == 30
        assert t.cast(SimpleCache, backend)._threshold == 7  # from app.config
    cache2 = Cache(config={"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 20})
    cache2.init_app(app)
    with app.app_context():
        assert cache2.cache.default_timeout == 20


def test_two_caches_on_one_app_have_their_own_backends(tmp_path: t.Any) -> None:
    app = make_app()
    simple = Cache(app, config={"CACHE_TYPE": "SimpleCache"})
    files = Cache(
        app, config={"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(tmp_path)}
    )
    with app.app_context():
        assert isinstance(simple.cache, SimpleCache)
        assert isinstance(files.cache, FileSystemCache)
        simple.set("k", "simple")
        files.set("k", "files")
        assert simple.get("k") == "simple"
        assert files.get("k") == "files"


def test_one_cache_on_two_apps_uses_each_apps_backend() -> None:
    cache = Cache(config={"CACHE_TYPE": "SimpleCache"})
    one, two = make_app(), make_app()
    cache.init_app(one)
    cache.init_app(two)
    with one.app_context():
        cache.set("k", "one")
    with two.app_context():
        assert cache.get("k") is None
        cache.set("k", "two")
    with one.app_context():
        assert cache.get("k") == "one"
        assert cache.cache is one.extensions["cache"][cache]


def test_decorators_follow_the_current_app() -> None:
    cache = Cache(config={"CACHE_TYPE": "SimpleCache"})
    one, two = make_app(), make_app()
    cache.init_app(one)
    cache.init_app(two)
    runs: list[int] = []

    @cache.memoize()
    def f(x: int) -> int:
        runs.append(x)
        return x

    with one.app_context():
        f(1)
        f(1)
    with two.app_context():
        f(1)
    assert runs == [1, 1]


def test_outside_app_context_uses_the_app_given_to_the_constructor() -> None:
    app = make_app(CACHE_TYPE="SimpleCache")
    cache = Cache(app)
    cache.set("k", 1)
    assert cache.get("k") == 1


def test_outside_app_context_the_last_init_app_app_is_used() -> None:
    # released Flask-Caching: init_app sets cache.app, used with no app context
    cache = Cache(config={"CACHE_TYPE": "SimpleCache"})
    app = make_app()
    cache.init_app(app)
    assert cache.app is app
    cache.set("k", 1)
    with app.app_context():
        assert cache.get("k") == 1
    assert cache.cache is app.extensions["cache"][cache]


def test_outside_app_context_without_any_app_is_a_clear_error() -> None:
    cache = Cache(config={"CACHE_TYPE": "SimpleCache"})
    with pytest.raises(RuntimeError, match="app_context"):
        cache.get("k")


def test_cache_not_initialised_for_this_app() -> None:
    cache = Cache(config={"CACHE_TYPE": "SimpleCache"})
    cache.init_app(make_app())
    other = make_app()
    with other.app_context(), pytest.raises(RuntimeError, match="init_app"):
        cache.get("k")


@pytest.mark.parametrize("name", ["NullCache", "SimpleCache", "FileSystemCache"])
def test_class_names(name: str, tmp_path: t.Any) -> None:
    app = make_app(CACHE_TYPE=name, CACHE_DIR=str(tmp_path), CACHE_NO_NULL_WARNING=True)
    cache = Cache(app)
    with app.app_context():
        assert type(cache.cache).__name__ == name


def test_every_builtin_name_is_importable_or_names_its_driver() -> None:
    from flask_caching import backends

    for name in BUILTIN:
        try:
            cls = getattr(backends, name)
        except ImportError as exc:  # an optional driver may be missing
            pytest.fail(f"{name}: {exc}")
        assert cls.__name__ == name


@pytest.mark.parametrize("old", sorted(DEPRECATED))
def test_deprecated_lowercase_names_warn(old: str, tmp_path: t.Any) -> None:
    app = make_app(CACHE_TYPE=old, CACHE_NO_NULL_WARNING=True, CACHE_DIR=str(tmp_path))
    cache = Cache()
    with pytest.warns(DeprecationWarning, match=DEPRECATED[old]):
        try:
            cache.init_app(app)
        except (ConfigurationError, RuntimeError):
            # network/uwsgi backends may refuse to build here; the name resolved
            pass
    if old in {"null", "simple", "filesystem"}:
        with app.app_context():
            assert type(cache.cache).__name__ == DEPRECATED[old]


def test_null_cache_keeps_nothing_and_reports_writes_and_deletes_as_done() -> None:
    backend = NullCache()
    assert backend.set("k", 1) is True and backend.add("k", 1) is True
    assert backend.get("k") is None and backend.has("k") is False
    assert backend.get_many("k", "j") == [None, None]
    assert backend.delete("k") is True and backend.clear() is True
    app = make_app(CACHE_NO_NULL_WARNING=True, CACHE_DEFAULT_TIMEOUT=42)
    cache = Cache(app)
    runs: list[int] = []

    @cache.memoize()
    def f(x: int) -> int:
        runs.append(x)
        return x

    @app.route("/")
    @cache.cached()
    def view() -> str:
        runs.append(0)
        return "v"

    with app.app_context():
        assert cache.cache.default_timeout == 42
        assert f(1) == f(1) == 1  # every call computes
        cache.delete_memoized(f, 1)
        cache.delete_memoized(f)
        assert cache.set("k", 1) and not cache.has("k") and cache.get("k") is None
        assert cache.delete("k") and cache.clear()
    client = app.test_client()
    assert client.get("/").data == client.get("/").data == b"v"
    assert runs == [1, 1, 0, 0]


def test_simple_cache_threshold_drops_expired_entries_then_the_soonest_to_expire(
    clock: Clock,
) -> None:
    # cachelib's rule: an insert that finds more than threshold entries first drops
    # the expired ones, then those expiring soonest; so at most threshold + 1 live
    backend = SimpleCache(threshold=3)
    backend.set("short", "s", timeout=10)
    backend.set("a", "a", timeout=100)
    backend.set("b", "b", timeout=200)
    clock.advance(20)  # "short" has expired but still fills a slot
    backend.set("c", "c")  # 3 entries, not over the threshold: nothing goes
    assert len(backend._cache) == 4
    backend.set("d", "d")  # over: the expired entry makes room, no live one goes
    assert "short" not in backend._cache
    assert backend.get_many("a", "b", "c", "d") == ["a", "b", "c", "d"]
    backend.set("forever", "f", timeout=0)  # over, nothing expired: "a" goes
    assert backend.get_many("a", "b", "c", "d", "forever") == [
        None,
        "b",
        "c",
        "d",
        "f",
    ]
    assert backend.add("e", "e") is True  # add makes room the same way: "b" goes
    assert backend.get_many("b", "c", "d", "forever", "e") == [
        None,
        "c",
        "d",
        "f",
        "e",
    ]
    backend.set("g", "g")  # an entry that never expires is the last to go
    assert backend.get("forever") == "f"
    assert len(backend._cache) == 4


def test_simple_cache_threshold_zero_is_the_default_and_negative_is_refused() -> None:
    backend = SimpleCache(threshold=0)
    backend.set_many({f"k{i}": i for i in range(600)})  # past the default of 500
    assert len(backend._cache) == 501
    assert backend.get_many("k0", "k599") == [None, 599]
    with pytest.raises(ValueError, match="threshold"):
        SimpleCache(threshold=-1)


def test_simple_cache_inc_of_a_non_integer_is_a_type_error() -> None:
    backend = SimpleCache()
    backend.set("text", "seven")
    backend.set("flag", True)
    for key in ("text", "flag"):
        with pytest.raises(TypeError, match="non-integer"):
            backend.inc(key)
    assert backend.get_many("text", "flag") == ["seven", True]


def test_import_string_of_base_cache_subclass_uses_factory() -> None:
    custom_backends.calls.clear()
    app = make_app(
        CACHE_TYPE="custom_backends.FactoryCache",
        CACHE_ARGS=[3],
        CACHE_OPTIONS={"default_timeout": 9},
        CACHE_KEY_PREFIX="pre_",
    )
    cache = Cache(app)
    with app.app_context():
        backend = cache.cache
    assert isinstance(backend, custom_backends.FactoryCache)
    assert backend._threshold == 3 and backend.default_timeout == 9
    assert custom_backends.calls == [
        ("factory", app, "pre_", [3], {"default_timeout": 9})
    ]


def test_guide_three_argument_factory() -> None:
    app = make_app(
        CACHE_TYPE="custom_backends.GuideStyleCache", REDIS_SERVERS="r1:6379"
    )
    cache = Cache(app)
    with app.app_context():
        backend = t.cast(custom_backends.GuideStyleCache, cache.cache)
        assert backend.servers == "r1:6379"
        assert backend.default_timeout == 500


def test_import_string_of_plain_callable_gets_raw_args_and_kwargs() -> None:
    custom_backends.calls.clear()
    app = make_app(
        CACHE_TYPE="custom_backends.plain_factory",
        CACHE_ARGS=[1, 2],
        CACHE_OPTIONS={"x": 1},
        CACHE_DEFAULT_TIMEOUT=42,
    )
    cache = Cache(app)
    with app.app_context():
        assert cache.cache.default_timeout == 42
    kind, got_app, timeout, args, kwargs = custom_backends.calls[0]
    assert (kind, got_app, timeout) == ("plain", app, 42)
    assert args == [1, 2] and isinstance(args, list)
    assert kwargs == {"x": 1}


def test_cachelib_class_by_import_string() -> None:
    app = make_app(
        CACHE_TYPE="cachelib.SimpleCache",
        CACHE_OPTIONS={"threshold": 5},
        CACHE_DEFAULT_TIMEOUT=11,
    )
    cache = Cache(app)
    with app.app_context():
        assert type(cache.cache) is cachelib.SimpleCache
        assert cache.cache.default_timeout == 11
        cache.set("k", [1])
        assert cache.get("k") == [1]


def test_cachelib_backend_works_under_the_decorators() -> None:
    app = make_app(CACHE_TYPE="cachelib.SimpleCache")
    cache = Cache(app)
    runs: list[int] = []

    @cache.memoize()
    def f(x: int) -> int:
        runs.append(x)
        return x * 2

    with app.app_context():
        assert f(2) == 4 and f(2) == 4
    assert runs == [2]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"CACHE_TYPE": "NoSuchCache"}, "CACHE_TYPE='NoSuchCache'"),
        ({"CACHE_TYPE": "no_such_module.Cache"}, "cannot import module"),
        ({"CACHE_TYPE": "custom_backends.Missing"}, "has no attribute"),
        ({"CACHE_TYPE": "custom_backends.not_callable"}, "not a class"),
        (
            {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": "300"},
            "CACHE_DEFAULT_TIMEOUT",
        ),
        (
            {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": -1},
            "CACHE_DEFAULT_TIMEOUT",
        ),
        ({"CACHE_TYPE": "SimpleCache", "CACHE_THRESHOLD": "many"}, "CACHE_THRESHOLD"),
        ({"CACHE_TYPE": "SimpleCache", "CACHE_OPTIONS": [1]}, "CACHE_OPTIONS"),
        ({"CACHE_TYPE": "SimpleCache", "CACHE_ARGS": "x"}, "CACHE_ARGS"),
        (
            {"CACHE_TYPE": "SimpleCache", "CACHE_IGNORE_ERRORS": "no"},
            "CACHE_IGNORE_ERRORS",
        ),
        (
            {"CACHE_TYPE": "SimpleCache", "CACHE_HASH_METHOD": "nope"},
            "CACHE_HASH_METHOD",
        ),
        ({"CACHE_TYPE": "FileSystemCache"}, "CACHE_DIR"),
    ],
)
def test_bad_settings_fail_at_init_app_naming_the_setting(
    config: dict[str, t.Any], message: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        Cache(make_app(**config))
    assert message in str(info.value)


def test_configuration_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        Cache(make_app(CACHE_TYPE="SimpleCache", CACHE_THRESHOLD=-5))


def test_config_must_be_a_mapping() -> None:
    with pytest.raises(TypeError, match="mapping"):
        Cache(config=[("CACHE_TYPE", "SimpleCache")])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mapping"):  # what released raises
        Cache(config="SimpleCache")  # type: ignore[arg-type]
    cache = Cache()
    app = make_app(CACHE_TYPE="SimpleCache")
    with pytest.raises(TypeError, match="mapping"):
        cache.init_app(app, config=[("CACHE_TYPE", "NullCache")])  # type: ignore[arg-type]
    assert cache not in app.extensions.get("cache", {})


def test_a_factory_result_is_the_backend_as_is_and_none_fails_at_init_app() -> None:
    # duck typing, as released: whatever the factory returns is the backend, and a
    # proxy method missing on it is the AttributeError Python raises
    built = object()
    app = make_app(CACHE_TYPE=lambda *args: built)
    cache = Cache(app)
    with app.app_context():
        assert cache.cache is built
        with pytest.raises(AttributeError, match="get"):
            cache.get("k")
    with pytest.raises(ConfigurationError, match="returned None"):
        Cache(make_app(CACHE_TYPE=lambda *args: None))


def test_hash_method_by_name() -> None:
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_HASH_METHOD="sha1")
    cache = Cache(app)

    @cache.memoize()
    def f(x: int) -> int:
        return x

    namespace = "test_extension.test_hash_method_by_name.locals.f"
    text = f"{namespace}{(1,)}{OrderedDict()}".encode()
    with app.app_context():
        assert f(1) == 1
        key = f.make_cache_key(1)
        version = cache.get(namespace + "_memver")
    assert isinstance(version, str) and len(version) == 6
    sha1 = base64.b64encode(hashlib.sha1(text).digest())[:16].decode()
    sha256 = base64.b64encode(hashlib.sha256(text).digest())[:16].decode()
    assert sha1 != sha256
    assert key == sha1 + version


class TestProxyMethods:
    @pytest.fixture
    def cache(self) -> t.Iterator[Cache]:
        app = make_app(CACHE_TYPE="SimpleCache")
        cache = Cache(app)
        with app.app_context():
            yield cache

    def test_get_set_add_delete_has(self, cache: Cache) -> None:
        assert cache.set("a", {"x": 1})
        assert cache.get("a") == {"x": 1}
        assert cache.has("a")
        assert not cache.add("a", 2)
        assert cache.add("b", 2)
        assert cache.delete("a")
        assert not cache.has("a")
        assert cache.get("a") is None

    def test_many(self, cache: Cache) -> None:
        cache.set_many({"a": 1, "b": 2})
        assert cache.get_many("a", "b", "c") == [1, 2, None]
        assert cache.get_dict("a", "b") == {"a": 1, "b": 2}
        cache.delete_many("a", "b")
        assert cache.get_many("a", "b") == [None, None]

    def test_inc_dec_clear_unlink(self, cache: Cache) -> None:
        assert cache.inc("n") == 1
        assert cache.inc("n", 5) == 6
        assert cache.dec("n", 2) == 4
        cache.set("x", 1)
        cache.unlink("x")
        assert not cache.has("x")
        cache.set("y", 1)
        assert cache.clear()
        assert cache.get("y") is None and cache.get("n") is None

    def test_keys_and_results_pass_through_unchanged(self, cache: Cache) -> None:
        # thin proxies, as released: no key type check, the backend's own result
        assert cache.set(1, "v") is True
        assert cache.get(1) == "v"
        assert cache.add(("t",), "w") is True
        assert cache.get(("t",)) == "w"
        assert cache.set_many({("a",): 1}) == [("a",)]
        assert cache.get_many(("a",), 1) == [1, "v"]

    def test_proxy_returns_what_the_backend_returns(self) -> None:
        sentinel = object()

        class Backend(SimpleCache):
            def set(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
                return sentinel

            def get_many(self, *keys: str) -> t.Any:
                return (0,) * len(keys)

        app = make_app(CACHE_TYPE=lambda *args: Backend())
        cache = Cache(app)
        with app.app_context():
            assert cache.set("k", 1) is sentinel
            assert cache.get_many("a", "b") == (0, 0)


def test_template_extension_is_optional() -> None:
    app = make_app(CACHE_TYPE="SimpleCache")
    Cache(app, with_jinja2_ext=False)
    assert not any(
        "CacheExtension" in type(ext).__name__
        for ext in app.jinja_env.extensions.values()
    )
    app2 = make_app(CACHE_TYPE="SimpleCache")
    Cache(app2)
    assert any(
        type(ext).__name__ == "CacheExtension"
        for ext in app2.jinja_env.extensions.values()
    )
