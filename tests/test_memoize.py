"""``@cache.memoize`` and its deletion helpers, on SimpleCache and a real Redis."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import threading
import typing as t
from collections import OrderedDict

import decorator_support as support
import pytest
from decorator_support import Backend, Calls, Clock, MakeApp
from flask import Flask

from flask_caching import Cache

# the shared fixtures, used by name
backend = support.backend
make_app = support.make_app
clock = support.clock


@pytest.fixture
def app_cache(make_app: MakeApp) -> t.Iterator[tuple[Flask, Cache]]:
    """An app and its Cache, with the app context pushed."""
    app, cache = make_app()
    with app.app_context():
        yield app, cache


def namespace(test: str, *names: str) -> str:
    """Released Flask-Caching's namespace of a function defined in a test of this
    module: ``module.qualname`` with ``<locals>`` spelled ``locals``."""
    return ".".join([__name__, test, "locals", *names])


def value_key(
    name: str, args: tuple[t.Any, ...], kwargs: dict[str, t.Any], *versions: str
) -> str:
    """Released Flask-Caching's value key of one call (sha256, no source check)."""
    text = f"{name}{args}{OrderedDict(sorted(kwargs.items()))}"
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return base64.b64encode(digest)[:16].decode("ascii") + "".join(versions)


# -- keys -----------------------------------------------------------------------------


