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
from ._memcached import Driver, Item
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

    ``clear()`` flushes the **whole server**, whatever the prefix, as for
    :class:`MemcachedCache`.
    """

    def __init__(
        self,
        servers: Sequence[str] | None = None,
        default_timeout: Timeout = 300,
        key_prefix: Prefix | None = None,
        username: str | None = None,
        password: str | None = None,
        pool_size: int | None = None,
        pool_blocking: bool = True,
        ignore_delete_many_errors: bool = False,
        **options: t.Any,
    ) -> None:
        if options.get("client", "pylibmc") != "pylibmc":
            raise ConfigurationError(
                f"{type(self).__name__} needs pylibmc; remove CACHE_OPTIONS client"
            )
        options.pop("client", None)
        self._credentials = (username, password)
        super().__init__(
            servers,
            default_timeout,
            key_prefix,
            pool_size,
            pool_blocking,
            ignore_delete_many_errors,
            **options,
        )

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
#: write id, chunk count, length, blake2b-128, the value's item flags
_HEADER = struct.Struct(">16sIQ16sI")


class SpreadSASLMemcachedCache(SASLMemcachedCache):
    """:class:`SASLMemcachedCache` that stores values larger than one item.

    A large item is cut into chunks stored under ``prefix + "~c:" + write_id +
    ":" + n``, with a header under the key giving the random per-write id, the chunk
    count, the length, a blake2b digest and the item's flags (chunks have flags 0). Reads fetch the headers, then all chunks
    in one more request; a missing chunk or a digest mismatch reads as a miss.
    Overwriting a large value leaves the old chunks to expire or be evicted;
    ``delete`` removes them.
    """

    _spread = True

    def __init__(
        self,
        *args: t.Any,
        chunksize: int | None = None,
        maxchunk: int | None = None,
        **kwargs: t.Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if chunksize is not None:  # released Flask-Caching's name for the limit
            self._item_limit = int(chunksize)
        #: at most this many chunks per value (released's ``maxchunk``); else refused
        self._max_chunks = None if maxchunk is None else int(maxchunk)

    def _items(self, mkey: str, item: Item) -> dict[str, Item] | None:
        payload, size = item.data, self._item_limit
        if len(payload) <= size and not payload.startswith(SPREAD_MAGIC):
            return {mkey: item}
        count = -(-len(payload) // size)
        if self._max_chunks is not None and count > self._max_chunks:
            return None
        write_id = os.urandom(16)
        items = {
            self._chunk_key(write_id, n): Item(payload[n * size : (n + 1) * size], 0)
            for n in range(count)
        }
        digest = hashlib.blake2b(payload, digest_size=16).digest()
        header = _HEADER.pack(write_id, count, len(payload), digest, item.flags)
        items[mkey] = Item(SPREAD_MAGIC + header, 0)
        return items

    def _chunk_key(self, write_id: bytes, number: int) -> str:
        return f"{self._keys.prefix}~c:{write_id.hex()}:{number}"

    def _chunk_keys(self, item: Item) -> list[str]:
        """The chunk keys a stored header names (none if *item* is not a header)."""
        raw = item.data
        if item.flags != 0 or not raw.startswith(SPREAD_MAGIC):
            return []
        header = raw[len(SPREAD_MAGIC) :]
        if len(header) != _HEADER.size:
            return []
        write_id, count = _HEADER.unpack(header)[:2]
        return [self._chunk_key(write_id, n) for n in range(count)]

    def get(self, key: str) -> t.Any:
        """Return the value or ``None`` (a spread value costs a second request)."""
        return self.get_many(key)[0]

    def _fetch(self, driver: Driver, mkeys: list[str]) -> dict[str, Item]:
        raws = driver.get_multi(mkeys)
        spread = {
            mk: raw
            for mk, raw in raws.items()
            if raw.flags == 0 and raw.data.startswith(SPREAD_MAGIC)
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

    def _assemble(self, raw: Item, chunks: Mapping[str, Item]) -> Item | None:
        keys = self._chunk_keys(raw)
        if not keys or any(key not in chunks for key in keys):
            return None
        _, _, length, digest, flags = _HEADER.unpack(raw.data[len(SPREAD_MAGIC) :])
        payload = b"".join(chunks[key].data for key in keys)
        if len(payload) != length:
            return None
        if hashlib.blake2b(payload, digest_size=16).digest() != digest:
            return None
        return Item(payload, flags)

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
