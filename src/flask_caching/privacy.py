"""Never serve one user's page to another: what ``@cached`` may store, and per-user keys.

A cached view runs once and its response is replayed to every later visitor, so a
response built for one user must not be stored under a key other users share. On
the store path (never on a hit) :meth:`Guard.admit` refuses, by default, a result
that

* sets a cookie (``Set-Cookie`` on the response the view built),
* was produced while the Flask session was accessed (Flask adds ``Vary: Cookie``
  only after the view returned, so the decorator reads the flag itself),
* answers a request that carried ``Authorization`` (RFC 9111, section 3.5), unless
  the response says ``Cache-Control: public`` or ``s-maxage``,
* carries ``Cache-Control: private``, ``no-store`` or ``no-cache``, or ``Vary: *``,
* carries a ``Vary`` naming request headers the cache key does not cover,

and it never stores a 5xx response unless a ``response_filter`` accepted it. The
first refusal per view is logged as a warning on the ``flask_caching`` logger, saying
why and how to opt in. The opt-ins of ``@cache.cached``:

``vary=["Accept-Language", "Cookie:lang"]``
    key the entry on these request headers (``Cookie:<name>`` keys on one named
    cookie); the stored response carries ``Vary`` for them, replayed on hits.
    ``"Authorization"`` in the list makes answers to authenticated requests
    storable, one entry per credential.
``vary_on_session=True``
    key the entry on the session (its contents, and its ``sid`` when a server-side
    session has one), so two users never share an entry; reading the session is
    then expected, and the stored response carries ``Vary: Cookie``.
``make_cache_key=...``
    the caller builds the key and answers for it: session access and ``Vary``
    headers no longer block storing.
``private="allow"``
    (or ``CACHE_PRIVATE_RESPONSES = "allow"`` for every view) store such responses
    anyway; ``private="skip"`` is the default.

Whatever the mode, a stored response never keeps ``Set-Cookie``: the visitor whose
request filled the cache gets their cookie, later visitors never do.

Functions cached outside a request context are not screened (there is no request,
session or response to look at); only the 5xx rule applies to responses they return.
"""

from __future__ import annotations

import logging
import re
import typing as t
from collections.abc import Callable, Iterable

from flask import current_app, has_request_context, request
from flask import session as flask_session
from werkzeug.http import parse_dict_header
from werkzeug.wrappers import Response

from ._flask_compat import request_context
from .entry import MISS
from .keys import HashMethod, canonical, digest
from .settings import PRIVATE_MODES

logger = logging.getLogger("flask_caching")

PrivateMode = t.Literal["skip", "allow"]

#: an HTTP header name (RFC 9110 token characters)
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class VaryOn(t.NamedTuple):
    """One entry of ``vary=[...]``: a request header, or one cookie of ``Cookie``."""

    #: the header name as given (used in the ``Vary`` response header)
    header: str
    #: the cookie name for ``"Cookie:<name>"``, else None
    cookie: str | None


def check_private(value: t.Any, name: str = "private") -> PrivateMode | None:
    """Validate ``private=`` at decoration time (None = use CACHE_PRIVATE_RESPONSES)."""
    if value is None:
        return None
    if value not in PRIVATE_MODES:
        choices = " or ".join(repr(m) for m in PRIVATE_MODES)
        raise ValueError(f"{name} must be {choices} (or None), got {value!r}")
    return t.cast(PrivateMode, value)


def parse_vary(vary: str | Iterable[str] | None) -> tuple[VaryOn, ...]:
    """Validate ``vary=`` at decoration time: header names, or ``Cookie:<name>``."""
    if vary is None:
        return ()
    names = [vary] if isinstance(vary, str) else vary
    parsed: list[VaryOn] = []
    seen: set[tuple[str, str | None]] = set()
    for item in names:
        if not isinstance(item, str):
            raise TypeError(
                f"vary must list header names as strings, got {type(item).__name__} "
                f"{item!r}"
            )
        header, sep, cookie = (part.strip() for part in item.partition(":"))
        if not _TOKEN.match(header):
            raise ValueError(f"vary: {item!r} is not a request header name")
        if sep and header.lower() != "cookie":
            raise ValueError(
                f"vary: {item!r}: only 'Cookie:<name>' selects part of a header; "
                f"use {header!r} to key on the whole header"
            )
        if sep and not _TOKEN.match(cookie):
            raise ValueError(f"vary: {item!r} does not name a cookie")
        entry = VaryOn(header, cookie if sep else None)
        ident = (header.lower(), entry.cookie)
        if ident not in seen:
            seen.add(ident)
            parsed.append(entry)
    return tuple(parsed)


