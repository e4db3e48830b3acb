"""Counters of what the decorators did: hits, misses, stale values, bypasses, errors.

Each decorated view, memoized function and template fragment name has one
:class:`Counters` object per :class:`~.runtime.Runtime` (one app x one ``Cache``),
so ``cache.stats()`` reports the current app only. A decorator keeps the last
``(runtime, counters)`` pair it used in a :class:`CounterSlot`, so a hit costs one
identity check and one attribute increment: no dict is built and no lock is taken
(counts are per process; an increment lost to a race between threads is possible
and accepted, as for any plain counter).

One call's details (a stale value served, stored or not, waited for a lock, the
entry's freshness) are gathered in a :class:`CallNote` that the lookup fills in;
the decorator turns it into counts, a log line and the ``Cache-Status`` header.

With CACHE_METRICS the same counts also go to Prometheus (:mod:`.metrics`), through
:class:`Counters` objects whose increments are forwarded.
"""

from __future__ import annotations

import contextvars
import logging
import typing as t
from collections.abc import Callable

from . import metrics
from .flow import DISCARD, CallNote
from .privacy import Guard

if t.TYPE_CHECKING:
    from .flow import Flow
    from .runtime import Runtime

__all__ = [
    "BACKEND",
    "DISCARD",
    "EVENTS",
    "CallNote",
    "CounterSlot",
    "Counters",
    "Stats",
    "install",
]

logger = logging.getLogger("flask_caching")

#: the events counted, in the order they are reported
EVENTS: tuple[str, ...] = (
    "hits",
    "misses",
    "stale",
    "errors",
    "bypass_unless",
    "bypass_private",
    "bypass_method",
    "lock_waits",
)

#: the name backend failures are counted under (the Runtime cannot tell whose
#: call failed); it is in ``stats()["functions"]`` once one happened
BACKEND = "(backend)"


class Counters:
    """The counts of one function (or fragment name) on one Runtime."""

    __slots__ = EVENTS

    hits: int
    misses: int
    stale: int
    errors: int
    bypass_unless: int
    bypass_private: int
    bypass_method: int
    lock_waits: int

    def __init__(self) -> None:
        for event in EVENTS:
            setattr(self, event, 0)

    def as_dict(self) -> dict[str, int]:
        return {event: getattr(self, event) for event in EVENTS}


#: makes the Counters of a function name: plain, or exported
CounterFactory = Callable[[str], Counters]


def _forward(event: str) -> t.Any:
    """A property keeping *event*'s count in the base slot and adding each
    increase to the Prometheus child of the event."""
    member = Counters.__dict__[event]

    def get(self: ExportedCounters) -> int:
        return t.cast(int, member.__get__(self))

    def put(self: ExportedCounters, value: int) -> None:
        delta = value - member.__get__(self)
        member.__set__(self, value)
        if delta > 0:
            self._children[event].inc(delta)

    return property(get, put)


class ExportedCounters(Counters):
    """Counters that also count in ``flask_caching_events_total`` (CACHE_METRICS):
    the decorators' ``counters.hits += 1`` is forwarded by a property."""

    __slots__ = ("_children",)

    hits = _forward("hits")
    misses = _forward("misses")
    stale = _forward("stale")
    errors = _forward("errors")
    bypass_unless = _forward("bypass_unless")
    bypass_private = _forward("bypass_private")
    bypass_method = _forward("bypass_method")
    lock_waits = _forward("lock_waits")

    def __init__(self, children: dict[str, t.Any]) -> None:
        self._children = children
        for event in EVENTS:
            Counters.__dict__[event].__set__(self, 0)


class Stats:
    """Every :class:`Counters` of one Runtime, by function name."""

    def __init__(self, factory: CounterFactory | None = None) -> None:
        self._factory: CounterFactory = factory or (lambda _name: Counters())
        self._functions: dict[str, Counters] = {}

    def function(self, name: str) -> Counters:
        """The counters of *name*, made on first use."""
        found = self._functions.get(name)
        if found is None:
            found = self._functions.setdefault(name, self._factory(name))
        return found

    def backend_failed(self) -> None:
        """Count a failed backend call (see :data:`BACKEND`)."""
        self.function(BACKEND).errors += 1

    def snapshot(self) -> dict[str, t.Any]:
        """``{"total": {event: n}, "functions": {name: {event: n}}}``."""
        functions = {name: c.as_dict() for name, c in list(self._functions.items())}
        total = dict.fromkeys(EVENTS, 0)
        for counts in functions.values():
            for event, n in counts.items():
                total[event] += n
        return {"total": total, "functions": functions}


