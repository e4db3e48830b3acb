"""Compatibility path: the user guide names ``flask_caching.backends.cache.BaseCache``."""

from __future__ import annotations

from .base import BaseCache as BaseCache

__all__ = ["BaseCache"]
