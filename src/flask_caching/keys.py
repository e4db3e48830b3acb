"""Pure key-building functions: no request, no app, no backend.

Everything that does not depend on a call (a function's namespace, its signature,
the hash) is computed once by :class:`ArgumentKey` at decoration time; a call only
normalises its arguments and hashes one string. Keys never depend on ``id()``, the
per-process ``hash()`` of strings, or dict ordering, so every process computes the
same key for the same call.
"""

from __future__ import annotations

import inspect
import typing as t
from collections.abc import Callable, Iterable, Sequence

HashMethod = Callable[..., t.Any]

#: where a cached template fragment's key starts (kept for compatibility)
TEMPLATE_FRAGMENT_PREFIX = "_template_fragment_cache_"
_EMPTY = inspect.Parameter.empty
_POSITIONAL = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
)


def function_name(f: Callable[..., t.Any]) -> str:
    """``module.QualName`` of *f*, the stable part of its namespace."""
    module = getattr(f, "__module__", None) or "<unknown>"
    qualname = getattr(f, "__qualname__", None) or getattr(f, "__name__", repr(f))
    return f"{module}.{qualname}"


def hash_tag(name: str) -> str:
    """Wrap *name* in ``{...}`` so Redis Cluster puts every key with it in one slot."""
    return "{" + name.replace("{", "(").replace("}", ")") + "}"


def source_digest(f: Callable[..., t.Any], hash_method: HashMethod) -> str:
    """A short digest of *f*'s source code (or its bytecode when there is no source)."""
    target = inspect.unwrap(f)
    try:
        text = inspect.getsource(target).encode("utf-8")
    except (OSError, TypeError):
        code = getattr(target, "__code__", None)
        text = code.co_code if code is not None else repr(target).encode()
    return str(hash_method(text).hexdigest()[:16])


def canonical(value: t.Any) -> str:
    """A string that is equal for equal values and tells apart values of other types.

    ``repr`` already separates ``1`` from ``"1"``; containers are rebuilt so that
    dicts and sets do not depend on insertion order.
    """
    kind = type(value)
    if kind in (str, int, float, bool, bytes) or value is None:
        return repr(value)
    if kind is dict or isinstance(value, dict):
        items = sorted(canonical(k) + ":" + canonical(v) for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, (set, frozenset)):
        return kind.__name__ + "{" + ",".join(sorted(canonical(v) for v in value)) + "}"
    if kind is list or kind is tuple:
        open_, close = ("[", "]") if kind is list else ("(", ")")
        return open_ + ",".join(canonical(v) for v in value) + close
    caching_id = getattr(value, "__caching_id__", None)
    if caching_id is not None and callable(caching_id):
        return str(caching_id())
    return repr(value)