def test_spellings_of_one_call_share_an_entry(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    calls = Calls()

    @cache.memoize()
    def f(a: int, b: int = 2, *, c: str = "x") -> int:
        return calls()

    assert f(1) == 1
    assert f(1, 2) == 1
    assert f(a=1) == 1
    assert f(1, b=2) == 1
    assert f(b=2, a=1) == 1
    # keyword-only arguments are keyed as given, defaults not filled in (as
    # released Flask-Caching keys them): spelling out c="x" is another entry
    assert f(1, 2, c="x") == 2
    assert f(c="x", b=2, a=1) == 2
    assert f(1, 3) == 3
    assert f(1, c="y") == 4
    assert f.make_cache_key(1) == f.make_cache_key(a=1, b=2)
    assert f.make_cache_key(1) != f.make_cache_key(a=1, b=2, c="x")
    ns = namespace("test_spellings_of_one_call_share_an_entry", "f")
    version = cache.get(ns + "_memver")
    assert f.make_cache_key(1) == value_key(ns, (1, 2), {}, version)
    assert f.make_cache_key(1, c="x") == value_key(ns, (1, 2), {"c": "x"}, version)


def test_distinct_calls_never_collide(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache

    @cache.memoize()
    def echo(*args: t.Any, **kwargs: t.Any) -> t.Any:
        return args, kwargs

    @cache.memoize()
    def pair(a: t.Any, b: t.Any = None) -> t.Any:
        return a, b

    assert pair(1, "2") == (1, "2")
    assert pair("1", 2) == ("1", 2)
    assert pair("1,2") == ("1,2", None)
    assert pair("1", "2") == ("1", "2")
    for falsy in (None, 0, False, "", 0.0, (), [], {}, b""):
        assert pair(1, falsy) == (1, falsy)
        assert type(pair(1, falsy)[1]) is type(falsy)
    assert pair(1) == (1, None)
    assert echo(1, 2) == ((1, 2), {})
    assert echo((1, 2)) == (((1, 2),), {})
    assert echo([1, 2]) == (([1, 2],), {})
    assert echo(a=1) == ((), {"a": 1})
    assert echo({"a": 1}) == (({"a": 1},), {})
    keys = {
        echo.make_cache_key(1, 2),
        echo.make_cache_key((1, 2)),
        echo.make_cache_key([1, 2]),
        echo.make_cache_key(a=1),
        echo.make_cache_key({"a": 1}),
        echo.make_cache_key(None),
        echo.make_cache_key(),
    }
    assert len(keys) == 7


def test_positional_only_and_keywords_of_the_same_name(
    app_cache: tuple[Flask, Cache],
) -> None:
    _, cache = app_cache

    @cache.memoize()
    def f(a: int, /, **kwargs: int) -> t.Any:
        return a, kwargs

    assert f(1, a=2) == (1, {"a": 2})
    assert f(1, a=3) == (1, {"a": 3})
    assert f(1) == (1, {})
    with pytest.raises(TypeError):
        f(a=1)  # type: ignore[call-arg]


def test_dict_argument_order_does_not_matter(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    calls = Calls()

    @cache.memoize()
    def f(options: dict[str, int], **kwargs: int) -> int:
        return calls()

    assert f({"a": 1, "b": 2}, x=1, y=2) == 1
    assert f({"a": 1, "b": 2}, y=2, x=1) == 1  # extra keywords are sorted
    # a dict argument is keyed by its repr, as released Flask-Caching keys it:
    # another insertion order is another entry (a shared fleet must agree)
    assert f({"b": 2, "a": 1}, x=1, y=2) == 2
    assert f({"b": 2, "a": 3}, y=2, x=1) == 3
    ns = namespace("test_dict_argument_order_does_not_matter", "f")
    version = cache.get(ns + "_memver")
    key = value_key(ns, ({"b": 2, "a": 1},), {"x": 1, "y": 2}, version)
    assert cache.get(key) == 2


def test_wrong_arguments_raise_like_the_function(
    app_cache: tuple[Flask, Cache],
) -> None:
    _, cache = app_cache

    @cache.memoize()
    def f(a: int, b: int = 2) -> int:
        return a + b

    with pytest.raises(TypeError):
        f()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        f(1, 2, 3)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        f(1, a=1)  # type: ignore[misc]
    with pytest.raises(TypeError):
        f(1, c=1)  # type: ignore[call-arg]


def test_memoize_caches_per_call(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    calls = Calls()

    @cache.memoize(timeout=50)
    def f(a: int) -> int:
        return calls()

    assert [f(1), f(1), f(2), f(2), f(1)] == [1, 1, 2, 2, 1]


def test_timeout(
    app_cache: tuple[Flask, Cache], backend: Backend, clock: Clock
) -> None:
    _, cache = app_cache
    calls = Calls()

    @cache.memoize(timeout=10)
    def f() -> int:
        return calls()

    assert f() == 1
    if backend.is_redis:  # the server expires keys by its own clock: ask it
        key, version_key = f.make_cache_key(), namespace("test_timeout", "f_memver")
        assert 8 < backend.ttl(key) <= 10
        assert 8 < backend.ttl(version_key) <= 10
        f.cache_timeout = 100
        cache.delete(key)
        assert f() == 2
        assert 98 < backend.ttl(key) <= 100
        assert 98 < backend.ttl(version_key) <= 100
        return
    clock.advance(9)
    assert f() == 1
    clock.advance(2)
    assert f() == 2
    f.cache_timeout = 100
    clock.advance(20)
    assert f() == 3
    clock.advance(50)
    assert f() == 3


def test_timeout_reaches_the_redis_server(make_app: MakeApp, backend: Backend) -> None:
    app, cache = make_app()

    @cache.memoize(timeout=42)
    def f(x: int) -> int:
        return x

    with app.app_context():
        f(1)
        key = f.make_cache_key(1)
        assert cache.get(key) is not None
        if backend.is_redis:
            assert 35 < backend.ttl(key) <= 42


def test_make_name(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    names: list[str] = []

    def make_name(name: str) -> str:
        names.append(name)
        return "renamed"

    @cache.memoize(make_name=make_name)
    def one(x: int) -> str:
        return f"one{x}"

    @cache.memoize(make_name=lambda name: "renamed")
    def two(x: int) -> str:
        return f"two{x}"

    assert names == [namespace("test_make_name", "one")]
    assert one(1) == "one1"
    assert two(1) == "two1"  # each function keeps its own version key
    ns_one, ns_two = (namespace("test_make_name", n) for n in ("one", "two"))
    one_version, two_version = (cache.get(n + "_memver") for n in (ns_one, ns_two))
    # the made name is hashed into the value key only, as in released Flask-Caching
    assert one.make_cache_key(1) == value_key("renamed", (1,), {}, one_version)
    assert two.make_cache_key(1) == value_key("renamed", (1,), {}, two_version)
    assert cache.get(value_key("renamed", (1,), {}, one_version)) == "one1"


def test_unless(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    calls = Calls()
    bypass = {"on": True}

    @cache.memoize(unless=lambda: bypass["on"])
    def f() -> int:
        return calls()

    assert [f(), f()] == [1, 2]
    bypass["on"] = False
    assert [f(), f()] == [3, 3]


def test_forced_update(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    calls = Calls()
    force = {"on": False, "asked": 0}

    def forced() -> bool:
        force["asked"] += 1
        return force["on"]

    @cache.memoize(forced_update=forced)
    def f(x: int) -> int:
        return calls()

    assert [f(1), f(1)] == [1, 1]
    force["on"] = True
    assert [f(1), f(1)] == [2, 3]
    force["on"] = False
    assert f(1) == 3
    assert force["asked"] == 5


def test_response_filter(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    calls = Calls()

    @cache.memoize(response_filter=lambda rv: rv % 2 == 0)
    def f(x: int) -> int:
        return x + 0 * calls()

    assert [f(1), f(1), f(2), f(2)] == [1, 1, 2, 2]
    assert calls.count == 3


def test_cache_none(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    log: list[str] = []

    @cache.memoize()
    def plain(x: int) -> None:
        log.append("plain")

    @cache.memoize(cache_none=True)
    def keeping(x: int) -> None:
        log.append("keeping")

    for _ in range(3):
        assert plain(1) is None
        assert keeping(1) is None
    assert log == ["plain", "keeping", "plain", "plain"]


def test_hash_method(make_app: MakeApp) -> None:
    app, cache = make_app()
    app_md5, cache_md5 = make_app(CACHE_HASH_METHOD=hashlib.md5)

    def build(c: Cache, **options: t.Any) -> t.Any:
        @c.memoize(**options)
        def f(x: int) -> int:
            return x

        return f

    with app.app_context():
        default = build(cache).make_cache_key(1)
        assert default == build(cache, hash_method=hashlib.sha256).make_cache_key(1)
        assert default != build(cache, hash_method=hashlib.md5).make_cache_key(1)
        blake = build(cache, hash_method=hashlib.blake2b)
        assert blake(5) == 5 and blake(5) == 5
    with app_md5.app_context():
        assert build(cache_md5).make_cache_key(1) == (
            build(cache_md5, hash_method=hashlib.md5).make_cache_key(1)
        )


def test_source_check(make_app: MakeApp) -> None:
    app, cache = make_app()

    def build(which: str, **options: t.Any) -> t.Any:
        if which == "a":

            @cache.memoize(make_name=lambda n: "same", **options)
            def f(x: int) -> str:
                return f"a{x}"

        else:

            @cache.memoize(make_name=lambda n: "same", **options)
            def f(x: int) -> str:
                return f"b{x}" + ""

        return f

    with app.app_context():
        assert build("a")(1) == "a1"
        assert build("b")(1) == "a1"  # source ignored by default
        assert build("a", source_check=True)(1) == "a1"
        assert build("b", source_check=True)(1) == "b1"
    app_on, cache_on = make_app(CACHE_SOURCE_CHECK=True)
    cache = cache_on
    with app_on.app_context():
        assert build("a")(2) == "a2"
        assert build("b")(2) == "b2"
        assert build("b", source_check=False)(2) == build("a", source_check=False)(2)


def test_args_to_ignore(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    calls = Calls()

    @cache.memoize(args_to_ignore=["request_id", "log"])
    def f(x: int, request_id: str, log: t.Any = None) -> int:
        return calls()

    assert f(1, "r1") == 1
    assert f(1, "r2", log=print) == 1
    assert f(2, "r1") == 2
    ns = namespace("test_args_to_ignore", "f")
    version = cache.get(ns + "_memver")
    assert cache.get(value_key(ns, (1, None, None), {}, version)) == 1
    # a name that is no parameter is ignored, as released Flask-Caching ignores it
    g = cache.memoize(args_to_ignore=["nope"])(lambda x: x + 0 * calls())
    assert [g(1), g(1), calls.count] == [1, 1, 3]


def test_is_stale(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    calls = Calls()
    given: list[t.Any] = []
    stale = {"on": False}

    def is_stale(value: t.Any) -> bool:
        given.append(value)
        return stale["on"]

    @cache.memoize(is_stale=is_stale)
    def f(x: int) -> dict[str, int]:
        return {"x": x, "n": calls()}

    assert f(1) == {"x": 1, "n": 1}
    assert given == []
    assert f(1) == {"x": 1, "n": 1}
    assert given == [{"x": 1, "n": 1}]
    stale["on"] = True
    assert f(1) == {"x": 1, "n": 2}
    stale["on"] = False
    assert f(1) == {"x": 1, "n": 2}


def test_uncached_and_cache_timeout(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    calls = Calls()

    @cache.memoize(timeout=7)
    def f(x: int) -> int:
        return calls()

    assert f.cache_timeout == 7
    assert f(1) == 1
    assert f.uncached(1) == 2
    assert f(1) == 1


def test_make_cache_key_accepts_the_function_first(
    app_cache: tuple[Flask, Cache],
) -> None:
    _, cache = app_cache

    @cache.memoize()
    def f(x: int, y: int = 0) -> int:
        return x + y

    assert f.make_cache_key(f.uncached, 1) == f.make_cache_key(1)
    assert f.make_cache_key(1, y=0) == f.make_cache_key(x=1)
    assert f.make_cache_key(1) != f.make_cache_key(2)
    f(1)
    assert cache.get(f.make_cache_key(1)) is not None


# -- methods ------------------------------------------------------------------------


def test_methods_key_on_repr_of_self(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    calls = Calls()

    class Person:
        def __init__(self, pk: int) -> None:
            self.pk = pk

        def __repr__(self) -> str:
            return f"Person({self.pk})"

        @cache.memoize(50)
        def has_membership(self, role_id: int) -> int:
            return calls()

    assert Person(1).has_membership(5) == 1
    assert Person(1).has_membership(5) == 1  # another object, the same repr
    assert Person(1).has_membership(role_id=5) == 1
    assert Person(2).has_membership(5) == 2
    assert Person(1).has_membership(6) == 3


def test_methods_key_on_caching_id(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    calls = Calls()

    class Row:
        def __init__(self, pk: int, noise: int) -> None:
            self.pk = pk
            self.noise = noise

        def __repr__(self) -> str:
            return f"Row({self.pk}, {self.noise})"

        def __caching_id__(self) -> str:
            return f"Row:{self.pk}"

        @cache.memoize()
        def total(self) -> int:
            return calls()

    assert Row(1, 10).total() == 1
    assert Row(1, 99).total() == 1
    assert Row(2, 10).total() == 2


def test_classmethod_and_staticmethod(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    calls = Calls()

    class Foo:
        @classmethod
        @cache.memoize(5)
        def big_foo(cls, a: int, b: int) -> int:
            return a + b + 1000 * calls()

        @staticmethod
        @cache.memoize()
        def helper(a: int) -> int:
            return a + 1000 * calls()

    class Bar(Foo):
        pass

    assert Foo.big_foo(5, 2) == 1007
    assert Foo().big_foo(5, 2) == 1007
    assert Foo.big_foo(5, b=2) == 1007
    assert Bar.big_foo(5, 2) == 2007  # keyed on the class
    assert Foo.helper(1) == 3001
    assert Foo().helper(1) == 3001
    assert Foo.helper(a=1) == 3001


def test_memoize_must_be_below_classmethod(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    with pytest.raises(TypeError, match="@classmethod"):

        class Wrong:
            @cache.memoize()  # type: ignore[arg-type]
            @classmethod
            def f(cls) -> int:
                return 1

    with pytest.raises(TypeError, match="@staticmethod"):

        class AlsoWrong:
            @cache.memoize()  # type: ignore[arg-type]
            @staticmethod
            def f() -> int:
                return 1


# -- deleting -------------------------------------------------------------------------


def test_delete_memoized_all_entries(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    calls = Calls()

    @cache.memoize()
    def f(x: int) -> int:
        return calls()

    @cache.memoize()
    def other(x: int) -> int:
        return calls()

    assert [f(1), f(2), other(1)] == [1, 2, 3]
    cache.delete_memoized(f)
    assert [f(1), f(2), other(1)] == [4, 5, 3]
    assert [f(1), f(2)] == [4, 5]


def test_delete_memoized_one_call_in_any_spelling(
    app_cache: tuple[Flask, Cache],
) -> None:
    _, cache = app_cache
    calls = Calls()

    @cache.memoize()
    def user_has_membership(user: str, role: str = "user") -> int:
        return calls()

    assert user_has_membership("demo", "admin") == 1
    assert user_has_membership("demo", "user") == 2
    cache.delete_memoized(user_has_membership, "demo", "user")
    assert user_has_membership("demo", "admin") == 1
    assert user_has_membership("demo", "user") == 3
    cache.delete_memoized(user_has_membership, user="demo")  # default role "user"
    assert user_has_membership("demo") == 4
    cache.delete_memoized(user_has_membership, role="admin", user="demo")
    assert user_has_membership("demo", "admin") == 5
    assert user_has_membership("demo", "user") == 4


def test_delete_memoized_method_of_one_instance(
    app_cache: tuple[Flask, Cache],
) -> None:
    _, cache = app_cache
    calls = Calls()

    class Account:
        def __init__(self, pk: int) -> None:
            self.pk = pk

        def __repr__(self) -> str:
            return f"Account({self.pk})"

        @cache.memoize()
        def balance(self, currency: str = "EUR") -> int:
            return calls()

    a, b = Account(1), Account(2)
    assert [a.balance(), a.balance("USD"), b.balance()] == [1, 2, 3]
    cache.delete_memoized(a.balance)
    assert [a.balance(), a.balance("USD"), b.balance()] == [4, 5, 3]
    cache.delete_memoized(a.balance, "USD")  # one call of that instance
    assert [a.balance(), a.balance("USD"), b.balance()] == [4, 6, 3]
    cache.delete_memoized(Account.balance, b, currency="EUR")
    assert [a.balance(), b.balance()] == [4, 7]
    cache.delete_memoized(Account.balance)  # every instance
    assert [a.balance(), b.balance()] == [8, 9]


def test_instance_passed_by_keyword_is_served_uncached(
    app_cache: tuple[Flask, Cache], caplog: pytest.LogCaptureFixture
) -> None:
    _, cache = app_cache
    calls = Calls()

    class Account:
        def __repr__(self) -> str:
            return "Account(1)"

        @cache.memoize()
        def balance(self) -> int:
            return calls()

    account = Account()
    # released Flask-Caching cannot key a method whose self is given by keyword:
    # it serves the call uncached (and says so); so do we
    with caplog.at_level(logging.WARNING, "flask_caching"):
        assert Account.balance(self=account) == 1  # type: ignore[call-arg]
        assert Account.balance(self=account) == 2  # type: ignore[call-arg]
    assert "first positional argument" in caplog.text
    assert account.balance() == 3
    assert account.balance() == 3
    assert Account.balance(account) == 3  # positional: the same entry
    cache.delete_memoized(account.balance)
    assert account.balance() == 4


def test_delete_memoized_classmethod(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    calls = Calls()

    class Foobar:
        @classmethod
        @cache.memoize(5)
        def big_foo(cls, a: int, b: int) -> int:
            return a + b + 1000 * calls()

    assert Foobar.big_foo(5, 2) == 1007
    assert Foobar.big_foo(5, 3) == 2008
    cache.delete_memoized(Foobar.big_foo, Foobar, 5, 2)
    assert Foobar.big_foo(5, 2) == 3007
    assert Foobar.big_foo(5, 3) == 2008
    cache.delete_memoized(Foobar.big_foo)
    assert Foobar.big_foo(5, 3) == 4008


def test_delete_memoized_verhash(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    calls = Calls()

    @cache.memoize()
    def f(x: int) -> int:
        return calls()

    assert [f(1), f(2)] == [1, 2]
    cache.delete_memoized_verhash(f)
    assert [f(1), f(2)] == [3, 4]
    assert [f(1), f(2)] == [3, 4]


def test_decorated_delete_memoized(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    calls = Calls()

    @cache.memoize()
    def f(x: int) -> int:
        return calls()

    assert [f(1), f(2)] == [1, 2]
    f.delete_memoized()  # type: ignore[attr-defined]
    assert [f(1), f(2)] == [3, 4]
    # as released: the attribute takes no arguments (one call: cache.delete_memoized)
    with pytest.raises(TypeError):
        f.delete_memoized(1)  # type: ignore[attr-defined]
    assert [f(1), f(2)] == [3, 4]


def test_delete_memoized_of_something_not_memoized(
    app_cache: tuple[Flask, Cache], caplog: pytest.LogCaptureFixture
) -> None:
    """As released: a callable that is not memoized has nothing to delete (a DEBUG
    line says so); a name is refused."""
    _, cache = app_cache
    cache.set("kept", "value")

    def plain() -> int:
        return 1

    with caplog.at_level(logging.DEBUG, "flask_caching"):
        cache.delete_memoized(plain)
        cache.delete_memoized(plain, 1)
        cache.delete_memoized_verhash(plain)
    assert "not a @memoize" in caplog.text
    assert cache.get("kept") == "value"
    with pytest.raises(TypeError, match="function reference"):
        cache.delete_memoized("plain")


# -- async, errors ----------------------------------------------------------------


def test_coroutine_functions(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    calls = Calls()

    @cache.memoize()
    async def fetch(x: int) -> tuple[int, int]:
        await asyncio.sleep(0)
        return x, calls()

    assert asyncio.run(fetch(1)) == (1, 1)
    assert asyncio.run(fetch(1)) == (1, 1)
    assert asyncio.run(fetch(x=1)) == (1, 1)
    assert asyncio.run(fetch(2)) == (2, 2)
    cache.delete_memoized(fetch, 1)
    assert asyncio.run(fetch(1)) == (1, 3)


class Broken:
    default_timeout = 300

    def __getattr__(self, name: str) -> t.Any:
        def fail(*args: t.Any, **kwargs: t.Any) -> t.Any:
            raise ConnectionError(f"backend down ({name})")

        return fail


def broken_backend(app: Flask, config: t.Any, args: t.Any, kwargs: t.Any) -> Broken:
    return Broken()


def test_backend_errors_return_fresh_results(caplog: pytest.LogCaptureFixture) -> None:
    app = Flask(__name__)
    cache = Cache(app, config={"CACHE_TYPE": broken_backend})
    calls = Calls()

    @cache.memoize()
    def f(x: int) -> int:
        return calls()

    with app.app_context(), caplog.at_level(logging.WARNING, "flask_caching"):
        assert [f(1), f(1)] == [1, 2]
    assert "backend down" in caplog.text


def test_backend_errors_raise_in_debug_mode() -> None:
    app = Flask(__name__)
    app.debug = True
    cache = Cache(app, config={"CACHE_TYPE": broken_backend})

    @cache.memoize()
    def f(x: int) -> int:
        return x

    with app.app_context(), pytest.raises(ConnectionError, match="backend down"):
        f(1)


# -- released Flask-Caching's version keys --------------------------------------------


def test_version_keys_are_released_names_with_six_char_versions(
    app_cache: tuple[Flask, Cache],
) -> None:
    _, cache = app_cache

    class Account:
        def __repr__(self) -> str:
            return "Account(1)"

        @cache.memoize()
        def balance(self, currency: str = "EUR") -> str:
            return f"10 {currency}"

    @cache.memoize()
    def total(x: int) -> int:
        return x * 2

    test = "test_version_keys_are_released_names_with_six_char_versions"
    assert total(3) == 6
    ns = namespace(test, "total")
    version = cache.get(ns + "_memver")
    assert type(version) is str and len(version) == 6
    assert cache.get(value_key(ns, (3,), {}, version)) == 6  # the value, as returned

    assert Account().balance() == "10 EUR"
    method_ns = namespace(test, "Account", "balance")
    function_version = cache.get(method_ns + "_memver")
    instance_version = cache.get(method_ns + ".Account1_memver")  # "()" dropped
    for v in (function_version, instance_version):
        assert type(v) is str and len(v) == 6
    key = value_key(
        method_ns, ("Account(1)", "EUR"), {}, function_version, instance_version
    )
    assert cache.get(key) == "10 EUR"
    cache.delete_memoized(total)
    new_version = cache.get(ns + "_memver")
    assert type(new_version) is str and len(new_version) == 6
    assert new_version != version


def test_version_keys_expire_with_the_newest_entry(
    app_cache: tuple[Flask, Cache], backend: Backend, clock: Clock
) -> None:
    """As released: the version key is written with every entry's timeout, so it
    lives as long as the newest entry and no longer."""
    _, cache = app_cache
    calls = Calls()

    @cache.memoize(timeout=30)
    def f(x: int) -> int:
        return calls()

    version_key = namespace("test_version_keys_expire_with_the_newest_entry", "f")
    version_key += "_memver"
    assert f(1) == 1
    if backend.is_redis:
        assert 28 < backend.ttl(version_key) <= 30
    f.cache_timeout = 100
    assert f(2) == 2
    if backend.is_redis:
        assert 98 < backend.ttl(version_key) <= 100
        return
    clock.advance(31)
    assert cache.get(version_key) is not None  # f(2)'s entry still lives
    assert [f(1), f(2)] == [3, 2]
    clock.advance(101)
    assert cache.get(version_key) is None
    assert f(2) == 4


def test_ignoring_self_shares_entries_across_instances(
    app_cache: tuple[Flask, Cache],
) -> None:
    _, cache = app_cache
    calls = Calls()

    class Rates:
        def __init__(self, pk: int) -> None:
            self.pk = pk

        def __repr__(self) -> str:
            return f"Rates({self.pk})"

        @cache.memoize(args_to_ignore=["self"])
        def rate(self, currency: str) -> int:
            return calls()

    assert [Rates(1).rate("EUR"), Rates(2).rate("EUR"), Rates(3).rate("USD")] == [
        1,
        1,
        2,
    ]
    ns = namespace("test_ignoring_self_shares_entries_across_instances")
    ns += ".Rates.rate"
    version = cache.get(ns + "_memver")
    assert cache.get(value_key(ns, (None, "EUR"), {}, version)) == 1
    assert cache.get(ns + ".Rates1_memver") is None  # no instance version key
    cache.delete_memoized(Rates(1).rate)  # the function's version: every instance
    assert cache.get(ns + "_memver") != version
    assert [Rates(2).rate("EUR"), Rates(1).rate("EUR")] == [3, 3]


def test_callbacks_get_the_call_and_only_a_literal_true_counts(
    app_cache: tuple[Flask, Cache],
) -> None:
    _, cache = app_cache
    calls = Calls()
    forced: list[tuple[t.Any, ...]] = []
    checked: list[tuple[t.Any, ...]] = []
    answers = {"forced": t.cast(t.Any, 1), "stale": t.cast(t.Any, "yes")}

    def forced_update(x: int, y: int = 0) -> t.Any:
        forced.append((x, y))
        return answers["forced"]

    def is_stale(value: int, x: int, y: int = 0) -> t.Any:
        checked.append((value, x, y))
        return answers["stale"]

    @cache.memoize(forced_update=forced_update, is_stale=is_stale)
    def f(x: int, y: int = 0) -> int:
        return calls()

    assert [f(1), f(1, y=2), f(1)] == [1, 2, 1]  # truthy is not True
    assert forced == [(1, 0), (1, 2), (1, 0)]  # once per call, with its arguments
    assert checked == [(1, 1, 0)]  # once per hit, with the value and the call
    answers["stale"] = True
    assert f(1) == 3
    assert checked[-1] == (1, 1, 0) and len(checked) == 2
    answers["forced"] = True
    assert f(1) == 4
    assert len(forced) == 5 and len(checked) == 2  # forced: nothing read, no check
    answers["forced"], answers["stale"] = False, False
    assert f(1) == 4


def test_a_delete_during_a_computation_is_not_undone(
    app_cache: tuple[Flask, Cache],
) -> None:
    """A value computed while delete_memoized ran must not bring back the entries
    that delete dropped (storing it rewrites the version keys it read)."""
    _, cache = app_cache
    calls = Calls()
    inside, go_on = threading.Event(), threading.Event()

    @cache.memoize()
    def f(x: int) -> int:
        if x == 2:
            inside.set()
            assert go_on.wait(10)
        return calls()

    app = app_cache[0]
    assert f(1) == 1
    results: list[int] = []

    def slow() -> None:
        with app.app_context():
            results.append(f(2))

    th = threading.Thread(target=slow, daemon=True)
    th.start()
    assert inside.wait(10)
    cache.delete_memoized(f)
    go_on.set()
    th.join(10)
    assert results == [2]
    assert f(1) == 3  # the delete stands
    assert f(1) == 3


def test_a_callable_object_is_memoized_per_object(
    app_cache: tuple[Flask, Cache],
) -> None:
    """An object with ``__call__`` has no ``__qualname__``: released Flask-Caching
    logs an error and runs it uncached on every call; ours caches it, each object
    apart (two scorers of one class must not share results)."""
    _, cache = app_cache
    ran: list[tuple[int, int]] = []

    class Scorer:
        def __init__(self, weight: int) -> None:
            self.weight = weight

        def __call__(self, n: int) -> int:
            ran.append((self.weight, n))
            return n * self.weight

    light, heavy = Scorer(1), Scorer(10)
    score_light = cache.memoize()(light)
    score_heavy = cache.memoize()(heavy)
    assert [score_light(3), score_light(3)] == [3, 3]
    assert [score_heavy(3), score_heavy(3)] == [30, 30]
    assert ran == [(1, 3), (10, 3)]
    cache.delete_memoized(score_light)
    assert score_light(3) == 3 and score_heavy(3) == 30
    assert ran == [(1, 3), (10, 3), (1, 3)]
