"""The miss of a plain ``@cached`` view: compute, store, count; no lock, no staleness.

Most misses are of this kind: no ``lock``, no ``stale_while_revalidate`` or
``stale_if_error``, no ``Cache-Status`` header, a read that worked and found nothing.
They need none of :func:`.lookup.get_or_compute`'s paths (the job object, the lock
and refresh steps, the counting wrapper around them), so this flow does for them
what it would do, in one generator: a miss then runs about half the code. Every
other miss still goes through :meth:`.cached.CachedView.lookup`.
"""

from __future__ import annotations

from .entry import MISS, Layout
from .flow import COMPUTE, CallNote, Flow
from .runtime import Runtime
from .stats import CURRENT_NOTE, Counters, count_flow
from .store import store


def plain_miss(
    rt: Runtime, key: str, timeout: int | None, counters: Counters, name: str
) -> Flow:
    """Ask for the computation, store its payload under *key* (unless it is MISS),
    then count and log the miss as :func:`.stats.resolve` does."""
    note = CallNote()
    before = CURRENT_NOTE.get()
    CURRENT_NOTE.set(note)  # the privacy rules mark a refusal on it
    try:
        outcome = yield COMPUTE
    finally:
        CURRENT_NOTE.set(before)
    assert outcome is not None
    if outcome.payload is not MISS:
        note.stored = store(rt, Layout(key), None, outcome, timeout, name)
    count_flow(counters, False, note, name, key)
    return False, outcome.result
