"""SimpleCache's own storage work: the eviction index, the kept page, bulk set_many.

Each is a speed-up that must not change what the cache holds: the index must drop
exactly the entries cachelib's scan would, a page read twice must still be the
stored value, and set_many must store what a loop of ``set`` stores.
"""

from __future__ import annotations

import math
import pickle
import random
import threading
import typing as t

import cachelib.simple
import pytest

from flask_caching.backends.simplecache import SimpleCache


class FakeClock:
    """Stands in for ``cachelib.simple.time``: whole seconds, moved by hand."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1_800_000_000.0
        monkeypatch.setattr(cachelib.simple, "time", self)

    def __call__(self) -> float:
        return self.now


def scan_prune(items: dict[str, tuple[int, bytes]], threshold: int, now: float) -> None:
    """cachelib's rule the slow way: the reference the index is checked against."""
    if len(items) <= threshold:
        return
    for key in [k for k, (exp, _) in items.items() if 0 < exp <= now]:
        del items[key]
    overflow = len(items) - threshold
    if overflow > 0:
        ranked = sorted(items.items(), key=lambda item: item[1][0] or math.inf)
        for key, _item in ranked[:overflow]:
            del items[key]


class Reference:
    """A dict kept by the scan rule, fed the same operations as the cache."""

    def __init__(self, threshold: int, clock: FakeClock) -> None:
        self.items: dict[str, tuple[int, bytes]] = {}
        self.threshold = threshold
        self.clock = clock

    def set(self, key: str, timeout: int) -> None:
        now = self.clock()
        if timeout < 0:
            self.items.pop(key, None)
            return
        if key not in self.items:
            scan_prune(self.items, self.threshold, now)
        self.items[key] = (0 if timeout == 0 else int(now) + timeout, b"")


