"""Flask's current app and request path, read without going through the proxies.

Every decorated call needs them; Flask's ``current_app`` / ``request`` proxies cost
about 2 us a lookup on the test machine, the context variables behind them a
tenth of that. A Flask that moves those variables gets the proxies instead.
"""

from __future__ import annotations

import typing as t

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

    def method_and_path() -> tuple[str, str] | None:
        """``(request.method, request.path)``, or None outside a request."""
        if not has_request_context():
            return None
        return request.method, request.path

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

    def method_and_path() -> tuple[str, str] | None:
        """``(request.method, request.path)``, or None outside a request."""
        ctx = _cv_request.get(None)
        if ctx is None:
            return None
        current = ctx.request
        return current.method, current.path
