"""Flask's current app and request path, read without going through the proxies.

Every decorated call needs them; Flask's ``current_app`` / ``request`` proxies cost
about 2 us a lookup on the test machine, the context variables behind them a
tenth of that. A Flask that moves those variables gets the proxies instead.
"""

from __future__ import annotations

import functools
import typing as t

import flask.globals
from flask import Flask, current_app, has_app_context, has_request_context, request

try:
    from flask.globals import _cv_app, _cv_request
except ImportError:  # pragma: no cover - a Flask that moved them

    def app_or_none() -> Flask | None:
        """The app of the current app context, or None outside one."""
        if not has_app_context():
            return None
        return t.cast(Flask, current_app._get_current_object())  # type: ignore[attr-defined]

    def request_path() -> str:
        """``request.path`` (Flask's own error outside a request)."""
        return request.path

    def request_method() -> str | None:
        """``request.method``, or None outside a request."""
        return request.method if has_request_context() else None

    def app_ctx() -> t.Any:
        """The current app context, or None (see :func:`request_ctx`)."""
        stack = getattr(flask.globals, "_app_ctx_stack", None)
        return None if stack is None else stack.top

    def request_ctx() -> t.Any:
        """The current request context, or None outside a request (or on a Flask
        whose context cannot be reached: the callers then take the long way)."""
        stack = getattr(flask.globals, "_request_ctx_stack", None)
        return None if stack is None else stack.top

else:

    def app_or_none() -> Flask | None:
        """The app of the current app context, or None outside one."""
        ctx = _cv_app.get(None)
        return None if ctx is None else ctx.app

    def request_path() -> str:
        """``request.path`` (Flask's own error outside a request)."""
        ctx = _cv_request.get(None)
        if ctx is None:
            return request.path  # raises the usual "outside of request context"
        path: str = ctx.request.path
        return path

    def request_method() -> str | None:
        """``request.method``, or None outside a request."""
        ctx = _cv_request.get(None)
        return None if ctx is None else ctx.request.method

    #: the current request context (``.request``), or None outside one
    request_ctx = functools.partial(_cv_request.get, None)
    #: the current app context (``.app``), or None outside one
    app_ctx = functools.partial(_cv_app.get, None)
