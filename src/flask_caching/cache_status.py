"""The RFC 9211 ``Cache-Status`` response header of cached views.

On with CACHE_STATUS_HEADER=True (request-keyed views, i.e. the default
``key_prefix="view/%s"`` or ``query_string=True``) or ``@cache.cached(cache_status=
True)`` (any cached function run in a request; ``False`` turns it off)::

    Cache-Status: flask-caching; hit; ttl=42            served from the cache
    Cache-Status: flask-caching; fwd=stale              a stale value served
    Cache-Status: flask-caching; fwd=miss; stored       computed and stored
    Cache-Status: flask-caching; fwd=miss; detail=private      not stored: privacy
    Cache-Status: flask-caching; fwd=miss; detail=unstorable   not stored: the
                  result (None, a 5xx, a stream, response_filter) or the backend
    Cache-Status: flask-caching; fwd=miss; detail=method       a POST (etc.): the
                  cache was neither read nor written
    Cache-Status: flask-caching; fwd=bypass             ``unless`` said so
    Cache-Status: flask-caching; fwd=bypass; detail=error      the key failed

``ttl`` is the seconds the entry stays fresh; it is known when the entry has its
meta key (see :mod:`.entry`), which the view then writes, and left out otherwise.
The header is set on the request's response by ``after_this_request``, so it is
there whatever the view returned (a string, a tuple, a raised ``abort``); with
several cached functions in one request the outermost one, the view, sets it last.
"""

from __future__ import annotations

import math
import time

from flask import after_this_request, has_request_context
from werkzeug.wrappers import Response

HEADER = "Cache-Status"

#: the cache's name in the header (RFC 9211 section 2: the first item)
NAME = "flask-caching"

#: what happened -> the header's parameters after the name
PARAMS = {
    "stale": "fwd=stale",
    "stored": "fwd=miss; stored",
    "private": "fwd=miss; detail=private",
    "unstored": "fwd=miss; detail=unstorable",
    "method": "fwd=miss; detail=method",
    "unless": "fwd=bypass",
    "error": "fwd=bypass; detail=error",
}


def value(what: str, fresh_until: float = 0.0) -> str:
    """The header for *what* happened (``hit`` or a key of :data:`PARAMS`)."""
    if what == "hit":
        if fresh_until:
            ttl = max(0, math.ceil(fresh_until - time.time()))
            return f"{NAME}; hit; ttl={ttl}"
        return f"{NAME}; hit"
    return f"{NAME}; {PARAMS[what]}"


def announce(what: str, fresh_until: float = 0.0) -> None:
    """Set the header on the current request's response (no request: nothing)."""
    if not has_request_context():
        return
    header = value(what, fresh_until)

    def _set(response: Response) -> Response:
        response.headers[HEADER] = header
        return response

    after_this_request(_set)
