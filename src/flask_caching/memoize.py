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

import inspect
import logging
import typing as t
from collections.abc import Callable

from .cached import CachedFunction
from .entry import MISS, Layout
from .flow import Flow, Outcome
from .locks import lock_options
from .lookup import begin as lookup_begin
from .memoize_keys import VERSION_SUFFIX, MemoizedKeys
from .memoize_versions import Options, call_key, current_versions, new_version
from .options import (
    check_callable,
    check_timeout,
    forced_caller,
    stale_caller,
    unless_caller,
)
from .runtime import Runtime
from .signals import cache_memoize_hit, cache_memoize_miss
from .stats import CallNote, CounterSlot, bump, log_hit, resolve
from .utils import join_generator, normalize_timeout
from .wrapping import wrap

logger = logging.getLogger("flask_caching")

P = t.ParamSpec("P")
R = t.TypeVar("R")

#: attribute on the decorated function holding its :class:`MemoizedKeys`
KEYS_ATTR = "_flask_caching_memoize"


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
    calls = Calls(
        unless_caller(unless),
        forced_caller(forced_update),
        stale_caller(is_stale),
        response_filter,
    )
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
        memo = MemoizedFunction(f, names, get_runtime, cache_owner, opts, calls)
        memo.wrapper.cache_timeout = timeout
        return t.cast(CachedFunction[P, R], memo.wrapper)

    return decorator


class Calls(t.NamedTuple):
    """A memoize decorator's callbacks, adapted to released's calling conventions."""

    skip: Callable[..., bool] | None
    forced: Callable[..., bool] | None
    stale: Callable[..., Callable[[t.Any], bool]] | None
    response_filter: Callable[[t.Any], bool] | None


class MemoizedFunction:
    """One ``@memoize`` function: names its keys, reads, and stores its results."""

    def __init__(
        self,
        f: Callable[..., t.Any],
        names: MemoizedKeys,
        get_runtime: Callable[[], Runtime],
        owner: t.Any,
        opts: Options,
        calls: Calls,
    ) -> None:
        self.f = f
        self.names = names
        self.get_runtime = get_runtime
        self.owner = owner
        self.opts = opts
        self.calls = calls
        #: this function's counters on the runtime last used (``Cache.stats()``)
        self.slot = CounterSlot(names.name)
        wrapper = wrap(f, self.begin, self.outcome_of, self.finish)
        self.wrapper = t.cast(CachedFunction[..., t.Any], wrapper)
        self.wrapper.uncached = f
        self.wrapper.make_cache_key = self.make_key  # type: ignore[method-assign]
        wrapper.delete_memoized = lambda: owner.delete_memoized(wrapper)  # type: ignore[attr-defined]
        setattr(wrapper, KEYS_ATTR, names)

    def outcome_of(self, rv: t.Any) -> Outcome:
        """What a computation returns and stores (MISS: store nothing)."""
        if inspect.isgenerator(rv):
            rv = join_generator(rv)
        if rv is None and not self.opts.cache_none:
            return Outcome(rv, MISS)
        accept = self.calls.response_filter
        if accept is not None and not accept(rv):
            return Outcome(rv, MISS)
        return Outcome(rv, rv)

    def begin(
        self, args: tuple[t.Any, ...], kwargs: dict[str, t.Any]
    ) -> tuple[Runtime, str, t.Any, Flow | None] | None:
        """None to bypass the cache; else the hit's value or the miss's flow."""
        calls = self.calls
        if calls.skip is not None and calls.skip(self.f, *args, **kwargs):
            self.bypassed()
            return None
        rt = self.get_runtime()
        try:
            force = calls.forced is not None and calls.forced(*args, **kwargs)
            version_keys = self.names.version_keys(args)
            base = call_key(rt, self.names, self.opts, args, kwargs)
        except Exception as exc:
            self.slot.of(rt).errors += 1
            rt.failed("key", self.names.name, exc)
            return None
        return rt, *self.lookup(rt, version_keys, base, force, args, kwargs)

    def lookup(
        self,
        rt: Runtime,
        version_keys: list[str],
        base: str,
        force: bool,
        args: tuple[t.Any, ...],
        kwargs: dict[str, t.Any],
    ) -> tuple[str, t.Any, Flow | None]:
        """Read the versions and the value (one round trip when the versions are
        the remembered ones), then hand the engine the call's entry."""
        opts = self.opts
        meta = opts.locking.keeps_meta(rt.settings)
        read = current_versions(rt, version_keys, base, not force, meta)
        versions = read[0] if read is not None else []
        key = base + "".join(versions)
        layout = Layout(
            key,
            meta=meta,
            cache_none=opts.cache_none,
            extra=dict(zip(version_keys, versions, strict=False)),
        )
        stale = self.calls.stale
        note = CallNote()
        name = self.names.name
        value, flow = lookup_begin(
            rt,
            layout,
            found=None if read is None else read[1],
            forced=force,
            is_stale=None if stale is None else stale(*args, **kwargs),
            timeout=normalize_timeout(self.wrapper.cache_timeout),
            locking=opts.locking,
            name=name,
            note=note,
        )
        counters = self.slot.of(rt)
        if flow is None:
            counters.hits += 1
            if logger.isEnabledFor(logging.DEBUG):
                log_hit(name, key)
            return key, value, None
        return key, value, resolve(flow, counters, note, name, key)

    def bypassed(self) -> None:
        """Count a call ``unless`` sent around the cache (outside an app: none)."""
        try:
            rt = self.get_runtime()
        except RuntimeError:
            return
        bump(self.slot.of(rt), "bypass_unless")
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("cache bypassed for %s (unless)", self.names.name)

    def finish(
        self,
        rt: Runtime,
        key: str,
        hit: bool,
        value: t.Any,
        args: tuple[t.Any, ...],
        kwargs: dict[str, t.Any],
    ) -> t.Any:
        """Signals, then the value."""
        owner = self.owner
        if getattr(owner, "enable_signals", False):
            (cache_memoize_hit if hit else cache_memoize_miss).send(
                owner, cache=owner, cache_key=key, f=self.f, args=args, kwargs=kwargs
            )
        return value

    def make_key(self, *args: t.Any, **kwargs: t.Any) -> str:
        """The value key of ``f(*args, **kwargs)`` (reads the current versions).

        ``make_cache_key(f.uncached, *args, **kwargs)``, the spelling released
        Flask-Caching uses, gives the same key.
        """
        if args and (args[0] is self.f or args[0] is self.wrapper):
            args = args[1:]
        rt = self.get_runtime()
        version_keys = self.names.version_keys(args)
        base = call_key(rt, self.names, self.opts, args, kwargs)
        read = current_versions(rt, version_keys, base, False)
        return base + "".join(read[0] if read is not None else [])


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
