"""The signed pickle serializer: entries not signed with one of our keys are refused.

``CACHE_SERIALIZER='pickle-signed'``. The digest comes from configuration only
(:func:`check_algorithm`), so whoever writes to the cache server cannot weaken it.
"""

from __future__ import annotations

import hmac
import pickle
import typing as t
from collections.abc import Iterable

from .exceptions import ConfigurationError
from .serializer_base import (
    BYTES_TYPES,
    PICKLE_PROTOCOL,
    SIGNED_V1,
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
                SIGNED_V1,
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
        return b"".join((SIGNED_V1, mac.digest(), payload))

    def loads(self, data: bytes) -> t.Any:
        """Check the signature against each key, then unpickle; refuse anything else."""
        start = self._start
        if not isinstance(data, BYTES_TYPES) or data[:1] != SIGNED_V1:
            reason = f"{describe(data)} is not signed; not unpickled"
            raise refused(UnsafeValueError, reason)
        if len(data) <= start:
            raise refused(UnsafeValueError, "a truncated signed entry; not unpickled")
        view = memoryview(data)
        signature, payload = view[1:start], view[start:]
        for verifier in self._verifiers:
            mac = verifier.copy()
            mac.update(payload)
            if hmac.compare_digest(mac.digest(), signature):
                break
        else:
            raise refused(
                UnsafeValueError,
                "its signature matches no secret key; not unpickled. Expected after"
                " CACHE_SECRET_KEY/SECRET_KEY changed; otherwise something else is"
                " writing to the cache server",
            )
        try:
            return pickle.loads(payload)
        except Exception as exc:
            reason = f"a signed entry could not be unpickled: {exc!r}"
            raise refused(UnreadableValueError, reason) from exc
