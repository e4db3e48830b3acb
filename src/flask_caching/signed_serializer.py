"""The signed pickle serializer: entries not signed with one of our keys, or signed
for another cache key, are refused.

``CACHE_SERIALIZER='pickle-signed'``. The digest comes from configuration only
(:func:`check_algorithm`), so whoever writes to the cache server cannot weaken it.
The signature covers the cache key the entry is stored under (our backends pass it
through :meth:`SignedPickleSerializer.dumps_for` / ``loads_for``), so whoever can
write to the cache server cannot copy a valid entry under another key either.
"""

from __future__ import annotations

import hmac
import pickle
import struct
import typing as t
from collections.abc import Iterable

from .exceptions import ConfigurationError
from .serializer_base import (
    BYTES_TYPES,
    PICKLE_PROTOCOL,
    SIGNED_V1,
    SIGNED_V2,
    BaseSerializer,
    UnreadableValueError,
    UnsafeValueError,
    describe,
    refused,
)

#: Digests accepted for signing; md5, sha1 and checksums are left out on purpose.
ALGORITHMS = tuple(
    "sha256 sha384 sha512 sha224 sha512_256 sha512_224"
    " sha3_256 sha3_384 sha3_512 sha3_224 blake2b blake2s".split()
)

_SQUASH = str.maketrans("", "", " -_")
_CANONICAL = {name.translate(_SQUASH): name for name in ALGORITHMS}
#: HMAC(secret, this) is the signing key, so the app's SECRET_KEY is never used raw.
_KEY_PURPOSE = b"flask_caching.serializer.pickle-signed"
#: the length of the cache key's bytes, in front of them in the signed message
_KEY_LENGTH = struct.Struct(">Q")


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


def key_bytes(key: str | bytes) -> bytes:
    """The bytes of a cache key as signed: ``len`` (8 bytes, big-endian) + UTF-8.

    The length prefix keeps key and payload apart (``"ab" + payload`` can never
    sign the same message as ``"a" + b"b" + payload``); lone surrogates pass.
    """
    raw = key if isinstance(key, bytes) else key.encode("utf-8", "surrogatepass")
    return _KEY_LENGTH.pack(len(raw)) + raw


class SignedPickleSerializer(BaseSerializer):
    """Pickle behind an HMAC bound to the cache key: entries not signed with one of
    our secrets *for the key they are read under* are never loaded.

    Stored as ``b"\\x03" + HMAC(k, b"\\x03" + len(key) + key + pickle) + pickle``
    (``len(key)`` 8 bytes big-endian, ``key`` the UTF-8 name our backends pass),
    ``k`` derived from each secret as ``HMAC(secret, purpose)``. The first secret
    signs and every secret verifies: rotate by putting the new secret first, and drop
    the old one once entries written under it have expired. The digest is fixed by
    configuration (default sha256), never read from the entry; signatures are
    compared in constant time.

    Our backends call :meth:`dumps_for` / :meth:`loads_for` with the key as the app
    names it plus the backend's key prefix, if it has one (Redis, memcached), before
    any hashing: an entry copied under another key, or under the same key of another
    prefix, fails verification and is a logged miss, never unpickled. The key-less
    :meth:`dumps` / :meth:`loads` (for code that knows no key: cachelib's backends,
    your own) sign for the empty key, so such entries stay movable between keys.

    Entries of the earlier format ``b"\\x01"`` (signed, but not bound to a key) are
    refused as misses: reading them would keep the hole this format closes open.
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
        # than re-deriving the key, so a hit costs a single pass over key and payload.
        self._verifiers = tuple(
            hmac.new(
                hmac.new(secret, _KEY_PURPOSE, self.algorithm).digest(),
                SIGNED_V2,
                self.algorithm,
            )
            for secret in secrets
        )
        self._signer = self._verifiers[0]
        self._start = 1 + self._signer.digest_size

    def dumps(self, value: t.Any) -> bytes:
        """``dumps_for("", value)``: signed for no key (see the class docstring)."""
        return self.dumps_for("", value)

    def loads(self, data: bytes) -> t.Any:
        """``loads_for("", data)``: reads only entries signed for no key."""
        return self.loads_for("", data)

    def dumps_for(self, key: str | bytes, value: t.Any) -> bytes:
        """Pickle ``value``; prefix the format byte and the signature for ``key``."""
        payload = pickle.dumps(value, self.protocol)
        mac = self._signer.copy()
        mac.update(key_bytes(key))
        mac.update(payload)
        return b"".join((SIGNED_V2, mac.digest(), payload))

    def loads_for(self, key: str | bytes, data: bytes) -> t.Any:
        """Check the signature for ``key`` against each secret, then unpickle;
        refuse anything else (logged, :class:`UnsafeValueError`)."""
        start = self._start
        if not isinstance(data, BYTES_TYPES) or data[:1] != SIGNED_V2:
            old = isinstance(data, BYTES_TYPES) and data[:1] == SIGNED_V1
            how = " (written by an earlier version)" if old else " is not signed"
            reason = f"{describe(data)}{how}; not unpickled"
            raise refused(UnsafeValueError, reason)
        if len(data) <= start:
            raise refused(UnsafeValueError, "a truncated signed entry; not unpickled")
        view = memoryview(data)
        signature, payload = view[1:start], view[start:]
        bound = key_bytes(key)
        for verifier in self._verifiers:
            mac = verifier.copy()
            mac.update(bound)
            mac.update(payload)
            if hmac.compare_digest(mac.digest(), signature):
                break
        else:
            raise refused(
                UnsafeValueError,
                f"its signature for the key {key!r} matches no secret key; not"
                " unpickled. Expected after CACHE_SECRET_KEY/SECRET_KEY changed;"
                " otherwise something else is writing to the cache server, or an"
                " entry was copied from another key",
            )
        try:
            return pickle.loads(payload)
        except Exception as exc:
            reason = f"a signed entry could not be unpickled: {exc!r}"
            raise refused(UnreadableValueError, reason) from exc
