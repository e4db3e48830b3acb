"""Runtime: one Cache on one app, as the decorators see it on every call.

Backend failures stop here, so a cache outage never fails a request:

- a failed call is logged on the ``flask_caching`` logger (once per outage at
  WARNING, see :mod:`.resilience`) and the decorated code runs uncached;
- after CACHE_FAILURE_THRESHOLD failures in a row a :class:`~.resilience.CircuitBreaker`
  opens: for CACHE_FAILURE_COOLDOWN seconds the backend is not called at all, then one
  call probes it. Reads and writes have a breaker each: a server that still answers
  reads but refuses writes (Redis at ``maxmemory`` with ``noeviction``, a full disk)
  keeps serving hits. Both share one :class:`~.resilience.OutageLog`: one WARNING per
  outage, one INFO line when it is over;
- a result the backend cannot store (unpicklable, too large) is returned uncached
  with one warning naming the function; it does not count as a backend failure.

In debug mode (``app.debug``) every error is raised instead, and the breaker is left
out: each call tries the backend, so a developer sees every failure rather than a
cache that silently went quiet after the first few.

Every backend call goes through the owning ``Cache`` object's public methods
(``get``, ``get_many``, ``has``, ``set``, ``set_many``, ``add``, ``delete``,
``delete_many``), as released Flask-Caching's decorators do, so a ``Cache`` subclass
that wraps them (tracing, metrics) sees the decorators' traffic too. Those proxy
methods report errors to their own callers; this layer is what catches them for the
decorators.
"""

from __future__ import annotations

import logging
import secrets
import typing as t
from collections.abc import Callable, Mapping, Sequence

from .backends.base import BaseCache
from .resilience import (
    DEFAULT_COOLDOWN,
    DEFAULT_THRESHOLD,
    CircuitBreaker,
    OnceEach,
    OutageLog,
    is_value_error,
)

if t.TYPE_CHECKING:
    from flask import Flask

    from .settings import Settings

logger = logging.getLogger("flask_caching")

#: what :meth:`Runtime.read_one` returns when the read failed
FAILED: t.Final[t.Any] = object()

#: how many memoize version keys a process remembers the versions of
VERSIONS_REMEMBERED = 4096


