"""The wrapper both decorators put around a function, sync or async.

``@cached`` and ``@memoize`` differ in how they build keys and what they do with a
result; how a call runs is the same: *begin* (one read; a hit or the flow of a
miss), the function run by the flow's driver, then *finish*. Written once here
for plain functions and for coroutine functions.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import typing as t
from collections.abc import Callable

from .flow import Flow, Outcome, drive_async, drive_sync
from .runtime import Runtime

#: None to bypass the cache, else (runtime, key, hit payload or MISS, miss flow),
#: or a hit's ``str`` itself when nothing more is owed to the call (no *finish*)
Begin = Callable[
    [tuple[t.Any, ...], dict[str, t.Any]],
    tuple[Runtime, str, t.Any, Flow | None] | str | None,
]
#: (runtime, key, hit?, value, args, kwargs) -> what the caller gets
Finish = Callable[
    [Runtime, str, bool, t.Any, tuple[t.Any, ...], dict[str, t.Any]], t.Any
]


def wrap(
    f: Callable[..., t.Any],
    begin: Begin,
    outcome_of: Callable[..., Outcome],
    finish: Finish,
    catch: type[BaseException] | tuple[type[BaseException], ...] = (),
    observe: Callable[[], t.ContextManager[t.Any]] | None = None,
) -> Callable[..., t.Any]:
    """A function like *f* (a coroutine function if *f* is one) that caches calls.

    An exception of a type in *catch* raised by *f* becomes its result (``@cached``
    stores an ``abort(404)`` as released Flask-Caching does; *finish* raises it).
    With *observe*, the function runs inside ``observe()`` and *outcome_of* gets
    what it yielded as a second argument (``@cached`` watches the session).
    """
    parts = _Parts(f, begin, outcome_of, finish, catch, observe)
    if inspect.iscoroutinefunction(f):
        return _async_wrapper(parts)
    return _sync_wrapper(parts)


class _Parts(t.NamedTuple):
    """What both wrappers are built from (see :func:`wrap`)."""

    f: Callable[..., t.Any]
    begin: Begin
    outcome_of: Callable[..., Outcome]
    finish: Finish
    catch: type[BaseException] | tuple[type[BaseException], ...]
    observe: Callable[[], t.ContextManager[t.Any]] | None


def _sync_wrapper(parts: _Parts) -> Callable[..., t.Any]:
    """The wrapper of a plain function: begin, compute on a miss, finish."""
    f, begin, outcome_of, finish, catch, observe = parts
    watch = observe if observe is not None else _nothing

    @functools.wraps(f)
    def sync_wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        begun = begin(args, kwargs)
        if begun is None:
            return f(*args, **kwargs)
        if isinstance(begun, str):  # a hit that needs no finish
            return begun
        rt, key, value, flow = begun
        hit = flow is None
        if flow is not None:

            def compute() -> Outcome:
                with watch() as seen:
                    try:
                        rv = f(*args, **kwargs)
                    except catch as exc:
                        rv = exc
                return outcome_of(rv, seen) if observe else outcome_of(rv)

            hit, value = drive_sync(flow, compute)
        return finish(rt, key, hit, value, args, kwargs)

    return sync_wrapper


def _async_wrapper(parts: _Parts) -> Callable[..., t.Any]:
    """The same as :func:`_sync_wrapper` for a coroutine function."""
    f, begin, outcome_of, finish, catch, observe = parts
    watch = observe if observe is not None else _nothing

    @functools.wraps(f)
    async def async_wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        begun = begin(args, kwargs)
        if begun is None:
            return await f(*args, **kwargs)
        if isinstance(begun, str):  # a hit that needs no finish
            return begun
        rt, key, value, flow = begun
        hit = flow is None
        if flow is not None:

            async def compute() -> Outcome:
                with watch() as seen:
                    try:
                        rv = await f(*args, **kwargs)
                    except catch as exc:
                        rv = exc
                return outcome_of(rv, seen) if observe else outcome_of(rv)

            hit, value = await drive_async(flow, compute)
        return finish(rt, key, hit, value, args, kwargs)

    return async_wrapper


@contextlib.contextmanager
def _nothing() -> t.Iterator[None]:
    yield None
