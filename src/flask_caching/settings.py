"""Every CACHE_* setting in one table, resolved once per app into a frozen ``Settings``.

Precedence: the dict given to ``init_app`` > the dict given to ``Cache(...)`` >
``app.config`` > the defaults below. Nothing else in the package reads ``app.config``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import importlib
import math
import os
import typing as t
import warnings
from collections.abc import Callable, Mapping

from .backends import DEPRECATED
from .exceptions import ConfigurationError

_Number = (int, float)

#: name -> (default, accepted types or None for "anything")
TABLE: dict[str, tuple[t.Any, tuple[type, ...] | None]] = {
    "CACHE_TYPE": ("NullCache", None),
    "CACHE_NO_NULL_WARNING": (False, (bool,)),
    "CACHE_ARGS": ([], (list, tuple)),
    "CACHE_OPTIONS": ({}, (dict,)),
    "CACHE_DEFAULT_TIMEOUT": (300, _Number),
    "CACHE_IGNORE_ERRORS": (False, (bool,)),
    "CACHE_THRESHOLD": (500, (int,)),
    "CACHE_KEY_PREFIX": ("flask_cache_", None),
    "CACHE_SOURCE_CHECK": (False, (bool,)),
    "CACHE_HASH_METHOD": (hashlib.sha256, None),
    "CACHE_FILE_HASH_METHOD": (hashlib.sha256, None),
    "CACHE_ENABLE_SIGNALS": (False, (bool,)),
    "CACHE_UWSGI_NAME": ("", (str,)),
    "CACHE_MEMCACHED_SERVERS": (None, (list, tuple, str)),
    "CACHE_MEMCACHED_USERNAME": (None, (str,)),
    "CACHE_MEMCACHED_PASSWORD": (None, (str,)),
    "CACHE_REDIS_HOST": (None, None),
    "CACHE_REDIS_PORT": (None, (int, str)),
    "CACHE_REDIS_PASSWORD": (None, (str,)),
    "CACHE_REDIS_DB": (None, (int, str)),
    "CACHE_REDIS_URL": (None, (str,)),
    "CACHE_REDIS_SENTINELS": (None, (list, tuple)),
    "CACHE_REDIS_SENTINEL_MASTER": (None, (str,)),
    "CACHE_REDIS_SENTINEL_PASSWORD": (None, (str,)),
    "CACHE_REDIS_CLUSTER": (None, (str, list, tuple)),
    "CACHE_DIR": (None, (str, os.PathLike)),
    "CACHE_GCS_BUCKET": (None, (str,)),
    "CACHE_SERIALIZER": (None, None),
    "CACHE_SERIALIZER_ALGORITHM": ("sha256", (str,)),
    "CACHE_SECRET_KEY": (None, (str, bytes, list, tuple)),
    "CACHE_LOCK": (False, (bool,)),
    "CACHE_LOCK_TIMEOUT": (10, _Number),
    "CACHE_STALE_WHILE_REVALIDATE": (0, _Number),
    "CACHE_STALE_IF_ERROR": (0, _Number),
    "CACHE_FAILURE_THRESHOLD": (3, (int,)),
    "CACHE_FAILURE_COOLDOWN": (5.0, _Number),
    "CACHE_PRIVATE_RESPONSES": ("skip", (str,)),
    "CACHE_STATUS_HEADER": (False, (bool,)),
    "CACHE_METRICS": (False, (bool,)),
}

#: CACHE_PRIVATE_RESPONSES / ``@cached(private=...)``: what to do with a response
#: that may belong to one user ("skip": do not store it; "allow": store it)
PRIVATE_MODES = ("skip", "allow")

#: a type check that should not accept bools where numbers are expected
_NO_BOOL = {
    "CACHE_DEFAULT_TIMEOUT",
    "CACHE_THRESHOLD",
    "CACHE_REDIS_PORT",
    "CACHE_FAILURE_THRESHOLD",
    "CACHE_FAILURE_COOLDOWN",
}

HashMethod = Callable[..., t.Any]

#: the standard hashlib constructors accepted by name or as callables
SUPPORTED_HASH_FUNCTIONS: tuple[HashMethod, ...] = (
    hashlib.sha1,
    hashlib.sha224,
    hashlib.sha256,
    hashlib.sha384,
    hashlib.sha512,
    hashlib.md5,
    hashlib.blake2b,
    hashlib.blake2s,
    hashlib.sha3_224,
    hashlib.sha3_256,
    hashlib.sha3_384,
    hashlib.sha3_512,
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """The resolved configuration of one Cache on one app.

    ``raw`` holds every CACHE_* key (defaults filled in) for backend factories.
    """

    raw: Mapping[str, t.Any]
    backend_name: str
    default_timeout: int | float
    source_check: bool
    hash_method: HashMethod
    enable_signals: bool
    #: one computation per missing key (see flask_caching.locks)
    lock: bool = False
    lock_timeout: float = 10.0
    stale_while_revalidate: int = 0
    stale_if_error: int = 0
    private_responses: str = "skip"
    #: add a Cache-Status header to request-keyed views' responses
    status_header: bool = False
    #: export the counters and backend latencies to Prometheus
    metrics: bool = False

    def __getitem__(self, name: str) -> t.Any:
        return self.raw[name]


def merge(
    app_config: Mapping[str, t.Any],
    *overrides: Mapping[str, t.Any] | None,
) -> dict[str, t.Any]:
    """Layer the defaults, app.config and the override dicts (later ones win)."""
    merged: dict[str, t.Any] = {}
    for name, (default, _types) in TABLE.items():
        merged[name] = _copy(default)
    # the whole app config: a custom backend factory may read any setting
    merged.update(app_config)
    for source in overrides:
        if source:
            merged.update(source)
    if isinstance(merged["CACHE_DEFAULT_TIMEOUT"], dt.timedelta):
        merged["CACHE_DEFAULT_TIMEOUT"] = math.ceil(
            merged["CACHE_DEFAULT_TIMEOUT"].total_seconds()
        )
    return merged


def _copy(value: t.Any) -> t.Any:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def validate(raw: Mapping[str, t.Any]) -> None:
    """Raise ConfigurationError naming the first setting whose type is wrong."""
    for name, (_default, types) in TABLE.items():
        value = raw.get(name)
        if value is None or types is None:
            continue
        bad_bool = name in _NO_BOOL and isinstance(value, bool)
        if bad_bool or not isinstance(value, types):
            expected = " or ".join(tp.__name__ for tp in types)
            raise ConfigurationError(
                f"{name} must be {expected}, got {type(value).__name__} {value!r}"
            )
    timeout = raw["CACHE_DEFAULT_TIMEOUT"]
    if timeout < 0:
        raise ConfigurationError(
            f"CACHE_DEFAULT_TIMEOUT must be >= 0 seconds (0 = never expire), got {timeout!r}"
        )
    if raw["CACHE_THRESHOLD"] < 0:
        raise ConfigurationError("CACHE_THRESHOLD must be >= 0")
    for name in ("CACHE_LOCK_TIMEOUT", "CACHE_STALE_WHILE_REVALIDATE"):
        _check_seconds(raw, name, positive=name == "CACHE_LOCK_TIMEOUT")
    _check_seconds(raw, "CACHE_STALE_IF_ERROR", positive=False)
    if raw["CACHE_FAILURE_THRESHOLD"] < 1:
        raise ConfigurationError(
            "CACHE_FAILURE_THRESHOLD (backend failures in a row before the decorators"
            f" stop calling it) must be >= 1, got {raw['CACHE_FAILURE_THRESHOLD']!r}"
        )
    cooldown = raw["CACHE_FAILURE_COOLDOWN"]
    if not (math.isfinite(cooldown) and cooldown >= 0):
        raise ConfigurationError(
            "CACHE_FAILURE_COOLDOWN must be a finite number of seconds >= 0 (0 = never"
            f" stop calling a failing backend), got {cooldown!r}"
        )
    if raw["CACHE_PRIVATE_RESPONSES"] not in PRIVATE_MODES:
        raise ConfigurationError(
            "CACHE_PRIVATE_RESPONSES must be 'skip' (do not store responses that "
            "may belong to one user) or 'allow', "
            f"got {raw['CACHE_PRIVATE_RESPONSES']!r}"
        )


def _check_seconds(raw: Mapping[str, t.Any], name: str, *, positive: bool) -> None:
    """Lock and staleness durations: numbers of seconds (> 0 for the lock lease,
    which must expire so a crashed holder cannot block its key for ever)."""
    value = raw[name]
    bound = "> 0" if positive else ">= 0"
    if (
        isinstance(value, bool)
        or not isinstance(value, _Number)
        or value != value
        or value in (float("inf"), float("-inf"))
        or (value <= 0 if positive else value < 0)
    ):
        raise ConfigurationError(
            f"{name} must be a finite number of seconds {bound}, got {value!r}"
        )


def resolve_hash_method(value: t.Any, setting: str = "CACHE_HASH_METHOD") -> HashMethod:
    """Accept a hashlib constructor or its name ("sha256"); fail naming *setting*."""
    if isinstance(value, str):
        try:
            hashlib.new(value)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"{setting}={value!r} is not a hash algorithm hashlib knows"
            ) from exc
        name = value
        return lambda data=b"": hashlib.new(name, data)
    if not callable(value):
        raise ConfigurationError(
            f"{setting} must be a hashlib constructor such as hashlib.sha256, "
            f"got {value!r}"
        )
    try:
        probe = value(b"flask_caching")
        probe.hexdigest()
    except Exception as exc:
        raise ConfigurationError(
            f"{setting}={value!r} does not behave like a hashlib constructor "
            "(called with bytes, it must return an object with hexdigest())"
        ) from exc
    return t.cast(HashMethod, value)


def build(
    app_config: Mapping[str, t.Any],
    *overrides: Mapping[str, t.Any] | None,
) -> Settings:
    """Merge, validate and freeze the settings for one Cache on one app."""
    raw = merge(app_config, *overrides)
    validate(raw)
    backend = raw["CACHE_TYPE"]
    name = backend if isinstance(backend, str) else ""
    if name in DEPRECATED:
        warnings.warn(
            f"CACHE_TYPE={name!r} is deprecated; use {DEPRECATED[name]!r}",
            DeprecationWarning,
            stacklevel=4,
        )
        name = DEPRECATED[name]
        raw["CACHE_TYPE"] = name
    return Settings(
        raw=raw,
        backend_name=name,
        default_timeout=raw["CACHE_DEFAULT_TIMEOUT"],
        source_check=raw["CACHE_SOURCE_CHECK"],
        hash_method=resolve_hash_method(raw["CACHE_HASH_METHOD"]),
        enable_signals=raw["CACHE_ENABLE_SIGNALS"],
        lock=raw["CACHE_LOCK"],
        lock_timeout=float(raw["CACHE_LOCK_TIMEOUT"]),
        stale_while_revalidate=math.ceil(raw["CACHE_STALE_WHILE_REVALIDATE"]),
        stale_if_error=math.ceil(raw["CACHE_STALE_IF_ERROR"]),
        private_responses=raw["CACHE_PRIVATE_RESPONSES"],
        status_header=raw["CACHE_STATUS_HEADER"],
        metrics=raw["CACHE_METRICS"],
    )


def unknown_settings(raw: Mapping[str, t.Any]) -> list[tuple[str, str | None]]:
    """``(name, nearest known name or None)`` for each CACHE_* setting in *raw*
    that nothing in the package reads (a misspelling, most likely)."""
    import difflib

    known = list(TABLE)
    found = []
    for name in raw:
        if isinstance(name, str) and name.startswith("CACHE_") and name not in TABLE:
            near = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
            found.append((name, near[0] if near else None))
    return found


def import_string(path: str, setting: str) -> t.Any:
    """Import ``package.module.attr`` (or ``package.module:attr``), naming *setting*."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ConfigurationError(
            f"{setting}={path!r} is neither a built-in name nor an import string "
            "like 'package.module.ClassName'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"{setting}={path!r}: cannot import module {module_name!r} ({exc})"
        ) from exc
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise ConfigurationError(
            f"{setting}={path!r}: module {module_name!r} has no attribute {attr!r}"
        ) from exc
