"""The ``flask cache`` commands on the in-process backends: SimpleCache and a
FileSystemCache directory; the group's registration, ``--cache``, ``--help`` and the
decorator counters. Redis and memcached, up and down, are in test_cli_servers.py.

Every command runs through Flask's ``app.test_cli_runner()``; no run may end in a
traceback (an exception other than the ``SystemExit`` click exits with).
"""

from __future__ import annotations

import json
import os
import typing as t
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask

from flask_caching import Cache
from flask_caching.cli import cache_group


def run(app: Flask, *args: str, input: str | None = None) -> Result:
    """``flask cache ARGS`` on *app*; fails the test on a traceback."""
    result = app.test_cli_runner().invoke(args=["cache", *args], input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.output
    )
    assert "Traceback" not in result.output
    return result


def make_app(**config: t.Any) -> tuple[Flask, Cache]:
    app = Flask(__name__)
    cache = Cache(app, config=config)
    return app, cache


@pytest.fixture
def simple() -> tuple[Flask, Cache]:
    return make_app(CACHE_TYPE="SimpleCache")


@pytest.fixture
def files(tmp_path: Path) -> tuple[Flask, Cache]:
    return make_app(CACHE_TYPE="FileSystemCache", CACHE_DIR=str(tmp_path / "c"))


# -- registration, --cache, --help ------------------------------------------------


