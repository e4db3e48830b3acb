"""What a ``@cached`` view's entry may hold, and what of a result is stored.

A hit of a view keyed by the request must be something Flask can turn into a
response; anything else under its key (a forged or foreign entry) is a miss.
"""

from __future__ import annotations

import typing as t

from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from .entry import MISS
from .utils import normalize_timeout


def to_payload(rv: t.Any) -> t.Any:
    """What to store for a result: the result itself, but never a file stream."""
    if isinstance(rv, Response) and (rv.direct_passthrough or rv.is_streamed):
        return MISS  # send_file, a generator: not ours to buffer
    return rv


_BODIES = (str, bytes, dict, list, Response)


def view_result(value: t.Any) -> bool:
    """True for what Flask can turn into a response: a body, a Response, an abort()
    (raised again on hits), or a ``(body, status)`` / ``(body, headers)`` /
    ``(body, status, headers)`` tuple with a real HTTP status."""
    if isinstance(value, (*_BODIES, HTTPException)):
        return True
    if type(value) is not tuple or not 2 <= len(value) <= 3:
        return False
    body, *rest = value
    if not isinstance(body, _BODIES):
        return False
    for part in rest:
        if type(part) is int:
            if not 100 <= part <= 599:
                return False
        elif not isinstance(part, (dict, list, tuple, Headers)):
            return False
    return True


def seconds(timeout: t.Any) -> int | None:
    """A timeout read at call time (the attribute may be reassigned) as seconds."""
    if timeout is None or type(timeout) is int:
        return timeout
    return normalize_timeout(timeout)
