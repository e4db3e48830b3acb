"""Fail-open policy for the decorators: circuit breakers per backend, quiet logging.

A cache outage must cost the application neither its requests nor its latency.
A :class:`CircuitBreaker` counts *consecutive* failures of one kind of backend call
(a :class:`~flask_caching.runtime.Runtime` has one for reads and one for writes);
once ``threshold`` of them happened in a row, the decorators stop making that kind of
call for ``cooldown`` seconds and serve uncached. Then one caller probes the backend
(half-open): success closes the breaker, failure opens it for another cool-down.
``cooldown=0`` never opens it (every call still tries the backend), but the logging
below still applies.

The breakers of one backend share an :class:`OutageLog`, so an outage is logged on
the ``flask_caching`` logger as one WARNING when the first call fails and one INFO
line once every kind of call works again, whatever mix of reads and writes failed in
between. A breaker opening is one INFO line; every other failure and probe is DEBUG.

The states of one breaker::

    closed --threshold failures--> open --cooldown passed, one caller--> half-open
      ^                              ^                                     |
      |                              +------------- probe failed ---------+
      +----------------------------------------- probe succeeded ---------+

The success path takes no lock: for a closed breaker with no failures,
:meth:`~CircuitBreaker.allow` and :meth:`~CircuitBreaker.success` each read one
attribute.
"""

from __future__ import annotations

import logging
import math
import pickle
import threading
import time
from collections.abc import Callable

logger = logging.getLogger("flask_caching")

#: consecutive failures that open a breaker (CACHE_FAILURE_THRESHOLD)
DEFAULT_THRESHOLD = 3
#: seconds calls are left out once a breaker opens (CACHE_FAILURE_COOLDOWN)
DEFAULT_COOLDOWN = 5.0

#: what storing an unstorable *value* raises (pickle refusing a lambda, a generator, a
#: lock; a JSON serializer refusing a type): a problem of that one result, not of the
#: backend, so it never counts towards opening a breaker.
VALUE_ERRORS: tuple[type[Exception], ...] = (
    TypeError,
    ValueError,
    AttributeError,
    pickle.PicklingError,
    RecursionError,
)


class OutageLog:
    """Log one backend's outages: a WARNING when one starts, an INFO when it ends.

    An outage starts with the first failure of any of the backend's breakers and ends
    when none of them is failing any more.
    """

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        self._failing: set[str] = set()
        self._since = 0.0
        self._failed = 0
        self._refused = 0

    def started(
        self, kind: str, now: float, operation: str, key: str, exc: BaseException
    ) -> None:
        """The breaker for *kind* saw its first failure since it last worked."""
        with self._lock:
            first = not self._failing
            self._failing.add(kind)
            if first:
                self._since = now
        if first:
            logger.warning(
                "cache %s of %r failed on %s, serving uncached until it works again"
                " (check that the cache server is up and reachable): %s: %s",
                operation,
                key,
                self.backend,
                type(exc).__name__,
                exc,
            )
        else:
            logger.debug(
                "cache %s of %r failed on %s too: %s: %s",
                operation,
                key,
                self.backend,
                type(exc).__name__,
                exc,
            )

    def ended(self, kind: str, now: float, failed: int, refused: int) -> None:
        """The breaker for *kind* works again after *failed* failures."""
        with self._lock:
            self._failing.discard(kind)
            self._failed += failed
            self._refused += refused
            over = not self._failing
            if over:
                failed, refused = self._failed, self._refused
                lasted = now - self._since
                self._failed = self._refused = 0
        if over:
            logger.info(
                "cache backend %s works again after %.1f s: %d calls failed and %d"
                " did not try it; all of them were served uncached",
                self.backend,
                lasted,
                failed,
                refused,
            )
        else:
            logger.debug("cache backend %s: %s work again", self.backend, kind)


