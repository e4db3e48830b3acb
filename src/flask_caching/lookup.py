"""The one get-or-compute primitive under ``@cached``, ``@memoize`` and ``{% cache %}``.

:func:`get_or_compute` is a generator: it reads the backend and decides hit or miss;
when it needs something only the caller's world can do it *yields* an instruction:

- :data:`.flow.COMPUTE`: run the function (call it, or await it) and send back its
  :class:`.flow.Outcome`; the generator stores the payload;
- :class:`.flow.Wait`: pause, either for another caller's computation in this process or
  for a few milliseconds between two reads of a key locked by another process. The
  sync driver blocks the thread; the async driver awaits (``asyncio.sleep`` or a
  future), so waiting tasks never block their event loop.

The caching logic, locks and staleness included, is therefore written once, and
:func:`.flow.drive_sync` / :func:`.flow.drive_async` only run functions and waits;
the decorators' option checks are in :mod:`.options`.

A hit costs one read of the keys of its :class:`.entry.Layout`, whatever the lock
options: locking only begins on a miss (see :mod:`.locks`). A locked miss adds
taking the lock, a re-read (a value stored meanwhile) and the release.

With ``stale_while_revalidate``, entries live in the backend for timeout + window;
their meta key's ``fresh_until`` says when they turn stale (see :mod:`.entry`). A caller that finds a
stale entry and wins the refresh (the process's flight, then the backend lock)
recomputes **inline**, so its own request pays for the refresh as on a miss; every
other caller gets the stale value at once, without waiting and without a backend
round trip beyond its read. Inline keeps request context, app context and async
functions working with no thread to manage.
"""

from __future__ import annotations

import logging
import time
import typing as t
from collections.abc import Callable, Sequence

from . import locks
from .entry import MAGIC, MISS, Entry, Layout, is_fresh
from .flow import COMPUTE, DISCARD, CallNote, Flow, Outcome, Step, Wait
from .locks import Landing, LockOptions, Policy
from .runtime import Runtime
from .store import store

logger = logging.getLogger("flask_caching")


def get_or_compute(
    rt: Runtime,
    layout: Layout,
    found: list[t.Any] | None,
    *,
    timeout: int | None = None,
    forced: bool = False,
    rejected: bool = False,
    is_stale: Callable[[t.Any], bool] | None = None,
    name: str | None = None,
    locking: LockOptions = locks.DEFAULT_OPTIONS,
    note: CallNote = DISCARD,
) -> Flow:
    """Resolve a call :func:`begin` did not answer from *found*, what it read
    (None: the read failed, or *forced* skipped it): yield COMPUTE (and maybe
    Wait), store the outcome.

    Returns ``(True, payload)`` on a hit (a stale value served counts as one) and
    ``(False, result)`` after computing. When the read failed (or the backend is
    bypassed) nothing is stored, locked or waited for: one call costs at most one
    failed backend round trip. *rejected* says *is_stale* already refused what was
    read (it is called once per call). *name* (the decorated function) names the
    value in the warning given when it cannot be stored. *locking* holds the
    decorator's lock and staleness options (:func:`.locks.lock_options`).
    *note* gets what the caller may report (stale, stored, waited; see
    :class:`.stats.CallNote`).
    """
    stale: Entry | None = None
    if not forced:
        if found is None:
            outcome = yield COMPUTE
            assert outcome is not None
            return False, outcome.result
        entry = None if rejected else _usable(layout, found, is_stale)
        if entry is not None:
            if is_fresh(entry, time.time()):
                note.fresh_until = entry[3]
                return True, entry[1]
            stale = entry
    policy = locking.resolve(rt.settings)
    job = _Job(rt, layout, timeout, is_stale, name, policy, note)
    if stale is not None and job.may_serve_stale(stale):
        return (yield from job.revalidate(found, stale))
    if job.policy.lock and not forced:
        return (yield from job.single_flight(found, stale))
    hit, value, _landing = yield from job.compute(found, stale)
    return hit, value


#: ``begin(found=NOT_READ)``: the caller has not read the keys yet
NOT_READ: t.Final[t.Any] = object()


