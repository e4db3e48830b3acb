"""Serializers: turn cache values into bytes and back, and decide which bytes to trust.

A backend holds one serializer with cachelib's interface: ``dumps(value) -> bytes``,
``loads(data) -> value``, and ``dump(value, f)`` / ``load(f)`` on a binary stream (used
by FileSystemCache). The extension builds it from ``CACHE_SERIALIZER`` with
:func:`resolve_serializer` at ``init_app``. What someone able to write to the cache
server can then do:

- ``"pickle"`` (default), :class:`PickleSerializer`: run code in the app;
- ``"json"``, :class:`JSONSerializer`: change cached data, never run code;
- ``"pickle-signed"``, :class:`SignedPickleSerializer`: nothing, without the secret key.

The first byte names the format, so changing ``CACHE_SERIALIZER`` turns old entries into
misses instead of misreading them, and a later format can be told apart::

    b"\\x80..."  plain pickle, protocol 2+ (as released Flask-Caching writes it);
                b"!" + pickle (cachelib's Redis format) is read as well
    b"\\x01..."  signed pickle v1: b"\\x01" + HMAC(key, b"\\x01" + pickle) + pickle
    b"\\x02..."  tagged JSON v1, UTF-8

No format starts with an ASCII digit or sign: the Redis and memcached backends store
``int`` values as plain decimal bytes *outside* the serializer so that INCR/DECR
(``inc``/``dec``) keep working. Those integers are not signed, but cannot carry code.

``loads`` returns the value or raises :class:`UnreadableValueError` (its subclass
:class:`UnsafeValueError` when a signature does not verify) after logging a warning on
the ``flask_caching`` logger. Backends and decorators treat either as a miss.
"""

from __future__ import annotations

import hmac
import importlib
import json
import logging
import pickle
import typing as t
from collections.abc import Iterable
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

from .exceptions import CacheError, ConfigurationError

logger = logging.getLogger("flask_caching")

#: Readable by every supported Python. Pinned, not HIGHEST_PROTOCOL, so a newer Python
#: in a rolling deploy never writes pickles that older workers cannot read.
PICKLE_PROTOCOL = 5
#: Digests accepted for signing; md5, sha1 and checksums are left out on purpose.
ALGORITHMS = tuple(
    "sha256 sha384 sha512 sha224 sha512_256 sha512_224"
    " sha3_256 sha3_384 sha3_512 sha3_224 blake2b blake2s".split()
)

_SQUASH = str.maketrans("", "", " -_")
_CANONICAL = {name.translate(_SQUASH): name for name in ALGORITHMS}
_BYTES = (bytes, bytearray, memoryview)
_SIGNED_V1 = b"\x01"
_JSON_V1 = b"\x02"
_LEGACY_REDIS = b"!"
#: HMAC(secret, this) is the signing key, so the app's SECRET_KEY is never used raw.
_KEY_PURPOSE = b"flask_caching.serializer.pickle-signed"
_FORMATS = {
    _SIGNED_V1: "a signed pickle entry (CACHE_SERIALIZER='pickle-signed')",
    _JSON_V1: "a JSON entry (CACHE_SERIALIZER='json')",
    b"\x80": "an unsigned pickle entry (CACHE_SERIALIZER='pickle')",
    _LEGACY_REDIS: "an unsigned pickle entry (cachelib's Redis format)",
}


class UnreadableValueError(CacheError):
    """Stored bytes could not be turned back into a value: treat the entry as a miss.

    Raised for entries in another format (``CACHE_SERIALIZER`` changed), corrupted
    data, or pickles naming a class that no longer exists after a deploy.
    """


class UnsafeValueError(UnreadableValueError):
    """A signed entry failed verification (bad, missing or truncated signature).

    The payload was never unpickled. Treat the entry as a miss and drop it.
    """


class Serializer(t.Protocol):
    """What a backend needs from its ``serializer`` (cachelib's interface)."""

    def dumps(self, value: t.Any, /) -> bytes: ...
    def loads(self, data: bytes, /) -> t.Any: ...
    def dump(self, value: t.Any, f: t.IO[bytes], /) -> None: ...
    def load(self, f: t.IO[bytes], /) -> t.Any: ...


class BaseSerializer:
    """Base for serializers: the stream pair ``dump``/``load`` via ``dumps``/``loads``.

    Defined once so an entry has the same bytes whichever pair a backend calls.
    """

    __slots__ = ()

    def dumps(self, value: t.Any) -> bytes:
        """Return the bytes to store for ``value``."""
        raise NotImplementedError

    def loads(self, data: bytes) -> t.Any:
        """Return the value stored as ``data``, or raise UnreadableValueError."""
        raise NotImplementedError

    def dump(self, value: t.Any, f: t.IO[bytes]) -> None:
        """Write ``dumps(value)`` to the binary stream ``f``."""
        f.write(self.dumps(value))

    def load(self, f: t.IO[bytes]) -> t.Any:
        """Read the rest of the binary stream ``f`` and ``loads`` it."""
        return self.loads(f.read())