class ArgumentKey:
    """Turns one call's arguments into a stable string, for one function.

    Positional and keyword spellings of a call, and omitted defaults, give the same
    string. The signature is read once here, not on every call.
    """

    def __init__(
        self,
        f: Callable[..., t.Any],
        args_to_ignore: Iterable[str] = (),
        skip_first: bool = False,
    ) -> None:
        params = list(inspect.signature(f).parameters.values())
        self._names: list[str] = []
        self._defaults: list[t.Any] = []
        self._var_positional: str | None = None
        self._var_keyword: str | None = None
        for p in params:
            if p.kind in _POSITIONAL or p.kind is inspect.Parameter.KEYWORD_ONLY:
                self._names.append(p.name)
                self._defaults.append(p.default)
            elif p.kind is inspect.Parameter.VAR_POSITIONAL:
                self._var_positional = p.name
            else:
                self._var_keyword = p.name
        self._n_positional = sum(1 for p in params if p.kind in _POSITIONAL)
        #: names a keyword argument can fill (not positional-only ones: a keyword
        #: of that name goes to **kwargs, or is an error)
        self._keywords = frozenset(
            p.name for p in params if p.kind is not inspect.Parameter.POSITIONAL_ONLY
        ) & set(self._names)
        ignored = set(args_to_ignore)
        unknown = ignored - set(self._names) - {self._var_positional, self._var_keyword}
        if unknown:
            raise ValueError(
                f"args_to_ignore names {sorted(unknown)} that "
                f"{function_name(f)} does not take"
            )
        self._ignored = ignored
        #: the first parameter (self/cls) is keyed separately by the caller
        self._skip_first = skip_first
        self._signature = inspect.signature(f)
        start = 1 if skip_first else 0
        #: positions of the named parameters that are part of the key
        self._kept = [
            i
            for i, name in enumerate(self._names)
            if i >= start and name not in ignored
        ]
        #: every parameter named, positional, kept: a call passing all of them
        #: positionally needs no binding at all
        self._plain = (
            not ignored
            and not skip_first
            and self._var_positional is None
            and self._var_keyword is None
            and self._n_positional == len(self._names)
        )

    @property
    def first_name(self) -> str | None:
        return self._names[0] if self._names else None

    def bind(self, args: Sequence[t.Any], kwargs: dict[str, t.Any]) -> list[t.Any]:
        """The value of every named parameter, defaults filled in, in order.

        Raises ``TypeError`` exactly when calling the function would.
        """
        names = self._names
        n_pos = self._n_positional
        if len(args) > n_pos and self._var_positional is None:
            self._signature.bind(*args, **kwargs)  # raises the usual TypeError
        values = list(args[:n_pos])
        keywords = self._keywords
        if kwargs and values:
            if any(
                name in kwargs and name in keywords for name in names[: len(values)]
            ):
                self._signature.bind(*args, **kwargs)  # given twice: TypeError
        for i in range(len(values), len(names)):
            name = names[i]
            if name in kwargs and name in keywords:
                values.append(kwargs[name])
            elif self._defaults[i] is not _EMPTY:
                values.append(self._defaults[i])
            else:
                self._signature.bind(*args, **kwargs)  # missing argument: TypeError
                values.append(None)  # pragma: no cover - bind raised
        return values

    def key(self, args: Sequence[t.Any], kwargs: dict[str, t.Any]) -> str:
        """The canonical string of a call (without self/cls when skip_first)."""
        if self._plain and not kwargs and len(args) == len(self._names):
            return ",".join([canonical(value) for value in args])
        values = self.bind(args, kwargs)
        parts = [canonical(values[i]) for i in self._kept]
        if self._var_positional and self._var_positional not in self._ignored:
            parts.append(canonical(tuple(args[self._n_positional :])))
        if self._var_keyword and self._var_keyword not in self._ignored:
            extra = {k: v for k, v in kwargs.items() if k not in self._keywords}
            parts.append(canonical(extra))
        elif kwargs and not self._keywords.issuperset(kwargs):
            self._signature.bind(*args, **kwargs)  # unexpected keyword: TypeError
        return ",".join(parts)


def digest(text: str, hash_method: HashMethod) -> str:
    """Hex digest of *text*, shortened to 32 characters (128 bits)."""
    hexdigest: str = hash_method(text.encode("utf-8")).hexdigest()
    return hexdigest[:32]


def query_digest(pairs: Iterable[tuple[str, str]], hash_method: HashMethod) -> str:
    """A digest of query arguments that ignores their order (``?a=1&b=2`` = ``?b=2&a=1``)."""
    return digest("&".join(sorted(f"{k}={v}" for k, v in pairs)), hash_method)


def make_template_fragment_key(
    fragment_name: str, vary_on: Sequence[t.Any] | None = None
) -> str:
    """The cache key of a ``{% cache %}`` fragment, so code can delete it.

    ``make_template_fragment_key("sidebar", vary_on=[user.id])`` gives the key of
    ``{% cache 60, "sidebar", user.id %}``.
    """
    if vary_on:
        return f"{TEMPLATE_FRAGMENT_PREFIX}{fragment_name}_" + "_".join(
            str(v) for v in vary_on
        )
    return f"{TEMPLATE_FRAGMENT_PREFIX}{fragment_name}"
