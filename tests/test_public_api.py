"""The public surface is pinned, and modules import only from the layers above them."""

from __future__ import annotations

import ast
import importlib
import logging
import pathlib
import subprocess
import sys

import pytest

import flask_caching

SRC = pathlib.Path(flask_caching.__file__).parent

#: layer of each module (design.md, "Import direction"); lower numbers come first
LAYERS = {
    "exceptions": 1,
    "_flask_compat": 1,
    "backends": 2,
    "contrib": 2,
    "serializer_base": 2,
    "signed_serializer": 2,
    "json_serializer": 2,
    "serializers": 2,
    "keys": 3,
    "utils": 3,
    "cached_response": 3,
    "context": 3,
    "entry": 3,
    "settings": 3,
    "options": 3,
    "runtime": 4,
    "resilience": 4,
    "flow": 4,
    "lookup": 4,
    "locks": 4,
    "signals": 4,
    "privacy": 4,
    "session_watch": 4,
    "metrics": 4,
    "stats": 4,
    "store": 4,
    "decorated": 3,
    "view_results": 5,
    "view_miss": 5,
    "view_reporting": 5,
    "view_options": 5,
    "cache_status": 4,
    "wrapping": 4,
    "cached": 5,
    "view_keys": 5,
    "memoize": 5,
    "memoize_keys": 5,
    "memoize_versions": 5,
    "jinja2ext": 5,
    "extension": 6,
    "cli": 6,
    "__init__": 6,
}


def test_all_is_pinned() -> None:
    assert sorted(flask_caching.__all__) == sorted(
        [
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
    )
    for name in flask_caching.__all__:
        assert getattr(flask_caching, name) is not None


#: the public names released 2.5.1 makes importable from these modules
#: (compat-notes.md, "Public names"; its private typing helpers are not pinned)
RELEASED_NAMES = {
    "flask_caching": [
        "function_namespace",
        "get_arg_default",
        "get_arg_names",
        "get_id",
        "join_generator",
        "query_args_as_pairs",
        "wants_args",
        "wants_extra_args",
        "normalize_timeout",
        "VERSION_TIMEOUT",
        "logger",
        "BaseCache",
        "SimpleCache",
        "P",
        "P2",
        "R",
        "T",
        "T_co",
        "T_contra",
        "__version__",
    ],
    "flask_caching.utils": [
        "TEMPLATE_FRAGMENT_KEY_TEMPLATE",
        "function_namespace",
        "get_function_parameters",
        "get_arg_names",
        "get_arg_default",
        "get_id",
        "wants_args",
        "wants_extra_args",
        "query_args_as_pairs",
        "join_generator",
        "valid_chars",
        "del_chars",
        "null_control",
        "normalize_timeout",
        "make_template_fragment_key",
    ],
    "flask_caching.jinja2ext": ["JINJA_CACHE_ATTR_NAME", "CacheExtension"],
}


@pytest.mark.parametrize("module", sorted(RELEASED_NAMES))
def test_released_public_names_are_importable(module: str) -> None:
    code = f"from {module} import {', '.join(RELEASED_NAMES[module])}"
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True)
    loaded = importlib.import_module(module)
    missing = [n for n in RELEASED_NAMES[module] if not hasattr(loaded, n)]
    assert missing == []


def test_released_names_mean_what_they_mean_there() -> None:
    from flask_caching import jinja2ext, utils

    assert flask_caching.VERSION_TIMEOUT == 0
    assert flask_caching.logger is logging.getLogger("flask_caching")
    assert flask_caching.get_id is utils.get_id
    assert utils.TEMPLATE_FRAGMENT_KEY_TEMPLATE % ("box", "_a_b") == (
        "_template_fragment_cache_box_a_b"
    )
    assert jinja2ext.JINJA_CACHE_ATTR_NAME == "_template_fragment_cache"
    assert "<locals>".translate(utils.null_control) == "locals"
    assert set("_.aZ9") <= utils.valid_chars and "<" in utils.del_chars

    def inner(a: int, b: int = 2, *, c: int = 3) -> None:
        pass

    assert utils.get_arg_names(inner) == ["a", "b"]
    assert utils.get_arg_default(inner, 1) == 2
    assert utils.get_arg_default(inner, 0) is None
    assert utils.function_namespace(inner) == (
        f"{__name__}.test_released_names_mean_what_they_mean_there.locals.inner",
        None,
    )
    assert utils.query_args_as_pairs("?b=2&a=") == [("b", "2"), ("a", "")]
    assert utils.query_args_as_pairs({"a": 1}) == [("a", "1")]


def test_documented_import_paths() -> None:
    code = (
        "from flask_caching import Cache, CachedResponse, make_template_fragment_key\n"
        "from flask_caching.backends.base import BaseCache\n"
        "from flask_caching.backends.simplecache import SimpleCache\n"
        "from flask_caching.backends.filesystemcache import FileSystemCache\n"
        "from flask_caching.backends.nullcache import NullCache\n"
        "from flask_caching.backends import SimpleCache as S2\n"
        "from flask_caching.backends.cache import BaseCache as B2\n"
        "from flask_caching.utils import make_template_fragment_key as m2\n"
        "from flask_caching.jinja2ext import CacheExtension\n"
        "assert B2 is BaseCache and m2 is make_template_fragment_key\n"
        "assert S2 is SimpleCache and issubclass(SimpleCache, BaseCache)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_py_typed_is_shipped() -> None:
    assert (SRC / "py.typed").exists()


def _layer(module: str) -> int:
    top = module.split(".")[0]
    return LAYERS.get(top, 6)


def test_import_direction() -> None:
    problems = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).with_suffix("")
        parts = rel.parts
        here = _layer(parts[0])
        package = parts[:-1]
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or not node.level:
                continue
            base = list(package)[: len(package) - (node.level - 1)]
            if node.module:
                targets = [".".join([*base, node.module])]
            else:  # from . import x, y
                targets = [".".join([*base, alias.name]) for alias in node.names]
            for target in targets:
                if target in ("", "__init__"):
                    problems.append(f"{rel}: imports the package root")
                elif _layer(target) > here:
                    problems.append(f"{rel} (layer {here}) imports {target}")
    assert problems == []


#: the memcached backend's modules inside ``backends`` (all layer 2), lowest first:
#: at module level each imports only the ones before it. memcache loads
#: _memcached_sasl lazily (a function-level import), which this does not count.
MEMCACHED_LAYERS = [
    "_memcached_keys",
    "_memcached_codec",
    "_memcached",
    "_memcached_atomic",
    "_pylibmc_driver",
    "_memcached_drivers",
    "memcache",
    "_memcached_sasl",
    "_memcached_spread",
]


def test_memcached_modules_import_downward() -> None:
    backends = SRC / "backends"
    found = {p.stem for p in backends.glob("*.py") if "memcache" in p.stem}
    found |= {p.stem for p in backends.glob("*pylibmc*.py")}
    assert found == set(MEMCACHED_LAYERS), "give each memcached module a layer"
    problems = []
    for rank, name in enumerate(MEMCACHED_LAYERS):
        tree = ast.parse((backends / f"{name}.py").read_text())
        for node in tree.body:  # module level only
            if not isinstance(node, ast.ImportFrom) or node.level != 1:
                continue
            targets = [node.module] if node.module else [a.name for a in node.names]
            for target in targets:
                if target in MEMCACHED_LAYERS[rank:]:
                    problems.append(f"backends.{name} imports backends.{target}")
    assert problems == []
