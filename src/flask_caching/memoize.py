"""``@cache.memoize``: cache a function per distinct call, and delete those entries.

Keys (all sharing one Redis Cluster hash tag, so they are read together)::

    {module.qualname}:<digest of the normalised arguments>   the value
    {module.qualname}:ver                                     the function's version
    {module.qualname}:ver:<digest of self>                    one instance's version

A call reads its value key and version key(s) with one ``get_many``; the stored entry
carries the versions it was written under, so a hit is one round trip. Deleting all
of a function's (or an instance's) entries is one write of a new version.
"""

from __future__ import annotations

import inspect
import typing as t
from collections.abc import Callable

from .cached import CachedFunction
from .entry import MISS
from .flow import Flow, Outcome
from .keys import ArgumentKey, canonical, digest, function_name, hash_tag, source_digest
from .locks import lock_options
from .lookup import begin as lookup_begin
from .options import check_callable, check_timeout, unless_caller
from .runtime import Runtime, new_version
from .signals import cache_memoize_hit, cache_memoize_miss
from .wrapping import wrap

P = t.ParamSpec("P")
R = t.TypeVar("R")

#: attribute on the decorated function holding its :class:`MemoizedKeys`
KEYS_ATTR = "_flask_caching_memoize"


class MemoizedKeys:
    """Everything needed to name one memoized function's keys, fixed at decoration."""

    def __init__(
        self,
        f: Callable[..., t.Any],
        make_name: Callable[[str], str] | None,
        args_to_ignore: t.Iterable[str],
        source_check: bool | None,
        hash_method: Callable[..., t.Any] | None,
    ) -> None:
        self.f = f
        name = function_name(f)
        if make_name is not None:
            name = make_name(name)
        self.name = name
        self.arguments = ArgumentKey(f, args_to_ignore)
        first = self.arguments.first_name
        #: the first argument is an instance whose entries can be dropped together
        self.is_method = first == "self"
        self.source_check = source_check
        self.hash_method = hash_method
        self._tags: dict[tuple[t.Any, bool], str] = {}

    def tag(self, rt: Runtime) -> str:
        hasher = self.hash_method or rt.settings.hash_method
        check = self.source_check
        if check is None:
            check = rt.settings.source_check
        cached = self._tags.get((hasher, check))
        if cached is None:
            name = self.name
            if check:
                name += ":" + source_digest(self.f, hasher)
            cached = self._tags[(hasher, check)] = hash_tag(name)
        return cached

    def keys(
        self, rt: Runtime, args: tuple[t.Any, ...], kwargs: dict[str, t.Any]
    ) -> tuple[str, list[str]]:
        """The value key of one call and the version keys it is checked against."""
        hasher = self.hash_method or rt.settings.hash_method
        tag = self.tag(rt)
        value_key = f"{tag}:{digest(self.arguments.key(args, kwargs), hasher)}"
        versions = [f"{tag}:ver"]
        if self.is_method:
            # Foo.method(self=obj) binds the instance too (the key() above raised
            # already if the call has no "self" at all)
            instance = args[0] if args else kwargs["self"]
            versions.append(self.instance_version_key(rt, instance))
        return value_key, versions

    def instance_version_key(self, rt: Runtime, instance: t.Any) -> str:
        hasher = self.hash_method or rt.settings.hash_method
        return f"{self.tag(rt)}:ver:{digest(canonical(instance), hasher)}"

    def function_version_key(self, rt: Runtime) -> str:
        return f"{self.tag(rt)}:ver"