def begin(
    rt: Runtime,
    layout: Layout,
    *,
    found: t.Any = NOT_READ,
    forced: bool = False,
    is_stale: Callable[[t.Any], bool] | None = None,
    timeout: int | None = None,
    name: str | None = None,
    locking: LockOptions = locks.DEFAULT_OPTIONS,
    note: CallNote = DISCARD,
) -> tuple[t.Any, Flow | None]:
    """Start one decorated call: ``(payload, None)`` for a fresh hit, answered by
    one read and no generator, else ``(MISS, flow)`` where *flow* resolves the miss
    (see :func:`get_or_compute`; it reuses the read already made). A caller that
    read ``layout.keys`` itself passes what it read as *found* (None: it failed)."""
    rejected = False
    if forced:
        found = None
    else:
        if found is NOT_READ:
            # the hit fast path: one read, no generator (this is every decorated hit)
            found = rt.read(layout.keys)
        if found is not None:
            if layout.meta_key is None and found[0] is not None:
                # plain: the value itself (entry() inlined, the hit fast path)
                if is_stale is None or is_stale(found[0]) is not True:
                    return found[0], None
                rejected = True
            else:
                entry = layout.entry(found)
                if entry is None and layout.ambiguous(found) and rt.has(layout.key):
                    entry = (MAGIC, None, (), 0.0)  # a stored None (cache_none)
                if entry is not None and (not entry[3] or time.time() < entry[3]):
                    if is_stale is None or is_stale(entry[1]) is not True:
                        note.fresh_until = entry[3]
                        return entry[1], None
                    rejected = True
    flow = get_or_compute(
        rt,
        layout,
        found,
        timeout=timeout,
        forced=forced,
        rejected=rejected,
        is_stale=is_stale,
        name=name,
        locking=locking,
        note=note,
    )
    return MISS, flow


def _usable(
    layout: Layout, found: Sequence[t.Any], is_stale: Callable[[t.Any], bool] | None
) -> Entry | None:
    """The entry in *found* (a read of ``layout.keys``) unless *is_stale* rejects it;
    fresh or not."""
    entry = layout.entry(found)
    if entry is None:
        return None
    if is_stale is not None and is_stale(entry[1]) is True:
        return None
    return entry


