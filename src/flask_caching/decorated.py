"""The types of decorated functions: what ``@cached`` and ``@memoize`` return.

Type checkers see the wrapped function's own signature (``P``, ``R``) plus the
cache controls (``uncached``, ``cache_timeout``, ``make_cache_key``), also for a
decorated method looked up on an instance.
"""

from __future__ import annotations

import typing as t
from collections.abc import Callable

from typing_extensions import Self

P = t.ParamSpec("P")
R = t.TypeVar("R")
P2 = t.ParamSpec("P2")
R2 = t.TypeVar("R2")
S = t.TypeVar("S")


class BoundCachedFunction(t.Protocol[P, R]):
    """A decorated method looked up on an instance (``obj.method``).

    ``uncached`` is still the plain function: pass the instance to it yourself.
    """

    cache_timeout: int | None

    uncached: Callable[..., R]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def make_cache_key(self, *args: t.Any, **kwargs: t.Any) -> str: ...


class CachedFunction(t.Protocol[P, R]):
    """What ``@cached`` / ``@memoize`` return: the function plus its cache controls.

    Type checkers see the wrapped function's own signature (``P``, ``R``), also
    when the decorated function is a method called on an instance.
    """

    cache_timeout: int | None

    uncached: Callable[P, R]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def make_cache_key(self, *args: t.Any, **kwargs: t.Any) -> str: ...

    @t.overload
    def __get__(self, instance: None, owner: type[t.Any] | None = None) -> Self: ...

    @t.overload
    def __get__(
        self: CachedFunction[t.Concatenate[S, P2], R2],
        instance: S,
        owner: type[t.Any] | None = None,
    ) -> BoundCachedFunction[P2, R2]: ...

    def __get__(self, instance: t.Any, owner: type[t.Any] | None = None) -> t.Any: ...
