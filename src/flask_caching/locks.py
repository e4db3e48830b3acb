"""One computation per missing key: single-flight in the process, a lease in the backend.

:func:`~flask_caching.lookup.get_or_compute` uses two layers, in this order:

1. **Flights** (in-process). The first caller of a key becomes its leader; other
   threads block on a :class:`threading.Event` and asyncio tasks on a future that
   the leader resolves thread-safely (event loops may differ: Flask runs each async
   view in its own loop). Nobody in the process polls, and only the leader talks to
   the backend about the key.
2. **The backend lock** (across processes). The leader stores a random owner token
   under ``LOCK_PREFIX + key`` with the backend's atomic ``add`` and a lease
   (:meth:`BaseCache.acquire_lock <flask_caching.backends.base.BaseCache.acquire_lock>`;
   SET NX on Redis, ``add`` on memcached, ``os.link`` on the filesystem). A leader
   that finds the lock taken re-reads the value key, together with the lock key, with
   bounded exponential backoff. The lease expires by itself, so a crashed holder
   blocks nobody for longer than the lease; release compares the owner token
   (:meth:`~flask_caching.backends.base.BaseCache.release_lock`), so a holder whose
   lease ran out never frees someone else's lock.

When the computation raises or its result is not stored, the holder replaces its lock
with a short :data:`PASS` marker ("hit-for-miss"): callers waiting on the key, and
callers arriving while the marker lives, run the function themselves at once instead
of queueing behind a lock that will never give them a value.

The options, per decorator or as CACHE_* defaults:

``lock`` / CACHE_LOCK
    one computation per missing key (default off; on by default when
    ``stale_while_revalidate`` is set, so the cold path is protected too).
``lock_timeout`` / CACHE_LOCK_TIMEOUT
    the lease, and how long a caller waits for any one holder before computing for
    itself (seconds, default 10; the wait gets up to 1.5 s more, see
    :attr:`Policy.patience`). Give it the longest the computation should take.
``stale_while_revalidate`` / CACHE_STALE_WHILE_REVALIDATE
    seconds past the timeout during which the old value is still served while one
    caller recomputes.
``stale_if_error`` / CACHE_STALE_IF_ERROR
    seconds past the timeout during which the old value is served (with a logged
    warning) when recomputing raises.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import math
import random
import secrets
import threading
import time
import typing as t

from .runtime import Runtime

if t.TYPE_CHECKING:
    from .settings import Settings

logger = logging.getLogger("flask_caching")

#: the backend key of a key's lock is this prefix + the key (a Redis Cluster hash
#: tag inside the key still applies, so memoize locks share the value's slot)
LOCK_PREFIX = "fc-lock:"

#: what a holder leaves in the lock key when its result was not stored: waiters and
#: newcomers compute for themselves instead of waiting on the key
PASS = "fc-pass"

#: default lease / patience in seconds (CACHE_LOCK_TIMEOUT)
DEFAULT_LOCK_TIMEOUT = 10.0

#: first and longest pause between two reads of a key whose lock is held elsewhere
BACKOFF_FIRST = 0.01
BACKOFF_CAP = 0.2


def lock_key(key: str) -> str:
    return LOCK_PREFIX + key


def new_token() -> str:
    """A lock owner token: random per computation (never per thread or process)."""
    return secrets.token_hex(12)


# --- options ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Policy:
    """The lock and staleness options in force for one call (decorator over settings)."""

    lock: bool = False
    lease: float = DEFAULT_LOCK_TIMEOUT
    stale_while_revalidate: int = 0
    stale_if_error: int = 0

    @property
    def patience(self) -> float:
        """How long a caller waits for one holder: the lease plus a margin of 1.5 s
        (at most twice the lease). Backends that count whole seconds keep a lock up
        to a second longer than asked (memcached rounds the lease up and adds one),
        and when a dead holder's lock expires, one waiter should take it over and
        compute, rather than every waiter giving up at that moment and computing."""
        return self.lease + min(2 * self.lease, 1.5)

    @property
    def grace(self) -> int:
        """Seconds the backend keeps an entry past its timeout (for stale reads)."""
        return max(self.stale_while_revalidate, self.stale_if_error)


@dataclasses.dataclass(frozen=True)
class LockOptions:
    """A decorator's lock options as given (``None`` = use the CACHE_* setting)."""

    lock: bool | None = None
    lock_timeout: float | None = None
    stale_while_revalidate: int | None = None
    stale_if_error: int | None = None

    def resolve(self, settings: Settings) -> Policy:
        swr = self.stale_while_revalidate
        if swr is None:
            swr = settings.stale_while_revalidate
        sie = self.stale_if_error
        if sie is None:
            sie = settings.stale_if_error
        lock = self.lock
        if lock is None:
            lock = settings.lock or swr > 0
        lease = self.lock_timeout
        if lease is None:
            lease = settings.lock_timeout
        return Policy(lock, lease, swr, sie)

    def keeps_meta(self, settings: Settings) -> bool:
        """True when entries need a fresh-until beside them (a staleness window)."""
        swr = self.stale_while_revalidate
        sie = self.stale_if_error
        swr = settings.stale_while_revalidate if swr is None else swr
        sie = settings.stale_if_error if sie is None else sie
        return bool(swr or sie)


