"""The keys of ``@cached``: released Flask-Caching's, so a mixed fleet shares them.

::

    key_prefix % request.path                       the default ("view/%s")
    key_prefix % url_for(view, **view_args)         make_cache_key(...) called directly
    <prefix> + H(str(tuple(sorted(query pairs))))   query_string=True (full hex digest)
    ... + H(source)                                 source_check (no separator)

``H`` is the decorator's ``hash_method``, else the Cache's ``hash_method``, else
CACHE_HASH_METHOD (sha256). Everything that does not depend on the call is fixed
here at decoration time.
"""

from __future__ import annotations

import inspect
import typing as t
from collections.abc import Callable

from flask import request, url_for

from .context import request_path
from .decorated import CachedFunction
from .keys import digest
from .privacy import Guard
from .runtime import Runtime
from .utils import get_arg_names, query_args_as_pairs

if t.TYPE_CHECKING:
    from .view_options import ViewOptions

#: version keys of ``vary`` views: one per path and query, so they expire
VARY_VERSION_PREFIX = "fc-vary-ver:"


class ViewKeys:
    """Builds one ``@cached`` function's keys."""

    def __init__(
        self,
        f: Callable[..., t.Any],
        key_prefix: str | Callable[[], str],
        query_string: bool,
        source_check: bool | None,
        hash_method: Callable[..., t.Any] | None,
    ) -> None:
        if not (isinstance(key_prefix, str) or callable(key_prefix)):
            raise TypeError(
                f"key_prefix must be a string or a callable, got {key_prefix!r}"
            )
        self.f = f
        self.key_prefix = key_prefix
        self.query_string = query_string
        self.source_check = source_check
        self.hash_method = hash_method
        self.formatted = isinstance(key_prefix, str) and "%s" in key_prefix
        #: the prefix to format with the path, for the common key (else None)
        self.path_format: str | None = None
        if isinstance(key_prefix, str) and self.formatted and not query_string:
            self.path_format = key_prefix
        self.arg_names = get_arg_names(f)
        self._source: bytes | None = None

    def hasher(self, rt: Runtime) -> Callable[..., t.Any]:
        owned = getattr(rt.owner, "hash_method", None)
        return self.hash_method or owned or rt.settings.hash_method

    def checks_source(self, rt: Runtime) -> bool:
        check = self.source_check
        if check is None:
            check = getattr(rt.owner, "source_check", None)
        if check is None:
            check = rt.settings.source_check
        return bool(check)

    def source(self) -> bytes:
        if self._source is None:
            self._source = inspect.getsource(self.f).encode("utf-8")
        return self._source

    def prefix(self, path: str | None) -> str:
        """``key_prefix`` resolved: called, formatted with *path*, or as it is."""
        prefix = self.key_prefix
        if not isinstance(prefix, str):
            return prefix()
        if self.formatted:
            return prefix % (request_path() if path is None else path)
        return prefix

    def request_key(self, rt: Runtime) -> str:
        """The key of the current request (what the decorator uses on each call)."""
        path_format = self.path_format
        if path_format is not None:
            key = path_format % request_path()
        elif self.query_string:
            return self.query_key(rt, None, None)
        else:
            key = self.prefix(None)
        if self.checks_source(rt):
            key += self.hasher(rt)(self.source()).hexdigest()
        return key

    def query_key(self, rt: Runtime, path: str | None, query_args: t.Any) -> str:
        """``query_string=True``: the prefix plus a digest of the sorted pairs."""
        if query_args is None:
            pairs: t.Any = request.args.items(multi=True)
        else:
            pairs = query_args_as_pairs(query_args)
        digest = self.hasher(rt)(str(tuple(sorted(pairs))).encode())
        if self.checks_source(rt):
            digest.update(self.source())
        return self.prefix(path) + str(digest.hexdigest())

    def called_key(
        self, rt: Runtime, args: tuple[t.Any, ...], kwargs: dict[str, t.Any]
    ) -> str:
        """``view.make_cache_key(*args, path=None, query_args=None, **view_args)``
        called by user code: without ``path`` a ``%s`` prefix is filled with
        ``url_for`` of the view arguments."""
        view_args = dict(kwargs)
        view_args.update(zip(self.arg_names, args, strict=False))
        if view_args.pop("use_request", False):
            return self.request_key(rt)
        path = view_args.pop("path", None)
        query_args = view_args.pop("query_args", None)
        if self.query_string:
            return self.query_key(rt, path, query_args)
        if self.formatted and path is None:
            name = self.f.__name__
            path = url_for(name, _external=False, **view_args)
        key = self.prefix(path)
        if self.checks_source(rt):
            key += self.hasher(rt)(self.source()).hexdigest()
        return key


class ViewKeyMethods:
    """The key methods of :class:`.cached.CachedView` (a mixin): the key of a call,
    of a ``vary`` variant, and what ``delete_cached`` deletes."""

    opts: ViewOptions
    keys: ViewKeys
    guard: Guard
    wrapper: CachedFunction[..., t.Any]
    own_key: Callable[..., str]
    get_runtime: Callable[[], Runtime]

    def head(
        self, rt: Runtime, args: tuple[t.Any, ...], kwargs: dict[str, t.Any]
    ) -> str:
        """The key of this call as released Flask-Caching builds it."""
        custom = self.opts.make_cache_key
        if custom is not None:
            return custom(*args, **kwargs)
        assigned = self.wrapper.make_cache_key
        if assigned is not self.own_key:
            # the user replaced view.make_cache_key: it is the key function now
            return assigned(*args, use_request=True, **kwargs)
        return self.keys.request_key(rt)

    def vary_keys(self, rt: Runtime, head: str, read_vary: bool) -> tuple[str, str]:
        """A ``vary`` view's variant key and the version key all its variants share.

        They share a Redis Cluster hash tag (one MGET on one node): a digest, as a
        path may hold braces of its own.
        """
        hasher = self.keys.hasher(rt)
        tagged = "{" + digest(head, hasher)[:12] + "}" + head
        part = self.guard.key_part(hasher) if read_vary else ""
        return (tagged + part if part else head), VARY_VERSION_PREFIX + tagged

    def make_key(self, *args: t.Any, **kwargs: t.Any) -> str:
        """The key this view uses: ``path=``/``query_args=`` pick the request, else
        ``url_for`` builds the path from the view arguments (a ``make_cache_key``
        given to the decorator builds it instead)."""
        custom = self.opts.make_cache_key
        if custom is not None:
            kwargs.pop("path", None)
            kwargs.pop("query_args", None)
            return custom(*args, **kwargs)
        rt = self.get_runtime()
        head = self.keys.called_key(rt, args, kwargs)
        return self.vary_keys(rt, head, True)[0] if self.guard.keyed else head

    def target(self, *args: t.Any, **kwargs: t.Any) -> str:
        """What ``delete_cached`` deletes: a ``vary`` view's version key (its base
        key's, also inside a request), else the entry key."""
        if not self.guard.keyed:
            return self.wrapper.make_cache_key(*args, **kwargs)
        rt = self.get_runtime()
        return self.vary_keys(rt, self.keys.called_key(rt, args, kwargs), False)[1]
