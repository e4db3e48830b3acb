"""The ``flask cache`` commands: look at and operate the cache of an app.

``Cache.init_app`` calls :func:`register_cli`, which adds one ``cache`` group to
``app.cli`` per app. With several ``Cache`` objects on the app, ``flask cache
--cache NAME`` picks one (the first by default); NAME is its index (``0``, ``1``,
...), its backend class name when only one has it, or its ``name`` attribute if it
has one. Errors are one-line messages with exit status 1, never tracebacks.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import typing as t
import uuid
from collections.abc import Iterator, Mapping

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from .cli_backends import (
    Unsupported,
    clear_scope,
    kind,
    list_keys,
    location,
    prefix_of,
    remaining_ttl,
)
from .cli_stats import StatsUnavailable, backend_stats

__all__ = ["cache_group", "register_cli"]

#: longest value repr ``flask cache get`` prints without ``--full``
REPR_LIMIT = 300
#: longest ``name: k=v k=v`` line :func:`render` writes; longer ones are split
INLINE_WIDTH = 100
_META = "flask_caching.cli.cache"


@click.group("cache", cls=AppGroup)
@click.option(
    "--cache",
    "cache_name",
    metavar="NAME",
    default=None,
    help="Which Cache of the app: its index (0, 1, ...) or its backend class name. "
    "Default: the first one set up.",
)
@click.pass_context
def cache_group(ctx: click.Context, cache_name: str | None) -> None:
    """Inspect and operate this app's cache (Flask-Caching)."""
    ctx.meta[_META] = cache_name


def register_cli(app: Flask) -> None:
    """Add the ``cache`` group to *app*'s CLI, once per app (a second ``Cache``
    on the same app reuses it; a ``cache`` command of the app's own is kept)."""
    if "cache" not in app.cli.commands:
        app.cli.add_command(cache_group)


# -- picking the Cache -----------------------------------------------------------------


def _caches() -> list[tuple[t.Any, t.Any]]:
    """``(Cache, backend)`` pairs of the current app, in the order they were set up."""
    return list(current_app.extensions.get("cache", {}).items())


def _label(index: int, cache: t.Any, backend: t.Any) -> str:
    name = getattr(cache, "name", None)
    named = f" {name!r}" if isinstance(name, str) and name else ""
    return f"{index}{named} ({type(backend).__name__})"


def _selected() -> tuple[str, t.Any, t.Any]:
    """``(label, Cache, backend)`` picked by ``--cache``; a ClickException if none."""
    caches = _caches()
    if not caches:
        raise click.ClickException(
            "No Cache is set up on this app: call Cache(app) or cache.init_app(app)."
        )
    wanted = click.get_current_context().meta.get(_META)
    choices = [(i, c, b) for i, (c, b) in enumerate(caches)]
    if wanted is None:
        found = choices[:1]
    elif wanted.isdigit():
        found = [x for x in choices if x[0] == int(wanted)]
    else:
        found = [x for x in choices if getattr(x[1], "name", None) == wanted]
        if not found:
            lowered = wanted.lower()
            found = [x for x in choices if type(x[2]).__name__.lower() == lowered]
    if len(found) != 1:
        names = ", ".join(_label(*x) for x in choices)
        why = "matches several caches" if found else "matches no cache"
        raise click.ClickException(f"--cache {wanted!r} {why}; choose one of: {names}")
    return _label(*found[0]), found[0][1], found[0][2]


# -- output and errors -----------------------------------------------------------------


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, with the driver's error when it is the cause."""
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause) and str(cause) not in text:
        text += f" ({type(cause).__name__}: {cause})"
    return re.sub(r"\s+", " ", text).strip()[:500]


@contextlib.contextmanager
def reporting(action: str) -> Iterator[None]:
    """Turn any error of the backend into a one-line ClickException (exit 1)."""
    try:
        yield
    except (click.ClickException, click.Abort, click.exceptions.Exit):
        raise
    except Exception as exc:
        raise click.ClickException(f"{action}: {one_line(exc)}") from exc


def _scalar(value: t.Any) -> bool:
    return not isinstance(value, Mapping)


def render(data: Mapping[str, t.Any], depth: int = 0) -> list[str]:
    """Nested mappings as indented ``name: value`` lines; below the first level a
    short mapping of plain values goes on one line (``hits=3 misses=1``)."""
    pad = "  " * depth
    lines: list[str] = []
    for name, value in data.items():
        if _scalar(value):
            lines.append(f"{pad}{name}: {value}")
            continue
        if depth >= 1 and value and all(_scalar(v) for v in value.values()):
            line = f"{pad}{name}: " + " ".join(f"{k}={v}" for k, v in value.items())
            if len(line) <= INLINE_WIDTH:
                lines.append(line)
                continue
        lines.append(f"{pad}{name}:")
        lines.extend(render(value, depth + 1) if value else [f"{pad}  (none)"])
    return lines


