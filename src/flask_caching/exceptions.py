"""The errors flask_caching raises.

::

    CacheError                  base of everything below
    ├── ConfigurationError      a CACHE_* setting or decorator argument is invalid
    │                           (also a ValueError, so ``except ValueError`` works)
    ├── BackendError            the cache server failed or could not be reached
    └── UnreadableValueError    stored bytes cannot be loaded: read as a miss
        └── UnsafeValueError    a signature is missing or wrong: never unpickled
                                (both defined in flask_caching.serializers)
"""

from __future__ import annotations


class CacheError(Exception):
    """Base class of all errors raised by flask_caching itself."""


class ConfigurationError(CacheError, ValueError):
    """A setting or argument is invalid; the message names it and says what to do."""


class BackendError(CacheError):
    """The backend failed; the original driver exception is chained as the cause."""