class CircuitBreaker:
    """Stop making one kind of call to a failing backend for a while, then probe.

    :param name: how log lines name the backend, e.g. ``"RedisCache"``.
    :param threshold: consecutive failures that open the breaker (>= 1).
    :param cooldown: seconds it stays open before one probe; ``0`` never opens it.
    :param clock: a monotonic clock in seconds (tests pass a fake one).
    :param kind: what it guards, for log lines: ``"reads"``, ``"writes"``...
    :param log: the :class:`OutageLog` shared with the backend's other breakers.
    """

    def __init__(
        self,
        name: str,
        threshold: int = DEFAULT_THRESHOLD,
        cooldown: float = DEFAULT_COOLDOWN,
        clock: Callable[[], float] = time.monotonic,
        *,
        kind: str = "calls",
        log: OutageLog | None = None,
    ) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, int):
            raise ValueError(f"threshold must be an int >= 1, got {threshold!r}")
        if threshold < 1:
            raise ValueError(f"threshold must be >= 1, got {threshold!r}")
        if isinstance(cooldown, bool) or not isinstance(cooldown, (int, float)):
            raise ValueError(f"cooldown must be a number of seconds, got {cooldown!r}")
        if not (math.isfinite(cooldown) and cooldown >= 0):
            raise ValueError(f"cooldown must be finite and >= 0, got {cooldown!r}")
        self.name = name
        self.kind = kind
        self.threshold = threshold
        self.cooldown = float(cooldown)
        self.clock = clock
        self.log = log if log is not None else OutageLog(name)
        self._lock = threading.Lock()
        #: consecutive failures since the last success; 0 means healthy (plain
        #: attributes, not properties: the view hit path reads both inline)
        self.failures = 0
        #: clock time until which calls are refused; 0.0 means closed
        self.open_until = 0.0
        #: calls refused since the last success
        self._refused = 0

    @property
    def is_open(self) -> bool:
        """True from the opening until a probe succeeds (half-open included)."""
        return self.open_until != 0.0

    @property
    def refused(self) -> int:
        """Calls refused since the last success."""
        return self._refused

    def allow(self) -> bool:
        """May the caller use the backend now? False means: serve uncached.

        When the cool-down has passed, exactly one caller gets True (the probe) and
        the breaker stays open for everyone else for another cool-down, so a probe
        that never reports back cannot wedge it.
        """
        if not self.open_until:  # closed: the hot path, no lock
            return True
        with self._lock:
            if not self.open_until:
                return True
            now = self.clock()
            if now < self.open_until:
                self._refused += 1
                return False
            self.open_until = now + self.cooldown
        logger.debug("cache backend %s: probing %s", self.name, self.kind)
        return True

    def success(self) -> None:
        """Record a call that worked: ends this breaker's part of an outage."""
        if not self.failures:  # healthy: the hot path, no lock
            return
        with self._lock:
            failures, refused = self.failures, self._refused
            if not failures:
                return
            self.failures = 0
            self._refused = 0
            self.open_until = 0.0
        self.log.ended(self.kind, self.clock(), failures, refused)

    def failure(self, operation: str, key: str, exc: BaseException) -> None:
        """Record a failed call; the first of an outage is logged at WARNING."""
        with self._lock:
            now = self.clock()
            self.failures += 1
            failures = self.failures
            opened = False
            if self.cooldown and failures >= self.threshold:
                opened = not self.open_until
                self.open_until = now + self.cooldown
        if failures == 1:
            self.log.started(self.kind, now, operation, key, exc)
        else:
            logger.debug(
                "cache %s of %r failed on %s (%d %s in a row): %s: %s",
                operation,
                key,
                self.name,
                failures,
                self.kind,
                type(exc).__name__,
                exc,
            )
        if opened:
            logger.info(
                "cache backend %s: %d %s failed in a row; not trying %s for %g s"
                " (CACHE_FAILURE_COOLDOWN), then one call probes it",
                self.name,
                failures,
                self.kind,
                self.kind,
                self.cooldown,
            )


class OnceEach:
    """Remember which names were already reported, so each is logged once.

    Used for results that cannot be stored: the warning names the function the
    first time; later ones go to DEBUG. Holds at most *limit* names.
    """

    def __init__(self, limit: int = 1024) -> None:
        self._seen: set[str] = set()
        self._limit = limit
        self._lock = threading.Lock()

    def first(self, name: str) -> bool:
        """True the first time *name* is given."""
        if name in self._seen:
            return False
        with self._lock:
            if name in self._seen or len(self._seen) >= self._limit:
                return False
            self._seen.add(name)
            return True


def is_value_error(exc: BaseException) -> bool:
    """True when a failed write blames the value, not the backend."""
    return isinstance(exc, VALUE_ERRORS)


__all__ = [
    "DEFAULT_COOLDOWN",
    "DEFAULT_THRESHOLD",
    "VALUE_ERRORS",
    "CircuitBreaker",
    "OnceEach",
    "OutageLog",
    "is_value_error",
]
