"""``CachedResponse``: a response that carries its own cache timeout.

Kept in a module without ``from __future__ import annotations`` so its signature
holds real objects, as released Flask-Caching's does (tools inspect it).
"""

import typing as t

from werkzeug.wrappers import Response

from .utils import normalize_timeout


class CachedResponse(Response):
    """A view's response whose ``timeout`` wins over the decorator's.

    ``return CachedResponse(make_response(...), timeout=50)``: it takes over the
    given response's state in place, so headers, status and body stay as they are.
    """

    timeout: t.Optional[int] = None  # noqa: UP045 - evaluated at run time

    def __init__(self, response: Response, timeout: t.Any) -> None:
        self.__dict__ = response.__dict__
        self.timeout = normalize_timeout(timeout)
