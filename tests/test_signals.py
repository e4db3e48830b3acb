"""Signals sent by ``@cached`` and ``@memoize`` when CACHE_ENABLE_SIGNALS is true."""

from __future__ import annotations

import typing as t
from collections.abc import Iterator
from contextlib import contextmanager

import decorator_support as support
from blinker import Signal
from decorator_support import Calls, MakeApp

import flask_caching

# the shared fixtures, used by name
backend = support.backend
make_app = support.make_app

SIGNALS = (
    "cache_view_hit",
    "cache_view_miss",
    "cache_memoize_hit",
    "cache_memoize_miss",
)


@contextmanager
def recording() -> Iterator[list[tuple[str, t.Any, dict[str, t.Any]]]]:
    """Record every flask_caching signal sent inside the block."""
    log: list[tuple[str, t.Any, dict[str, t.Any]]] = []
    receivers = []
    for name in SIGNALS:
        signal: Signal = getattr(flask_caching, name)

        def receiver(sender: t.Any, _name: str = name, **kwargs: t.Any) -> None:
            log.append((_name, sender, kwargs))

        signal.connect(receiver, weak=False)
        receivers.append((signal, receiver))
    try:
        yield log
    finally:
        for signal, receiver in receivers:
            signal.disconnect(receiver)


def test_signals_are_importable_blinker_signals() -> None:
    from flask_caching import (
        cache_memoize_hit,
        cache_memoize_miss,
        cache_view_hit,
        cache_view_miss,
    )

    found = {cache_view_hit, cache_view_miss, cache_memoize_hit, cache_memoize_miss}
    assert len(found) == 4
    assert all(isinstance(s, Signal) for s in found)


def test_view_signals(make_app: MakeApp) -> None:
    app, cache = make_app(CACHE_ENABLE_SIGNALS=True)

    @app.route("/v/<name>")
    @cache.cached()
    def view(name: str) -> str:
        return name

    client = app.test_client()
    with recording() as log:
        client.get("/v/a")
        client.get("/v/a")
    assert [entry[0] for entry in log] == ["cache_view_miss", "cache_view_hit"]
    for _name, sender, kwargs in log:
        assert sender is cache
        assert kwargs == {
            "cache": cache,
            "cache_key": "view//v/a",
            "args": (),
            "kwargs": {"name": "a"},
        }


def test_memoize_signals(make_app: MakeApp) -> None:
    app, cache = make_app(CACHE_ENABLE_SIGNALS=True)
    calls = Calls()

    @cache.memoize()
    def f(x: int, y: int = 0) -> int:
        return calls()

    with app.app_context(), recording() as log:
        f(1, y=2)
        f(1, y=2)
        key = f.make_cache_key(1, y=2)
    assert [entry[0] for entry in log] == ["cache_memoize_miss", "cache_memoize_hit"]
    for _name, sender, kwargs in log:
        assert sender is cache
        assert kwargs["cache"] is cache
        assert kwargs["cache_key"] == key
        assert kwargs["args"] == (1,)
        assert kwargs["kwargs"] == {"y": 2}
        assert kwargs["f"] is f.uncached


def test_no_signals_unless_enabled(make_app: MakeApp) -> None:
    app, cache = make_app()

    @app.route("/")
    @cache.cached()
    def view() -> str:
        return "x"

    @cache.memoize()
    def f(x: int) -> int:
        return x

    with recording() as log:
        app.test_client().get("/")
        app.test_client().get("/")
        with app.app_context():
            f(1)
            f(1)
    assert log == []


def test_signals_follow_the_cache_attribute_and_name_the_stored_key(
    make_app: MakeApp,
) -> None:
    """As released: ``cache.enable_signals`` is read on each call, and the key a
    signal names is the one the value is stored under (``cache.get`` reads it)."""
    app, cache = make_app()
    calls = Calls()

    @cache.memoize()
    def f(x: int) -> int:
        return calls()

    with app.app_context(), recording() as log:
        assert cache.enable_signals is False
        f(1)
        cache.enable_signals = True
        f(1)
        f(2)
        cache.enable_signals = False
        f(2)
    assert [(name, kw["args"]) for name, _s, kw in log] == [
        ("cache_memoize_hit", (1,)),
        ("cache_memoize_miss", (2,)),
    ]
    with app.app_context():
        assert [cache.get(kw["cache_key"]) for _n, _s, kw in log] == [1, 2]
