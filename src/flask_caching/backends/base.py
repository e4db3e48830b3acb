"""The backend interface: cachelib's ``BaseCache`` plus what Flask needs to build one.

Every built-in backend subclasses :class:`BaseCache`. A backend only overrides what its
store does better than the defaults (``get_many`` in one round trip, a scoped ``clear``).
"""

from __future__ import annotations

import datetime as dt
import math
import typing as t

from cachelib.base import BaseCache as _CachelibBaseCache

if t.TYPE_CHECKING:
    from flask import Flask
    from typing_extensions import Self

__all__ = ["BaseCache", "iteritems_wrapper", "normalize_timeout"]

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
    """

    #: True when ``get_many`` of several keys is a single request to the server.
    #: The decorators read a value and its version keys together, so backends that
    #: cannot batch still work, just with more round trips.
    batched_get_many: bool = False

    #: constructor argument -> the CACHE_* setting that supplies it (see factory)
    factory_settings: t.ClassVar[dict[str, str]] = {}

    def __init__(self, default_timeout: Timeout = 300, **kwargs: t.Any) -> None:
        super().__init__(
            default_timeout=normalize_timeout(default_timeout, 300), **kwargs
        )
        self.ignore_errors = False

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
        return normalize_timeout(timeout, self.default_timeout)

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
