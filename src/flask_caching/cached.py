"""``@cache.cached``: cache a view (or any function) under a key built from the request.

Keys are released Flask-Caching's (:mod:`.view_keys`) and the value is stored as the
view returned it, so a mixed fleet shares entries. ``vary`` / ``vary_on_session``
views (ours alone) add the variant to the key and stamp every variant of a path with
one version key, so ``delete_cached`` drops them all.
"""

from __future__ import annotations

import inspect
import logging
import typing as t
from collections.abc import Callable

from flask import current_app, has_request_context
from werkzeug.exceptions import HTTPException

from . import cache_status
from .cached_response import CachedResponse
from .context import app_ctx, request_ctx, request_method
from .decorated import BoundCachedFunction as BoundCachedFunction
from .decorated import CachedFunction as CachedFunction
from .entry import MISS, Layout
from .flow import Flow, Outcome
from .lookup import NOT_READ
from .lookup import begin as lookup_begin
from .runtime import FAILED, Runtime
from .session_watch import Seen, watching_session
from .signals import cache_view_hit, cache_view_miss
from .stats import CallNote, CounterSlot, NotingGuard, log_hit, resolve
from .utils import join_generator
from .view_keys import VARY_VERSION_PREFIX as VARY_VERSION_PREFIX
from .view_keys import ViewKeyMethods, ViewKeys
from .view_miss import plain_miss
from .view_options import ViewOptions, ViewPlan, view_options
from .view_reporting import ViewReporting
from .view_results import seconds, to_payload
from .wrapping import wrap

logger = logging.getLogger("flask_caching")
#: logging's own memo of ``isEnabledFor`` per level (each setLevel clears it), read
#: by the hit path before it pays for the call (an empty dict: always call)
_LEVELS: dict[int, bool] = getattr(logger, "_cache", {})

P = t.ParamSpec("P")
R = t.TypeVar("R")
P2 = t.ParamSpec("P2")
R2 = t.TypeVar("R2")
S = t.TypeVar("S")

#: the response header set on hits when ``response_hit_indication=True``
HIT_HEADER = "hit_cache"

#: attribute on a ``@cached`` function: the key ``delete_cached`` deletes
DELETE_ATTR = "_flask_caching_delete_key"

#: the request methods whose responses may be read from and stored in the cache
SAFE_METHODS = frozenset(("GET", "HEAD"))


