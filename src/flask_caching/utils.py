"""Compatibility path for helpers older code imports from ``flask_caching.utils``."""

from __future__ import annotations

from .keys import TEMPLATE_FRAGMENT_PREFIX as TEMPLATE_FRAGMENT_PREFIX
from .keys import function_name as function_name
from .keys import make_template_fragment_key as make_template_fragment_key

__all__ = ["TEMPLATE_FRAGMENT_PREFIX", "function_name", "make_template_fragment_key"]
