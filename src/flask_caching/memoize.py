"""``@cache.memoize``: cache a function per distinct call, and delete those entries.

Keys are released Flask-Caching's (see :mod:`.memoize_keys`): the value key ends in
the version strings of the function (and instance), so deleting every entry is one
write of a new version. Released Flask-Caching reads the versions, then the value:
two round trips. This process remembers the versions it saw last (per version key,
bounded) and reads the versions *and* the value key they imply in one ``get_many``;
when the versions read are the remembered ones that value is the answer. When they
changed (another process ran ``delete_memoized``) the new value key is read too.
"""

from __future__ import annotations

import base64
import inspect
import logging
import typing as t
import uuid
from collections.abc import Callable

from .cached import CachedFunction
from .entry import META_SUFFIX, MISS, Layout
from .flow import Flow, Outcome
from .locks import lock_options
from .lookup import begin as lookup_begin
from .memoize_keys import VERSION_SUFFIX, MemoizedKeys
from .options import (
    check_callable,
    check_timeout,
    forced_caller,
    stale_caller,
    unless_caller,
)
from .runtime import Runtime
from .signals import cache_memoize_hit, cache_memoize_miss
from .utils import join_generator, normalize_timeout
from .wrapping import wrap

logger = logging.getLogger("flask_caching")

P = t.ParamSpec("P")
R = t.TypeVar("R")

#: attribute on the decorated function holding its :class:`MemoizedKeys`
KEYS_ATTR = "_flask_caching_memoize"


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


