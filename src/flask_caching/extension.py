"""The ``Cache`` extension: configuration per app, the proxy methods, the decorators.

One ``Cache`` may serve several apps (each with its own backend) and one app may
have several ``Cache`` objects. The backend of the current app is
``app.extensions["cache"][cache]``; everything the decorators need per call is
prepared once in ``init_app``.
"""

from __future__ import annotations

import logging
import typing as t
import warnings
from collections.abc import Callable, Mapping

from flask import Flask

from . import metrics as metrics_mod
from . import settings as settings_mod
from . import stats as stats_mod
from .backend_setup import apply_serializer, build_backend, resolve_cache_serializer
from .backends.base import BaseCache
from .cached import DELETE_ATTR, CachedFunction, make_cached
from .cli import register_cli
from .cli_backends import location
from .context import app_or_none
from .exceptions import ConfigurationError
from .jinja2ext import ENV_ATTR, CacheExtension
from .memoize import delete_memoized, delete_memoized_verhash, make_memoize
from .memoize_keys import VERSION_SUFFIX, CallArguments
from .privacy import PrivateMode
from .runtime import Runtime

P = t.ParamSpec("P")
R = t.TypeVar("R")

_RUNTIMES = "flask_caching"
#: app.extensions key: the unknown CACHE_* names already logged for the app
_WARNED = "flask_caching.unknown_settings"

logger = logging.getLogger("flask_caching")


