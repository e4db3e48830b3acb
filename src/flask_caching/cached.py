"""``@cache.cached``: cache a view (or any function) under a key built from the request.

The key is ``key_prefix`` with ``%s`` replaced by ``request.path`` (plus a digest of
the sorted query arguments with ``query_string=True``), unless ``make_cache_key``
builds it. Responses are stored as data (status, headers, body) and rebuilt on a hit.
"""

from __future__ import annotations

import logging
import typing as t
from collections.abc import Callable, Iterable, Iterator, Mapping

from flask import current_app, has_request_context, request
from typing_extensions import Self
from werkzeug.wrappers import Response

from .context import app_or_none, request_path
from .entry import MISS, data_to_response, is_response_data, response_to_data
from .flow import Flow, Outcome
from .keys import digest, query_digest, source_digest
from .locks import lock_options
from .lookup import begin as lookup_begin
from .options import check_callable, check_timeout, unless_caller
from .privacy import Guard, PrivateMode, check_private, parse_vary
from .runtime import Runtime
from .signals import cache_view_hit, cache_view_miss
from .wrapping import wrap

logger = logging.getLogger("flask_caching")

P = t.ParamSpec("P")
R = t.TypeVar("R")
P2 = t.ParamSpec("P2")
R2 = t.TypeVar("R2")
S = t.TypeVar("S")

#: the response header set on hits when ``response_hit_indication=True``
HIT_HEADER = "hit_cache"

#: attribute on a ``@cached`` function: the key ``delete_cached`` deletes
DELETE_ATTR = "_flask_caching_delete_key"

#: version keys of ``vary`` views: one per path and query, so they expire
VARY_VERSION_PREFIX = "fc-vary-ver:"


class CachedResponse(Response):
    """A response that carries its own cache timeout, which wins over the decorator's.

    ``return CachedResponse(response=make_response(...), timeout=50)``
    """

    timeout: int | None

    def __init__(self, response: t.Any = None, timeout: int | None = None, **kw: t.Any):
        if isinstance(response, Response):
            super().__init__(
                response.get_data(),
                status=response.status_code,
                headers=response.headers,
                **kw,
            )
        else:
            super().__init__(response, **kw)
        self.timeout = check_timeout(timeout)


class BoundCachedFunction(t.Protocol[P, R]):
    """A decorated method looked up on an instance (``obj.method``).

    ``uncached`` is still the plain function: pass the instance to it yourself.
    """

    cache_timeout: int | None

    uncached: Callable[..., R]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def make_cache_key(self, *args: t.Any, **kwargs: t.Any) -> str: ...


class CachedFunction(t.Protocol[P, R]):
    """What ``@cached`` / ``@memoize`` return: the function plus its cache controls.

    Type checkers see the wrapped function's own signature (``P``, ``R``), also
    when the decorated function is a method called on an instance.
    """

    cache_timeout: int | None

    uncached: Callable[P, R]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def make_cache_key(self, *args: t.Any, **kwargs: t.Any) -> str: ...

    @t.overload
    def __get__(self, instance: None, owner: type[t.Any] | None = None) -> Self: ...

    @t.overload
    def __get__(
        self: CachedFunction[t.Concatenate[S, P2], R2],
        instance: S,
        owner: type[t.Any] | None = None,
    ) -> BoundCachedFunction[P2, R2]: ...

    def __get__(self, instance: t.Any, owner: type[t.Any] | None = None) -> t.Any: ...


def _materialize(rv: t.Any) -> tuple[t.Any, bool]:
    """Turn a generator/iterator result into its full body; False = cannot cache it."""
    if isinstance(rv, (str, bytes, dict, list, tuple, Response)) or rv is None:
        return rv, True
    if isinstance(rv, Iterator):  # generators included
        items = list(rv)
        if all(isinstance(i, str) for i in items):
            return "".join(items), True
        if all(isinstance(i, bytes) for i in items):
            return b"".join(items), True
        return iter(items), False
    return rv, True


def _to_payload(rv: t.Any) -> t.Any:
    """What to store for a result: responses become data, the rest stays as is."""
    if isinstance(rv, Response):
        if rv.direct_passthrough:
            return MISS  # a file stream (send_file): not ours to buffer
        return response_to_data(rv)
    if type(rv) is tuple and rv and isinstance(rv[0], Response):
        response = current_app.make_response(rv)
        return response_to_data(response)
    return rv


def _serves_request(view: t.Any) -> bool:
    """Whether *view* is the view function of the current request's endpoint."""
    if not has_request_context():
        return False
    endpoint = request.endpoint
    return endpoint is not None and current_app.view_functions.get(endpoint) is view


