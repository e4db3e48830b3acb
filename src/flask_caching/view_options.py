"""The options of ``@cached``, checked once at decoration time, and what one
runtime's settings make of them (:class:`ViewPlan`)."""

from __future__ import annotations

import typing as t
from collections.abc import Callable, Iterable

from .locks import lock_options
from .options import (
    check_callable,
    check_timeout,
    forced_caller,
    stale_caller,
    unless_caller,
)
from .privacy import PrivateMode, check_private, parse_vary
from .utils import normalize_timeout

if t.TYPE_CHECKING:
    from .runtime import Runtime


class ViewOptions(t.NamedTuple):
    """A ``@cached`` decorator's options, checked once at decoration time."""

    timeout: int | None
    key_prefix: str | Callable[[], str]
    skip: Callable[..., bool] | None
    forced: Callable[..., bool] | None
    stale: Callable[..., Callable[[t.Any], bool]] | None
    response_filter: Callable[[t.Any], bool] | None
    query_string: bool
    hash_method: Callable[..., t.Any] | None
    cache_none: bool
    make_cache_key: Callable[..., str] | None
    source_check: bool | None
    response_hit_indication: bool
    locking: t.Any
    private: PrivateMode | None
    vary: tuple[t.Any, ...]
    vary_on_session: bool
    cache_status: bool | None


def view_options(
    *,
    timeout: int | None = None,
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
    vary: str | Iterable[str] | None = None,
    vary_on_session: bool = False,
    cache_status: bool | None = None,
) -> ViewOptions:
    """Check a ``@cached`` decorator's options at decoration time, so mistakes fail
    early and nothing is checked per call."""
    for name, value in (
        ("forced_update", forced_update),
        ("response_filter", response_filter),
        ("make_cache_key", make_cache_key),
        ("is_stale", is_stale),
        ("hash_method", hash_method),
    ):
        check_callable(value, name)
    opts = ViewOptions(
        timeout=check_timeout(normalize_timeout(timeout)),
        key_prefix=key_prefix,
        skip=unless_caller(unless),
        forced=forced_caller(forced_update),
        stale=stale_caller(is_stale),
        response_filter=response_filter,
        query_string=query_string,
        hash_method=hash_method,
        cache_none=cache_none,
        make_cache_key=make_cache_key,
        source_check=source_check,
        response_hit_indication=response_hit_indication,
        locking=lock_options(
            lock, lock_timeout, stale_while_revalidate, stale_if_error
        ),
        private=check_private(private),
        vary=tuple(parse_vary(vary)),
        vary_on_session=vary_on_session,
        cache_status=None if cache_status is None else bool(cache_status),
    )
    if not (isinstance(key_prefix, str) or callable(key_prefix)):
        raise TypeError(
            f"key_prefix must be a string or a callable, got {key_prefix!r}"
        )
    return opts


class ViewPlan(t.NamedTuple):
    """What one runtime's settings say for a view: worked out on its first call."""

    runtime: Runtime | None
    #: a Cache-Status header is added
    status: bool
    #: entries keep a meta key (their freshness)
    meta: bool
    #: neither: a hit is one plain read
    plain: bool
    #: also no lock and no staleness window: a miss is :func:`.view_miss.plain_miss`
    plain_miss: bool

    @classmethod
    def of(cls, rt: Runtime, status: bool, opts: ViewOptions) -> ViewPlan:
        """The plan of a view with *opts* on *rt* (*status*: its header is on)."""
        meta = opts.locking.keeps_meta(rt.settings)
        plain = not (status or meta)
        policy = opts.locking.resolve(rt.settings)
        return cls(rt, status, meta, plain, plain and not (policy.lock or policy.grace))
