"""SASL memcached backends: ``SASLMemcachedCache`` and ``SpreadSASLMemcachedCache``.

Both are :class:`~.memcache.MemcachedCache` on pylibmc with the binary protocol;
import them from :mod:`flask_caching.backends.memcache`.
"""

from __future__ import annotations

import hashlib
import os
import struct
import typing as t
from collections.abc import Mapping, Sequence

from ..exceptions import ConfigurationError
from ._memcached import Driver
from ._memcached_drivers import build_driver_factory
from ._memcached_keys import Prefix
from .base import Timeout
from .memcache import MemcachedCache

__all__ = ["SASLMemcachedCache", "SpreadSASLMemcachedCache"]


class SASLMemcachedCache(MemcachedCache):
    """memcached with SASL authentication (pylibmc, binary protocol).

    CACHE_OPTIONS other than :class:`MemcachedCache`'s own keyword arguments are
    pylibmc behaviours. The pylibmc wheel bundles a libsasl2 that cannot find the
    system's SASL plugins; unless ``SASL_PATH`` is set, importing the backend's
    client points it at them (see :func:`._pylibmc_driver.ensure_sasl_plugin_path`).
    Wrong credentials make every operation raise a BackendError that says so.

    ``clear()`` flushes the **whole server**, whatever the prefix: a SASL server
    speaks only the binary protocol, which cannot list keys (``lru_crawler
    metadump`` is ASCII only). Give apps that must not clear each other their own
    server.
    """

    scoped_clear = False

    def __init__(
        self,
        servers: Sequence[str] | None = None,
        default_timeout: Timeout = 300,
        key_prefix: Prefix | None = None,
        username: str | None = None,
        password: str | None = None,
        **options: t.Any,
    ) -> None:
        if options.get("client", "pylibmc") != "pylibmc":
            raise ConfigurationError(
                f"{type(self).__name__} needs pylibmc; remove CACHE_OPTIONS client"
            )
        options.pop("client", None)
        self._credentials = (username, password)
        super().__init__(servers, default_timeout, key_prefix, **options)

    def _make_driver(
        self,
        servers: list[str],
        client: str | None,
        connect_timeout: float,
        timeout: float,
        options: dict[str, t.Any],
    ) -> tuple[str, Driver]:
        username, password = self._credentials
        return build_driver_factory(
            servers,
            "pylibmc",
            connect_timeout=connect_timeout,
            timeout=timeout,
            binary=True,
            username=username,
            password=password,
            options=options,
        )

    factory_settings: t.ClassVar[dict[str, str]] = {
        **MemcachedCache.factory_settings,
        "username": "CACHE_MEMCACHED_USERNAME",
        "password": "CACHE_MEMCACHED_PASSWORD",
    }


#: starts the header stored under the key of a spread value. No serializer we know
#: emits it: pickles start with 0x80, JSON and decimal text are printable.
SPREAD_MAGIC = b"\x00\xfffc-spread\x01"
_HEADER = struct.Struct(">16sIQ16s")  # write id, chunk count, length, blake2b-128


class SpreadSASLMemcachedCache(SASLMemcachedCache):
    """:class:`SASLMemcachedCache` that stores values larger than one item.

    A large payload is cut into chunks stored under ``prefix + "~c:" + write_id +
    ":" + n``, with a header under the key giving the random per-write id, the chunk
    count, the length and a blake2b digest. Reads fetch the headers, then all chunks
    in one more request; a missing chunk or a digest mismatch reads as a miss.
    Overwriting a large value leaves the old chunks to expire or be evicted;
    ``delete`` removes them.
    """

    _spread = True

    def _items(self, mkey: str, payload: bytes) -> dict[str, bytes] | None:
        if len(payload) <= self._item_limit and not payload.startswith(SPREAD_MAGIC):
            return {mkey: payload}
        write_id = os.urandom(16)
        size = self._item_limit
        items = {
            self._chunk_key(write_id, n): payload[start : start + size]
            for n, start in enumerate(range(0, len(payload), size))
        }
        digest = hashlib.blake2b(payload, digest_size=16).digest()
        header = _HEADER.pack(write_id, len(items), len(payload), digest)
        items[mkey] = SPREAD_MAGIC + header
        return items

    def _chunk_key(self, write_id: bytes, number: int) -> str:
        return f"{self._keys.prefix}~c:{write_id.hex()}:{number}"

    def _chunk_keys(self, raw: bytes) -> list[str]:
        """The chunk keys a stored header names (none if *raw* is not a header)."""
        if not isinstance(raw, bytes) or not raw.startswith(SPREAD_MAGIC):
            return []
        header = raw[len(SPREAD_MAGIC) :]
        if len(header) != _HEADER.size:
            return []
        write_id, count, _, _ = _HEADER.unpack(header)
        return [self._chunk_key(write_id, n) for n in range(count)]

    def get(self, key: str) -> t.Any:
        """Return the value or ``None`` (a spread value costs a second request)."""
        return self.get_many(key)[0]

    def _fetch(self, driver: Driver, mkeys: list[str]) -> dict[str, bytes]:
        raws = driver.get_multi(mkeys)
        spread = {
            mk: raw
            for mk, raw in raws.items()
            if isinstance(raw, bytes) and raw.startswith(SPREAD_MAGIC)
        }
        if not spread:
            return raws
        wanted = [ck for raw in spread.values() for ck in self._chunk_keys(raw)]
        chunks = driver.get_multi(wanted) if wanted else {}
        for mkey, raw in spread.items():
            payload = self._assemble(raw, chunks)
            if payload is None:
                del raws[mkey]
            else:
                raws[mkey] = payload
        return raws

    def _assemble(self, raw: bytes, chunks: Mapping[str, bytes]) -> bytes | None:
        keys = self._chunk_keys(raw)
        if not keys or any(key not in chunks for key in keys):
            return None
        _, _, length, digest = _HEADER.unpack(raw[len(SPREAD_MAGIC) :])
        payload = b"".join(chunks[key] for key in keys)
        if len(payload) != length:
            return None
        if hashlib.blake2b(payload, digest_size=16).digest() != digest:
            return None
        return payload

    def delete(self, key: str) -> bool:
        """Delete *key* and its chunks (a get, then one ``delete_multi``)."""
        mkey = self._map(key)
        with self._pool.reserve() as driver:
            raw = driver.get(mkey)
            if raw is None:
                return False
            driver.delete_multi([mkey, *self._chunk_keys(raw)])
        return True

    def delete_many(self, *keys: str) -> list[t.Any]:
        """Delete *keys* and their chunks (one ``get_multi``, one ``delete_multi``)."""
        if keys:
            mkeys = list(dict.fromkeys(self._map(key) for key in keys))
            with self._pool.reserve() as driver:
                raws = driver.get_multi(mkeys)
                chunks = [ck for raw in raws.values() for ck in self._chunk_keys(raw)]
                driver.delete_multi(mkeys + chunks)
        return list(keys)
