"""Custom backends referenced by import string in tests/test_extension.py."""

from __future__ import annotations

import typing as t

from flask import Flask

from flask_caching.backends.base import BaseCache
from flask_caching.backends.simplecache import SimpleCache

calls: list[tuple[t.Any, ...]] = []


class FactoryCache(SimpleCache):
    """A BaseCache subclass: built through its factory classmethod."""

    @classmethod
    def factory(
        cls,
        app: Flask,
        config: t.Mapping[str, t.Any],
        args: list[t.Any],
        kwargs: dict[str, t.Any],
    ) -> FactoryCache:
        calls.append(("factory", app, config["CACHE_KEY_PREFIX"], args, kwargs))
        return cls(threshold=args[0] if args else 10, **kwargs)


class GuideStyleCache(BaseCache):
    """The guide's older three-argument factory form."""

    def __init__(self, servers: str, default_timeout: int = 500) -> None:
        super().__init__(default_timeout=default_timeout)
        self.servers = servers

    @classmethod
    def factory(  # type: ignore[override]
        cls, app: Flask, args: list[t.Any], kwargs: dict[str, t.Any]
    ) -> GuideStyleCache:
        args.append(app.config["REDIS_SERVERS"])
        return cls(*args, **kwargs)


def plain_factory(
    app: Flask, config: t.Mapping[str, t.Any], args: t.Any, kwargs: t.Any
) -> SimpleCache:
    """A plain callable: gets args/kwargs as the raw list and dict, not unpacked."""
    calls.append(("plain", app, config["CACHE_DEFAULT_TIMEOUT"], args, kwargs))
    return SimpleCache(default_timeout=config["CACHE_DEFAULT_TIMEOUT"])


not_callable = 42
