"""The JSON serializer: round-trips what the decorators store, and never runs code.

``CACHE_SERIALIZER='json'``: Flask's tagged JSON, made strict so a value that would
not come back exactly is refused at ``dumps`` instead of silently changed.
"""

from __future__ import annotations

import json
import typing as t
from uuid import UUID

from flask.json.tag import (
    JSONTag,
    TagBytes,
    TagDict,
    TaggedJSONSerializer,
    TagMarkup,
    TagTuple,
    TagUUID,
)
from markupsafe import Markup

from .serializer_base import (
    BYTES_TYPES,
    JSON_V1,
    BaseSerializer,
    UnreadableValueError,
    describe,
    refused,
)

_SCALARS = frozenset({str, int, float, bool, type(None)})
_JSON_TYPES = (
    "str, int, float, bool, None, bytes, list, tuple, dict with str keys,"
    " markupsafe.Markup and uuid.UUID"
)


def _type_name(kind: type) -> str:
    """``datetime.datetime`` style name; builtins unqualified."""
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


class _Refused(TypeError):
    """Internal: part of a value cannot be restored exactly from JSON."""


class _StrictTagger(TaggedJSONSerializer):
    """Flask's tagged JSON (the session cookie format), made strict.

    Types are matched exactly, not by ``isinstance``, and dict keys must be ``str``: a
    value that would come back as something else (a namedtuple as a tuple, an IntEnum
    as an int, ``{1: x}`` as ``{"1": x}``) is refused instead of silently changed.
    Flask's datetime tag is left out: HTTP dates drop microseconds and the timezone.
    """

    __slots__ = ("_by_type", "_dict_tag")
    default_tags = [TagDict, TagTuple, TagBytes, TagMarkup, TagUUID]

    def __init__(self) -> None:
        super().__init__()
        self._dict_tag = self.tags[TagDict.key]
        self._by_type: dict[type, JSONTag] = {
            tuple: self.tags[TagTuple.key],
            bytes: self.tags[TagBytes.key],
            Markup: self.tags[TagMarkup.key],
            UUID: self.tags[TagUUID.key],
        }

    def tag(self, value: t.Any) -> t.Any:
        """Return ``value`` as tagged plain JSON types, or raise :class:`_Refused`."""
        kind = type(value)
        if kind in _SCALARS:
            return value
        if kind is list:
            return [self.tag(item) for item in value]
        if kind is dict:
            for key in value:
                if type(key) is not str:
                    raise _Refused(f"a dict key of type {_type_name(type(key))}")
            if len(value) == 1 and next(iter(value)) in self.tags:
                return self._dict_tag.tag(value)  # escapes a key that looks like a tag
            return {key: self.tag(item) for key, item in value.items()}
        tagger = self._by_type.get(kind)
        if tagger is None:
            raise _Refused(f"a value of type {_type_name(kind)}")
        return tagger.tag(value)


class JSONSerializer(BaseSerializer):
    """JSON that round-trips what the decorators store; loading never runs code.

    Stores str, int, float, bool, None, bytes, list, tuple, dict with str keys, Markup
    and UUID, nested, as Flask's tagged JSON. Anything else raises :class:`TypeError`
    at ``dumps`` naming the type. Entries are not signed: a writer to the cache server
    can still change cached content (responses included), just not run code.
    """

    __slots__ = ("_tagger",)

    def __init__(self) -> None:
        self._tagger = _StrictTagger()

    def dumps(self, value: t.Any) -> bytes:
        """Encode ``value``; raise TypeError if some part of it would not round-trip."""
        try:
            tagged = self._tagger.tag(value)
        except _Refused as exc:
            raise TypeError(
                f"JSONSerializer cannot store {exc}: it stores only {_JSON_TYPES}."
                " Convert the value first, or set CACHE_SERIALIZER='pickle-signed' (or"
                " 'pickle') to cache arbitrary Python objects."
            ) from None
        text = json.dumps(
            tagged, ensure_ascii=False, separators=(",", ":"), check_circular=False
        )
        # surrogatepass keeps lone surrogates in str values; json.loads undoes it.
        return JSON_V1 + text.encode("utf-8", "surrogatepass")

    def loads(self, data: bytes) -> t.Any:
        """Decode an entry written by :meth:`dumps`; refuse anything else."""
        if not isinstance(data, BYTES_TYPES) or data[:1] != JSON_V1:
            reason = f"{describe(data)} is not a JSON entry"
            raise refused(UnreadableValueError, reason)
        try:
            return json.loads(bytes(data[1:]), object_hook=self._tagger.untag)
        except Exception as exc:
            reason = f"a JSON entry could not be decoded: {exc!r}"
            raise refused(UnreadableValueError, reason) from exc
