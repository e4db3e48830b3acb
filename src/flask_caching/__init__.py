"""Caching for Flask: view, memoize and template fragment caching over many backends.

Every name released Flask-Caching makes importable from ``flask_caching`` is
importable here too, so code written for it runs unchanged.
"""

from __future__ import annotations

import logging
import typing as t

from .backends.base import BaseCache as BaseCache
from .backends.simplecache import SimpleCache as SimpleCache
from .cached import CachedFunction as CachedFunction
from .cached_response import CachedResponse as CachedResponse
from .extension import Cache as Cache
from .keys import make_template_fragment_key as make_template_fragment_key
from .settings import SUPPORTED_HASH_FUNCTIONS as SUPPORTED_HASH_FUNCTIONS
from .signals import cache_memoize_hit as cache_memoize_hit
from .signals import cache_memoize_miss as cache_memoize_miss
from .signals import cache_view_hit as cache_view_hit
from .signals import cache_view_miss as cache_view_miss
from .utils import function_namespace as function_namespace
from .utils import get_arg_default as get_arg_default
from .utils import get_arg_names as get_arg_names
from .utils import get_id as get_id
from .utils import join_generator as join_generator
from .utils import normalize_timeout as normalize_timeout
from .utils import query_args_as_pairs as query_args_as_pairs
from .utils import wants_args as wants_args
from .utils import wants_extra_args as wants_extra_args

#: the timeout a memoize version key is created with (0: until rewritten)
VERSION_TIMEOUT = 0

logger = logging.getLogger("flask_caching")

P = t.ParamSpec("P")
P2 = t.ParamSpec("P2")
R = t.TypeVar("R")
T = t.TypeVar("T")
T_co = t.TypeVar("T_co", covariant=True)
T_contra = t.TypeVar("T_contra", contravariant=True)

__version__ = "3.0.0.dev0"

__all__ = [
    "SUPPORTED_HASH_FUNCTIONS",
    "VERSION_TIMEOUT",
    "BaseCache",
    "Cache",
    "CachedFunction",
    "CachedResponse",
    "SimpleCache",
    "cache_memoize_hit",
    "cache_memoize_miss",
    "cache_view_hit",
    "cache_view_miss",
    "function_namespace",
    "get_arg_default",
    "get_arg_names",
    "get_id",
    "join_generator",
    "logger",
    "make_template_fragment_key",
    "normalize_timeout",
    "query_args_as_pairs",
    "wants_args",
    "wants_extra_args",
]
