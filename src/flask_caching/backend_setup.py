"""Build the backend CACHE_TYPE names and give it the serializer CACHE_SERIALIZER names.

The guide's ways to name a backend all work: a built-in name, an import string of a
``BaseCache`` subclass (built by its ``factory``), a cachelib class (built directly)
or any callable ``(app, config, args, kwargs)`` returning an object with the cache
methods (duck-typed, as released Flask-Caching accepts a bare ``pylibmc.Client``).
"""

from __future__ import annotations

import inspect
import typing as t
import warnings
from collections.abc import Callable, Mapping

from flask import Flask

from . import settings as settings_mod
from .backends import BUILTIN, load_builtin
from .backends.base import BaseCache
from .exceptions import ConfigurationError
from .serializers import resolve_serializer


def build_backend(app: Flask, conf: settings_mod.Settings) -> t.Any:
    """Instantiate the backend CACHE_TYPE names, the way the guide describes."""
    raw = conf.raw
    args = list(raw["CACHE_ARGS"])
    options = dict(raw["CACHE_OPTIONS"])
    spec = raw["CACHE_TYPE"]
    if isinstance(spec, str) and spec in BUILTIN:
        factory: t.Any = load_builtin(spec)
    elif isinstance(spec, str):
        factory = settings_mod.import_string(spec, "CACHE_TYPE")
    else:
        factory = spec  # a class or callable given directly
    if not callable(factory):
        raise ConfigurationError(f"CACHE_TYPE={spec!r} is not a class or a callable")
    if isinstance(factory, type) and issubclass(factory, BaseCache):
        if _positional_count(factory.factory) == 3:
            # the guide's older example: factory(cls, app, args, kwargs)
            return factory.factory(app, args, options)  # type: ignore[call-arg]
        return factory.factory(app, raw, args, options)
    if isinstance(factory, type) and factory.__module__.split(".")[0] == "cachelib":
        options.setdefault("default_timeout", raw["CACHE_DEFAULT_TIMEOUT"])
        return factory(*args, **options)
    return factory(app, raw, args, options)


def _secret_keys(raw: Mapping[str, t.Any]) -> list[t.Any]:
    """CACHE_SECRET_KEY (one key or a list, first signs), else SECRET_KEY + fallbacks."""
    own = raw.get("CACHE_SECRET_KEY")
    if own:
        return list(own) if isinstance(own, (list, tuple)) else [own]
    keys = [raw.get("SECRET_KEY")]
    keys.extend(raw.get("SECRET_KEY_FALLBACKS") or ())
    return [k for k in keys if k]


def resolve_cache_serializer(raw: Mapping[str, t.Any]) -> t.Any:
    """The serializer CACHE_SERIALIZER names, or None to keep the backend's own."""
    setting = raw["CACHE_SERIALIZER"]
    if setting is None or setting == "pickle":
        return None
    return resolve_serializer(
        setting,
        secret_keys=_secret_keys(raw),
        algorithm=raw["CACHE_SERIALIZER_ALGORITHM"],
    )


def apply_serializer(backend: t.Any, serializer: t.Any) -> None:
    """Give the backend *serializer*; one without a ``serializer`` only warns."""
    if serializer is None:
        return
    if not hasattr(backend, "serializer"):
        warnings.warn(
            f"CACHE_SERIALIZER is set but {type(backend).__name__} does not use a "
            "serializer.",
            UserWarning,
            stacklevel=3,
        )
        return
    backend.serializer = serializer


def _positional_count(func: Callable[..., t.Any]) -> int:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return -1
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return -1
    return sum(1 for p in params if p.kind in kinds)
