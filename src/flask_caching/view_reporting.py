"""What a ``@cached`` view tells about its calls: counters, the ``Cache-Status``
header, and whether a hit may be served as the view's response.

A mixin of :class:`.cached.CachedView`, kept apart so the view's read and store
steps stay readable.
"""

from __future__ import annotations

import logging
import typing as t

from flask import current_app, has_request_context, request

from . import cache_status
from .decorated import CachedFunction
from .flow import CallNote
from .runtime import Runtime
from .stats import CounterSlot, bump
from .view_options import ViewOptions
from .view_results import view_result

logger = logging.getLogger("flask_caching")


class ViewReporting:
    """Counting, logging and the header for one view (see :class:`.CachedView`)."""

    opts: ViewOptions
    owner: t.Any
    label: str
    by_request: bool
    slot: CounterSlot
    wrapper: CachedFunction[..., t.Any]
    get_runtime: t.Callable[[], Runtime]

    def servable(self, value: t.Any) -> bool:
        """A hit of a request-keyed view must be what a view may return; any other
        function's entry is whatever it returned."""
        if not self.by_request or type(value) is str or view_result(value):
            return True
        return not self.serves_request()  # a helper keyed by the path: anything

    def serves_request(self) -> bool:
        """Whether this function is (or is wrapped by) the view of the request's
        endpoint, so what it returns becomes the response."""
        if not has_request_context():
            return False
        view = current_app.view_functions.get(request.endpoint or "")
        for _ in range(8):  # decorators above ours: follow __wrapped__
            if view is None or view is self.wrapper:
                return view is not None
            view = getattr(view, "__wrapped__", None)
        return False

    # -- counters and the Cache-Status header ----------------------------------

    def status_on(self, rt: Runtime) -> bool:
        """The decorator's ``cache_status``, else CACHE_STATUS_HEADER for views
        keyed by the request."""
        own = self.opts.cache_status
        return own if own is not None else self.by_request and rt.settings.status_header

    def announce(self, what: str, note: CallNote) -> None:
        cache_status.announce(what, note.fresh_until)

    def bypassed(self, event: str, what: str) -> None:
        """Count (and log, and tell in the header) a call that skipped the cache."""
        try:
            rt = self.get_runtime()
        except RuntimeError:  # outside an app: no counters to add to
            return
        bump(self.slot.of(rt), event)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("cache bypassed for %s (%s)", self.label, what)
        if self.status_on(rt):
            cache_status.announce(what)
