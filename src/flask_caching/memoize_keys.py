"""The keys of ``@memoize``: released Flask-Caching's, so a mixed fleet shares them.

For ``ns = module.qualname`` (characters outside ``[A-Za-z0-9_.]`` dropped)::

    ns + "_memver"                      the function's version (6 characters)
    ns + "." + get_id(self) + "_memver" one instance's version (methods)
    b64(H(f"{make_name(ns)}{args}{kwargs}" [+ source]).digest())[:16] + versions
                                        the value of one call

``args`` is the call's positional values in parameter order (defaults filled in,
``self``/``cls`` replaced by :func:`.utils.get_id`, ignored ones None) and ``kwargs``
an ``OrderedDict`` of the remaining keywords, sorted. Everything that does not
depend on the call is computed once, here, at decoration time.
"""

from __future__ import annotations

import base64
import inspect
import typing as t
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable

from .utils import function_namespace, get_id, null_control

VERSION_SUFFIX = "_memver"

#: a token per live object whose repr is the default ``<X object at 0x...>``
_TOKENS: weakref.WeakKeyDictionary[t.Any, str] = weakref.WeakKeyDictionary()


class UnkeyableError(TypeError):
    """An argument has no identity a key can hold (see :func:`identity`)."""


def _default_repr(obj: t.Any) -> bool:
    kind = type(obj)
    default = t.cast(t.Any, kind).__repr__ is object.__repr__
    return default and not hasattr(obj, "__caching_id__")


class _Token:
    """Stands for an object in a key: its repr is the object's stable token."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def identity(obj: t.Any) -> str:
    """What names *obj* in a key: :func:`.utils.get_id` (``__caching_id__()`` or the
    repr), except for an object whose repr is the default ``<X object at 0x...>``.

    Such a repr holds the object's address, which a new object reuses once this one
    is collected, so it would get this one's memoized values. Such objects get a
    random token instead, kept as long as they live (a weak reference), so no later
    object can ever have it. Objects that cannot be weakly referenced or hashed
    cannot be keyed that way: they raise :class:`UnkeyableError` (the call runs
    uncached, with one warning).
    """
    if not _default_repr(obj):
        return get_id(obj)
    try:
        token = _TOKENS.get(obj)
        if token is None:
            kind = type(obj)
            token = f"<{kind.__module__}.{kind.__qualname__} {uuid.uuid4().hex}>"
            _TOKENS[obj] = token
    except TypeError as exc:
        raise UnkeyableError(
            f"{type(obj).__qualname__} objects have the default repr (their memory "
            "address, which a later object may reuse) and cannot be weakly "
            "referenced; give the class a __repr__ or __caching_id__ to memoize it"
        ) from exc
    return token


def _keyable(value: t.Any) -> t.Any:
    """*value*, or a stand-in printing its :func:`identity` for a default repr."""
    return _Token(identity(value)) if _default_repr(value) else value


_POSITIONAL_OR_KEYWORD = inspect.Parameter.POSITIONAL_OR_KEYWORD


class CallArguments:
    """Normalises one function's call arguments the way memoize keys need them."""

    def __init__(self, f: Callable[..., t.Any], args_to_ignore: Iterable[str]) -> None:
        params = list(inspect.signature(f).parameters.values())
        self.names = [p.name for p in params if p.kind is _POSITIONAL_OR_KEYWORD]
        # a default is looked up by the name's index among *all* parameters, as
        # released Flask-Caching does: keys must come out the same
        self.defaults = [
            None if params[i].default is inspect.Parameter.empty else params[i].default
            for i in range(min(len(self.names), len(params)))
        ]
        self.ignored = frozenset(args_to_ignore)
        self.first = self.names[0] if self.names else None

    def normalise(
        self, args: tuple[t.Any, ...], kwargs: dict[str, t.Any]
    ) -> tuple[tuple[t.Any, ...], OrderedDict[str, t.Any]]:
        """``(positional values, remaining keywords)`` of one call."""
        remaining = [k for k in kwargs if k not in self.ignored]
        values: list[t.Any] = []
        taken = 0
        for i, name in enumerate(self.names):
            if name in self.ignored:
                value, taken = None, taken + 1
            elif i == 0 and name in ("self", "cls"):
                if not args:
                    raise MissingInstanceError(name)
                value, taken = identity(args[0]), taken + 1
            elif name in kwargs:
                value = _keyable(kwargs[name])
                remaining.remove(name)
            elif taken < len(args):
                value, taken = _keyable(args[taken]), taken + 1
            else:
                value, taken = self.defaults[i], taken + 1
            values.append(value)
        values.extend(_keyable(a) for a in args[len(self.names) :])
        extra = OrderedDict(
            sorted((k, _keyable(v)) for k, v in kwargs.items() if k in remaining)
        )
        return tuple(values), extra


