"""Which SimpleCache entries an over-full insert drops, without scanning them all.

cachelib's rule (kept exactly): an insert of a new key that finds more than
``threshold`` entries first drops every expired entry, then the entries that expire
soonest (entries that never expire last; equal expiries in the dict's order) until
``threshold`` are left. Scanning the dict for that costs about 60 us at 500 entries
on every insert once the cache is full, which made a full SimpleCache's misses
slower than released Flask-Caching's. This index is a heap of
``(expiry, order, key)`` built the first time the cache fills, kept up by every
change after that, so an over-full insert pops one or two entries instead.

Entries of the heap go stale when a key is overwritten or deleted; they are checked
against the dict when popped (its expiry, and the key's place in the dict's order)
and skipped. Code that adds or removes keys of ``SimpleCache._cache`` directly
(tests do) leaves the index out of step with the dict; that is noticed (their sizes
differ, or the heap runs dry) and the index is rebuilt from the dict. An entry whose
expiry is rewritten in the dict directly is judged by its new expiry once its old
place in the heap comes up.
"""

from __future__ import annotations

import heapq
import itertools
import math
import typing as t

#: what the dict holds: key -> (expiry in whole unix seconds, 0 = never; data)
Items = dict[str, tuple[int, bytes]]


def _rank(expires: int) -> float:
    """The heap's order: soonest first, never-expiring (0) last."""
    return expires or math.inf


class EvictionIndex:
    """The drop order of one SimpleCache's dict; every call is made under its lock."""

    __slots__ = ("_heap", "_known", "_counter", "_items")

    def __init__(self) -> None:
        #: (rank, order, key); None until the cache first fills (no cost before)
        self._heap: list[tuple[float, int, str]] | None = None
        #: each key's current (rank, place in the dict's insertion order); a heap
        #: entry that differs is stale
        self._known: dict[str, tuple[float, int]] = {}
        self._counter = itertools.count()
        #: the dict the index describes (a dict assigned over it is noticed)
        self._items: Items | None = None

    def stored(self, key: str, expires: int, new: bool) -> None:
        """An entry was written (*new*: the key was not in the dict before)."""
        if self._heap is None:
            return
        rank = _rank(expires)
        known = None if new else self._known.get(key)
        order = next(self._counter) if known is None else known[1]
        self._known[key] = (rank, order)
        heapq.heappush(self._heap, (rank, order, key))

    def removed(self, key: str) -> None:
        """An entry left the dict (its heap entries go stale)."""
        if self._heap is not None:
            self._known.pop(key, None)

    def cleared(self) -> None:
        """The dict was emptied: start over, inactive until it fills again."""
        self._heap = None
        self._known = {}
        self._items = None

    def prune(self, items: Items, threshold: int, now: float) -> None:
        """Apply cachelib's rule to *items*, which has more than *threshold* entries."""
        if self._out_of_step(items):
            self._rebuild(items)
        heap = t.cast("list[tuple[float, int, str]]", self._heap)
        # the expired entries first: the heap's smallest ranks
        while heap and heap[0][0] <= now:
            self._drop_top(items, heap)
        while len(items) > threshold:
            if not heap:  # entries the index never saw: start over from the dict
                self._rebuild(items)
                heap = t.cast("list[tuple[float, int, str]]", self._heap)
                if not heap:
                    return
            self._drop_top(items, heap)
        if len(heap) > 2 * len(items) + 64:  # mostly stale: compact
            self._rebuild(items)

    def _drop_top(self, items: Items, heap: list[tuple[float, int, str]]) -> None:
        """Pop the heap's first entry; drop its key from *items* if it is current."""
        rank, order, key = heapq.heappop(heap)
        if self._known.get(key) != (rank, order):
            return  # stale: overwritten since, or removed
        item = items.get(key)
        if item is None:  # removed from the dict directly
            del self._known[key]
            return
        actual = _rank(item[0])
        if actual != rank:
            # changed in the dict directly: put it back where it belongs instead
            # of judging it by the expiry the index was told
            self._known[key] = (actual, order)
            heapq.heappush(heap, (actual, order, key))
            return
        del items[key]
        del self._known[key]

    def _out_of_step(self, items: Items) -> bool:
        return (
            self._heap is None
            or self._items is not items
            or len(self._known) != len(items)
        )

    def _rebuild(self, items: Items) -> None:
        """Index *items* from scratch, in the dict's order."""
        self._counter = itertools.count()
        self._known = {
            key: (_rank(item[0]), next(self._counter)) for key, item in items.items()
        }
        self._heap = [(rank, order, key) for key, (rank, order) in self._known.items()]
        heapq.heapify(self._heap)
        self._items = items
