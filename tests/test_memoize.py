"""``@cache.memoize`` and its deletion helpers, on SimpleCache and a real Redis."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import typing as t

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
    assert f(1, 2, c="x") == 1
    assert f(c="x", b=2, a=1) == 1
    assert f(1, 3) == 2
    assert f(1, c="y") == 3
    assert f.make_cache_key(1) == f.make_cache_key(a=1, b=2, c="x")


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
    assert f({"b": 2, "a": 1}, y=2, x=1) == 1
    assert f({"b": 2, "a": 3}, y=2, x=1) == 2


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


def test_timeout(app_cache: tuple[Flask, Cache], clock: Clock) -> None:
    _, cache = app_cache
    calls = Calls()

    @cache.memoize(timeout=10)
    def f() -> int:
        return calls()

    assert f() == 1
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

    assert names == [f"{__name__}.test_make_name.<locals>.one"]
    assert one(1) == "one1"
    assert two(1) == "one1"  # the same name: the same entries
    assert one.make_cache_key(1) == two.make_cache_key(1)


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
    with pytest.raises(ValueError, match="nope"):
        cache.memoize(args_to_ignore=["nope"])(lambda x: x)


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


def test_instance_passed_by_keyword_is_the_same_entry(
    app_cache: tuple[Flask, Cache],
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
    assert Account.balance(self=account) == 1  # type: ignore[call-arg]
    assert account.balance() == 1
    cache.delete_memoized(account.balance)
    assert Account.balance(self=account) == 2  # type: ignore[call-arg]
    assert account.balance() == 2


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
    f.delete_memoized(1)  # type: ignore[attr-defined]
    assert [f(1), f(2)] == [3, 2]
    f.delete_memoized()  # type: ignore[attr-defined]
    assert [f(1), f(2)] == [4, 5]


def test_delete_memoized_rejects_undecorated(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    with pytest.raises(TypeError, match="not a @memoize"):
        cache.delete_memoized(lambda: 1)


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
