"""Checked by ``mypy --strict`` (see tests/test_cached.py), never run.

The decorated function keeps the wrapped function's signature (ParamSpec): calls
with wrong arguments are errors, results keep their types. A ``# type: ignore[...]``
below marks a line that MUST be an error: under ``--strict`` an ignore that is not
needed is itself an error (warn_unused_ignores), so each one is asserted.
"""

from __future__ import annotations

import typing as t
from collections.abc import Callable, Coroutine

from flask import Flask, Response
from flask.views import View
from typing_extensions import assert_type

from flask_caching import Cache, CachedFunction, CachedResponse

app = Flask(__name__)
cache = Cache(app, config={"CACHE_TYPE": "SimpleCache"})


# -- @memoize on functions ------------------------------------------------------------


@cache.memoize(timeout=5)
def add(a: int, b: str = "x") -> str:
    return b * a


as_callable: CachedFunction[[int, str], str] = add
assert_type(add(1), str)
assert_type(add(1, "y"), str)
assert_type(add(a=1, b="y"), str)
assert_type(add.uncached(2), str)
assert_type(add.make_cache_key(1, "y"), str)
assert_type(add.cache_timeout, int | None)
add.cache_timeout = 10
add("1")  # type: ignore[arg-type]
add(1, 2)  # type: ignore[arg-type]
add(1, c=2)  # type: ignore[call-arg]
add()  # type: ignore[call-arg]
add.uncached("1")  # type: ignore[arg-type]
add.cache_timeout = "soon"  # type: ignore[assignment]
wrong: int = add(1)  # type: ignore[assignment]


def takes_adder(f: Callable[[int, str], str]) -> str:
    return f(1, "z")


takes_adder(add)


# -- @memoize on methods ----------------------------------------------------------------


class Person:
    def __init__(self, pk: int) -> None:
        self.pk = pk

    @cache.memoize(50)
    def has_membership(self, role_id: int) -> bool:
        return role_id == self.pk

    @staticmethod
    @cache.memoize()
    def helper(x: int) -> float:
        return x / 2

    @classmethod
    @cache.memoize()
    def build(cls, pk: int) -> Person:
        return cls(pk)


person = Person(1)
assert_type(person.has_membership(3), bool)
assert_type(person.has_membership(role_id=3), bool)
assert_type(Person.has_membership(person, 3), bool)
assert_type(person.has_membership.uncached(person, 3), bool)
assert_type(Person.helper(2), float)
assert_type(person.build(2), Person)
person.has_membership("admin")  # type: ignore[arg-type]
person.has_membership()  # type: ignore[call-arg]
Person.helper("2")  # type: ignore[arg-type]

# Known mypy limitations with callable objects under @classmethod/@staticmethod
# (they run fine): a classmethod called on the class, and a staticmethod called on
# an instance, are not bound by mypy. These ignores fail the check once mypy
# learns to bind them, so the limitation stays documented and no wider.
Person.build(2)  # type: ignore[call-arg, arg-type]
person.helper(2)  # type: ignore[call-arg]


# -- @cached on views, pluggable views and coroutines ----------------------------------


@app.route("/")
@cache.cached(timeout=50)
def index() -> str:
    return "Cached for 50s"


@app.route("/item/<int:item>")
@cache.cached(query_string=True)
def item(item: int) -> tuple[str, int]:
    return str(item), 200


@app.route("/dynamic")
@cache.cached()
def dynamic() -> CachedResponse:
    return CachedResponse(response=Response("x"), timeout=50)


assert_type(index(), str)
assert_type(item(3), tuple[str, int])
assert_type(dynamic(), CachedResponse)
assert_type(index.make_cache_key(), str)
item("3")  # type: ignore[arg-type]


class MyView(View):
    @cache.cached(timeout=50)
    def dispatch_request(self) -> str:
        return "Cached for 50s"


assert_type(MyView().dispatch_request(), str)


@cache.cached(key_prefix="coro")
async def load(n: int) -> list[int]:
    return [n]


pending: Coroutine[t.Any, t.Any, list[int]] = load(1)
not_a_list: list[int] = load(1)  # type: ignore[assignment]


async def use_load() -> None:
    assert_type(await load(1), list[int])
    await load("1")  # type: ignore[arg-type]


@cache.memoize()
def ignore_args(x: int, request_id: str) -> None:
    return None


assert_type(ignore_args(1, "r"), None)
cache.delete_memoized(add)
cache.delete_memoized(add, 1, "y")
cache.delete_memoized(person.has_membership)
cache.delete_memoized_verhash(add)
assert_type(cache.delete_cached(item, path="/item/1", query_args={"a": 1}), bool)