class Cache:
    """Caching for one or more Flask apps.

    :param app: the app to set up now (or call :meth:`init_app` later).
    :param with_jinja2_ext: register the ``{% cache %}`` template tag.
    :param config: CACHE_* settings that win over ``app.config``.
    """

    def __init__(
        self,
        app: Flask | None = None,
        with_jinja2_ext: bool = True,
        config: Mapping[str, t.Any] | None = None,
    ) -> None:
        _check_config(config)
        self.with_jinja2_ext = with_jinja2_ext
        self.config = dict(config) if config else {}
        self.app = app
        self.source_check: bool | None = None
        #: the hash of keys; None until init_app (then CACHE_HASH_METHOD); a value
        #: assigned later is used for keys built afterwards
        self.hash_method: Callable[..., t.Any] | None = None
        #: the serializer CACHE_SERIALIZER gave the backend (None: its own)
        self.serializer: t.Any = None
        self.enable_signals = False
        #: (app, runtime) of the last lookup: most processes serve one app
        self._last: tuple[t.Any, t.Any] = (None, None)
        if app is not None:
            self.init_app(app, config)

    def init_app(self, app: Flask, config: Mapping[str, t.Any] | None = None) -> None:
        """Build this Cache's backend for *app* from its settings."""
        _check_config(config)
        conf = settings_mod.build(app.config, self.config, config)
        if conf.metrics:
            metrics_mod.require()  # before anything is set up
        if conf.backend_name == "NullCache" and not conf.raw["CACHE_NO_NULL_WARNING"]:
            warnings.warn(
                "Flask-Caching: CACHE_TYPE is NullCache, so nothing is cached. "
                "Set CACHE_TYPE (e.g. 'SimpleCache') or CACHE_NO_NULL_WARNING=True.",
                UserWarning,
                stacklevel=2,
            )
        serializer = resolve_cache_serializer(
            conf.raw
        )  # bad ones fail before the backend
        backend = build_backend(app, conf)
        if backend is None:
            raise ConfigurationError(
                f"CACHE_TYPE={conf.raw['CACHE_TYPE']!r}: its factory returned None"
            )
        apply_serializer(backend, serializer)
        self.source_check = conf.source_check
        self.enable_signals = conf.enable_signals
        self.hash_method = conf.hash_method
        self.serializer = serializer
        app.extensions.setdefault("cache", {})[self] = backend
        runtime = Runtime(backend, conf, app, owner=self, plain=Cache)
        index = list(app.extensions["cache"]).index(self)
        stats_mod.install(runtime, index, export=conf.metrics)
        app.extensions.setdefault(_RUNTIMES, {})[self] = runtime
        self._last = (None, None)  # a new runtime for this app: look it up again
        _log_setup(app, backend, index, conf.raw)
        register_cli(app)  # the `flask cache` commands, once per app
        self.app = app
        if self.with_jinja2_ext:
            app.jinja_env.add_extension(CacheExtension)
            setattr(app.jinja_env, ENV_ATTR, self)

    # -- which app --------------------------------------------------------------

    def _app(self) -> Flask:
        """The app given to the constructor; called outside any app context."""
        if self.app is not None:
            return self.app
        raise RuntimeError(
            "Working outside of application context: the cache is per app, so "
            "use 'with app.app_context():' (or pass the app to Cache(app))."
        )

    def _runtime(self) -> Runtime:
        app = app_or_none() or self._app()
        last = self._last
        if last[0] is app:  # the common case: the same app as the call before
            found: Runtime = last[1]
            return found
        try:
            rt: Runtime = app.extensions[_RUNTIMES][self]
        except KeyError:
            raise RuntimeError(
                f"This Cache was not set up for app {app.name!r}: call cache.init_app(app)"
            ) from None
        self._last = (app, rt)
        return rt

    def stats(self) -> dict[str, t.Any]:
        """The decorators' counters on the current app, in this process:
        ``{"total": {event: n}, "functions": {name: {event: n}}}`` (events:
        :data:`flask_caching.stats.EVENTS`)."""
        stats: stats_mod.Stats = self._runtime().stats
        return stats.snapshot()

    @property
    def cache(self) -> BaseCache:
        """The backend of the current app."""
        return self._runtime().backend

    # -- proxy methods -----------------------------------------------------------

    def get(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """The value stored under a key, or None (proxy to the backend)."""
        return self.cache.get(*args, **kwargs)

    def has(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """Whether a key is stored (proxy to the backend)."""
        return self.cache.has(*args, **kwargs)

    def set(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """Store a value under a key (proxy to the backend)."""
        return self.cache.set(*args, **kwargs)

    def add(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """Store a value only if the key is absent (proxy to the backend)."""
        return self.cache.add(*args, **kwargs)

    def delete(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """Delete a key (proxy to the backend)."""
        return self.cache.delete(*args, **kwargs)

    def delete_many(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """Delete keys; the ones deleted (proxy to the backend)."""
        return self.cache.delete_many(*args, **kwargs)

    def get_many(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """The values of keys, None for each missing one (proxy to the backend)."""
        return self.cache.get_many(*args, **kwargs)

    def get_dict(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """A dict of keys to values (proxy to the backend)."""
        return self.cache.get_dict(*args, **kwargs)

    def set_many(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """Store a mapping; the keys stored (proxy to the backend)."""
        return self.cache.set_many(*args, **kwargs)

    def inc(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """Add to an integer value (proxy to the backend)."""
        return self.cache.inc(*args, **kwargs)

    def dec(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """Subtract from an integer value (proxy to the backend)."""
        return self.cache.dec(*args, **kwargs)

    def clear(self) -> t.Any:
        """Remove what the backend's ``clear`` removes (proxy to the backend)."""
        return self.cache.clear()

    def unlink(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        """Delete keys (non-blocking on Redis where the backend supports it)."""
        unlink = getattr(self.cache, "unlink", None)
        if unlink is not None and callable(unlink):
            return unlink(*args, **kwargs)
        return self.delete_many(*args, **kwargs)

    # -- decorators --------------------------------------------------------------

    def cached(
        self,
        timeout: t.Any = None,
        key_prefix: str | Callable[[], str] = "view/%s",
        unless: Callable[..., bool] | None = None,
        forced_update: Callable[..., bool] | None = None,
        response_filter: Callable[[t.Any], bool] | None = None,
        query_string: bool = False,
        hash_method: Callable[..., t.Any] | None = None,
        cache_none: bool = False,
        make_cache_key: Callable[..., str] | None = None,
        source_check: bool | None = None,
        response_hit_indication: bool = False,
        is_stale: Callable[..., bool] | None = None,
        lock: bool | None = None,
        lock_timeout: float | None = None,
        stale_while_revalidate: float | None = None,
        stale_if_error: float | None = None,
        private: PrivateMode | None = None,
        vary: str | t.Iterable[str] | None = None,
        vary_on_session: bool = False,
        cache_status: bool | None = None,
    ) -> Callable[[Callable[P, R]], CachedFunction[P, R]]:
        """Cache a view (key from the request path) or, with ``key_prefix``, a function.

        (Over ~60 lines only for its signature: released's parameters, plus ours.)

        A response that may belong to one user is not stored (see
        :mod:`flask_caching.privacy`): one that sets a cookie, reads the session,
        answers an ``Authorization`` request, or says ``Cache-Control: private``,
        ``no-store``, ``no-cache`` or ``Vary: *``. A 5xx response is not stored
        unless ``response_filter`` accepts it. To cache per-user pages safely:

        :param vary: request header names the key depends on, e.g.
            ``["Accept-Language", "Cookie:lang"]`` (``Cookie:<name>`` = one cookie);
            the response gets a ``Vary`` header for them, replayed on hits.
        :param vary_on_session: one entry per session (keyed on its contents).
        :param private: ``"skip"`` such responses (the default, from
            CACHE_PRIVATE_RESPONSES) or ``"allow"`` storing them. A stored response
            never keeps ``Set-Cookie``.
        :param cache_status: add a ``Cache-Status`` header (True) or not (False);
            None: CACHE_STATUS_HEADER decides (see :mod:`flask_caching.cache_status`).
        """
        return make_cached(
            self._runtime,
            self,
            timeout=timeout,
            key_prefix=key_prefix,
            unless=unless,
            forced_update=forced_update,
            response_filter=response_filter,
            query_string=query_string,
            hash_method=hash_method,
            cache_none=cache_none,
            make_cache_key=make_cache_key,
            source_check=source_check,
            response_hit_indication=response_hit_indication,
            is_stale=is_stale,
            lock=lock,
            lock_timeout=lock_timeout,
            stale_while_revalidate=stale_while_revalidate,
            stale_if_error=stale_if_error,
            private=private,
            vary=vary,
            vary_on_session=vary_on_session,
            cache_status=cache_status,
        )

    def memoize(
        self,
        timeout: t.Any = None,
        make_name: Callable[[str], str] | None = None,
        unless: Callable[..., bool] | None = None,
        forced_update: Callable[..., bool] | None = None,
        response_filter: Callable[[t.Any], bool] | None = None,
        hash_method: Callable[..., t.Any] | None = None,
        cache_none: bool = False,
        source_check: bool | None = None,
        args_to_ignore: t.Iterable[str] | None = None,
        is_stale: Callable[..., bool] | None = None,
        lock: bool | None = None,
        lock_timeout: float | None = None,
        stale_while_revalidate: float | None = None,
        stale_if_error: float | None = None,
    ) -> Callable[[Callable[P, R]], CachedFunction[P, R]]:
        """Cache a function per distinct call (arguments are part of the key)."""
        return make_memoize(
            self._runtime,
            self,
            timeout=timeout,
            make_name=make_name,
            unless=unless,
            forced_update=forced_update,
            response_filter=response_filter,
            hash_method=hash_method,
            cache_none=cache_none,
            source_check=source_check,
            args_to_ignore=args_to_ignore,
            is_stale=is_stale,
            lock=lock,
            lock_timeout=lock_timeout,
            stale_while_revalidate=stale_while_revalidate,
            stale_if_error=stale_if_error,
        )

    def delete_memoized(self, f: t.Any, *args: t.Any, **kwargs: t.Any) -> None:
        """Drop every entry of memoized *f*, or with arguments just that call's."""
        delete_memoized(self._runtime(), f, *args, **kwargs)

    def delete_memoized_verhash(self, f: t.Any, *args: t.Any) -> None:
        """Drop *f*'s version key: all its entries become misses."""
        delete_memoized_verhash(self._runtime(), f)

    def _memvname(self, funcname: str) -> str:
        """The version key of a memoize namespace (released Flask-Caching's name)."""
        return funcname + VERSION_SUFFIX

    def _memoize_kwargs_to_args(
        self, f: Callable[..., t.Any], *args: t.Any, **kwargs: t.Any
    ) -> tuple[tuple[t.Any, ...], t.Any]:
        """A call's arguments as memoize keys see them (released Flask-Caching's
        private helper, kept for code that calls it)."""
        ignored = kwargs.pop("args_to_ignore", None) or ()
        return CallArguments(f, ignored).normalise(args, kwargs)

    def delete_cached(
        self,
        f: t.Any,
        path: str | None = None,
        query_args: t.Any = None,
        **view_args: t.Any,
    ) -> bool:
        """Delete the entry a ``@cached`` view stored for *path* (and query args).

        For a view with ``vary=[...]`` or ``vary_on_session=True`` there is one entry
        per variant (language, session, ...), and all of them share a version key
        derived from the path and query: that key is deleted, so every variant is a
        miss on its next request. Inside a request the caller's own headers and
        session do not narrow (and are not read for) what is deleted. Returns
        whether the backend deleted a key.
        """
        if getattr(f, "_flask_caching_memoize", None) is not None:
            raise TypeError("use delete_memoized() for @memoize-decorated functions")
        target = getattr(f, DELETE_ATTR, None)
        if target is None or not hasattr(f, "uncached"):
            raise TypeError(f"{f!r} is not a @cached-decorated function")
        return bool(self.delete(target(path=path, query_args=query_args, **view_args)))


class ConfigArgumentError(TypeError, ValueError):
    """``config`` is not a mapping: a TypeError, and the ValueError released
    Flask-Caching raises, so either ``except`` clause catches it."""


def _check_config(config: t.Any) -> None:
    if config is not None and not isinstance(config, Mapping):
        raise ConfigArgumentError(
            f"config must be a mapping of CACHE_* settings, got {config!r}"
        )


def _log_setup(
    app: Flask, backend: t.Any, index: int, raw: Mapping[str, t.Any]
) -> None:
    """One INFO line naming the backend and where it is (never a password), and
    each unknown CACHE_* setting once per app, with the nearest known name."""
    try:
        where = location(backend)
    except Exception:  # a backend of unusual shape: say less, never fail init_app
        where = "location unknown"
    logger.info(
        "Cache %d of app %r: %s, %s", index, app.name, type(backend).__name__, where
    )
    warned: set[str] = app.extensions.setdefault(_WARNED, set())
    for name, near in settings_mod.unknown_settings(raw):
        if name in warned:
            continue
        warned.add(name)
        if near is not None:
            logger.warning(
                "%s is not a Flask-Caching setting and is ignored: did you mean %s?",
                name,
                near,
            )
        else:
            logger.info(
                "%s is not a Flask-Caching setting (ignored, unless a backend "
                "factory of your own reads it)",
                name,
            )
