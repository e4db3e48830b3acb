"""The one get-or-compute primitive under ``@cached``, ``@memoize`` and ``{% cache %}``.

:func:`get_or_compute` is a generator: it reads the backend, decides hit or miss,
and on a miss *yields* :data:`COMPUTE`; the driver runs the function (called for a
plain function, awaited for a coroutine) and sends the outcome back, and the
generator stores it. The caching logic is therefore written once, and
:func:`drive_sync` / :func:`drive_async` only run the function.

A hit costs one ``get_many`` of the value key and its version keys.
"""

from __future__ import annotations

import inspect
import time
import typing as t
from collections.abc import Awaitable, Callable, Generator, Sequence

from .entry import MISS, is_fresh, pack, unpack
from .runtime import Runtime

T = t.TypeVar("T")


class Compute:
    """The instruction "run the function now and send me its :class:`Outcome`"."""


COMPUTE = Compute()


class Outcome(t.NamedTuple):
    """What a computation produced.

    ``result`` goes back to the caller; ``payload`` is stored (``MISS`` = store
    nothing); ``timeout`` overrides the decorator's timeout when not None.
    """

    result: t.Any
    payload: t.Any
    timeout: int | None = None


def get_or_compute(
    rt: Runtime,
    key: str,
    version_keys: Sequence[str] = (),
    *,
    timeout: int | None = None,
    forced: bool = False,
    is_stale: Callable[[t.Any], bool] | None = None,
) -> Generator[Compute, Outcome, tuple[bool, t.Any]]:
    """Look *key* up; on a miss yield COMPUTE, store the outcome's payload.

    Returns ``(True, payload)`` on a hit and ``(False, result)`` after computing.
    """
    found: list[t.Any] | None = None
    if not forced:
        found = rt.read([key, *version_keys])
        if found is not None:
            entry = unpack(found[0])
            if (
                entry is not None
                and entry[2] == tuple(found[1:])
                and is_fresh(entry, time.time())
                and not (is_stale is not None and is_stale(entry[1]))
            ):
                return True, entry[1]
    outcome = yield COMPUTE
    if outcome.payload is not MISS:
        store(rt, key, version_keys, found, outcome, timeout)
    return False, outcome.result


def store(
    rt: Runtime,
    key: str,
    version_keys: Sequence[str],
    found: Sequence[t.Any] | None,
    outcome: Outcome,
    timeout: int | None,
) -> None:
    """Write *outcome* under *key*, stamped with the current version tokens."""
    seconds = outcome.timeout if outcome.timeout is not None else timeout
    if seconds is None:
        seconds = rt.default_timeout
    if version_keys:
        if found is None:
            found = rt.read(version_keys)
            if found is None:
                return
            found = [None, *found]
        versions = rt.ensure_versions(version_keys, found[1:])
        if versions is None:
            return
    else:
        versions = ()
    rt.write(key, pack(outcome.payload, versions, seconds), seconds)


def drive_sync(
    flow: Generator[Compute, Outcome, tuple[bool, t.Any]],
    compute: Callable[[], Outcome],
) -> tuple[bool, t.Any]:
    """Run *flow*, calling *compute* when it asks; exceptions reach the flow first."""
    try:
        instruction = next(flow)
        while True:
            assert instruction is COMPUTE
            try:
                outcome = compute()
            except BaseException as exc:
                instruction = flow.throw(exc)
            else:
                instruction = flow.send(outcome)
    except StopIteration as stop:
        return t.cast(tuple[bool, t.Any], stop.value)


async def drive_async(
    flow: Generator[Compute, Outcome, tuple[bool, t.Any]],
    compute: Callable[[], Awaitable[Outcome]],
) -> tuple[bool, t.Any]:
    """Like :func:`drive_sync` for a coroutine function."""
    try:
        instruction = next(flow)
        while True:
            assert instruction is COMPUTE
            try:
                outcome = await compute()
            except BaseException as exc:
                instruction = flow.throw(exc)
            else:
                instruction = flow.send(outcome)
    except StopIteration as stop:
        return t.cast(tuple[bool, t.Any], stop.value)


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