def _describe(data: object) -> str:
    """Say what format an unreadable entry seems to be in: points at a config change."""
    if not isinstance(data, _BYTES):
        return f"a {type(data).__name__} entry (expected bytes)"
    unknown = f"an entry of {len(data)} bytes in no known format"
    return _FORMATS.get(bytes(data[:1]), unknown)


def _refused(error: type[UnreadableValueError], reason: str) -> UnreadableValueError:
    """Log why an entry is ignored and return the error for the caller to raise."""
    logger.warning("Ignoring a cache entry, treated as a miss: %s", reason)
    return error(reason)


class PickleSerializer(BaseSerializer):
    """Plain pickle, the default: stores any picklable object.

    Reads and writes the same bytes as released Flask-Caching (cachelib's serializers),
    so existing caches survive an upgrade. Use it only when nobody untrusted can write
    to the cache server: unpickling runs code named by the data.
    """

    __slots__ = ("protocol",)

    def __init__(self, protocol: int = PICKLE_PROTOCOL) -> None:
        self.protocol = protocol

    def dumps(self, value: t.Any) -> bytes:
        """Pickle ``value``."""
        return pickle.dumps(value, self.protocol)

    def loads(self, data: bytes) -> t.Any:
        """Unpickle ``data``; skip a leading ``b"!"`` (cachelib's Redis marker)."""
        try:
            if data[:1] == _LEGACY_REDIS:
                return pickle.loads(memoryview(data)[1:])
            return pickle.loads(data)
        except Exception as exc:
            reason = f"{_describe(data)} could not be unpickled: {exc!r}"
            raise _refused(UnreadableValueError, reason) from exc


def check_algorithm(name: object) -> str:
    """Return the normalised digest name for signing, or raise ConfigurationError.

    The name comes from configuration only, never from a stored value, so whoever
    writes an entry cannot pick a weak digest. Case, ``-`` and ``_`` are forgiven.
    """
    squashed = name.lower().translate(_SQUASH) if isinstance(name, str) else ""
    normal = _CANONICAL.get(squashed, "")
    if not normal:
        raise ConfigurationError(
            f"CACHE_SERIALIZER_ALGORITHM={name!r} is not accepted for signing; use one"
            f" of {', '.join(ALGORITHMS)} (the default 'sha256' suits almost everyone)."
            " md5, sha1 and non-cryptographic checksums are refused."
        )
    try:
        hmac.new(b"probe", digestmod=normal)
    except ValueError as exc:
        raise ConfigurationError(
            f"CACHE_SERIALIZER_ALGORITHM={name!r} is not available in this Python's"
            " hashlib/OpenSSL; use 'sha256'."
        ) from exc
    return normal


def _secret_bytes(keys: Iterable[str | bytes | None] | str | bytes) -> list[bytes]:
    """Secret keys as bytes; unset (None or empty) ones are skipped."""
    if isinstance(keys, (str, bytes)):
        keys = (keys,)
    found: list[bytes] = []
    for key in keys:
        if isinstance(key, str):
            key = key.encode("utf-8")
        elif key is not None and not isinstance(key, (bytes, bytearray)):
            raise ConfigurationError(
                f"CACHE_SECRET_KEY: keys are str or bytes, not {type(key).__name__}."
            )
        if key:
            found.append(bytes(key))
    return found


class SignedPickleSerializer(BaseSerializer):
    """Pickle behind an HMAC: entries not signed with one of our keys are never loaded.

    Stored as ``b"\\x01" + HMAC(k, b"\\x01" + pickle) + pickle``, ``k`` derived from
    each secret as ``HMAC(secret, purpose)``. The first key signs and every key
    verifies: rotate by putting the new secret first, and drop the old one once entries
    written under it have expired. The digest is fixed by configuration (default
    sha256), never read from the entry; signatures are compared in constant time.
    """

    __slots__ = ("protocol", "algorithm", "_signer", "_verifiers", "_start")

    def __init__(
        self,
        secret_keys: Iterable[str | bytes | None] | str | bytes,
        *,
        algorithm: str = "sha256",
        protocol: int = PICKLE_PROTOCOL,
    ) -> None:
        self.protocol = protocol
        self.algorithm = check_algorithm(algorithm)
        secrets = _secret_bytes(secret_keys)
        if not secrets:
            raise ConfigurationError(
                "CACHE_SERIALIZER='pickle-signed' needs a secret key: set"
                " CACHE_SECRET_KEY (or SECRET_KEY). To rotate, give a list: the first"
                " key signs, all of them verify."
            )
        # One keyed HMAC per secret, already fed the format byte. Calls copy one rather
        # than re-deriving the key, so a hit costs a single pass over the payload.
        self._verifiers = tuple(
            hmac.new(
                hmac.new(secret, _KEY_PURPOSE, self.algorithm).digest(),
                _SIGNED_V1,
                self.algorithm,
            )
            for secret in secrets
        )
        self._signer = self._verifiers[0]
        self._start = 1 + self._signer.digest_size

    def dumps(self, value: t.Any) -> bytes:
        """Pickle ``value``; prefix the format byte and the first key's signature."""
        payload = pickle.dumps(value, self.protocol)
        mac = self._signer.copy()
        mac.update(payload)
        return b"".join((_SIGNED_V1, mac.digest(), payload))

    def loads(self, data: bytes) -> t.Any:
        """Check the signature against each key, then unpickle; refuse anything else."""
        start = self._start
        if not isinstance(data, _BYTES) or data[:1] != _SIGNED_V1:
            reason = f"{_describe(data)} is not signed; not unpickled"
            raise _refused(UnsafeValueError, reason)
        if len(data) <= start:
            raise _refused(UnsafeValueError, "a truncated signed entry; not unpickled")
        view = memoryview(data)
        signature, payload = view[1:start], view[start:]
        for verifier in self._verifiers:
            mac = verifier.copy()
            mac.update(payload)
            if hmac.compare_digest(mac.digest(), signature):
                break
        else:
            raise _refused(
                UnsafeValueError,
                "its signature matches no secret key; not unpickled. Expected after"
                " CACHE_SECRET_KEY/SECRET_KEY changed; otherwise something else is"
                " writing to the cache server",
            )
        try:
            return pickle.loads(payload)
        except Exception as exc:
            reason = f"a signed entry could not be unpickled: {exc!r}"
            raise _refused(UnreadableValueError, reason) from exc


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
        return _JSON_V1 + text.encode("utf-8", "surrogatepass")

    def loads(self, data: bytes) -> t.Any:
        """Decode an entry written by :meth:`dumps`; refuse anything else."""
        if not isinstance(data, _BYTES) or data[:1] != _JSON_V1:
            reason = f"{_describe(data)} is not a JSON entry"
            raise _refused(UnreadableValueError, reason)
        try:
            return json.loads(bytes(data[1:]), object_hook=self._tagger.untag)
        except Exception as exc:
            reason = f"a JSON entry could not be decoded: {exc!r}"
            raise _refused(UnreadableValueError, reason) from exc


