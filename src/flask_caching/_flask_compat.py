"""Flask internals that moved between the Flask versions we support (2.1.3 to 3.x).

Flask 2.2 added the ``flask.globals.request_ctx`` proxy; Flask 2.1 only has the
``_request_ctx_stack`` it replaced (removed in 3.0). Code that needs the live request
context asks here instead of importing either name, so it imports on every version.
"""

from __future__ import annotations

import typing as t

import flask.globals as _globals
from flask.ctx import RequestContext


def request_context() -> RequestContext:
    """The request context being handled now (call only inside a request).

    Flask >= 2.2 exposes it through the ``request_ctx`` proxy; Flask 2.1 keeps it on
    top of ``_request_ctx_stack``. The stack is only read when the proxy is missing,
    so Flask 2.2/2.3 never emit their deprecation warning for it.
    """
    proxy = getattr(_globals, "request_ctx", None)
    if proxy is not None:
        return t.cast(RequestContext, proxy._get_current_object())
    stack = getattr(_globals, "_request_ctx_stack")  # noqa: B009 (absent on Flask 3)
    context = stack.top
    if context is None:
        raise RuntimeError("request_context() called outside of a request")
    return t.cast(RequestContext, context)
