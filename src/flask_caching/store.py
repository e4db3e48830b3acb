"""Storing a computed outcome: the value under its key, with its meta and extra keys.

A memoized value is written with its version keys in one ``set_many``; before that
the version keys are read again, so a ``delete_memoized`` made while the value was
being computed is not undone by writing the old versions back with it.
"""

from __future__ import annotations

import math
import time
import typing as t
from collections.abc import Sequence

from .entry import Layout
from .flow import Outcome
from .runtime import Runtime


def store(
    rt: Runtime,
    layout: Layout,
    found: Sequence[t.Any] | None,
    outcome: Outcome,
    timeout: int | None,
    name: str | None = None,
    grace: int = 0,
) -> bool:
    """Write *outcome* under ``layout.key`` (with its meta key, if it has one).

    The entry turns stale after the timeout; the backend keeps it *grace* seconds
    longer so it can still be served stale. Missing version keys are created; they
    live twice the entry's lifetime. Returns whether it was stored.
    """
    chosen = outcome.timeout if outcome.timeout is not None else timeout
    seconds = math.ceil(rt.default_timeout if chosen is None else chosen)
    keep = seconds + grace if seconds > 0 else 0
    versions: tuple[int, ...] | None = ()
    if layout.version_keys:
        n = len(layout.keys) - len(layout.version_keys)
        if found is None:
            found = rt.read(layout.version_keys)
            if found is None:
                return False
            found = [None] * n + list(found)
        versions = rt.ensure_versions(layout.version_keys, found[n:], 2 * keep, 0)
    if versions is None:
        return False
    if layout.extra and not _still_current(rt, layout.extra):
        return False
    fresh_until = time.time() + seconds if seconds > 0 else 0.0
    extra = layout.meta(versions, fresh_until)
    return rt.write(layout.key, outcome.payload, keep, name, extra)


def _still_current(rt: Runtime, written: dict[str, t.Any]) -> bool:
    """True when memoize's version keys still hold what the call read: writing them
    back after a ``delete_memoized`` made meanwhile would revive what it dropped."""
    now = rt.read(list(written), many=True)  # version keys: get_many, as released
    return now is not None and now == list(written.values())