def make_memoize(
    get_runtime: Callable[[], Runtime],
    cache_owner: t.Any,
    *,
    timeout: int | None = None,
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
    """Build the ``@memoize`` decorator; options are checked at decoration time."""
    timeout = check_timeout(normalize_timeout(timeout))
    for name, value in (
        ("make_name", make_name),
        ("forced_update", forced_update),
        ("response_filter", response_filter),
        ("is_stale", is_stale),
        ("hash_method", hash_method),
    ):
        check_callable(value, name)
    if isinstance(args_to_ignore, str):
        args_to_ignore = [args_to_ignore]
    skip = unless_caller(unless)
    forced = forced_caller(forced_update)
    stale = stale_caller(is_stale)
    locking = lock_options(lock, lock_timeout, stale_while_revalidate, stale_if_error)
    opts = Options(hash_method, source_check, cache_none, locking)

    def decorator(f: Callable[P, R]) -> CachedFunction[P, R]:
        if isinstance(f, (classmethod, staticmethod)):
            raise TypeError(
                "@memoize must be applied below @classmethod/@staticmethod "
                "(put @classmethod on top)"
            )
        names = MemoizedKeys(
            f, make_name, args_to_ignore or (), source_check, hash_method
        )

        def outcome_of(rv: t.Any) -> Outcome:
            if inspect.isgenerator(rv):
                rv = join_generator(rv)
            if rv is None and not cache_none:
                return Outcome(rv, MISS)
            if response_filter is not None and not response_filter(rv):
                return Outcome(rv, MISS)
            return Outcome(rv, rv)

        def begin(
            args: tuple[t.Any, ...], kwargs: dict[str, t.Any]
        ) -> tuple[Runtime, str, t.Any, Flow | None] | None:
            """None to bypass the cache; else the hit's value or the miss's flow."""
            if skip is not None and skip(f, *args, **kwargs):
                return None
            rt = get_runtime()
            try:
                force = forced is not None and forced(*args, **kwargs)
                version_keys = names.version_keys(args)
                base = call_key(rt, names, opts, args, kwargs)
            except Exception as exc:
                rt.failed("key", names.name, exc)
                return None
            return rt, *_lookup(rt, version_keys, base, force, args, kwargs)

        def _lookup(
            rt: Runtime,
            version_keys: list[str],
            base: str,
            force: bool,
            args: tuple[t.Any, ...],
            kwargs: dict[str, t.Any],
        ) -> tuple[str, t.Any, Flow | None]:
            meta = locking.keeps_meta(rt.settings)
            read = current_versions(rt, version_keys, base, not force, meta)
            versions = read[0] if read is not None else []
            key = base + "".join(versions)
            layout = Layout(
                key,
                meta=meta,
                cache_none=cache_none,
                extra=dict(zip(version_keys, versions, strict=False)),
            )
            value, flow = lookup_begin(
                rt,
                layout,
                found=None if read is None else read[1],
                forced=force,
                is_stale=None if stale is None else stale(*args, **kwargs),
                timeout=normalize_timeout(wrapper.cache_timeout),
                locking=locking,
                name=names.name,
            )
            return key, value, flow

        def finish(
            rt: Runtime,
            key: str,
            hit: bool,
            value: t.Any,
            args: tuple[t.Any, ...],
            kwargs: dict[str, t.Any],
        ) -> t.Any:
            if getattr(cache_owner, "enable_signals", False):
                (cache_memoize_hit if hit else cache_memoize_miss).send(
                    cache_owner,
                    cache=cache_owner,
                    cache_key=key,
                    f=f,
                    args=args,
                    kwargs=kwargs,
                )
            return value

        wrapper = t.cast(CachedFunction[P, R], wrap(f, begin, outcome_of, finish))

        def make_key(*args: t.Any, **kwargs: t.Any) -> str:
            """The value key of ``f(*args, **kwargs)`` (reads the current versions).

            ``make_cache_key(f.uncached, *args, **kwargs)``, the spelling released
            Flask-Caching uses, gives the same key.
            """
            if args and (args[0] is f or args[0] is wrapper):
                args = args[1:]
            rt = get_runtime()
            version_keys = names.version_keys(args)
            base = call_key(rt, names, opts, args, kwargs)
            read = current_versions(rt, version_keys, base, False)
            return base + "".join(read[0] if read is not None else [])

        wrapper.uncached = f
        wrapper.cache_timeout = timeout
        wrapper.make_cache_key = make_key  # type: ignore[method-assign]
        wrapper.delete_memoized = lambda: cache_owner.delete_memoized(wrapper)  # type: ignore[attr-defined]
        setattr(wrapper, KEYS_ATTR, names)
        return wrapper

    return decorator


def _target(f: t.Any) -> tuple[MemoizedKeys, t.Any] | None:
    """The memoize key-namer behind *f* and what it is bound to; None when *f* is
    not memoized."""
    bound_to = getattr(f, "__self__", None) if inspect.ismethod(f) else None
    func = f.__func__ if inspect.ismethod(f) else f
    names = getattr(func, KEYS_ATTR, None)
    if not isinstance(names, MemoizedKeys):
        return None
    return names, bound_to


def _not_memoized(f: t.Any, what: str) -> bool:
    """Released Flask-Caching refuses only non-callables; a callable that is not
    memoized has nothing to delete (a DEBUG line says so)."""
    if not callable(f):
        raise TypeError(
            "Deleting messages by relative name is not supported, please use a "
            "function reference."
        )
    logger.debug("%s(%r): not a @memoize-decorated function, nothing to do", what, f)
    return True


def delete_memoized(rt: Runtime, f: t.Any, *args: t.Any, **kwargs: t.Any) -> None:
    """Invalidate memoized entries of *f*.

    With no arguments every entry of *f* goes (for a method of an instance, that
    instance's entries): a new version is written. With arguments only the entry
    of that exact call is deleted.
    """
    target = _target(f)
    if target is None:
        _not_memoized(f, "delete_memoized")
        return
    names, bound_to = target
    instance = (
        bound_to if bound_to is not None and not inspect.isclass(bound_to) else None
    )
    if args or kwargs:
        if (
            instance is not None
            and names.arguments.first == "self"
            and not (args and args[0] is instance)
        ):
            args = (instance, *args)
        elif (
            bound_to is not None
            and names.is_classmethod
            and not (args and args[0] is bound_to)
        ):
            args = (bound_to, *args)
        rt.owner.delete(t.cast(t.Any, f).make_cache_key(*args, **kwargs))
        return
    key = _version_key(names, instance)
    rt.owner.set_many({key: new_version()}, timeout=0)


def _version_key(names: MemoizedKeys, instance: t.Any) -> str:
    """The version key a delete acts on: the instance's, else the function's."""
    if instance is not None and names.is_method:
        return names.version_keys((instance,))[-1]
    return names.namespace + VERSION_SUFFIX


def delete_memoized_verhash(rt: Runtime, f: t.Any) -> None:
    """Drop *f*'s version key, which invalidates every entry of *f*."""
    target = _target(f)
    if target is None:
        _not_memoized(f, "delete_memoized_verhash")
        return
    names, bound_to = target
    instance = (
        bound_to if bound_to is not None and not inspect.isclass(bound_to) else None
    )
    rt.owner.delete_many(_version_key(names, instance))