def session_accessed() -> bool:
    """Whether this request has read or written the Flask session so far.

    Reads the flag without touching the session (touching it would set it). Flask
    3.1.3 keeps the opened session on the request context as ``_session``; earlier
    3.x keep it as ``session``. If neither is found the answer is True: better an
    uncached page than one user's page served to another.
    """
    state = vars(request_context())
    for attr in ("_session", "session"):
        if attr in state:
            opened = state[attr]
            return opened is not None and bool(getattr(opened, "accessed", False))
    return True


def session_identity() -> str:
    """A canonical text of the current session: equal sessions, equal text.

    Reading the session marks it accessed, so Flask adds ``Vary: Cookie`` on hits too.
    """
    current = flask_session._get_current_object()  # type: ignore[attr-defined]
    return canonical([getattr(current, "sid", None), dict(current)])


def _header_list(response: Response, name: str) -> list[str]:
    """The comma-separated items of every *name* header, stripped, lowercased."""
    items: list[str] = []
    for value in response.headers.getlist(name):
        items.extend(i.strip().lower() for i in value.split(",") if i.strip())
    return items


def _cache_control(response: Response) -> dict[str, str | None]:
    joined = ", ".join(response.headers.getlist("Cache-Control"))
    if not joined:
        return {}
    return {k.lower(): v for k, v in parse_dict_header(joined).items()}


#: statuses that answer one request's conditions, not the resource: a 206 holds
#: part of the body, a 304 none of it; replayed, they break unconditional GETs
PARTIAL = frozenset((206, 304))


def _status_ok(response: Response | None, filtered: bool) -> bool:
    """Only complete responses are stored; 5xx only when a ``response_filter``
    let them through."""
    if response is None:
        return True
    status = response.status_code
    return status not in PARTIAL and (filtered or status < 500)


def scrub(payload: t.Any) -> t.Any:
    """What to store of a response: a copy without ``Set-Cookie`` (one visitor's)."""
    if not isinstance(payload, Response) or "set-cookie" not in payload.headers:
        return payload
    kept = [(k, v) for k, v in payload.headers.items() if k.lower() != "set-cookie"]
    return type(payload)(payload.get_data(), status=payload.status_code, headers=kept)


