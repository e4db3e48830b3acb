"""A backend that stores nothing: every read misses, every write reports success."""

from __future__ import annotations

import typing as t

from cachelib.base import NullCache as _CachelibNullCache

from .base import BaseCache

if t.TYPE_CHECKING:
    from flask import Flask
    from typing_extensions import Self


class NullCache(BaseCache, _CachelibNullCache):
    """Caching switched off; useful in tests and as the default (cachelib's class).

    Writes return True so code that checks them keeps working; reads always miss.
    """

    @classmethod
    def factory(
        cls,
        app: Flask,
        config: t.Mapping[str, t.Any],
        args: list[t.Any],
        kwargs: dict[str, t.Any],
    ) -> Self:
        """Build it with CACHE_DEFAULT_TIMEOUT and CACHE_IGNORE_ERRORS."""
        kwargs = dict(kwargs)
        kwargs.setdefault("default_timeout", config.get("CACHE_DEFAULT_TIMEOUT", 300))
        kwargs.setdefault(
            "ignore_delete_many_errors", bool(config.get("CACHE_IGNORE_ERRORS"))
        )
        return cls(*args, **kwargs)

    def get(self, key: str) -> t.Any:
        return None

    def has(self, key: str) -> bool:
        return False

    def delete(self, key: str) -> bool:
        return True

    def clear(self) -> bool:
        return True