#: the options of a decorator that sets none of them
DEFAULT_OPTIONS = LockOptions()


def lock_options(
    lock: bool | None = None,
    lock_timeout: float | None = None,
    stale_while_revalidate: float | None = None,
    stale_if_error: float | None = None,
) -> LockOptions:
    """Check a decorator's lock options at decoration time."""
    if lock is not None and not isinstance(lock, bool):
        raise TypeError(f"lock must be True, False or None, got {lock!r}")
    return LockOptions(
        lock,
        check_lock_timeout(lock_timeout, "lock_timeout"),
        check_window(stale_while_revalidate, "stale_while_revalidate"),
        check_window(stale_if_error, "stale_if_error"),
    )


def check_lock_timeout(value: t.Any, name: str) -> float | None:
    """A lease must be a positive number of seconds (a lock that never expires could
    wedge every caller of its key)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    if not value > 0 or math.isinf(value):
        raise ValueError(
            f"{name} must be a finite number of seconds > 0, got {value!r}"
        )
    return float(value)


def check_window(value: t.Any, name: str) -> int | None:
    """A staleness window: whole seconds >= 0 (fractions round up)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, got {value!r}")
    if value < 0 or math.isinf(value):
        raise ValueError(
            f"{name} must be a finite number of seconds >= 0, got {value!r}"
        )
    return math.ceil(value)


# --- in-process single-flight -------------------------------------------------------


class Landing(enum.Enum):
    """How a flight ended, which tells its waiters what to do."""

    PENDING = "pending"
    #: the value was stored: read it
    STORED = "stored"
    #: the result was not stored (uncacheable): compute for yourself, now
    UNSTORED = "unstored"
    #: the computation raised: compute for yourself, now
    FAILED = "failed"


