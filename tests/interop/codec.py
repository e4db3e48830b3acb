"""A type-tagged JSON encoding of cache values, shared by the test and the workers.

Plain JSON would blur the differences the interop test looks for (tuple vs list,
bytes vs str, 1 vs 1.0 vs True, dict key types), so every value travels as
``{"t": tag, "v": payload}``. Types are matched exactly (``type(x) is int``), so a
subclass read back (``Markup``, ``bytearray``) shows up as ``"other"`` with its type
name and repr instead of passing for the expected type.
"""

from __future__ import annotations

import base64
import typing as t

Encoded = dict[str, t.Any]


def encode(value: t.Any) -> Encoded:
    """The tagged form of *value*; anything unknown is tagged ``other`` with its repr."""
    kind = type(value)
    if value is None:
        return {"t": "none"}
    if kind is bool:
        return {"t": "bool", "v": value}
    if kind is int:
        return {"t": "int", "v": str(value)}
    if kind is float:
        return {"t": "float", "v": value.hex()}
    if kind is str:
        return {"t": "str", "v": value}
    if kind is bytes:
        return {"t": "bytes", "v": base64.b64encode(value).decode("ascii")}
    if kind is list or kind is tuple:
        return {"t": kind.__name__, "v": [encode(item) for item in value]}
    if kind is dict:
        return {"t": "dict", "v": [[encode(k), encode(v)] for k, v in value.items()]}
    return {
        "t": "other",
        "type": f"{kind.__module__}.{kind.__qualname__}",
        "v": repr(value),
    }


def decode(data: Encoded) -> t.Any:
    """The value *data* encodes; ``other`` cannot be rebuilt and raises ValueError."""
    tag = data["t"]
    if tag == "none":
        return None
    payload = data["v"]
    if tag in ("bool", "str"):
        return payload
    if tag == "int":
        return int(payload)
    if tag == "float":
        return float.fromhex(payload)
    if tag == "bytes":
        return base64.b64decode(payload)
    if tag == "list":
        return [decode(item) for item in payload]
    if tag == "tuple":
        return tuple(decode(item) for item in payload)
    if tag == "dict":
        return {decode(k): decode(v) for k, v in payload}
    raise ValueError(f"cannot rebuild a value tagged {tag!r}: {data!r}")


def describe(data: Encoded, limit: int = 120) -> str:
    """A short readable form of an encoded value for assertion messages."""
    if data["t"] == "other":
        text = f"<{data['type']}> {data['v']}"
    else:
        text = f"{data['t']}: {decode(data)!r}"
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"
