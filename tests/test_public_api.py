"""The public surface is pinned, and modules import only from the layers above them."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import flask_caching

SRC = pathlib.Path(flask_caching.__file__).parent

#: layer of each module (design.md, "Import direction"); lower numbers come first
LAYERS = {
    "exceptions": 1,
    "backends": 2,
    "contrib": 2,
    "serializer_base": 2,
    "signed_serializer": 2,
    "json_serializer": 2,
    "serializers": 2,
    "keys": 3,
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
    "metrics": 4,
    "wrapping": 4,
    "cached": 5,
    "memoize": 5,
    "jinja2ext": 5,
    "extension": 6,
    "cli": 6,
    "__init__": 6,
    "utils": 6,
}


def test_all_is_pinned() -> None:
    assert sorted(flask_caching.__all__) == sorted(
        [
            "SUPPORTED_HASH_FUNCTIONS",
            "Cache",
            "CachedFunction",
            "CachedResponse",
            "cache_memoize_hit",
            "cache_memoize_miss",
            "cache_view_hit",
            "cache_view_miss",
            "make_template_fragment_key",
        ]
    )
    for name in flask_caching.__all__:
        assert getattr(flask_caching, name) is not None


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
    "_memcached_listing",
    "_memcached",
    "_pylibmc_driver",
    "_memcached_drivers",
    "memcache",
    "_memcached_sasl",
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
