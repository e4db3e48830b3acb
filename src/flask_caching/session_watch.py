"""Whether the *view* read the session: the privacy decision is about the view.

Flask's ``session.accessed`` says whether anything in the request touched the
session: a ``before_request`` hook, an extension, or a session class that always
says True. None of those make a view's page one visitor's. While a cached function
runs, the request context's session is swapped for a :class:`Watched` stand-in that
forwards everything to the real session and notes that it was used; the real one is
put back as soon as the function returns (before Flask saves the session).
"""

from __future__ import annotations

import contextlib
import typing as t
from collections.abc import Iterator

from flask import has_request_context

from ._flask_compat import request_context


class Seen:
    """What a watch saw: ``read`` is True once the session was used."""

    __slots__ = ("read",)

    def __init__(self) -> None:
        self.read = False


class Watched:
    """Forwards every use of the session to the real one and notes it."""

    __slots__ = ("_real", "_seen")

    def __init__(self, real: t.Any, seen: Seen) -> None:
        object.__setattr__(self, "_real", real)
        object.__setattr__(self, "_seen", seen)

    def _use(self) -> t.Any:
        self._seen.read = True
        return self._real

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self._use(), name)

    def __setattr__(self, name: str, value: t.Any) -> None:
        setattr(self._use(), name, value)

    def __getitem__(self, key: t.Any) -> t.Any:
        return self._use()[key]

    def __setitem__(self, key: t.Any, value: t.Any) -> None:
        self._use()[key] = value

    def __delitem__(self, key: t.Any) -> None:
        del self._use()[key]

    def __contains__(self, key: t.Any) -> bool:
        return key in self._use()

    def __iter__(self) -> Iterator[t.Any]:
        return iter(self._use())

    def __len__(self) -> int:
        return len(self._use())

    def __bool__(self) -> bool:
        return bool(self._use())

    def __eq__(self, other: object) -> bool:
        return bool(self._use() == other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._use())


def _slot(ctx: t.Any) -> str | None:
    """The request context's attribute holding the opened session (Flask 3.1+ keeps
    it in ``_session`` behind a property; older ones in ``session``)."""
    state = vars(ctx)
    for name in ("_session", "session"):
        if state.get(name) is not None:
            return name
    return None


@contextlib.contextmanager
def watching_session() -> Iterator[Seen]:
    """Note whether the session is used inside the ``with`` block."""
    seen = Seen()
    if not has_request_context():
        yield seen
        return
    ctx = request_context()
    slot = _slot(ctx)
    if slot is None:  # no session opened: nothing a view could read
        yield seen
        return
    real = vars(ctx)[slot]
    stand_in = Watched(real, seen)
    vars(ctx)[slot] = stand_in
    try:
        yield seen
    finally:
        if vars(ctx).get(slot) is stand_in:
            vars(ctx)[slot] = real
