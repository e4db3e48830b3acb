"""The helpers released Flask-Caching makes importable, with the same results.

Key building depends on them (memoize namespaces, argument inspection, query pairs),
so their output is part of the storage contract: a mixed fleet of released
Flask-Caching and ours must name every entry the same way.
"""

from __future__ import annotations

import datetime as dt
import inspect
import math
import string
import typing as t
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import parse_qsl

from werkzeug.datastructures import MultiDict

from .keys import TEMPLATE_FRAGMENT_PREFIX, function_name, make_template_fragment_key

__all__ = [
    "TEMPLATE_FRAGMENT_KEY_TEMPLATE",
    "TEMPLATE_FRAGMENT_PREFIX",
    "del_chars",
    "function_name",
    "function_namespace",
    "get_arg_default",
    "get_arg_names",
    "get_function_parameters",
    "get_id",
    "join_generator",
    "make_template_fragment_key",
    "normalize_timeout",
    "null_control",
    "query_args_as_pairs",
    "valid_chars",
    "wants_args",
    "wants_extra_args",
]

#: ``TEMPLATE_FRAGMENT_KEY_TEMPLATE % (name, vary)`` is a fragment's key
TEMPLATE_FRAGMENT_KEY_TEMPLATE = TEMPLATE_FRAGMENT_PREFIX + "%s%s"

#: the characters a memoize namespace keeps; every other one is dropped
valid_chars = set(string.ascii_letters + string.digits + "_.")
del_chars = "".join(chr(c) for c in range(256) if chr(c) not in valid_chars)
null_control = str.maketrans(dict.fromkeys(del_chars))

_QueryArgs = str | Mapping[str, t.Any] | Iterable[tuple[str, t.Any]]


def normalize_timeout(timeout: t.Any) -> int | None:
    """Seconds as an int: a ``timedelta`` rounds up, a numeric string is parsed."""
    if isinstance(timeout, str):
        timeout = int(timeout)
    if isinstance(timeout, dt.timedelta):
        return math.ceil(timeout.total_seconds())
    return t.cast("int | None", timeout)


def get_function_parameters(f: Callable[..., t.Any]) -> list[inspect.Parameter]:
    """The parameters of *f* (following ``__wrapped__``), in order."""
    return list(inspect.signature(f).parameters.values())


def wants_args(f: Callable[..., t.Any]) -> bool:
    """True when *f* takes any parameter that is not keyword-only."""
    return any(
        p.kind is not inspect.Parameter.KEYWORD_ONLY for p in get_function_parameters(f)
    )


def wants_extra_args(f: Callable[..., t.Any]) -> bool:
    """True when *f* takes more than one parameter that is not keyword-only."""
    kinds = [p.kind for p in get_function_parameters(f)]
    return sum(k is not inspect.Parameter.KEYWORD_ONLY for k in kinds) > 1


def get_arg_names(f: Callable[..., t.Any]) -> list[str]:
    """The names of *f*'s positional-or-keyword parameters."""
    return [
        p.name
        for p in get_function_parameters(f)
        if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]


def get_arg_default(f: Callable[..., t.Any], position: int) -> t.Any:
    """The default of *f*'s parameter at *position* (any kind), None if it has none."""
    default = get_function_parameters(f)[position].default
    return None if default is inspect.Parameter.empty else default


def query_args_as_pairs(query_args: _QueryArgs) -> list[tuple[str, str]]:
    """``(name, value)`` pairs of a query string, a mapping or an iterable of pairs."""
    if isinstance(query_args, str):
        return parse_qsl(query_args.lstrip("?"), keep_blank_values=True)
    items: Iterable[tuple[str, t.Any]]
    if isinstance(query_args, MultiDict):
        items = query_args.items(multi=True)
    elif isinstance(query_args, Mapping):
        items = query_args.items()
    else:
        items = query_args
    return [(name, str(value)) for name, value in items]


def get_id(obj: t.Any) -> str:
    """What identifies *obj* in a memoize key: ``__caching_id__()``, else its repr."""
    caching_id = getattr(obj, "__caching_id__", None)
    return repr(obj) if caching_id is None else str(caching_id())


def function_namespace(
    f: Callable[..., t.Any], args: t.Any = None
) -> tuple[str, str | None]:
    """``(namespace, instance namespace)`` of a memoized function, as memoize keys
    use them: ``module.qualname`` and, for a method, that plus the instance id, with
    every character outside ``[A-Za-z0-9_.]`` removed."""
    names = get_arg_names(f)
    first = names[0] if names else None
    bound = getattr(f, "__self__", None)
    token = None
    if bound and not inspect.isclass(bound):
        token = get_id(bound)
    elif first == "self" and args:
        token = get_id(args[0])
    if first == "cls" and not (args and inspect.isclass(args[0])):
        raise ValueError(
            "When using `delete_memoized` on a `@classmethod` you must provide "
            "the class as the first argument"
        )
    module = f.__module__
    name = getattr(f, "__qualname__", None) or _legacy_name(f, first, args)
    namespace = f"{module}.{name}".translate(null_control)
    if not token:
        return namespace, None
    return namespace, f"{module}.{name}.{token}".translate(null_control)


def _legacy_name(f: Callable[..., t.Any], first: str | None, args: t.Any) -> str:
    """``Class.name`` for a callable without ``__qualname__``."""
    owner = getattr(f, "__self__", None)
    if owner is not None and not inspect.isclass(owner):
        owner = type(owner)
    if owner is None and args and first in ("self", "cls"):
        owner = type(args[0]) if first == "self" else args[0]
    name: str = getattr(f, "__name__", repr(f))
    return f"{owner.__name__}.{name}" if owner is not None else name


def join_generator(rv: t.Any) -> t.Any:
    """A generator's items joined when all are str (or all bytes), else a list."""
    chunks = list(rv)
    if all(isinstance(chunk, str) for chunk in chunks):
        return "".join(chunks)
    if all(isinstance(chunk, bytes) for chunk in chunks):
        return b"".join(chunks)
    return chunks
