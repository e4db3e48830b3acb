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


def unless_caller(
    unless: Callable[..., t.Any] | None,
) -> Callable[..., bool] | None:
    """Adapt ``unless``: called with no arguments, or with (f, *args, **kwargs)."""
    if unless is None:
        return None
    check_callable(unless, "unless")
    try:
        takes_args = bool(inspect.signature(unless).parameters)
    except (TypeError, ValueError):
        takes_args = False
    if takes_args:
        return lambda f, *a, **kw: bool(unless(f, *a, **kw))
    return lambda f, *a, **kw: bool(unless())
