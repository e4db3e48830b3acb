"""Caching for Flask: view, memoize and template fragment caching over many backends."""

from __future__ import annotations

from .cached import CachedFunction as CachedFunction
from .cached import CachedResponse as CachedResponse
from .extension import Cache as Cache
from .keys import make_template_fragment_key as make_template_fragment_key
from .settings import SUPPORTED_HASH_FUNCTIONS as SUPPORTED_HASH_FUNCTIONS
from .signals import cache_memoize_hit as cache_memoize_hit
from .signals import cache_memoize_miss as cache_memoize_miss
from .signals import cache_view_hit as cache_view_hit
from .signals import cache_view_miss as cache_view_miss

__version__ = "3.0.0.dev0"

__all__ = [
    "SUPPORTED_HASH_FUNCTIONS",
    "Cache",
    "CachedFunction",
    "CachedResponse",
    "cache_memoize_hit",
    "cache_memoize_miss",
    "cache_view_hit",
    "cache_view_miss",
    "make_template_fragment_key",
]