class _Job:
    """One miss (or stale hit) being resolved: the steps share these values."""

    def __init__(
        self,
        rt: Runtime,
        layout: Layout,
        timeout: int | None,
        is_stale: Callable[[t.Any], bool] | None,
        name: str | None,
        policy: Policy,
        note: CallNote = DISCARD,
    ) -> None:
        self.rt = rt
        self.note = note
        self.layout = layout
        self.key = layout.key
        self.keys = layout.keys
        self.timeout = timeout
        self.is_stale = is_stale
        self.name = name
        self.policy = policy

    # -- small steps -------------------------------------------------------------

    def fresh(self, found: Sequence[t.Any]) -> Entry | None:
        """The fresh entry in a read of :attr:`keys` (plus extra keys after them)."""
        entry = _usable(self.layout, found[: len(self.keys)], self.is_stale)
        if entry is not None and is_fresh(entry, time.time()):
            self.note.fresh_until = entry[3]
            return entry
        return None

    def may_serve_stale(self, stale: Entry) -> bool:
        return time.time() < stale[3] + self.policy.stale_while_revalidate

    def run(self) -> Step[Outcome]:
        outcome = yield COMPUTE
        assert outcome is not None
        return outcome

    def save(self, found: Sequence[t.Any] | None, outcome: Outcome) -> bool:
        if outcome.payload is MISS:
            return False
        if found is not None:
            found = found[: len(self.keys)]
        stored = store(
            self.rt,
            self.layout,
            found,
            outcome,
            self.timeout,
            self.name,
            self.policy.grace,
        )
        self.note.stored = stored
        return stored

    def rescue(self, exc: Exception, stale: Entry | None) -> bool:
        """True when *stale* may stand in for the result of a computation that
        raised *exc* (``stale_if_error``); logs a warning then."""
        window = self.policy.stale_if_error
        if stale is None or not window or time.time() >= stale[3] + window:
            return False
        logger.warning(
            "recomputing %s raised %s: %s; serving the stale value (stale_if_error)",
            self.name or repr(self.key),
            type(exc).__name__,
            exc,
            exc_info=exc,
        )
        self.note.stale = True
        return True

    # -- the paths ---------------------------------------------------------------

    def compute(
        self, found: Sequence[t.Any] | None, stale: Entry | None
    ) -> Step[tuple[bool, t.Any, Landing]]:
        """Run the function and store its result, taking no lock."""
        try:
            outcome = yield from self.run()
        except Exception as exc:
            if stale is not None and self.rescue(exc, stale):
                return True, stale[1], Landing.FAILED
            raise
        stored = self.save(found, outcome)
        return False, outcome.result, Landing.STORED if stored else Landing.UNSTORED

    def single_flight(
        self, found: list[t.Any] | None, stale: Entry | None
    ) -> Step[tuple[bool, t.Any]]:
        """A miss with locking: join this process's flight of the key, or lead it."""
        me = locks.current_owner()
        backend = self.rt.backend
        flight, leading = locks.FLIGHTS.join(
            backend, self.key, me, self.policy.patience
        )
        if not leading:
            if flight.owner != me:  # a re-entrant call must not wait for itself
                self.note.waited = True
                yield Wait(flight=flight)
                if flight.landing is Landing.STORED:
                    again = self.rt.read(self.keys)
                    entry = None if again is None else self.fresh(again)
                    if entry is not None:
                        return True, entry[1]
                    found = again
            # not stored, failed, or waited too long: compute for ourselves
            hit, value, _landing = yield from self.compute(found, stale)
            return hit, value
        landing = Landing.FAILED
        try:
            hit, value, landing = yield from self.lead(flight, found, stale)
        finally:
            locks.FLIGHTS.leave(backend, self.key, flight, landing)
        return hit, value

    def lead(
        self, flight: locks.Flight, found: list[t.Any] | None, stale: Entry | None
    ) -> Step[tuple[bool, t.Any, Landing]]:
        """Take the backend lock, or wait for its holder's value, then compute."""
        rt, policy = self.rt, self.policy
        lkey = locks.lock_key(self.key)
        token = locks.new_token()
        got = locks.acquire(rt, lkey, token, policy.lease)
        holder: t.Any = MISS  # the lock value seen last
        patience_ends = time.monotonic() + policy.patience
        backoff = locks.Backoff()
        while got is False:
            polled = rt.read([*self.keys, lkey])
            if polled is None:
                break
            entry = self.fresh(polled)
            if entry is not None:
                return True, entry[1], Landing.STORED
            found = polled[:-1]
            seen = polled[-1]
            if seen == locks.PASS:
                break  # the holder's result was not stored: compute, do not queue
            if seen is None:  # released (or its lease ran out): try to take over
                got = locks.acquire(rt, lkey, token, policy.lease)
                if got is not False:
                    continue
                seen = holder  # someone else was quicker; no new patience for that
            now = time.monotonic()
            if seen != holder:  # a new holder: give it the full lease
                holder = seen
                patience_ends = now + policy.patience
                flight.extend(policy.patience)
            elif now >= patience_ends:
                logger.warning(
                    "waited %.1fs for the cache lock of %r; computing without it",
                    policy.patience,
                    self.key,
                )
                break
            self.note.waited = True
            yield Wait(seconds=backoff.pause(patience_ends - now))
        flight.extend(policy.patience)  # from here on the leader computes
        if got is not True:
            return (yield from self.compute(found, stale))
        try:
            return (yield from self.locked_compute(lkey, token, found, hand_over=True))
        except Exception as exc:
            if stale is not None and self.rescue(exc, stale):
                return True, stale[1], Landing.FAILED
            raise

    def locked_compute(
        self, lkey: str, token: str, found: list[t.Any] | None, *, hand_over: bool
    ) -> Step[tuple[bool, t.Any, Landing]]:
        """Holding the lock: re-read (someone may have stored the value just before
        we took it), compute, store, release. With *hand_over*, a result that was not
        stored (or an exception) leaves a PASS marker so waiters stop waiting."""
        stored = False
        try:
            again = self.rt.read(self.keys)
            if again is not None:
                entry = self.fresh(again)
                if entry is not None:
                    stored = True
                    return True, entry[1], Landing.STORED
                found = again
            outcome = yield from self.run()
            stored = self.save(found, outcome)
            return False, outcome.result, Landing.STORED if stored else Landing.UNSTORED
        finally:
            pass_for = 0.0 if stored or not hand_over else self.policy.lease
            locks.release(self.rt, lkey, token, pass_for)

    def revalidate(
        self, found: list[t.Any] | None, stale: Entry
    ) -> Step[tuple[bool, t.Any]]:
        """A stale entry within ``stale_while_revalidate``: one caller refreshes it
        inline, everyone else gets the stale value at once."""
        me = locks.current_owner()
        backend = self.rt.backend
        flight, leading = locks.FLIGHTS.join(
            backend, self.key, me, self.policy.patience
        )
        if not leading:
            self.note.stale = True
            return True, stale[1]
        landing = Landing.FAILED
        try:
            hit, value, landing = yield from self.refresh(found, stale)
        finally:
            locks.FLIGHTS.leave(backend, self.key, flight, landing)
        return hit, value

    def refresh(
        self, found: list[t.Any] | None, stale: Entry
    ) -> Step[tuple[bool, t.Any, Landing]]:
        lkey = locks.lock_key(self.key)
        token = locks.new_token()
        if locks.acquire(self.rt, lkey, token, self.policy.lease) is not True:
            self.note.stale = True
            return True, stale[1], Landing.UNSTORED  # refreshing elsewhere
        try:
            return (yield from self.locked_compute(lkey, token, found, hand_over=False))
        except Exception as exc:
            if self.rescue(exc, stale):
                return True, stale[1], Landing.FAILED
            raise
