"""What the decorators store: an envelope around the value, and responses as data.

An entry is a plain tuple so every serializer (pickle, JSON, signed) can carry it::

    (MAGIC, payload, versions, fresh_until)

``versions`` are the memoize version tokens the entry was written under (empty for
views and fragments), so one ``get_many`` of value and version keys decides a hit.
``fresh_until`` is the wall-clock time after which the entry is stale (``0`` = never).
The backend keeps an entry a little longer than that when stale values may be served.

A miss is :data:`MISS`, never ``None``, so a cached ``None`` is a hit.
"""

from __future__ import annotations

import enum
import time
import typing as t

from werkzeug.wrappers import Response

MAGIC = "fc1"


class _Miss(enum.Enum):
    MISS = "MISS"

    def __bool__(self) -> bool:
        return False


#: the result of a lookup that found nothing usable
MISS: t.Final = _Miss.MISS
Miss = t.Literal[_Miss.MISS]

Entry = tuple[str, t.Any, tuple[int, ...], float]

#: payload marker for a response stored as (status, headers, body)
RESPONSE_TAG = "fc-response"


def pack(payload: t.Any, versions: tuple[int, ...], timeout: int) -> Entry:
    """Wrap *payload*; with ``timeout`` 0 the entry never goes stale."""
    fresh_until = time.time() + timeout if timeout > 0 else 0.0
    return (MAGIC, payload, versions, fresh_until)


def unpack(stored: t.Any) -> Entry | None:
    """The entry if *stored* is one of ours, else None (foreign or corrupt data)."""
    if type(stored) is tuple and len(stored) == 4 and stored[0] == MAGIC:
        return t.cast(Entry, stored)
    if type(stored) is list and len(stored) == 4 and stored[0] == MAGIC:
        # serializers without a tuple type (plain JSON) hand back lists
        versions = stored[2]
        return (MAGIC, stored[1], tuple(versions), stored[3])
    return None


def is_fresh(entry: Entry, now: float) -> bool:
    """True while the entry has not passed its own timeout."""
    fresh_until = entry[3]
    return not fresh_until or now < fresh_until


def response_to_data(
    response: Response,
) -> tuple[str, int, list[tuple[str, str]], bytes]:
    """A response as plain data: the body is read (streams are consumed) once."""
    body = response.get_data()
    headers = [(k, v) for k, v in response.headers.items()]
    return (RESPONSE_TAG, response.status_code, headers, body)


def is_response_data(payload: t.Any) -> bool:
    return (
        type(payload) in (tuple, list)
        and len(payload) == 4
        and payload[0] == RESPONSE_TAG
    )


def data_to_response(payload: t.Any, response_class: type[Response]) -> Response:
    """Rebuild a response from :func:`response_to_data` output."""
    _tag, status, headers, body = payload
    return response_class(body, status=status, headers=[tuple(h) for h in headers])