class Runtime:
    """What the decorators need from one Cache on one app, built once at init_app.

    ``read``/``write``/``delete``/``ensure_versions`` never raise outside debug mode:
    they return None/False when the backend failed or the breaker is open.
    """

    def __init__(
        self,
        backend: BaseCache,
        settings: Settings,
        app: Flask,
        owner: t.Any = None,
        plain: type | None = None,
    ) -> None:
        self.backend = backend
        #: the ``Cache`` object whose public methods reach the backend
        self.owner: t.Any = owner if owner is not None else _Direct(backend)
        #: the reads of the Cache class itself: while the owner's ``get`` /
        #: ``get_many`` are these (not overridden by a subclass, not replaced on
        #: the instance), the backend is read directly, which is what they do
        self.plain_get = getattr(plain, "get", None)
        self._plain_get_many = getattr(plain, "get_many", None)
        self.settings = settings
        self.app = app
        # a BaseCache subclass that skipped super().__init__() has none of its own
        self.default_timeout = getattr(
            backend, "default_timeout", settings.default_timeout
        )
        raw = settings.raw
        name = type(backend).__name__
        threshold = raw.get("CACHE_FAILURE_THRESHOLD", DEFAULT_THRESHOLD)
        cooldown = raw.get("CACHE_FAILURE_COOLDOWN", DEFAULT_COOLDOWN)
        log = OutageLog(name)
        #: guards ``get_many``: the lookups
        self.reads = CircuitBreaker(name, threshold, cooldown, kind="reads", log=log)
        #: guards ``set``, ``add``, ``delete``: storing results and version tokens
        self.writes = CircuitBreaker(name, threshold, cooldown, kind="writes", log=log)
        #: memoize: the version strings last seen per version key (bounded)
        self.versions_seen: dict[str, list[str]] = {}
        self._unstorable = OnceEach()
        self._reported = OnceEach()
        #: the decorators' counters on this app x Cache (``Cache.stats()``): a
        #: :class:`flask_caching.stats.Stats`, set by ``init_app``
        self.stats: t.Any = None

    def failed(self, operation: str, key: str, exc: Exception) -> None:
        """Report an error that is not the backend's (e.g. a key function raised).

        Raises in debug mode, otherwise logs a warning and goes on.
        """
        if self.app.debug:
            raise exc
        # once per (operation, key) at WARNING: a broken key function would
        # otherwise log on every request
        logger.log(
            logging.WARNING
            if self._reported.first(f"{operation}:{key}")
            else logging.DEBUG,
            "cache %s of %r failed, serving uncached: %s: %s",
            operation,
            key,
            type(exc).__name__,
            exc,
        )

    def backend_failed(
        self, breaker: CircuitBreaker, operation: str, key: str, exc: Exception
    ) -> None:
        """Report a failed backend call: raise in debug mode, else count and log it."""
        if self.app.debug:
            raise exc
        if self.stats is not None:
            self.stats.backend_failed()
        breaker.failure(operation, key, exc)

    def read(self, keys: Sequence[str], many: bool = False) -> list[t.Any] | None:
        """``get`` of one key (``get_many`` with *many*), ``get_many`` of several; None
        when the backend failed or is bypassed."""
        breaker = self.reads
        if not breaker.allow():
            return None
        try:
            owner = self.owner
            if len(keys) == 1 and not many:
                get = owner.get
                if getattr(get, "__func__", None) is self.plain_get:
                    get = self.backend.get
                found = [get(keys[0])]
            else:
                get_many = owner.get_many
                if getattr(get_many, "__func__", None) is self._plain_get_many:
                    get_many = self.backend.get_many
                found = list(get_many(*keys))
        except Exception as exc:
            self.backend_failed(breaker, "read", keys[0], exc)
            return None
        breaker.success()
        return found

    def read_one(self, key: str) -> t.Any:
        """``get(key)``, or :data:`FAILED` when the backend failed or is bypassed
        (:meth:`read` of one key without the list, for the hit fast path)."""
        breaker = self.reads
        # the breaker's fast-path tests (Breaker.allow / .success) made inline:
        # this is the read of every view hit
        if breaker.open_until and not breaker.allow():
            return FAILED
        try:
            get = self.owner.get
            if getattr(get, "__func__", None) is self.plain_get:
                get = self.backend.get
            value = get(key)
        except Exception as exc:
            self.backend_failed(breaker, "read", key, exc)
            return FAILED
        if breaker.failures:
            breaker.success()
        return value

    def read_failed(self, key: str, exc: Exception) -> t.Any:
        """Report a failed read of *key* made directly (``CachedView.quick`` reads
        inline what :meth:`read_one` reads); :data:`FAILED`, or *exc* raised in
        debug mode."""
        self.backend_failed(self.reads, "read", key, exc)
        return FAILED

    def has(self, key: str) -> bool | None:
        """``has(key)``; None when the backend failed or is bypassed."""
        breaker = self.reads
        if not breaker.allow():
            return None
        try:
            found = bool(self.owner.has(key))
        except Exception as exc:
            self.backend_failed(breaker, "read", key, exc)
            return None
        breaker.success()
        return found

    def write(
        self,
        key: str,
        entry: t.Any,
        timeout: int,
        name: str | None = None,
        extra: Mapping[str, t.Any] | None = None,
    ) -> bool:
        """Store *entry* (with ``set``, or with *extra* keys in one ``set_many``);
        False (never an exception) when it was not stored.

        *name* names what produced the value (the decorated function) in the
        warning given when the value itself cannot be stored.
        """
        breaker = self.writes
        if not breaker.allow():
            return False
        try:
            if extra:
                done = self.owner.set_many({key: entry, **extra}, timeout=timeout)
                # cachelib returns the keys it set; older backends a bool
                stored = done if isinstance(done, bool) else key in (done or ())
            else:
                stored = bool(self.owner.set(key, entry, timeout=timeout))
        except Exception as exc:
            if is_value_error(exc):
                self._not_stored(name, key, exc)
            else:
                self.backend_failed(breaker, "write", key, exc)
            return False
        breaker.success()
        if not stored:
            self._not_stored(name, key, None)
        return stored

    def _not_stored(self, name: str | None, key: str, exc: Exception | None) -> None:
        """A result the backend would not take: once per function at WARNING."""
        if exc is not None and self.app.debug:
            raise exc
        what = f"the result of {name}" if name else f"the value for {key!r}"
        backend = type(self.backend).__name__
        if exc is None:
            reason = (
                f"{backend} did not store it: over its size limit, or see its own"
                " warning (a full disk?)"
            )
        else:
            reason = (
                f"it cannot be stored ({type(exc).__name__}: {exc}); return a"
                f" picklable value (or one {backend}'s serializer accepts) to cache it"
            )
        level = (
            logging.WARNING if self._unstorable.first(name or key) else logging.DEBUG
        )
        logger.log(level, "%s is served uncached: %s", what, reason)

    def remember_versions(self, key: str, versions: list[str]) -> None:
        """Keep *versions* as the last seen under version key *key*."""
        seen = self.versions_seen
        if len(seen) >= VERSIONS_REMEMBERED and key not in seen:
            del seen[next(iter(seen))]  # the oldest
        seen[key] = versions

    def write_many(self, mapping: Mapping[str, t.Any], timeout: int) -> bool:
        """``set_many`` through the write breaker; False when it failed."""
        breaker = self.writes
        if not breaker.allow():
            return False
        try:
            self.owner.set_many(dict(mapping), timeout=timeout)
        except Exception as exc:
            self.backend_failed(breaker, "write", next(iter(mapping)), exc)
            return False
        breaker.success()
        return True

    def delete(self, key: str) -> bool:
        breaker = self.writes
        if not breaker.allow():
            return False
        try:
            deleted = bool(self.owner.delete(key))
        except Exception as exc:
            self.backend_failed(breaker, "delete", key, exc)
            return False
        breaker.success()
        return deleted

    def ensure_versions(
        self,
        version_keys: Sequence[str],
        found: Sequence[t.Any],
        instance_ttl: int = 0,
        lasting: int = 1,
        make: Callable[[], t.Any] | None = None,
    ) -> tuple[t.Any, ...] | None:
        """The current version tokens, creating the missing ones (first writer wins,
        with ``add``, so processes racing to create one agree on it).

        The first *lasting* keys never expire; the others live *instance_ttl*
        seconds (0: forever), so URLs that come and go leave no keys behind. A
        version key that expires only turns the entries written under it into
        misses. *make* makes a token (default: :func:`new_version`, an int); a
        stored value of another type is replaced.
        """
        make = make or new_version
        kind = type(make())
        versions = []
        for i, (vkey, token) in enumerate(zip(version_keys, found, strict=True)):
            if type(token) is not kind:
                ttl = instance_ttl if i >= lasting else 0
                token = self._add_version(vkey, make(), ttl)
                if token is None:
                    return None
            versions.append(token)
        return tuple(versions)

    def _add_version(self, vkey: str, token: t.Any, ttl: int) -> t.Any:
        """Create version key *vkey*, or read the one another caller created."""
        breaker = self.writes
        if not breaker.allow():
            return None
        try:
            if not self.owner.add(vkey, token, timeout=ttl):
                stored = self.owner.get(vkey)
                if type(stored) is type(token):
                    token = stored
                else:  # a token of another kind (an older format): replace it
                    self.owner.set(vkey, token, timeout=ttl)
        except Exception as exc:
            self.backend_failed(breaker, "version", vkey, exc)
            return None
        breaker.success()
        return token


def new_version() -> int:
    """A fresh version token: random, so processes never agree by accident."""
    return secrets.randbits(62) + 1


class _Direct:
    """Stands in for the ``Cache`` object when a Runtime is built without one."""

    def __init__(self, backend: BaseCache) -> None:
        self._backend = backend

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self._backend, name)
