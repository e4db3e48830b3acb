"""Checks on decorator options, made once at decoration time so mistakes fail early.

Shared by ``@cached`` and ``@memoize``; nothing here runs on a cached call.
"""

from __future__ import annotations

import inspect
import typing as t
from collections.abc import Callable


def check_timeout(timeout: t.Any, name: str = "timeout") -> int | None:
    """Validate a decorator's timeout at decoration time; fractions round up."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise ValueError(f"{name} must be a number of seconds or None, got {timeout!r}")
    if timeout < 0:
        raise ValueError(
            f"{name} must be >= 0 seconds (0 = never expire), got {timeout!r}"
        )
    return int(timeout) if timeout == int(timeout) else int(timeout) + 1


def check_callable(value: t.Any, name: str) -> None:
    """Fail at decoration time when an option that must be callable is not."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be a callable or None, got {value!r}")


def _takes_args(f: Callable[..., t.Any], more_than: int) -> bool:
    """True when *f* has more than *more_than* parameters that are not keyword-only."""
    try:
        params = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return False
    kinds = [p.kind for p in params]
    return sum(k is not inspect.Parameter.KEYWORD_ONLY for k in kinds) > more_than


def unless_caller(
    unless: Callable[..., t.Any] | None,
) -> Callable[..., bool] | None:
    """Adapt ``unless``: called as ``unless(f, *args, **kwargs)`` when it takes
    positional parameters, else ``unless()``; only a literal True bypasses the cache
    (as in released Flask-Caching)."""
    if unless is None:
        return None
    check_callable(unless, "unless")
    if _takes_args(unless, 0):
        return lambda f, *a, **kw: unless(f, *a, **kw) is True
    return lambda f, *a, **kw: unless() is True


def forced_caller(
    forced_update: Callable[..., t.Any] | None,
) -> Callable[..., bool] | None:
    """Adapt ``forced_update``: given the call's arguments when it takes positional
    parameters; only a literal True forces a recomputation."""
    if forced_update is None:
        return None
    if _takes_args(forced_update, 0):
        return lambda *a, **kw: forced_update(*a, **kw) is True
    return lambda *a, **kw: forced_update() is True


def stale_caller(
    is_stale: Callable[..., t.Any] | None,
) -> Callable[..., Callable[[t.Any], bool]] | None:
    """Adapt ``is_stale`` into a factory of one call's check: given the cached value,
    plus the call's arguments when it takes more than one positional parameter."""
    if is_stale is None:
        return None
    if _takes_args(is_stale, 1):
        return lambda *a, **kw: lambda value: is_stale(value, *a, **kw) is True
    check: Callable[[t.Any], bool] = lambda value: is_stale(value) is True  # noqa: E731
    return lambda *a, **kw: check
