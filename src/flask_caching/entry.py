"""How one decorated call's entry sits in the backend: its keys and what a read means.

Values are stored exactly as the decorated function returned them, under the key
released Flask-Caching uses, so a mixed fleet shares entries (design.md, storage).
Features that need more than the value keep it in a key of their own, read in the
same ``get_many``:

- **plain** (the default): one key, the value itself. A hit is a value that is not
  None; with ``cache_none`` a None is told from a miss by ``has`` (as released does).
- **meta**: the value under its key plus ``<key>:fc-meta`` holding
  ``(fresh_until, versions)``. Used by ``stale_while_revalidate`` / ``stale_if_error``
  (the entry lives past its freshness; released Flask-Caching reading it gets, at
  worst, a stale value) and by ``vary`` views (their variants carry the version of
  their base key). A stored None with its meta key is a hit, no ``has`` needed. An
  entry without a meta key (written by released Flask-Caching) is fresh until the
  backend expires it, unless versions are required.

A miss is :data:`MISS`, never ``None``, inside the engine.
"""

from __future__ import annotations

import enum
import typing as t
from collections.abc import Sequence

#: marks the internal (payload, versions, fresh_until) tuples of the engine
MAGIC = "fc1"

#: suffix of the key holding an entry's (fresh_until, versions)
META_SUFFIX = ":fc-meta"


class _Miss(enum.Enum):
    MISS = "MISS"

    def __bool__(self) -> bool:
        return False


#: the result of a lookup that found nothing usable
MISS: t.Final = _Miss.MISS
Miss = t.Literal[_Miss.MISS]

#: (MAGIC, payload, versions, fresh_until): what the engine works with
Entry = tuple[str, t.Any, tuple[int, ...], float]


class Layout:
    """The keys of one call and how to turn what they read into an :data:`Entry`."""

    __slots__ = ("cache_none", "extra", "key", "keys", "meta_key", "version_keys")

    def __init__(
        self,
        key: str,
        *,
        meta: bool = False,
        version_keys: Sequence[str] = (),
        cache_none: bool = False,
        extra: dict[str, t.Any] | None = None,
    ) -> None:
        self.key = key
        #: keys written with the value, with its timeout (memoize's version keys)
        self.extra = extra
        self.version_keys = tuple(version_keys)
        self.meta_key = key + META_SUFFIX if (meta or version_keys) else None
        self.keys = [key] if self.meta_key is None else [key, self.meta_key]
        self.keys.extend(self.version_keys)
        self.cache_none = cache_none

    def entry(self, found: Sequence[t.Any]) -> Entry | None:
        """The entry in a read of :attr:`keys`, or None for a miss (or an entry
        written under other versions)."""
        value = found[0]
        if self.meta_key is None:
            return None if value is None else (MAGIC, value, (), 0.0)
        meta = found[1]
        if type(meta) in (tuple, list) and len(meta) == 2:
            fresh_until, versions = meta
            if tuple(versions) != tuple(found[2 : 2 + len(self.version_keys)]):
                return None
            if value is None and not self.cache_none:
                return None
            return (MAGIC, value, tuple(versions), float(fresh_until))
        if value is None or self.version_keys:
            return None
        return (MAGIC, value, (), 0.0)  # written without meta: fresh while it lives

    def ambiguous(self, found: Sequence[t.Any]) -> bool:
        """True when a plain read of None may be a stored None (``has`` decides)."""
        return self.cache_none and self.meta_key is None and found[0] is None

    def meta(self, versions: tuple[int, ...], fresh_until: float) -> dict[str, t.Any]:
        """The keys to write beside the value: :attr:`extra` and the meta key."""
        extra = dict(self.extra) if self.extra else {}
        if self.meta_key is not None:
            extra[self.meta_key] = (fresh_until, versions)
        return extra


def is_fresh(entry: Entry, now: float) -> bool:
    """True while the entry has not passed its own timeout."""
    fresh_until = entry[3]
    return not fresh_until or now < fresh_until
