"""Runtime: one Cache on one app, as the decorators see it on every call.

Backend failures stop here: they are logged on the ``flask_caching`` logger and the
decorated code runs uncached (raised instead when the app is in debug mode).
"""

from __future__ import annotations

import logging
import secrets
import typing as t
from collections.abc import Sequence

from .backends.base import BaseCache
from .entry import Entry

if t.TYPE_CHECKING:
    from flask import Flask

    from .settings import Settings

logger = logging.getLogger("flask_caching")


class Runtime:
    """What the decorators need from one Cache on one app, built once at init_app.

    Backend failures are caught here and logged on the ``flask_caching`` logger:
    decorated code then runs uncached. In debug mode the error is raised instead.
    """

    def __init__(self, backend: BaseCache, settings: Settings, app: Flask) -> None:
        self.backend = backend
        self.settings = settings
        self.app = app
        self.default_timeout = backend.default_timeout

    def failed(self, operation: str, key: str, exc: Exception) -> None:
        """Report a backend failure: raise in debug mode, otherwise log and go on."""
        if self.app.debug:
            raise exc
        logger.warning(
            "cache %s of %r failed, serving uncached: %s: %s",
            operation,
            key,
            type(exc).__name__,
            exc,
        )

    def read(self, keys: Sequence[str]) -> list[t.Any] | None:
        """``get_many`` of *keys*; None when the backend failed."""
        try:
            return self.backend.get_many(*keys)
        except Exception as exc:
            self.failed("read", keys[0], exc)
            return None

    def write(self, key: str, entry: Entry, timeout: int) -> bool:
        try:
            return bool(self.backend.set(key, entry, timeout=timeout))
        except Exception as exc:
            self.failed("write", key, exc)
            return False

    def delete(self, key: str) -> bool:
        try:
            return bool(self.backend.delete(key))
        except Exception as exc:
            self.failed("delete", key, exc)
            return False

    def ensure_versions(
        self, version_keys: Sequence[str], found: Sequence[t.Any]
    ) -> tuple[str, ...] | None:
        """The current version tokens, creating the missing ones (first writer wins)."""
        versions = []
        for vkey, token in zip(version_keys, found, strict=True):
            if not isinstance(token, str):
                token = new_version()
                try:
                    if not self.backend.add(vkey, token, timeout=0):
                        token = self.backend.get(vkey)
                except Exception as exc:
                    self.failed("version", vkey, exc)
                    return None
                if not isinstance(token, str):
                    return None
            versions.append(token)
        return tuple(versions)


def new_version() -> str:
    """A fresh version token: random, so processes never agree by accident."""
    return secrets.token_hex(8)
