"""The backend interface: cachelib's ``BaseCache`` plus what Flask needs to build one.

Every built-in backend subclasses :class:`BaseCache`. A backend only overrides what its
store does better than the defaults (``get_many`` in one round trip, a scoped ``clear``).
"""

from __future__ import annotations

import datetime as dt
import math
import time
import typing as t
import warnings

from cachelib.base import BaseCache as _CachelibBaseCache

if t.TYPE_CHECKING:
    from flask import Flask
    from typing_extensions import Self

__all__ = [
    "BaseCache",
    "Timeout",
    "cachelib_now",
    "deprecated_ignore_errors",
    "iteritems_wrapper",
    "normalize_timeout",
]

Timeout = int | float | dt.timedelta | None


def normalize_timeout(timeout: Timeout, default: int) -> int:
    """Turn a timeout into whole seconds: ``None`` is *default*, fractions round up.

    ``0`` means "never expire"; a negative result means "already expired".
    """
    if timeout is None:
        return default
    if isinstance(timeout, dt.timedelta):
        return math.ceil(timeout.total_seconds())
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(
            f"timeout must be a number of seconds or a timedelta, got {timeout!r}"
        )
    return math.ceil(timeout)


_STDLIB_TIME = time.time


def cachelib_now(module: t.Any) -> float:
    """The current time by the clock of the cachelib *module* (``cachelib.simple``,
    ``cachelib.file``), looked up at each call.

    cachelib binds ``time`` at import, so tests freeze it by replacing
    ``cachelib.simple.time``; that moves our expiry too. When nobody has replaced
    it, ``time.time`` is read through the :mod:`time` module, so a test patching
    ``time.time`` moves it as well.
    """
    clock = module.time
    if clock is _STDLIB_TIME:
        now: float = time.time()
    else:
        now = clock()
    return now


def deprecated_ignore_errors(
    ignore_errors: bool | None, ignore_delete_many_errors: bool
) -> bool:
    """The ``ignore_delete_many_errors`` to use, given the deprecated alias.

    A non-None *ignore_errors* warns (as released Flask-Caching 2.5 does) and wins.
    """
    if ignore_errors is None:
        return ignore_delete_many_errors
    warnings.warn(
        "'ignore_errors' is deprecated and will be removed in the next version."
        " Use 'ignore_delete_many_errors' instead.",
        DeprecationWarning,
        stacklevel=3,
    )
    return bool(ignore_errors)


def iteritems_wrapper(
    mappingorseq: t.Mapping[str, t.Any] | t.Iterable[tuple[str, t.Any]],
) -> t.Iterator[tuple[str, t.Any]]:
    """Yield ``(key, value)`` pairs from a mapping or a sequence of pairs."""
    if isinstance(mappingorseq, t.Mapping):
        return iter(mappingorseq.items())
    return iter(mappingorseq)


class BaseCache(_CachelibBaseCache):
    """Base class for flask_caching backends.

    :param default_timeout: seconds an entry lives when ``set`` gets no timeout;
        ``0`` means entries never expire.
    :param ignore_delete_many_errors: when False (the default, as in released
        Flask-Caching; cachelib's is True), ``delete_many`` raises ``RuntimeError``
        naming the keys that are still there after it tried to delete them.
    :param kwargs: handed on to cachelib's ``BaseCache``.
    """

    #: True when ``get_many`` of several keys is a single request to the server.
    #: The decorators read a value and its version keys together, so backends that
    #: cannot batch still work, just with more round trips.
    batched_get_many: bool = False

    #: constructor argument -> the CACHE_* setting that supplies it (see factory)
    factory_settings: t.ClassVar[dict[str, str]] = {}

    #: class-level defaults, so a subclass whose ``__init__`` skips ours still works
    default_timeout: int = 300
    ignore_delete_many_errors: bool = False

    def __init__(
        self,
        default_timeout: Timeout = 300,
        ignore_delete_many_errors: bool = False,
        **kwargs: t.Any,
    ) -> None:
        # Called by name, not super(): in SimpleCache(BaseCache, cachelib.SimpleCache)
        # super() would be cachelib's SimpleCache. cachelib 0.9 has no
        # ignore_delete_many_errors parameter, so the flag is set here.
        _CachelibBaseCache.__init__(
            self, default_timeout=normalize_timeout(default_timeout, 300), **kwargs
        )
        self.ignore_delete_many_errors = bool(ignore_delete_many_errors)

    @classmethod
    def factory(
        cls,
        app: Flask,
        config: t.Mapping[str, t.Any],
        args: list[t.Any],
        kwargs: dict[str, t.Any],
    ) -> Self:
        """Build the backend for *app* from CACHE_ARGS (*args*), CACHE_OPTIONS
        (*kwargs*) and the settings named in :attr:`factory_settings`.

        A listed setting that is set (not ``None``) wins over the same name in
        CACHE_OPTIONS. With no settings listed this is ``cls(*args, **kwargs)``.
        """
        params = dict(kwargs)
        for name, setting in cls.factory_settings.items():
            if config.get(setting) is not None:
                params[name] = config[setting]
        return cls(*args, **params)

    def _normalize_timeout(self, timeout: Timeout) -> int:
        """Whole seconds from now (0 = never, negative = already expired)."""
        return normalize_timeout(timeout, self.default_timeout)

    def delete_many(self, *keys: str) -> list[t.Any]:
        """Delete *keys*; return those gone afterwards (absent ones count as deleted).

        A key still present after the attempt raises ``RuntimeError('Failed to
        delete keys: [...]')`` unless :attr:`ignore_delete_many_errors` is set (then
        it is only left out of the result). Written here, not inherited, because
        cachelib 0.9's version has no such flag.
        """
        deleted: list[t.Any] = []
        failed: list[str] = []
        for key in keys:
            if self.delete(key) or not self.has(key):
                deleted.append(key)
            else:
                failed.append(key)
        if failed and not self.ignore_delete_many_errors:
            raise RuntimeError(f"Failed to delete keys: {failed}")
        return deleted

    # -- locks (flask_caching.locks) -------------------------------------------

    def acquire_lock(self, key: str, token: str, timeout: float) -> bool:
        """Store *token* under *key* for *timeout* seconds (the lease) only if *key*
        is absent, atomically; True when this caller now holds the lock.

        The default uses :meth:`add`, so it is as atomic as the backend's ``add``.
        A backend with finer expiry (milliseconds) may override it.
        """
        return bool(self.add(key, token, timeout=max(1, math.ceil(timeout))))

    def release_lock(self, key: str, token: str) -> bool:
        """Delete the lock *key* only if *token* still holds it; True if deleted.

        The default reads then deletes: between the two a lease that just ran out
        could be taken by someone else, whose lock would then go too. Backends that
        can compare-and-delete in one step (a Lua script on Redis, a lock held over
        the dict in SimpleCache) override this.
        """
        if self.get(key) != token:
            return False
        return bool(self.delete(key))
