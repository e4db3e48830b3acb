"""Prometheus export of the decorators' counters and the backend's latency.

With CACHE_METRICS=True and ``prometheus_client`` installed (the ``metrics`` extra)
``init_app`` makes every counter of :mod:`.stats` (see :func:`.stats.install`)
also count in

- ``flask_caching_events_total{cache, function, event}``: ``event`` is one of
  :data:`.stats.EVENTS` (``hits``, ``misses``, ``stale``, ...), ``function`` the
  decorated function (``module.qualname``), ``fragment:<name>`` or ``(backend)``;
- ``flask_caching_backend_seconds{cache, operation}``: a histogram of the time of
  each call the decorators make through the ``Cache`` (``get``, ``get_many``,
  ``set_many``, ...).

``cache`` names the Cache: its backend class, with ``#<n>`` for the n-th Cache of
the app after the first. The metrics live in ``prometheus_client``'s default
registry, so ``prometheus_client.generate_latest()`` (or its WSGI app) serves
them. Under a pre-forking server set ``PROMETHEUS_MULTIPROC_DIR`` before the app
is imported: prometheus_client then keeps each worker's values in files of that
directory, and ``prometheus_client.multiprocess.MultiProcessCollector`` sums them.
"""

from __future__ import annotations

import threading
import time
import typing as t

from .exceptions import ConfigurationError

#: the Cache methods the Runtime calls, timed under their own name
TIMED = ("get", "get_many", "has", "set", "set_many", "add", "delete", "delete_many")

#: histogram buckets (seconds): a local Redis answers in well under a millisecond
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

_lock = threading.Lock()
_metrics: tuple[t.Any, t.Any] | None = None


def require() -> t.Any:
    """``prometheus_client``, or a ConfigurationError saying what to install."""
    try:
        import prometheus_client
    except ImportError as exc:
        raise ConfigurationError(
            "CACHE_METRICS=True needs the prometheus_client package: install the "
            "'metrics' extra of this package (pip install 'prometheus_client>=0.12'),"
            " or set CACHE_METRICS=False"
        ) from exc
    return prometheus_client


def _families() -> tuple[t.Any, t.Any]:
    """The two metric families, made once per process (a registry takes a name
    once)."""
    global _metrics
    with _lock:
        if _metrics is None:
            prom = require()
            events = prom.Counter(
                "flask_caching_events",
                "What the caching decorators did, per function and event",
                ["cache", "function", "event"],
            )
            backend = prom.Histogram(
                "flask_caching_backend_seconds",
                "Time of the decorators' calls to the cache backend",
                ["cache", "operation"],
                buckets=BUCKETS,
            )
            _metrics = (events, backend)
        return _metrics


def event_children(
    cache: str, events: tuple[str, ...]
) -> t.Callable[[str], dict[str, t.Any]]:
    """For a function name, its ``flask_caching_events_total`` child per event."""
    family = _families()[0]

    def children(function: str) -> dict[str, t.Any]:
        return {
            event: family.labels(cache=cache, function=function, event=event)
            for event in events
        }

    return children


class TimedOwner:
    """Stands for the ``Cache`` in a Runtime: its backend calls are timed."""

    def __init__(self, owner: t.Any, cache: str) -> None:
        self._owner = owner
        backend = _families()[1]
        for name in TIMED:
            method = getattr(owner, name, None)
            if method is not None:
                child = backend.labels(cache=cache, operation=name)
                setattr(self, name, _timed(method, child))

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self._owner, name)


def _timed(method: t.Callable[..., t.Any], child: t.Any) -> t.Callable[..., t.Any]:
    def call(*args: t.Any, **kwargs: t.Any) -> t.Any:
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            child.observe(time.perf_counter() - start)

    return call


def cache_label(backend: t.Any, index: int) -> str:
    """The ``cache`` label: the backend class, ``#<index>`` after the first Cache."""
    name = type(backend).__name__
    return name if index == 0 else f"{name}#{index}"