class CachedView(ViewKeyMethods, ViewReporting):
    """One ``@cached`` function: builds its keys, reads, and stores its results."""

    def __init__(
        self,
        f: Callable[..., t.Any],
        get_runtime: Callable[[], Runtime],
        owner: t.Any,
        opts: ViewOptions,
    ) -> None:
        self.f = f
        self.get_runtime = get_runtime
        self.owner = owner
        self.opts = opts
        #: names the function in the warning about a result that cannot be stored
        self.label = f"{getattr(f, '__module__', '?')}.{getattr(f, '__qualname__', f)}"
        self.keys = ViewKeys(
            f, opts.key_prefix, opts.query_string, opts.source_check, opts.hash_method
        )
        #: the key comes from the request's path or query, so only GET and HEAD
        #: requests may read or fill it (an explicit make_cache_key decides itself)
        self.by_request = opts.make_cache_key is None and (
            opts.query_string
            or (isinstance(opts.key_prefix, str) and "%s" in opts.key_prefix)
        )
        #: a hit is one plain read judged by "not None" (no is_stale, no cached None)
        self.plain_reads = opts.stale is None and not opts.cache_none
        #: what the settings of the runtime last seen say (:class:`.ViewPlan`)
        self._plan = ViewPlan(None, False, False, False, False)
        self._quick_setup(opts)
        #: this view's counters on the runtime last used (``Cache.stats()``)
        self.slot = CounterSlot(self.label)
        self.guard = _guard(f, get_runtime, opts)
        wrapper = wrap(
            f,
            self.quick if self.simple else self.begin,
            self.outcome_of,
            self.finish,
            catch=HTTPException,
            observe=watching_session,
        )
        self.wrapper = t.cast(CachedFunction[..., t.Any], wrapper)
        self.wrapper.uncached = f
        self.wrapper.cache_timeout = opts.timeout
        #: the key function the wrapper starts with; another one there was
        #: assigned by the user and becomes the key function
        self.own_key = self.make_key
        self.wrapper.make_cache_key = self.own_key  # type: ignore[method-assign]
        setattr(self.wrapper, DELETE_ATTR, self.target)

    def _quick_setup(self, opts: ViewOptions) -> None:
        """What :meth:`quick` needs, worked out once at decoration."""
        #: no option that changes the read: :meth:`quick` may answer the call
        self.simple = (
            opts.skip is None
            and opts.forced is None
            and self.plain_reads
            and opts.make_cache_key is None
            and self.keys.path_format is not None
            and opts.source_check is not True
        )
        #: (app, runtime, counters, the Cache's app memo, plain misses) of the
        #: runtime :meth:`quick` last used, once its plan says reads are plain
        self._fast: tuple[t.Any, t.Any, t.Any, t.Any, bool] = (None,) * 4 + (False,)
        #: the key of a :meth:`quick` call: this % the request path
        self.path_format = self.keys.path_format or ""
        #: the same as a prefix to add, when it has no other "%" (a concatenation
        #: costs a fifth of a format)
        head = self.path_format[:-2]
        self.path_head = (
            head if self.path_format.endswith("%s") and "%" not in head else None
        )
        #: no source_check given: the Cache's setting decides at each call
        self.inherits_source_check = opts.source_check is None
        #: a hit needs nothing from :meth:`finish` but its value
        self.bare_hits = not opts.response_hit_indication

    # -- a call ----------------------------------------------------------------

    def begin(
        self, args: tuple[t.Any, ...], kwargs: dict[str, t.Any]
    ) -> tuple[Runtime, str, t.Any, Flow | None] | None:
        """None to bypass the cache; else the hit's value or the miss's flow."""
        opts = self.opts
        if opts.skip is not None and opts.skip(self.f, *args, **kwargs):
            self.bypassed("bypass_unless", "unless")
            return None
        if self.by_request and request_method() not in SAFE_METHODS:
            # a POST (PUT, DELETE...) to a view routed for GET too must reach the
            # view, and its page must not be replayed to a GET (outside a request
            # there is no path to key on)
            self.bypassed("bypass_method", "method")
            return None
        rt = self.get_runtime()
        try:
            key = self.head(rt, args, kwargs)
            version_keys: tuple[str, ...] = ()
            if self.guard.keyed:
                key, version_key = self.vary_keys(rt, key, True)
                version_keys = (version_key,)
            force = opts.forced is not None and opts.forced(*args, **kwargs)
        except Exception as exc:
            self.slot.of(rt).errors += 1
            if self.status_on(rt):
                cache_status.announce("error")
            rt.failed("key", getattr(self.f, "__qualname__", "?"), exc)
            return None
        return rt, key, *self.lookup(rt, key, version_keys, force, args, kwargs)

    def quick(
        self, args: tuple[t.Any, ...], kwargs: dict[str, t.Any]
    ) -> tuple[Runtime, str, t.Any, Flow | None] | str | None:
        """The common view call (a GET of a view keyed by its path, no options that
        change the read) in as few steps as possible: a hit's page itself when
        nothing else is owed to the call (no signal, no hit header); any other call
        goes to :meth:`begin`. A miss hands its read on, so nothing is read twice.

        (Just over ~60 lines: every view hit runs it, so what a helper call would
        cost is inlined; benchmarks/README.md has the numbers.)"""
        ctx = request_ctx()
        if ctx is None:
            return self.begin(args, kwargs)
        current = ctx.request
        if current.method not in SAFE_METHODS:
            return self.begin(args, kwargs)
        app = app_ctx().app  # a request context comes with an app context
        fast = self._fast
        if fast[0] is not app or fast[3] is not self.owner._last:
            # another app, or init_app again (a new runtime): look it up
            rt = self.get_runtime()
            plan = self._plan
            if plan.runtime is not rt or not plan.plain:
                return self.begin(args, kwargs)  # the first call works the plan out
            counters = self.slot.of(rt)
            fast = self._fast = (app, rt, counters, self.owner._last, plan.plain_miss)
        rt = fast[1]
        if (
            self.guard.keyed
            or self.wrapper.make_cache_key is not self.own_key
            or (self.inherits_source_check and rt.owner.source_check)
        ):
            return self.begin(args, kwargs)
        head = self.path_head
        key = (
            head + current.path if head is not None else self.path_format % current.path
        )
        owner, breaker = rt.owner, rt.reads
        if (
            breaker.failures
            or breaker.open_until
            or getattr(owner.get, "__func__", None) is not rt.plain_get
        ):
            value = rt.read_one(key)  # the long way: an outage, an overridden get
        else:
            try:  # Runtime.read_one's healthy path, inline
                value = rt.backend.get(key)
            except Exception as exc:
                value = rt.read_failed(key, exc)
        counters = fast[2]
        if type(value) is str:  # a page: the usual hit
            counters.hits += 1
            if _LEVELS.get(logging.DEBUG, True) and logger.isEnabledFor(logging.DEBUG):
                log_hit(self.label, key)
            if self.bare_hits and not self.owner.enable_signals:
                return value
            return rt, key, value, None
        if value is None and fast[4]:  # the usual miss: see .view_miss
            timeout = seconds(self.wrapper.cache_timeout)
            return rt, key, MISS, plain_miss(rt, key, timeout, counters, self.label)
        found = None if value is FAILED else [value]
        return rt, key, *self.lookup(rt, key, (), False, args, kwargs, found)

    def lookup(
        self,
        rt: Runtime,
        key: str,
        version_keys: tuple[str, ...],
        force: bool,
        args: tuple[t.Any, ...],
        kwargs: dict[str, t.Any],
        found: t.Any = NOT_READ,
    ) -> tuple[t.Any, Flow | None]:
        """Read the entry (or use *found*, a plain read of *key* made already): a
        hit is counted here, a miss when its flow ends."""
        opts = self.opts
        plan = self._plan
        if plan.runtime is not rt:  # worked out once per runtime
            plan = self._plan = ViewPlan.of(rt, self.status_on(rt), opts)
        status = plan.status
        if (
            found is NOT_READ
            and self.plain_reads
            and not (version_keys or force or not plan.plain)
        ):
            # the common hit, answered without building the miss machinery: one
            # get, a value that is not None (lookup.begin would decide the same)
            found = rt.read([key])
        if found is not NOT_READ and found is not None:
            value = found[0]
            if value is not None and (type(value) is str or self.servable(value)):
                self.hit(rt, key)
                return value, None
        layout = Layout(
            key,
            # the meta key holds the freshness the header's ttl= tells
            meta=status or plan.meta,
            version_keys=version_keys,
            cache_none=opts.cache_none,
        )
        note = CallNote()
        stale = None if opts.stale is None else opts.stale(*args, **kwargs)
        payload, flow = self.begin_flow(rt, layout, found, force, stale, note)
        if flow is None and not self.servable(payload):
            # not something a view returns (a forged or foreign entry): a miss,
            # recomputed and stored over it
            payload, flow = self.begin_flow(rt, layout, NOT_READ, True, None, note)
        if flow is None:
            self.hit(rt, key)
            if status:
                cache_status.announce("hit", note.fresh_until)
            return payload, None
        done = self.announce if status else None
        counters = self.slot.of(rt)
        return payload, resolve(flow, counters, note, self.label, key, done)

    def begin_flow(
        self,
        rt: Runtime,
        layout: Layout,
        found: t.Any,
        force: bool,
        stale: t.Any,
        note: CallNote,
    ) -> tuple[t.Any, Flow | None]:
        """The engine's answer for *layout*: a hit's payload, or a miss's flow."""
        return lookup_begin(
            rt,
            layout,
            found=found,
            forced=force,
            is_stale=stale,
            timeout=seconds(self.wrapper.cache_timeout),
            locking=self.opts.locking,
            name=self.label,
            note=note,
        )

    def hit(self, rt: Runtime, key: str) -> None:
        """Count (and log) a hit."""
        self.slot.of(rt).hits += 1
        if logger.isEnabledFor(logging.DEBUG):
            log_hit(self.label, key)

    def outcome_of(self, rv: t.Any, seen: Seen | None = None) -> Outcome:
        """What a computation returns and stores (MISS: store nothing); *seen*
        says whether the function used the session."""
        opts = self.opts
        if inspect.isgenerator(rv):
            rv = join_generator(rv)
        if rv is None and not opts.cache_none:
            return Outcome(rv, MISS)
        if isinstance(rv, HTTPException):
            # released 2.5.1 caches an abort() and raises it again on hits
            accept = opts.response_filter is None or opts.response_filter(
                rv.get_response()
            )
            return Outcome(rv, rv if accept else MISS)
        if opts.response_filter is not None and not opts.response_filter(rv):
            return Outcome(rv, MISS)
        override = rv.timeout if isinstance(rv, CachedResponse) else None
        read = seen is not None and seen.read
        rv, payload = self.guard.admit(rv, to_payload, read)  # privacy, 5xx
        return Outcome(rv, payload, override or None)

    def finish(
        self,
        rt: Runtime,
        key: str,
        hit: bool,
        value: t.Any,
        args: tuple[t.Any, ...],
        kwargs: dict[str, t.Any],
    ) -> t.Any:
        """Signals, then the value (an HTTPException is raised, as it was)."""
        if getattr(self.owner, "enable_signals", False):
            signal = cache_view_hit if hit else cache_view_miss
            signal.send(
                self.owner, cache=self.owner, cache_key=key, args=args, kwargs=kwargs
            )
        if isinstance(value, HTTPException):
            raise value
        if hit and self.opts.response_hit_indication and has_request_context():
            value = current_app.make_response(value)
            value.headers[HIT_HEADER] = "True"
        return value


def _guard(
    f: Callable[..., t.Any], get_runtime: Callable[[], Runtime], opts: ViewOptions
) -> NotingGuard:
    """The privacy rules of one view (and the counters' view of its refusals)."""
    return NotingGuard(
        getattr(f, "__qualname__", repr(f)),
        lambda: get_runtime().settings.private_responses,
        private=opts.private,
        vary=opts.vary,
        vary_on_session=opts.vary_on_session,
        custom_key=opts.make_cache_key is not None,
        filtered=opts.response_filter is not None,
    )


def make_cached(
    get_runtime: Callable[[], Runtime], cache_owner: t.Any, **options: t.Any
) -> Callable[[Callable[P, R]], CachedFunction[P, R]]:
    """Build the ``@cached`` decorator; every option is checked now
    (:func:`.view_options.view_options`), not per call."""
    opts = view_options(**options)

    def decorator(f: Callable[P, R]) -> CachedFunction[P, R]:
        view = CachedView(f, get_runtime, cache_owner, opts)
        return t.cast(CachedFunction[P, R], view.wrapper)

    return decorator