def install(rt: Runtime, index: int, export: bool) -> None:
    """Give *rt* its counters; with *export* (CACHE_METRICS) they also go to
    Prometheus and its backend calls are timed (see :mod:`.metrics`). *index*:
    the Cache's position among the app's Caches (names it in the metrics)."""
    if not export:
        rt.stats = Stats()
        return
    label = metrics.cache_label(rt.backend, index)
    children = metrics.event_children(label, EVENTS)
    rt.stats = Stats(lambda name: ExportedCounters(children(name)))
    rt.owner = metrics.TimedOwner(rt.owner, label)


class CounterSlot:
    """Held by one decorator: its name and the counters of the Runtime last used.

    The pair is one tuple, replaced whole, so a thread never sees the runtime of
    one pair with the counters of another.
    """

    __slots__ = ("_last", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._last: tuple[t.Any, Counters] | None = None

    def of(self, rt: Runtime) -> Counters:
        last = self._last
        if last is not None and last[0] is rt:
            return last[1]
        counters: Counters = rt.stats.function(self.name)
        self._last = (rt, counters)
        return counters


def count_flow(
    counters: Counters, hit: bool, note: CallNote, name: str, key: str
) -> str:
    """Count a call the lookup resolved (a miss path) and log it at DEBUG; returns
    what happened: ``hit``, ``stale``, ``stored``, ``private`` or ``unstored``."""
    if note.waited:
        counters.lock_waits += 1
    if hit:
        if note.stale:
            counters.stale += 1
            what = "stale"
        else:
            counters.hits += 1
            what = "hit"
    else:
        counters.misses += 1
        if note.refused:
            counters.bypass_private += 1
            what = "private"
        else:
            what = "stored" if note.stored else "unstored"
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("cache %s for %s: key %r", _LOG_WORDS[what], name, key)
    return what


_LOG_WORDS = {
    "hit": "hit",
    "stale": "hit, stale value served",
    "stored": "miss, stored",
    "private": "miss, refused (private)",
    "unstored": "miss, not stored",
}


def log_hit(name: str, key: str) -> None:
    """The DEBUG line of a hit answered by the first read (callers check
    ``logger.isEnabledFor(DEBUG)`` first, so a hit does not pay for a call)."""
    logger.debug("cache hit for %s: key %r", name, key)


#: the note of the call whose function runs now (set while its miss resolves)
CURRENT_NOTE: contextvars.ContextVar[CallNote | None] = contextvars.ContextVar(
    "flask_caching_note", default=None
)


def resolve(
    flow: Flow,
    counters: Counters,
    note: CallNote,
    name: str,
    key: str,
    done: Callable[[str, CallNote], None] | None = None,
) -> Flow:
    """*flow* (a miss, see :func:`.lookup.begin`), counted and logged when it ends;
    *done* gets what happened (see :func:`count_flow`) and the note.

    While it runs the note is :data:`CURRENT_NOTE`, so the privacy rules can mark
    a refusal on it (:class:`NotingGuard`); a nested cached call sets its own and
    puts this one back.
    """
    before = CURRENT_NOTE.get()
    CURRENT_NOTE.set(note)
    try:
        hit, value = yield from flow
    finally:
        CURRENT_NOTE.set(before)
    what = count_flow(counters, hit, note, name, key)
    if done is not None:
        done(what, note)
    return hit, value


class NotingGuard(Guard):
    """The privacy rules of a ``@cached`` view, marking each refusal on the
    current call's note (``bypass_private``, ``detail=private``)."""

    def refuse(self, reasons: list[str]) -> None:
        _mark_refused()
        super().refuse(reasons)

    def learn_session(self) -> None:
        _mark_refused()  # this result, made under the shared key, is not stored
        super().learn_session()


def _mark_refused() -> None:
    note = CURRENT_NOTE.get()
    if note is not None:
        note.refused = True


def bump(counters: Counters, event: str) -> None:
    """Add one to *event* (for the rare events, named at run time)."""
    setattr(counters, event, getattr(counters, event) + 1)
