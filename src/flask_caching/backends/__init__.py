"""The registry of built-in backends: CACHE_TYPE names to the classes that implement them.

Backend modules are imported only when their name is used, so a missing optional
driver (redis, pylibmc, uwsgi) matters only to the apps that ask for that backend.
"""

from __future__ import annotations

import importlib
import typing as t

from .base import BaseCache as BaseCache

if t.TYPE_CHECKING:
    from .filesystemcache import FileSystemCache as FileSystemCache
    from .memcache import MemcachedCache as MemcachedCache
    from .memcache import SASLMemcachedCache as SASLMemcachedCache
    from .memcache import SpreadSASLMemcachedCache as SpreadSASLMemcachedCache
    from .nullcache import NullCache as NullCache
    from .rediscache import RedisCache as RedisCache
    from .rediscache import RedisClusterCache as RedisClusterCache
    from .rediscache import RedisSentinelCache as RedisSentinelCache
    from .simplecache import SimpleCache as SimpleCache
    from .uwsgicache import UWSGICache as UWSGICache

#: class name -> module (relative to this package) that defines it
BUILTIN: dict[str, str] = {
    "NullCache": ".nullcache",
    "SimpleCache": ".simplecache",
    "FileSystemCache": ".filesystemcache",
    "RedisCache": ".rediscache",
    "RedisSentinelCache": ".rediscache",
    "RedisClusterCache": ".rediscache",
    "MemcachedCache": ".memcache",
    "SASLMemcachedCache": ".memcache",
    "SpreadSASLMemcachedCache": ".memcache",
    "UWSGICache": ".uwsgicache",
}

#: deprecated lowercase names -> class name
DEPRECATED: dict[str, str] = {
    "null": "NullCache",
    "simple": "SimpleCache",
    "filesystem": "FileSystemCache",
    "redis": "RedisCache",
    "redissentinel": "RedisSentinelCache",
    "rediscluster": "RedisClusterCache",
    "uwsgi": "UWSGICache",
    "memcached": "MemcachedCache",
    "gaememcached": "MemcachedCache",
    "saslmemcached": "SASLMemcachedCache",
    "spreadsaslmemcached": "SpreadSASLMemcachedCache",
}

__all__ = ["BaseCache", *BUILTIN]


def load_builtin(name: str) -> type[BaseCache]:
    """Import and return the built-in backend class called *name*."""
    module = importlib.import_module(BUILTIN[name], __name__)
    cls: type[BaseCache] = getattr(module, name)
    return cls


def __getattr__(name: str) -> t.Any:
    if name in BUILTIN:
        return load_builtin(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
