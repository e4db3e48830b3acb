"""Compatibility path: ``UWSGICache`` lives in :mod:`flask_caching.contrib.uwsgicache`."""

from __future__ import annotations

from ..contrib.uwsgicache import UWSGICache as UWSGICache

__all__ = ["UWSGICache"]