def _from_payload(payload: t.Any) -> t.Any:
    if type(payload) is str:  # the common view result, without a call
        return payload
    if is_response_data(payload):
        app = app_or_none() or current_app
        return data_to_response(payload, app.response_class)
    return payload


def _query_pairs(query_args: t.Any) -> Iterable[tuple[str, str]]:
    if query_args is None:
        return request.args.items(multi=True)
    if isinstance(query_args, str):
        from urllib.parse import parse_qsl

        return parse_qsl(query_args, keep_blank_values=True)
    if isinstance(query_args, Mapping):
        pairs: list[tuple[str, str]] = []
        for k, v in query_args.items():
            values = v if isinstance(v, (list, tuple)) else [v]
            pairs.extend((str(k), str(item)) for item in values)
        return pairs
    return [(str(k), str(v)) for k, v in query_args]


def make_cached(
    get_runtime: Callable[[], Runtime],
    cache_owner: t.Any,
    *,
    timeout: int | None = None,
    key_prefix: str | Callable[[], str] = "view/%s",
    unless: Callable[..., bool] | None = None,
    forced_update: Callable[[], bool] | None = None,
    response_filter: Callable[[t.Any], bool] | None = None,
    query_string: bool = False,
    hash_method: Callable[..., t.Any] | None = None,
    cache_none: bool = False,
    make_cache_key: Callable[..., str] | None = None,
    source_check: bool | None = None,
    response_hit_indication: bool = False,
    is_stale: Callable[[t.Any], bool] | None = None,
    lock: bool | None = None,
    lock_timeout: float | None = None,
    stale_while_revalidate: float | None = None,
    stale_if_error: float | None = None,
    private: PrivateMode | None = None,
    vary: str | Iterable[str] | None = None,
    vary_on_session: bool = False,
) -> Callable[[Callable[P, R]], CachedFunction[P, R]]:
    """Build the ``@cached`` decorator; every option is checked here, not per call."""
    timeout = check_timeout(timeout)
    for name, value in (
        ("forced_update", forced_update),
        ("response_filter", response_filter),
        ("make_cache_key", make_cache_key),
        ("is_stale", is_stale),
        ("hash_method", hash_method),
    ):
        check_callable(value, name)
    if not (isinstance(key_prefix, str) or callable(key_prefix)):
        raise TypeError(
            f"key_prefix must be a string or a callable, got {key_prefix!r}"
        )
    skip = unless_caller(unless)
    locking = lock_options(lock, lock_timeout, stale_while_revalidate, stale_if_error)
    private = check_private(private)
    vary_on = parse_vary(vary)
    stale: Callable[[t.Any], bool] | None = None
    if is_stale is not None:
        check_stale = is_stale

        def stale(payload: t.Any) -> bool:
            # the callable sees what the view returned, not the stored form
            return bool(check_stale(_from_payload(payload)))

    def decorator(f: Callable[P, R]) -> CachedFunction[P, R]:
        # names the function in the warning about a result that cannot be stored
        label = f"{getattr(f, '__module__', '?')}.{getattr(f, '__qualname__', f)}"
        src_cache: dict[t.Any, str] = {}
        guard = Guard(
            getattr(f, "__qualname__", repr(f)),
            lambda: get_runtime().settings.private_responses,
            private=private,
            vary=vary_on,
            vary_on_session=vary_on_session,
            custom_key=make_cache_key is not None,
            filtered=response_filter is not None,
        )

        static_prefix = key_prefix if isinstance(key_prefix, str) else ""
        formatted = "%s" in static_prefix
        plain_key = (
            make_cache_key is None
            and isinstance(key_prefix, str)
            and not query_string
            and hash_method is None
            and not guard.keyed
        )

        def source_suffix(rt: Runtime, hasher: Callable[..., t.Any]) -> str:
            check = (
                source_check if source_check is not None else rt.settings.source_check
            )
            if not check:
                return ""
            digest = src_cache.get(hasher)
            if digest is None:
                digest = src_cache[hasher] = source_digest(f, hasher)
            return ":" + digest

        def build_keys(
            rt: Runtime,
            args: tuple[t.Any, ...],
            kwargs: dict[str, t.Any],
            path: str | None = None,
            query_args: t.Any = None,
            read_vary: bool = True,
        ) -> tuple[str, str | None]:
            """The entry key, and for a ``vary`` view the version key of its base key.

            Every variant of one base key (the key without the vary part) is stamped
            with that one version, so deleting it drops them all at once. With
            ``read_vary=False`` the request's vary values (and session) are not read.
            """
            if plain_key and path is None:
                # the default view key: no hashing, no query, no vary
                key = static_prefix % request_path() if formatted else static_prefix
                return key + source_suffix(rt, rt.settings.hash_method), None
            hasher = hash_method or rt.settings.hash_method
            if make_cache_key is not None:
                head = make_cache_key(*args, **kwargs)  # the query is its business
            else:
                if callable(key_prefix):
                    head = key_prefix()
                elif "%s" in key_prefix:
                    head = key_prefix % (path if path is not None else request_path())
                else:
                    head = key_prefix
                if query_string:
                    head += "?" + query_digest(_query_pairs(query_args), hasher)
            tail = source_suffix(rt, hasher)
            if not guard.keyed:
                return head + tail, None
            # variants and their version key share a Redis Cluster hash tag (one
            # MGET on one node); a digest, as a path may hold braces of its own
            base = head + tail
            tagged = "{" + digest(base, hasher)[:12] + "}" + base
            part = guard.key_part(hasher) if read_vary else ""
            return (tagged + part if part else base), VARY_VERSION_PREFIX + tagged

        def outcome_of(rv: t.Any) -> Outcome:
            rv, cacheable = _materialize(rv)
            if not cacheable:
                logger.warning(
                    "%s returned an iterator of non-strings; not cached", f.__qualname__
                )
                return Outcome(rv, MISS)
            if rv is None and not cache_none:
                return Outcome(rv, MISS)
            if response_filter is not None and not response_filter(rv):
                return Outcome(rv, MISS)
            override = rv.timeout if isinstance(rv, CachedResponse) else None
            if type(rv) is tuple and _serves_request(wrapper):
                # Flask makes a view's (body, status, headers) a response anyway;
                # storing that keeps hits right with serializers that lose tuples
                rv = current_app.make_response(rv)
            rv, payload = guard.admit(rv, _to_payload)  # privacy rules, 5xx
            return Outcome(rv, payload, override)

        def finish(
            rt: Runtime,
            key: str,
            hit: bool,
            value: t.Any,
            args: tuple[t.Any, ...],
            kwargs: dict[str, t.Any],
        ) -> t.Any:
            if rt.settings.enable_signals:
                signal = cache_view_hit if hit else cache_view_miss
                signal.send(
                    cache_owner,
                    cache=cache_owner,
                    cache_key=key,
                    args=args,
                    kwargs=kwargs,
                )
            if not hit:
                return value
            rv = _from_payload(value)
            if response_hit_indication and has_request_context():
                rv = current_app.make_response(rv)
                rv.headers[HIT_HEADER] = "True"
            return rv

        def begin(
            args: tuple[t.Any, ...], kwargs: dict[str, t.Any]
        ) -> tuple[Runtime, str, t.Any, Flow | None] | None:
            """None to bypass the cache; else the hit's payload or the miss's flow."""
            if skip is not None and skip(f, *args, **kwargs):
                return None
            rt = get_runtime()
            try:
                key, version_key = build_keys(rt, args, kwargs)
            except Exception as exc:
                rt.failed("key", getattr(f, "__qualname__", "?"), exc)
                return None
            payload, flow = lookup_begin(
                rt,
                key,
                () if version_key is None else (version_key,),
                forced=bool(forced_update()) if forced_update is not None else False,
                is_stale=stale,
                timeout=wrapper.cache_timeout,
                locking=locking,
                name=label,
                lasting=0,  # a vary view's version key: one per URL, it expires
            )
            return rt, key, payload, flow

        wrapper = t.cast(CachedFunction[P, R], wrap(f, begin, outcome_of, finish))

        def make_key(
            *args: t.Any,
            path: str | None = None,
            query_args: t.Any = None,
            **kwargs: t.Any,
        ) -> str:
            """The key this view uses; outside a request, give ``path`` (and query_args)."""
            return build_keys(get_runtime(), args, kwargs, path, query_args)[0]

        def target(
            *args: t.Any,
            path: str | None = None,
            query_args: t.Any = None,
            **kwargs: t.Any,
        ) -> str:
            """What ``delete_cached`` deletes: the version key of a ``vary`` view
            (its base key's, also inside a request), else the entry key."""
            rt = get_runtime()
            key, version_key = build_keys(rt, args, kwargs, path, query_args, False)
            return key if version_key is None else version_key

        wrapper.uncached = f
        wrapper.cache_timeout = timeout
        wrapper.make_cache_key = make_key  # type: ignore[method-assign]
        setattr(wrapper, DELETE_ATTR, target)
        return wrapper

    return decorator
