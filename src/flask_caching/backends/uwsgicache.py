"""Compatibility path: ``UWSGICache`` is defined in :mod:`..contrib.uwsgicache`."""

from __future__ import annotations

from ..contrib.uwsgicache import UWSGICache as UWSGICache

__all__ = ["UWSGICache"]
