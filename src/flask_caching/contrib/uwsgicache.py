"""``UWSGICache``: uWSGI's own shared-memory cache (``--cache2``), from inside uWSGI.

The ``uwsgi`` module exists only in a process that a uWSGI server runs, so this backend
works there and nowhere else: building it in a plain Python process raises a
:class:`~flask_caching.exceptions.ConfigurationError` that says so.

Configure the server with a named cache and point CACHE_UWSGI_NAME at it::

    uwsgi --cache2 name=mycache,items=1000 ...
    app.config["CACHE_TYPE"] = "flask_caching.contrib.uwsgicache.UWSGICache"
    app.config["CACHE_UWSGI_NAME"] = "mycache"   # or "mycache@host:port" (remote)

Behaviour:

* values are bytes from :attr:`UWSGICache.serializer` (pickle by default) after an
  8-byte expiry; one value must fit the cache's ``blocksize`` (64 KiB unless
  configured), or ``set`` returns ``False``. A serializer with ``dumps_for`` /
  ``loads_for`` is given the key (not the cache name, which one cache has in a local
  and a remote form), so ``pickle-signed`` binds each value to its key;
* the header differs from cachelib's format (the bare pickle, which released
  Flask-Caching writes) because uWSGI keeps serving expired items until its sweeper
  runs. A bare pickle written by released Flask-Caching is still read (uWSGI's own
  expiry applies to it); released Flask-Caching reads ours as a miss;
* ``0`` never expires, a negative timeout deletes the key; expiry is checked on every
  read (uWSGI itself only drops expired items when its master's sweeper runs);
* ``add`` is atomic (uWSGI's ``cache_set`` refuses an existing key); ``inc``/``dec``
  are atomic within one uWSGI instance (they hold uWSGI lock 0), not across hosts;
* there is no key prefix: ``clear()`` empties the whole named cache;
* ``get_many`` is one call per key (in shared memory, for a local cache).
"""

from __future__ import annotations

import importlib
import logging
import struct
import time
import typing as t
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from cachelib import UWSGICache as _CachelibUWSGICache

from ..backends.base import BaseCache, Timeout
from ..exceptions import ConfigurationError
from ..serializers import PickleSerializer, dumps_for, loads_for

if t.TYPE_CHECKING:
    from types import ModuleType

    from flask import Flask
    from typing_extensions import Self

__all__ = ["UWSGICache"]

logger = logging.getLogger("flask_caching")

#: each stored value starts with its expiry (unix time, 0.0 = never): uWSGI returns
#: expired items until its sweeper (a master-process thread) removes them
_EXPIRES = struct.Struct(">d")


def _import_uwsgi() -> ModuleType:
    """The ``uwsgi`` module, which exists only in a process uWSGI runs."""
    try:
        return importlib.import_module("uwsgi")
    except ImportError:
        raise ConfigurationError(
            "UWSGICache works only inside a uWSGI server (the uwsgi module exists "
            "only there). Run the app under uwsgi with --cache2, or choose another "
            "CACHE_TYPE when running outside uWSGI."
        ) from None


def _configured_caches(uwsgi: ModuleType) -> list[str] | None:
    """Names of the local caches uWSGI was started with; ``None`` if unknown."""
    opt = getattr(uwsgi, "opt", None)
    if not isinstance(opt, Mapping):
        return None
    names = []
    for option in ("cache2", "cache"):
        values = opt.get(option)
        if values is None:
            continue
        for value in values if isinstance(values, list) else [values]:
            text = value.decode() if isinstance(value, bytes) else str(value)
            if option == "cache":  # the old --cache N makes one cache called default
                names.append("default")
                continue
            for part in text.split(","):
                key, _, name = part.partition("=")
                if key.strip() == "name":
                    names.append(name.strip())
    return names


#: the first byte of a bare pickle (protocol 2+): an entry cachelib wrote
_PICKLE = 0x80