class Guard:
    """The privacy policy of one cached function, fixed at decoration time.

    :param name: the function's qualified name, for the log message.
    :param private: ``"skip"``, ``"allow"`` or None (ask *get_mode*, i.e. the
        app's CACHE_PRIVATE_RESPONSES, on the store path).
    :param vary: request headers (and named cookies) the key depends on.
    :param vary_on_session: key on the session's contents.
    :param custom_key: the caller gave ``make_cache_key``.
    :param filtered: the caller gave ``response_filter`` (it decides on 5xx).
    """

    def __init__(
        self,
        name: str,
        get_mode: Callable[[], str],
        *,
        private: PrivateMode | None = None,
        vary: tuple[VaryOn, ...] = (),
        vary_on_session: bool = False,
        custom_key: bool = False,
        filtered: bool = False,
    ) -> None:
        self.name = name
        self.get_mode = get_mode
        self.private = private
        self.vary = vary
        self.vary_on_session = bool(vary_on_session)
        self.custom_key = custom_key
        self.filtered = filtered
        self.keyed = bool(vary) or self.vary_on_session
        vary_names = {v.header.lower(): v.header for v in vary}
        if self.vary_on_session:
            vary_names.setdefault("cookie", "Cookie")
        #: the names the stored response's ``Vary`` gets (display spelling)
        self.vary_headers = tuple(vary_names.values())
        #: request headers whose values the key covers (lowercase)
        self.covered = frozenset(vary_names)
        self.per_user = self.vary_on_session or "authorization" in self.covered
        self.warned = False

    # -- key (every call, only for views that opted in) ------------------------

    def key_part(self, hash_method: HashMethod) -> str:
        """The key suffix for the request's vary values; "" when nothing varies."""
        if not self.keyed or not has_request_context():
            return ""
        parts: list[t.Any] = []
        for entry in self.vary:
            if entry.cookie is not None:
                parts.append((entry.cookie, request.cookies.get(entry.cookie)))
            else:
                values = request.headers.getlist(entry.header)
                parts.append((entry.header.lower(), ", ".join(values) or None))
        if self.vary_on_session:
            parts.append(("session", session_identity()))
        return ":vary=" + digest(canonical(parts), hash_method)

    # -- store path ------------------------------------------------------------

    def admit(
        self, rv: t.Any, to_payload: Callable[[t.Any], t.Any], read: bool = False
    ) -> tuple[t.Any, t.Any]:
        """``(result, payload)`` for a fresh result; payload MISS = store nothing.

        *read* says the function itself used the session while it ran (see
        :mod:`.session_watch`): such a view is cached per session from then on
        (this result, computed under the shared key, is not stored). With
        ``vary``/``vary_on_session`` in a request, the result becomes a response
        carrying ``Vary`` so hits replay it.
        """
        if not has_request_context():
            plain = rv if isinstance(rv, Response) else None
            if not _status_ok(plain, self.filtered):
                return rv, MISS
            return rv, scrub(to_payload(rv))
        if self.vary_headers and not isinstance(rv, Response):
            rv = _as_response(rv) or rv  # a response, so hits replay its Vary
        if isinstance(rv, Response):
            response: Response | None = rv
        elif type(rv) is tuple:
            response = _as_response(rv)  # to read its status and headers only
        else:
            response = None  # a body alone: no headers, status 200
        if not _status_ok(response, self.filtered):
            return rv, MISS
        accessed = read
        mode = self.private or self.get_mode()
        if accessed and mode != "allow" and not self.per_session:
            self.learn_session()
            return rv, MISS
        if mode != "allow":
            reasons = self.reasons(response, accessed)
            if reasons:
                self.refuse(reasons)
                return rv, MISS
        if isinstance(rv, Response):
            for name in self.vary_headers:
                rv.vary.add(name)
            if accessed:
                rv.vary.add("Cookie")  # what Flask adds after us; replayed on hits
        elif response is not None and "set-cookie" in response.headers:
            rv = response  # a (body, status, headers) tuple: store it scrubbed
        return rv, scrub(to_payload(rv))

    def reasons(self, response: Response | None, accessed: bool) -> list[str]:
        """Why this result may belong to one user (empty = safe to share)."""
        found: list[str] = []
        cc = _cache_control(response) if response is not None else {}
        if response is not None:
            if "set-cookie" in response.headers:
                found.append(
                    "it sets a cookie (Set-Cookie); pass private='allow' to store "
                    "it without the cookie"
                )
            for directive in ("no-store", "no-cache"):
                if directive in cc:
                    found.append(
                        f"it says Cache-Control: {directive}; drop the directive or "
                        "pass private='allow'"
                    )
            if "private" in cc and not self.per_user:
                found.append(
                    "it says Cache-Control: private; key it per user with "
                    "vary_on_session=True or vary=['Authorization'], or pass "
                    "private='allow'"
                )
            varies = _header_list(response, "Vary")
            if "*" in varies:
                found.append("it says Vary: *; pass private='allow'")
            uncovered = [v for v in varies if v != "*" and v not in self.covered]
            if uncovered and not self.custom_key:
                found.append(
                    f"it varies on {', '.join(uncovered)}, which the key ignores; "
                    f"add {uncovered!r} to vary=[...]"
                )
        if (
            "authorization" in request.headers
            and "authorization" not in self.covered
            and "public" not in cc
            and "s-maxage" not in cc
        ):
            found.append(
                "the request carried Authorization; add 'Authorization' to "
                "vary=[...] (one entry per credential), send Cache-Control: public, "
                "or pass private='allow'"
            )
        if accessed and not (self.vary_on_session or self.custom_key):
            found.append(
                "the session was accessed; pass vary_on_session=True (one entry per "
                "session), a make_cache_key that tells users apart, or "
                "private='allow'"
            )
        return found

    @property
    def per_session(self) -> bool:
        """Entries are one per session (asked for, or learned) or keyed by the
        caller's own ``make_cache_key``."""
        return self.vary_on_session or self.custom_key

    def learn_session(self) -> None:
        """The view read the session: key it per session from now on."""
        self.vary_on_session = True
        self.keyed = True
        self.per_user = True
        self.covered = self.covered | {"cookie"}
        if "Cookie" not in self.vary_headers:
            self.vary_headers = (*self.vary_headers, "Cookie")
        logger.info(
            "%s read the session while it ran: it is cached per session from now "
            "on (visitors without a session share one entry). Logged once per view.",
            self.name,
        )

    def refuse(self, reasons: list[str]) -> None:
        """Log why nothing was stored: a warning the first time, then debug."""
        message = "not caching %s: %s. (CACHE_PRIVATE_RESPONSES='allow' stores such responses for every view.)"
        if self.warned:
            logger.debug(message, self.name, "; ".join(reasons))
            return
        self.warned = True
        logger.warning(
            message + " Logged once per view.", self.name, "; ".join(reasons)
        )


def _as_response(rv: t.Any) -> Response | None:
    """*rv* as Flask would turn it into a response, or None if it is not a view result."""
    if isinstance(rv, Response):
        return rv
    if not isinstance(rv, (str, bytes, dict, list, tuple)):
        return None
    try:
        return current_app.make_response(rv)
    except (TypeError, ValueError):
        return None
