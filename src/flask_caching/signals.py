"""Blinker signals sent by the decorators when CACHE_ENABLE_SIGNALS is true.

Receivers get ``cache``, ``cache_key``, ``args`` and ``kwargs`` (and ``f``, the
undecorated function, for memoize). Nothing is sent when the setting is off or
nobody listens, so the hot path pays nothing for them.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

cache_view_hit = _signals.signal("cache-view-hit")
cache_view_miss = _signals.signal("cache-view-miss")
cache_memoize_hit = _signals.signal("cache-memoize-hit")
cache_memoize_miss = _signals.signal("cache-memoize-miss")