def _counters(cache: t.Any) -> Mapping[str, t.Any] | None:
    """The decorators' counters from ``Cache.stats()``, when it has that method;
    an error there is reported in their place, not instead of the server's stats."""
    stats = getattr(cache, "stats", None)
    if not callable(stats):
        return None
    try:
        result = stats()
    except Exception as exc:
        return {"error": one_line(exc)}
    return result if isinstance(result, Mapping) else None


def _type_name(value: t.Any) -> str:
    cls = type(value)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


# -- the commands ----------------------------------------------------------------------


@cache_group.command("ping")
def ping_command() -> None:
    """Store, read back and delete a private key; print where the cache is and the
    round-trip time. Exit status 1 when the backend is unreachable."""
    label, _cache, backend = _selected()
    where = location(backend)
    key = f"flask_caching:ping:{uuid.uuid4().hex}"
    token = uuid.uuid4().hex
    with reporting(f"cache {label} at {where} is unreachable"):
        start = time.perf_counter()
        backend.set(key, token, timeout=60)
        echoed = backend.get(key)
        backend.delete(key)
        elapsed = (time.perf_counter() - start) * 1000
    if echoed != token:
        why = "it stores nothing" if kind(backend) == "null" else "the value was lost"
        raise click.ClickException(
            f"cache {label} at {where}: the value written was not read back ({why})"
        )
    click.echo(f"cache: {label}")
    click.echo(f"where: {where}")
    click.echo(f"round trip: {elapsed:.2f} ms (set, get, delete)")


@cache_group.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def stats_command(as_json: bool) -> None:
    """Show what the backend says about itself (Redis INFO, memcached stats, files
    or entries) and the decorators' counters when the Cache keeps them."""
    label, cache, backend = _selected()
    with reporting(f"cannot read the stats of cache {label}"):
        try:
            server = backend_stats(backend)
        except StatsUnavailable as exc:
            raise click.ClickException(f"no stats from cache {label}: {exc}") from exc
        counters = _counters(cache)
    report: dict[str, t.Any] = {
        "cache": label,
        "backend": type(backend).__name__,
        "where": location(backend),
        **server,
        "counters": counters,
    }
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    if counters is None:
        report["counters"] = "not available (this Cache has no stats() method)"
    click.echo("\n".join(render(report)))


@cache_group.command("keys")
@click.argument("pattern", default="*")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Print at most this many keys.",
)
def keys_command(pattern: str, limit: int) -> None:
    """List the keys matching the glob PATTERN (default: all) under the backend's
    key prefix, shown without the prefix. Not every backend can list its keys."""
    label, _cache, backend = _selected()
    with reporting(f"cannot list the keys of cache {label}"):
        try:
            keys, more = list_keys(backend, pattern, limit)
        except Unsupported as exc:
            raise click.ClickException(str(exc)) from exc
    for key in keys:
        click.echo(key)
    prefix = prefix_of(backend)
    under = f" under the prefix {prefix!r}" if prefix else ""
    if not keys:
        click.echo(f"No keys match {pattern!r}{under}.", err=True)
    elif more:
        click.echo(
            f"(the first {limit} keys matching {pattern!r}{under}; more match: "
            "use --limit)",
            err=True,
        )


@cache_group.command("get")
@click.argument("key")
@click.option("--full", is_flag=True, help="Print the whole repr, not a short one.")
def get_command(key: str, full: bool) -> None:
    """Show the value stored under KEY (decoded by the backend), its type and its
    remaining lifetime where the backend tells it. Exit status 1 if it is missing."""
    label, _cache, backend = _selected()
    with reporting(f"cannot read {key!r} from cache {label}"):
        value = backend.get(key)
        if value is None and not backend.has(key):
            raise click.ClickException(f"no key {key!r} in cache {label}")
        ttl = remaining_ttl(backend, key)
    text = repr(value)
    if not full and len(text) > REPR_LIMIT:
        text = f"{text[:REPR_LIMIT]}... ({len(text)} characters; --full shows all)"
    click.echo(f"key: {key}")
    click.echo(f"type: {_type_name(value)}")
    click.echo(f"value: {text}")
    click.echo(f"ttl: {ttl}")


@cache_group.command("delete")
@click.argument("keys", nargs=-1, required=True)
def delete_command(keys: tuple[str, ...]) -> None:
    """Delete each KEY; print how many were deleted."""
    label, _cache, backend = _selected()
    deleted = 0
    with reporting(f"cannot delete from cache {label}"):
        for key in keys:
            if backend.delete(key):
                deleted += 1
    click.echo(f"Deleted {deleted} of {len(keys)} key(s) from cache {label}.")


@cache_group.command("clear")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def clear_command(yes: bool) -> None:
    """Remove what the backend's clear() removes, after saying what that is and
    asking for confirmation (--yes skips the question)."""
    label, _cache, backend = _selected()
    with reporting(f"cannot inspect cache {label}"):
        scope = clear_scope(backend)
    click.echo(scope)
    if not yes:
        click.confirm(f"Clear cache {label}?", abort=True)
    with reporting(f"clearing cache {label} failed"):
        ok = backend.clear()
    if ok is False:
        raise click.ClickException(f"clear() of cache {label} reported a failure")
    click.echo(f"Cleared cache {label}.")