@pytest.mark.parametrize("seed", range(12))
def test_the_index_drops_what_cachelibs_scan_drops(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    clock = FakeClock(monkeypatch)
    rng = random.Random(seed)
    threshold = rng.choice([1, 3, 8, 20])
    cache = SimpleCache(threshold=threshold)
    ref = Reference(threshold, clock)
    keys = [f"k{i}" for i in range(3 * threshold + 5)]
    for step in range(600):
        action = rng.random()
        key = rng.choice(keys)
        if action < 0.6:
            # few distinct timeouts: equal expiries, so the dict order decides
            timeout = rng.choice([0, 5, 5, 30, 30, 300, -1])
            cache.set(key, step, timeout=timeout)
            ref.set(key, timeout)
        elif action < 0.75:
            cache.delete(key)
            ref.items.pop(key, None)
        elif action < 0.85:
            clock.now += rng.choice([1, 4, 10, 40])
        elif action < 0.9:
            mapping = {key: step, rng.choice(keys): step}
            cache.set_many(mapping, timeout=30)
            for each in mapping:  # one insert after the other, as set would
                ref.set(each, 30)
        elif action < 0.93:
            cache.clear()
            ref.items.clear()
        elif action < 0.97:
            # code that adds to the dict directly (tests do); one that rewrites an
            # entry's expiry in place is out of the index's sight (see its module)
            if key not in cache._cache:
                stamp = 0 if rng.random() < 0.3 else int(clock()) + rng.choice([2, 60])
                cache._cache[key] = (stamp, pickle.dumps(step))
                ref.items[key] = (stamp, b"")
        else:
            cache._cache.pop(key, None)
            ref.items.pop(key, None)
        assert list(cache._cache) == list(ref.items), f"step {step}"
        assert [v[0] for v in cache._cache.values()] == [
            v[0] for v in ref.items.values()
        ], f"step {step}"


def test_a_full_cache_prunes_without_scanning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once full, an insert looks at a handful of entries, not all of them."""
    FakeClock(monkeypatch)
    cache = SimpleCache(threshold=2000)
    for i in range(2001):
        cache.set(f"k{i}", i, timeout=300)
    looked: list[int] = []

    class Counting(dict):  # type: ignore[type-arg]
        """Counts every entry read: by key, or by walking the dict."""

        def get(self, key: t.Any, default: t.Any = None) -> t.Any:
            looked.append(1)
            return super().get(key, default)

        def __iter__(self) -> t.Iterator[t.Any]:
            for key in super().__iter__():
                looked.append(1)
                yield key

        def items(self) -> t.Any:
            return [(key, self[key]) for key in self]

        def values(self) -> t.Any:
            return [self[key] for key in self]

    cache._cache = Counting(cache._cache)
    cache.set("new-0", 0, timeout=300)  # the index is rebuilt for the new dict
    looked.clear()
    for i in range(1, 50):
        cache.set(f"new-{i}", i, timeout=300)
    assert len(cache._cache) == 2001
    assert len(looked) < 200  # a scan reads all 2001 entries per insert
    assert cache.get("k0") is None and cache.get("new-49") == 49  # oldest went first


def test_a_page_read_twice_is_the_stored_value_and_the_layout_stays() -> None:
    cache = SimpleCache()
    cache.set("page", "x" * 300)
    first = cache.get("page")
    second = cache.get("page")
    assert first == second == "x" * 300
    assert second is cache.get("page")  # unpickled once, then kept
    assert cache.get_many("page")[0] is second
    assert cache.get_many("page", "nope") == ["x" * 300, None]
    expires, data = cache._cache["page"]
    assert isinstance(data, bytes) and pickle.loads(data) == "x" * 300
    cache.set("page", "y")  # a new value is read as itself, not as the kept one
    assert cache.get("page") == "y"
    cache._cache["page"] = (0, pickle.dumps("z"))  # so is one written directly
    assert cache.get("page") == "z"


def test_mutable_values_are_still_copies() -> None:
    cache = SimpleCache()
    cache.set("list", [1, 2])
    got = cache.get("list")
    got.append(3)
    assert cache.get("list") == [1, 2]
    assert cache.get_many("list") == [[1, 2]]


def test_a_kept_page_follows_the_serializer() -> None:
    from flask_caching.serializers import JSONSerializer

    cache = SimpleCache()
    cache.set("page", "text")
    assert cache.get("page") == "text"  # now kept with the pickle
    cache.serializer = JSONSerializer()
    # the kept copy is only used under the default pickle: another serializer
    # reads the stored bytes (pickle is not JSON: a miss, as before the change)
    assert cache.get("page") is None


def test_set_many_stores_what_set_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(monkeypatch)
    bulk, single = SimpleCache(threshold=5), SimpleCache(threshold=5)
    for round_ in range(4):
        mapping = {f"k{round_}-{i}": [round_, i] for i in range(3)}
        assert bulk.set_many(mapping, timeout=10 + round_) == list(mapping)
        for key, value in mapping.items():
            single.set(key, value, timeout=10 + round_)
        clock.now += 3
        assert bulk._cache == single._cache
    assert bulk.set_many({"gone": 1}, timeout=-1) == ["gone"]
    assert not bulk.has("gone")
    with pytest.raises(TypeError, match="timeout"):
        bulk.set_many({"bad": 1}, timeout="soon")  # type: ignore[arg-type]
    assert not bulk.has("bad")


def test_set_many_goes_through_a_subclasss_set() -> None:
    seen: list[str] = []

    class Audited(SimpleCache):
        def set(self, key: str, value: t.Any, timeout: t.Any = None) -> bool:
            seen.append(key)
            return key != "refused" and super().set(key, value, timeout)

    cache = Audited()
    assert cache.set_many({"a": 1, "refused": 2, "b": 3}) == ["a", "b"]
    assert seen == ["a", "refused", "b"]
    assert cache.get_many("a", "refused", "b") == [1, None, 3]


def test_threads_filling_a_full_cache_keep_it_at_the_threshold() -> None:
    cache = SimpleCache(threshold=50)

    def fill(n: int) -> None:
        for i in range(400):
            cache.set(f"{n}-{i}", i)
            cache.set_many({f"{n}-m{i}": i})
            if i % 7 == 0:
                cache.delete(f"{n}-{i - 3}")

    threads = [threading.Thread(target=fill, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert len(cache._cache) <= 51
    assert len(cache._evict._known) == len(cache._cache)