class _StreamAdapter(BaseSerializer):
    """Give a dumps/loads-only object the stream pair FileSystemCache calls."""

    __slots__ = ("wrapped",)

    def __init__(self, wrapped: t.Any) -> None:
        self.wrapped = wrapped

    def dumps(self, value: t.Any) -> bytes:
        """Delegate to the wrapped serializer."""
        return t.cast(bytes, self.wrapped.dumps(value))

    def loads(self, data: bytes) -> t.Any:
        """Delegate to the wrapped serializer."""
        return self.wrapped.loads(data)


_CHOICES = (
    "use 'pickle' (the default), 'json', 'pickle-signed', a serializer object, or an"
    " import string such as 'package.module:serializer'."
)


def _import(path: str) -> object:
    """Import ``package.module.name`` or ``package.module:name.attr``."""
    module_name, colon, attribute = path.partition(":")
    if not colon:
        module_name, _, attribute = path.rpartition(".")
    try:
        if not module_name or not attribute:
            raise ImportError("no module or attribute part")
        found: object = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except Exception as exc:
        raise ConfigurationError(
            f"CACHE_SERIALIZER={path!r} could not be imported ({exc!r}); {_CHOICES}"
        ) from exc
    return found


def resolve_serializer(
    setting: object = None,
    *,
    secret_keys: Iterable[str | bytes | None] | str | bytes = (),
    algorithm: str = "sha256",
) -> Serializer:
    """Turn a ``CACHE_SERIALIZER`` setting into a serializer object.

    ``setting`` is None or ``"pickle"`` (the default), ``"json"``, ``"pickle-signed"``,
    an object with ``dumps``/``loads`` (e.g. a cachelib serializer), a class (built
    with no arguments), or an import string naming either. ``secret_keys`` (first
    signs, all verify) and ``algorithm`` (``CACHE_SERIALIZER_ALGORITHM``) serve
    ``"pickle-signed"``; the algorithm is checked whatever the setting, so a typo fails
    at ``init_app``. Every result has ``dump``/``load`` too: others are wrapped.
    """
    checked = check_algorithm(algorithm)
    given = setting
    if setting is None:
        return PickleSerializer()
    if isinstance(setting, str):
        name = setting.strip().lower()
        if name == "pickle":
            return PickleSerializer()
        if name == "json":
            return JSONSerializer()
        if name == "pickle-signed":
            return SignedPickleSerializer(secret_keys, algorithm=checked)
        if "." not in name and ":" not in name:
            raise ConfigurationError(
                f"CACHE_SERIALIZER={given!r} is not a known serializer; {_CHOICES}"
            )
        setting = _import(setting.strip())
    if isinstance(setting, type):
        try:
            setting = setting()
        except Exception as exc:
            raise ConfigurationError(
                f"CACHE_SERIALIZER={given!r}: the class could not be built with no"
                f" arguments ({exc!r}); pass an instance instead."
            ) from exc
    if not all(callable(getattr(setting, m, None)) for m in ("dumps", "loads")):
        raise ConfigurationError(
            f"CACHE_SERIALIZER={given!r} is not a serializer: it needs methods"
            " dumps(value) -> bytes and loads(bytes) -> value."
        )
    if all(callable(getattr(setting, m, None)) for m in ("dump", "load")):
        return t.cast(Serializer, setting)
    return _StreamAdapter(setting)