class MissingInstanceError(TypeError, ValueError):
    """A method's (or classmethod's) key was asked for without its first argument.

    Both a TypeError (a call missing an argument) and the ValueError released
    Flask-Caching raises, so either ``except`` clause catches it.
    """

    def __init__(self, name: str) -> None:
        kind = "classmethod" if name == "cls" else "method"
        super().__init__(
            f"When using `delete_memoized` on a `{kind}` you must provide the "
            f"`{name}` argument as the first positional argument."
        )


class MemoizedKeys:
    """Everything needed to name one memoized function's keys, fixed at decoration."""

    def __init__(
        self,
        f: Callable[..., t.Any],
        make_name: Callable[[str], str] | None,
        args_to_ignore: Iterable[str],
        source_check: bool | None,
        hash_method: Callable[..., t.Any] | None,
    ) -> None:
        self.f = f
        self.make_name = make_name
        self.arguments = CallArguments(f, args_to_ignore)
        first = self.arguments.first
        #: the first argument is an instance with a version key of its own
        self.is_method = first == "self" and "self" not in self.arguments.ignored
        self.is_classmethod = first == "cls"
        self.source_check = source_check
        self.hash_method = hash_method
        namespace, _ = function_namespace(f, (type,) if first == "cls" else None)
        self.namespace = namespace
        self.alt = self._alt(namespace)
        qualname = getattr(f, "__qualname__", None)  # a callable object has none
        self._instance_prefix = (
            f"{f.__module__}.{qualname}." if qualname else namespace + "."
        )
        self._source: dict[t.Any, bytes] = {}
        #: the name shown in warnings
        self.name = f"{getattr(f, '__module__', '?')}.{getattr(f, '__qualname__', f)}"

    def _alt(self, namespace: str) -> str:
        return self.make_name(namespace) if self.make_name is not None else namespace

    def namespaces(self, args: tuple[t.Any, ...]) -> tuple[str, str, str | None]:
        """``(namespace, name used in the value key, instance namespace)``."""
        if self.is_classmethod and not (args and inspect.isclass(args[0])):
            raise MissingInstanceError("cls")
        if self.is_method and args:
            token = identity(args[0])
            if token:
                instance = (self._instance_prefix + token).translate(null_control)
                return self.namespace, self.alt, instance
        return self.namespace, self.alt, None

    def version_keys(self, args: tuple[t.Any, ...]) -> list[str]:
        """The version keys a call is checked against (function, then instance)."""
        namespace, _alt, instance = self.namespaces(args)
        keys = [namespace + VERSION_SUFFIX]
        if instance:
            keys.append(instance + VERSION_SUFFIX)
        return keys

    def base(
        self,
        args: tuple[t.Any, ...],
        kwargs: dict[str, t.Any],
        hasher: Callable[..., t.Any],
        source_check: bool,
    ) -> str:
        """The value key of one call without its version strings."""
        _namespace, alt, _instance = self.namespaces(args)
        values, extra = self.arguments.normalise(args, kwargs)
        digest = hasher()
        digest.update(f"{alt}{values}{extra}".encode())
        if source_check:
            digest.update(self.source(hasher))
        return base64.b64encode(digest.digest())[:16].decode("utf-8")

    def source(self, hasher: t.Any) -> bytes:
        """The function's source code, read once."""
        text = self._source.get(hasher)
        if text is None:
            text = self._source[hasher] = inspect.getsource(self.f).encode("utf-8")
        return text