def test_init_app_registers_one_group_per_app(tmp_path: Path) -> None:
    app = Flask(__name__)
    assert "cache" not in app.cli.commands
    Cache(app, config={"CACHE_TYPE": "SimpleCache"})
    Cache(app, config={"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(tmp_path)})
    assert app.cli.commands["cache"] is cache_group
    assert [name for name in app.cli.commands if name == "cache"] == ["cache"]
    other = Flask("other")
    Cache(other, config={"CACHE_TYPE": "SimpleCache"})
    assert other.cli.commands["cache"] is cache_group


def test_an_apps_own_cache_command_is_kept() -> None:
    app = Flask(__name__)

    @app.cli.command("cache")
    def mine() -> None:
        print("mine")

    Cache(app, config={"CACHE_TYPE": "SimpleCache"})
    assert app.cli.commands["cache"] is not cache_group


def test_cache_option_picks_each_cache(tmp_path: Path) -> None:
    app = Flask(__name__)
    first = Cache(app, config={"CACHE_TYPE": "SimpleCache"})
    second = Cache(
        app, config={"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(tmp_path)}
    )
    with app.app_context():
        first.set("only-in-first", 1)
        second.set("only-in-second", 2)
    default = run(app, "get", "only-in-first")
    assert default.exit_code == 0 and "value: 1" in default.output
    assert run(app, "--cache", "0", "get", "only-in-second").exit_code == 1
    by_index = run(app, "--cache", "1", "get", "only-in-second")
    assert by_index.exit_code == 0 and "value: 2" in by_index.output
    by_class = run(app, "--cache", "filesystemcache", "ping")
    assert by_class.exit_code == 0 and str(tmp_path) in by_class.output


def test_unknown_cache_name_lists_the_choices(simple: tuple[Flask, Cache]) -> None:
    app, _cache = simple
    for name in ("7", "RedisCache"):
        result = run(app, "--cache", name, "ping")
        assert result.exit_code == 1
        assert f"--cache {name!r} matches no cache" in result.output
        assert "choose one of: 0 (SimpleCache)" in result.output


def test_two_caches_of_one_class_need_an_index() -> None:
    app = Flask(__name__)
    Cache(app, config={"CACHE_TYPE": "SimpleCache"})
    Cache(app, config={"CACHE_TYPE": "SimpleCache"})
    result = run(app, "--cache", "SimpleCache", "ping")
    assert result.exit_code == 1 and "matches several caches" in result.output
    assert run(app, "--cache", "1", "ping").exit_code == 0


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ((), "--cache NAME"),
        (("ping",), "round-trip time"),
        (("stats",), "--json"),
        (("keys",), "--limit"),
        (("get",), "--full"),
        (("delete",), "how many were deleted"),
        (("clear",), "--yes"),
    ],
)
def test_help_on_each_command(
    simple: tuple[Flask, Cache], command: tuple[str, ...], words: str
) -> None:
    result = run(simple[0], *command, "--help")
    assert result.exit_code == 0
    assert result.output.startswith("Usage: ")
    assert words in " ".join(result.output.split())


# -- SimpleCache ------------------------------------------------------------------------


def test_simple_ping_says_in_process(simple: tuple[Flask, Cache]) -> None:
    app, cache = simple
    result = run(app, "ping")
    assert result.exit_code == 0
    assert "cache: 0 (SimpleCache)" in result.output
    assert "where: in-process" in result.output
    assert " ms (set, get, delete)" in result.output
    with app.app_context():  # the private ping key is gone
        assert cache.cache._cache == {}  # type: ignore[attr-defined]


def test_simple_stats_counts_entries(simple: tuple[Flask, Cache]) -> None:
    app, cache = simple
    with app.app_context():
        cache.set("a", 1)
        cache.set("b", 2)
    text = run(app, "stats")
    assert text.exit_code == 0
    assert "entries: 2" in text.output and "live entries: 2" in text.output
    data = json.loads(run(app, "stats", "--json").output)
    assert data["backend"] == "SimpleCache"
    assert data["memory"]["entries"] == 2


def test_simple_keys_glob_and_limit(simple: tuple[Flask, Cache]) -> None:
    app, cache = simple
    with app.app_context():
        for name in ("user:1", "user:2", "user:3", "page:/"):
            cache.set(name, name)
    assert run(app, "keys", "user:*").output.split() == ["user:1", "user:2", "user:3"]
    limited = run(app, "keys", "--limit", "2")
    assert limited.exit_code == 0
    assert len([line for line in limited.output.splitlines() if ":" in line]) >= 2
    assert "more match: use --limit" in limited.output
    none = run(app, "keys", "nothing*")
    assert none.exit_code == 0 and "No keys match 'nothing*'" in none.output
    assert run(app, "keys", "--limit", "0").exit_code == 2


def test_simple_get_shows_type_repr_and_ttl(simple: tuple[Flask, Cache]) -> None:
    app, cache = simple
    with app.app_context():
        cache.set("d", {"x": [1, 2]}, timeout=100)
        cache.set("long", "y" * 1000, timeout=0)
        cache.set("none", None)
    result = run(app, "get", "d")
    assert result.exit_code == 0
    assert "type: dict" in result.output
    assert "value: {'x': [1, 2]}" in result.output
    ttl = float(result.output.split("ttl: ")[1].split(" s")[0])
    assert 98 <= ttl <= 100
    long = run(app, "get", "long")
    assert "never expires" in long.output and "--full shows all" in long.output
    assert len(long.output) < 600
    assert "y" * 1000 in run(app, "get", "long", "--full").output
    stored_none = run(app, "get", "none")
    assert stored_none.exit_code == 0 and "type: NoneType" in stored_none.output


def test_get_missing_key_exits_1(simple: tuple[Flask, Cache]) -> None:
    result = run(simple[0], "get", "absent")
    assert result.exit_code == 1
    assert "no key 'absent' in cache 0 (SimpleCache)" in result.output


def test_delete_counts_what_was_deleted(simple: tuple[Flask, Cache]) -> None:
    app, cache = simple
    with app.app_context():
        cache.set("a", 1)
        cache.set("b", 2)
    result = run(app, "delete", "a", "b", "never-there")
    assert result.exit_code == 0 and "Deleted 2 of 3 key(s)" in result.output
    with app.app_context():
        assert cache.get("a") is None and cache.get("b") is None
    assert run(app, "delete").exit_code == 2  # at least one KEY


def test_simple_clear_says_it_is_useless_and_asks(simple: tuple[Flask, Cache]) -> None:
    app, cache = simple
    with app.app_context():
        cache.set("a", 1)
    for answer in (None, "n\n"):
        refused = run(app, "clear", input=answer)
        assert refused.exit_code == 1 and "Aborted" in refused.output
        assert "useless" in refused.output and "[y/N]" in refused.output
        with app.app_context():
            assert cache.get("a") == 1
    agreed = run(app, "clear", input="y\n")
    assert agreed.exit_code == 0 and "Cleared cache 0" in agreed.output
    with app.app_context():
        cache.set("a", 1)
    forced = run(app, "clear", "--yes")
    assert forced.exit_code == 0 and "[y/N]" not in forced.output
    with app.app_context():
        assert cache.get("a") is None


# -- FileSystemCache ------------------------------------------------------------------


def test_files_ping_and_stats(files: tuple[Flask, Cache]) -> None:
    app, cache = files
    path = cache_dir(app, cache)
    ping = run(app, "ping")
    assert ping.exit_code == 0 and f"where: directory {path}" in ping.output
    with app.app_context():
        cache.set("a", "x" * 100)
        cache.set("b", "y" * 200)
    open(os.path.join(path, "left.__wz_cache"), "wb").close()  # a temp file
    sizes = [
        os.path.getsize(os.path.join(path, name))
        for name in os.listdir(path)
        if len(name) == 64 and name != count_file(app, cache)
    ]
    assert len(sizes) == 2
    data = json.loads(run(app, "stats", "--json").output)
    assert data["directory"]["entries"] == 2
    assert data["directory"]["bytes"] == sum(sizes)
    assert "entries: 2" in run(app, "stats").output


def cache_dir(app: Flask, cache: Cache) -> str:
    with app.app_context():
        path: str = cache.cache._path  # type: ignore[attr-defined]
    return path


def count_file(app: Flask, cache: Cache) -> str:
    with app.app_context():
        backend: t.Any = cache.cache
        name: str = os.path.basename(backend._get_filename(backend._fs_count_file))
    return name


def test_files_keys_cannot_be_listed(files: tuple[Flask, Cache]) -> None:
    result = run(files[0], "keys")
    assert result.exit_code == 1
    assert "FileSystemCache cannot list keys" in result.output
    assert "named by a hash" in result.output


def test_files_get_reads_the_stored_expiry(files: tuple[Flask, Cache]) -> None:
    app, cache = files
    with app.app_context():
        cache.set("n", 42, timeout=50)
        cache.set("forever", [1], timeout=0)
    result = run(app, "get", "n")
    assert result.exit_code == 0 and "type: int" in result.output
    ttl = float(result.output.split("ttl: ")[1].split(" s")[0])
    assert 48 <= ttl <= 50
    assert "ttl: never expires" in run(app, "get", "forever").output
    assert run(app, "get", "gone").exit_code == 1


def test_files_clear_names_the_directory(files: tuple[Flask, Cache]) -> None:
    app, cache = files
    path = cache_dir(app, cache)
    with app.app_context():
        cache.set("a", 1)
    refused = run(app, "clear")
    assert refused.exit_code == 1
    assert f"every entry file in the directory {path} (1 now)" in refused.output
    with app.app_context():
        assert cache.get("a") == 1
    assert run(app, "clear", "--yes").exit_code == 0
    with app.app_context():
        assert cache.get("a") is None


# -- the decorators' counters ---------------------------------------------------------


class CountingCache(Cache):
    """A Cache whose ``stats()`` returns counters in the lead's documented shape."""

    def stats(self) -> dict[str, t.Any]:
        return {
            "total": {"hits": 3, "misses": 1},
            "functions": {"view//a": {"hits": 3, "misses": 1}},
        }


def test_stats_prints_the_counters_when_the_cache_has_them() -> None:
    app = Flask(__name__)
    CountingCache(app, config={"CACHE_TYPE": "SimpleCache"})
    text = run(app, "stats").output
    assert "counters:\n  total: hits=3 misses=1\n  functions:\n" in text
    assert "view//a: hits=3 misses=1" in text
    data = json.loads(run(app, "stats", "--json").output)
    assert data["counters"]["functions"]["view//a"] == {"hits": 3, "misses": 1}


def test_stats_says_when_there_are_no_counters(simple: tuple[Flask, Cache]) -> None:
    app, cache = simple
    setattr(cache, "stats", None)  # noqa: B010 - as on a Cache without the method
    assert "counters: not available" in run(app, "stats").output
    assert json.loads(run(app, "stats", "--json").output)["counters"] is None


def test_a_failing_stats_method_does_not_hide_the_backend() -> None:
    class BrokenCounters(Cache):
        def stats(self) -> dict[str, t.Any]:
            raise RuntimeError("counters\nbroke")

    app = Flask(__name__)
    BrokenCounters(app, config={"CACHE_TYPE": "SimpleCache"})
    result = run(app, "stats")
    assert result.exit_code == 0 and "entries: 0" in result.output
    assert "counters:\n  error: RuntimeError: counters broke\n" in result.output