def make_memoize(
    get_runtime: Callable[[], Runtime],
    cache_owner: t.Any,
    *,
    timeout: int | None = None,
    make_name: Callable[[str], str] | None = None,
    unless: Callable[..., bool] | None = None,
    forced_update: Callable[[], bool] | None = None,
    response_filter: Callable[[t.Any], bool] | None = None,
    hash_method: Callable[..., t.Any] | None = None,
    cache_none: bool = False,
    source_check: bool | None = None,
    args_to_ignore: t.Iterable[str] | None = None,
    is_stale: Callable[[t.Any], bool] | None = None,
    lock: bool | None = None,
    lock_timeout: float | None = None,
    stale_while_revalidate: float | None = None,
    stale_if_error: float | None = None,
) -> Callable[[Callable[P, R]], CachedFunction[P, R]]:
    """Build the ``@memoize`` decorator; options are checked at decoration time."""
    timeout = check_timeout(timeout)
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
    locking = lock_options(lock, lock_timeout, stale_while_revalidate, stale_if_error)

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
            key, version_keys = names.keys(rt, args, kwargs)
            value, flow = lookup_begin(
                rt,
                key,
                version_keys,
                forced=bool(forced_update()) if forced_update is not None else False,
                is_stale=is_stale,
                timeout=wrapper.cache_timeout,
                locking=locking,
                name=names.name,
            )
            return rt, key, value, flow

        def signal(
            rt: Runtime, hit: bool, key: str, args: t.Any, kwargs: t.Any
        ) -> None:
            if rt.settings.enable_signals:
                (cache_memoize_hit if hit else cache_memoize_miss).send(
                    cache_owner,
                    cache=cache_owner,
                    cache_key=key,
                    args=args,
                    kwargs=kwargs,
                    f=f,
                )

        def finish(
            rt: Runtime,
            key: str,
            hit: bool,
            value: t.Any,
            args: tuple[t.Any, ...],
            kwargs: dict[str, t.Any],
        ) -> t.Any:
            signal(rt, hit, key, args, kwargs)
            return value

        wrapper = t.cast(CachedFunction[P, R], wrap(f, begin, outcome_of, finish))

        def make_key(*args: t.Any, **kwargs: t.Any) -> str:
            """The value key of ``f(*args, **kwargs)``.

            ``make_cache_key(f.uncached, *args, **kwargs)``, the older spelling that
            passes the function first, gives the same key.
            """
            if args and (args[0] is f or args[0] is wrapper):
                args = args[1:]
            return names.keys(get_runtime(), args, kwargs)[0]

        def delete(*args: t.Any, **kwargs: t.Any) -> None:
            """Drop this function's entries (all of them, or one call's)."""
            delete_memoized(get_runtime(), wrapper, *args, **kwargs)

        wrapper.uncached = f
        wrapper.cache_timeout = timeout
        wrapper.make_cache_key = make_key  # type: ignore[method-assign]
        wrapper.delete_memoized = delete  # type: ignore[attr-defined]
        setattr(wrapper, KEYS_ATTR, names)
        return wrapper

    return decorator


def _target(f: t.Any) -> tuple[MemoizedKeys, t.Any]:
    """The memoize key-namer behind *f*, and the instance/class it is bound to."""
    bound_to = getattr(f, "__self__", None) if inspect.ismethod(f) else None
    func = f.__func__ if inspect.ismethod(f) else f
    names = getattr(func, KEYS_ATTR, None)
    if not isinstance(names, MemoizedKeys):
        raise TypeError(
            f"{f!r} is not a @memoize-decorated function; "
            "pass the decorated function (or a method of an instance)"
        )
    return names, bound_to


def delete_memoized(rt: Runtime, f: t.Any, *args: t.Any, **kwargs: t.Any) -> None:
    """Invalidate memoized entries of *f*.

    With no arguments every entry of *f* goes (for a method of an instance, that
    instance's entries); with arguments only the entry of that exact call goes.
    """
    names, bound_to = _target(f)
    explicit = bool(args or kwargs)
    if explicit and bound_to is not None and not (args and args[0] is bound_to):
        args = (bound_to, *args)
    if explicit:
        value_key, _ = names.keys(rt, args, kwargs)
        rt.backend.delete(value_key)
        return
    if bound_to is not None and names.is_method:
        # dropping the instance's version key is enough: the next write creates a
        # new one (with its expiry), and entries stamped with the old one miss
        rt.backend.delete(names.instance_version_key(rt, bound_to))
    else:
        rt.backend.set(names.function_version_key(rt), new_version(), timeout=0)


def delete_memoized_verhash(rt: Runtime, f: t.Any) -> None:
    """Drop *f*'s version key, which invalidates every entry of *f*."""
    names, _ = _target(f)
    rt.backend.delete(names.function_version_key(rt))
