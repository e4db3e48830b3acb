"""Reading a memoized call: its versions (remembered per process) and its value.

Released Flask-Caching reads the version keys, then the value key they imply: two
round trips. A :class:`.runtime.Runtime` remembers the versions it saw last, so
:func:`current_versions` reads the version keys *and* the value key the remembered
versions imply in one ``get_many``; only when another process changed a version
(``delete_memoized``) is the new value key read as well.
"""

from __future__ import annotations

import base64
import typing as t
import uuid
from collections.abc import Callable

from .entry import META_SUFFIX
from .memoize_keys import MemoizedKeys
from .runtime import Runtime


def new_version() -> str:
    """A fresh 6-character version string, as released Flask-Caching makes them."""
    return base64.b64encode(uuid.uuid4().bytes)[:6].decode("utf-8")


class Options(t.NamedTuple):
    """A memoize decorator's options that its calls read."""

    hash_method: Callable[..., t.Any] | None
    source_check: bool | None
    cache_none: bool
    locking: t.Any


def call_key(
    rt: Runtime, names: MemoizedKeys, opts: Options, args: t.Any, kwargs: t.Any
) -> str:
    """The value key of one call without its versions."""
    owner = rt.owner
    hasher = opts.hash_method or getattr(owner, "hash_method", None)
    check = opts.source_check
    if check is None:
        check = getattr(owner, "source_check", None)
    return names.base(
        args,
        kwargs,
        hasher or rt.settings.hash_method,
        bool(check if check is not None else rt.settings.source_check),
    )


def current_versions(
    rt: Runtime,
    version_keys: list[str],
    base: str,
    read_value: bool,
    meta: bool = False,
) -> tuple[list[str], list[t.Any] | None] | None:
    """The versions of *version_keys* (created when missing) and, with *read_value*,
    a read of the value key they imply (and of its meta key, with *meta*: what
    ``Layout.keys`` lists). None when the backend failed."""
    memo = rt.versions_seen
    seen = memo.get(version_keys[-1])
    n = len(version_keys)
    if seen is not None and len(seen) == n and read_value:
        found = rt.read([*version_keys, *_value_keys(base + "".join(seen), meta)])
        if found is None:
            return None
        if found[:n] == seen:
            return seen, found[n:]
        versions: list[t.Any] | None = found[:n]
    else:
        versions = rt.read(version_keys, many=True)  # get_many, as released reads
    if versions is None:
        return None
    if not all(type(v) is str for v in versions):
        made = rt.ensure_versions(
            version_keys, versions, 0, len(version_keys), make=new_version
        )
        if made is None:
            return None
        versions = list(made)
    rt.remember_versions(version_keys[-1], versions)
    if not read_value:
        return versions, None
    return versions, rt.read(_value_keys(base + "".join(versions), meta))


def _value_keys(key: str, meta: bool) -> list[str]:
    """The keys a memoized call's entry is read from (see :class:`.entry.Layout`)."""
    return [key, key + META_SUFFIX] if meta else [key]