class Flight:
    """One computation of one key in this process, which other callers can wait on."""

    def __init__(self, owner: object, patience: float) -> None:
        #: the thread id or asyncio task leading (a re-entrant call must not wait)
        self.owner = owner
        self.landing = Landing.PENDING
        #: waiters give up at this ``time.monotonic()`` unless the leader extends it
        self.deadline = time.monotonic() + patience
        self._done = threading.Event()
        self._guard = threading.Lock()
        self._futures: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def extend(self, patience: float) -> None:
        """The leader made progress (it computes now, or sees a new holder): waiters
        get *patience* more seconds from now."""
        self.deadline = max(self.deadline, time.monotonic() + patience)

    def land(self, landing: Landing) -> None:
        self.landing = landing
        with self._guard:
            self._done.set()
            futures, self._futures = self._futures, []
        for loop, future in futures:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # that loop is closed; its waiter is gone
                pass

    def wait(self) -> None:
        """Block until the flight lands or the deadline passes."""
        while not self._done.is_set():
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                return
            self._done.wait(remaining)

    async def wait_async(self) -> None:
        """Like :meth:`wait` without blocking the event loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (loop, future)
        with self._guard:
            if self._done.is_set():
                return
            self._futures.append(entry)
        try:
            while not future.done():
                remaining = self.deadline - time.monotonic()
                if remaining <= 0:
                    return
                await asyncio.wait({future}, timeout=remaining)
        finally:
            with self._guard:
                if entry in self._futures:
                    self._futures.remove(entry)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Flights:
    """The flights under way in this process, per backend and key."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._flights: dict[tuple[int, str], Flight] = {}

    def join(
        self, backend: object, key: str, owner: object, patience: float
    ) -> tuple[Flight, bool]:
        """The flight of *key*, and True when the caller starts (and so leads) it."""
        # id() is safe: a flight ends before the flow holding its backend does
        slot = (id(backend), key)
        with self._guard:
            flight = self._flights.get(slot)
            if flight is not None:
                return flight, False
            flight = self._flights[slot] = Flight(owner, patience)
            return flight, True

    def leave(
        self, backend: object, key: str, flight: Flight, landing: Landing
    ) -> None:
        """End the leader's flight and wake its waiters."""
        with self._guard:
            if self._flights.get((id(backend), key)) is flight:
                del self._flights[(id(backend), key)]
        flight.land(landing)

    def __len__(self) -> int:
        return len(self._flights)


#: every flight of this process
FLIGHTS = Flights()


def current_owner() -> object:
    """Who is calling: the running asyncio task, else the thread."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    return task if task is not None else threading.get_ident()


# --- the backend lock ---------------------------------------------------------------


def acquire(rt: Runtime, key: str, token: str, lease: float) -> bool | None:
    """Take the lock *key* for *lease* seconds; None when the backend failed or
    its write breaker is open (the failure counts towards the breaker, like any
    other write, and is logged once per outage)."""
    breaker = rt.writes
    if not breaker.allow():
        return None
    try:
        hook = getattr(rt.backend, "acquire_lock", None)
        if hook is None:  # a foreign (cachelib) backend: plain add
            taken = bool(rt.backend.add(key, token, timeout=math.ceil(lease)))
        else:
            taken = bool(hook(key, token, lease))
    except Exception as exc:
        rt.backend_failed(breaker, "lock", key, exc)
        return None
    breaker.success()
    return taken


def release(rt: Runtime, key: str, token: str, pass_for: float = 0) -> None:
    """Free the lock *key* if *token* still owns it; with *pass_for*, leave a
    :data:`PASS` marker for that many seconds so waiters stop waiting."""
    try:
        hook = getattr(rt.backend, "release_lock", None)
        if hook is None:
            if rt.backend.get(key) == token:
                rt.backend.delete(key)
        else:
            hook(key, token)
        if pass_for > 0:
            # add, not set: if someone took the lock meanwhile, it stays theirs
            rt.backend.add(key, PASS, timeout=math.ceil(pass_for))
    except Exception as exc:  # the lease frees the lock anyway
        logger.warning(
            "releasing cache lock %r failed (its lease will free it): %s: %s",
            key,
            type(exc).__name__,
            exc,
        )


class Backoff:
    """Pauses between reads of a key locked elsewhere: doubling, jittered, capped."""

    def __init__(self, first: float = BACKOFF_FIRST, cap: float = BACKOFF_CAP) -> None:
        self._next = first
        self._cap = cap

    def pause(self, remaining: float) -> float:
        """The next pause, never past *remaining* seconds."""
        pause = self._next * random.uniform(0.5, 1.0)
        self._next = min(self._next * 2, self._cap)
        return max(0.001, min(pause, remaining))