class UWSGICache(BaseCache, _CachelibUWSGICache):
    """A backend over uWSGI's cache framework; see the module docstring.

    :param default_timeout: seconds an entry lives when ``set`` gets no timeout.
    :param cache: the uWSGI cache name, ``"name"`` or ``"name@host:port"``; ``""``
        is the server's first (default) cache.
    :param ignore_delete_many_errors: see :class:`~flask_caching.backends.BaseCache`.
    """

    def __init__(
        self,
        default_timeout: Timeout = 300,
        cache: str = "",
        ignore_delete_many_errors: bool = False,
    ) -> None:
        BaseCache.__init__(
            self, default_timeout, ignore_delete_many_errors=ignore_delete_many_errors
        )
        self._uwsgi = _import_uwsgi()
        if not isinstance(cache, str):
            raise ConfigurationError(f"CACHE_UWSGI_NAME must be a str, got {cache!r}")
        local = _configured_caches(self._uwsgi)
        if "@" not in cache and local is not None:
            if not local:
                raise ConfigurationError(
                    "UWSGICache: this uWSGI server has no cache; start it with "
                    "--cache2 name=<name>,items=<n> and set CACHE_UWSGI_NAME"
                )
            if cache and cache not in local:
                raise ConfigurationError(
                    f"CACHE_UWSGI_NAME {cache!r} is not a cache of this uWSGI "
                    f"server; it has {', '.join(local)}"
                )
        self.cache = cache
        #: turns values into bytes and back (``dumps``/``loads``); replaceable
        self.serializer: t.Any = PickleSerializer()

    @classmethod
    def factory(
        cls,
        app: Flask,
        config: Mapping[str, t.Any],
        args: list[t.Any],
        kwargs: dict[str, t.Any],
    ) -> Self:
        """Build from CACHE_DEFAULT_TIMEOUT, CACHE_UWSGI_NAME, CACHE_IGNORE_ERRORS."""
        params = dict(kwargs)
        params.setdefault(
            "ignore_delete_many_errors", bool(config.get("CACHE_IGNORE_ERRORS"))
        )
        if config.get("CACHE_DEFAULT_TIMEOUT") is not None:
            params["default_timeout"] = config["CACHE_DEFAULT_TIMEOUT"]
        if config.get("CACHE_UWSGI_NAME") is not None:
            params["cache"] = config["CACHE_UWSGI_NAME"]
        return cls(*args, **params)

    def _pack(self, key: str, value: t.Any, seconds: int) -> bytes:
        """The header and the serializer's bytes (bound to *key* if it binds)."""
        expires_at = time.time() + seconds if seconds else 0.0
        data: bytes = dumps_for(self.serializer, key, value)
        return _EXPIRES.pack(expires_at) + data

    def _read(self, key: str) -> tuple[bool, t.Any]:
        """``(found, value)``; expired or unreadable entries are not found."""
        data = self._uwsgi.cache_get(key, self.cache)
        if data is None:
            return False, None
        if data[:1] == bytes([_PICKLE]):  # cachelib's format: no header
            return self._loads(key, data)
        if len(data) < _EXPIRES.size:
            return False, None
        (expires_at,) = _EXPIRES.unpack_from(data)
        if expires_at and expires_at <= time.time():
            return False, None
        return self._loads(key, data[_EXPIRES.size :])

    def _loads(self, key: str, data: bytes) -> tuple[bool, t.Any]:
        try:
            return True, loads_for(self.serializer, key, data)
        except Exception:
            logger.debug(
                "unreadable uWSGI cache value treated as a miss", exc_info=True
            )
            return False, None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self._uwsgi.lock()
        try:
            yield
        finally:
            self._uwsgi.unlock()

    def get(self, key: str) -> t.Any:
        return self._read(key)[1]

    def get_many(self, *keys: str) -> list[t.Any]:
        return [self.get(key) for key in keys]

    def has(self, key: str) -> bool:
        return self._read(key)[0]

    # returns False for a refused value (BaseCache's contract), where cachelib's
    # signature says Literal[True] | None
    def set(  # type: ignore[override]
        self, key: str, value: t.Any, timeout: Timeout = None
    ) -> bool:
        seconds = self._normalize_timeout(timeout)
        if seconds < 0:
            self.delete(key)
            return True
        data = self._pack(key, value, seconds)
        return bool(self._uwsgi.cache_update(key, data, seconds, self.cache))

    def add(self, key: str, value: t.Any, timeout: Timeout = None) -> bool:
        """Store only if *key* is absent or expired; atomic (see the module doc)."""
        seconds = self._normalize_timeout(timeout)
        if seconds < 0:
            return False
        data = self._pack(key, value, seconds)
        if self._uwsgi.cache_set(key, data, seconds, self.cache):
            return True
        # uWSGI refused: the key exists, but it may be expired and not yet swept
        with self._locked():
            if self._read(key)[0]:
                return False
            return bool(self._uwsgi.cache_update(key, data, seconds, self.cache))

    def delete(self, key: str) -> bool:
        return bool(self._uwsgi.cache_del(key, self.cache))

    def clear(self) -> bool:
        """Empty the whole named cache (uWSGI caches have no key prefix)."""
        return bool(self._uwsgi.cache_clear(self.cache))

    def inc(self, key: str, delta: int = 1) -> int | None:
        """Add *delta* under uWSGI lock 0; a missing key starts from 0.

        Do not call it while holding ``uwsgi.lock()`` yourself (it would deadlock).
        The expiry is reset to the default timeout.
        """
        with self._locked():
            current = self.get(key)
            if current is not None and type(current) is not int:
                raise TypeError(f"cannot increment {key!r}: it holds {current!r}")
            value = (current or 0) + delta
            return value if self.set(key, value) else None

    def dec(self, key: str, delta: int = 1) -> int | None:
        """Subtract *delta*; see :meth:`inc`."""
        return self.inc(key, -delta)
