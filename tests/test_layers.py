"""The package's three layers import one way only: front ends -> engine -> storage.

Storage (backends, serializers) knows nothing of requests or decorators; the engine
(the get-or-compute flow, locks, staleness, fail-open) knows nothing of Flask's
request objects beyond what the front ends hand it. The imports are read with
``ast``, so a violation fails here before it can spread.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "flask_caching"

#: modules every layer may use: configuration values and error types
SHARED = {"exceptions", "settings"}
ENGINE = {
    "entry",
    "flow",
    "lookup",
    "locks",
    "runtime",
    "resilience",
    "options",
    "store",
}


def layer_of(module: str) -> str:
    """``storage``, ``engine``, ``shared`` or ``front`` for a dotted module name
    relative to the package (``backends.rediscache``, ``lookup``, ...)."""
    head = module.split(".")[0]
    if head in ("backends", "contrib") or "serializer" in head:
        return "storage"
    if head in ENGINE:
        return "engine"
    if head in SHARED:
        return "shared"
    return "front"


def _type_checking_lines(tree: ast.Module) -> set[int]:
    """Line numbers inside ``if TYPE_CHECKING:`` blocks (types only, not imports
    that run)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or 0) + 1))
    return lines


def imports_of(path: Path) -> list[str]:
    """What *path* imports at run time: package modules as relative dotted names,
    anything else prefixed with ``ext:``."""
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    here = path.relative_to(PACKAGE).with_suffix("").parts[:-1]
    found: list[str] = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", 0) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(here[: len(here) - node.level + 1])
                target = ".".join([*base, *(node.module or "").split(".")]).strip(".")
                names = (
                    [target]
                    if node.module
                    else [".".join([*base, a.name]) for a in node.names]
                )
                found.extend(names)
            elif node.module and node.module.startswith("flask_caching"):
                found.append(node.module.removeprefix("flask_caching").strip("."))
            elif node.module:
                found.append("ext:" + node.module)
        elif isinstance(node, ast.Import):
            found.extend("ext:" + alias.name for alias in node.names)
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))
ALLOWED = {
    "storage": {"storage", "shared"},
    "engine": {"engine", "storage", "shared"},
    "shared": {"shared", "storage"},
    "front": {"front", "engine", "storage", "shared"},
}


@pytest.mark.parametrize(
    "path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES]
)
def test_imports_point_down_the_layers(path: Path) -> None:
    module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    if module.endswith("__init__") and "." not in module:
        return  # the package's front door re-exports every layer
    layer = layer_of(module)
    for imported in imports_of(path):
        if imported.startswith("ext:"):
            if layer in ("storage", "engine") and not imported.startswith(
                "ext:flask.json"  # a serialization format, not a request
            ):
                assert not imported.startswith(("ext:flask", "ext:werkzeug")), (
                    f"{module} ({layer}) imports {imported[4:]}: requests and "
                    "responses are the front ends' business"
                )
            continue
        if not imported:
            continue
        assert layer_of(imported) in ALLOWED[layer], (
            f"{module} ({layer}) imports {imported} ({layer_of(imported)})"
        )


def test_the_layer_rules_catch_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: an engine module importing a front end is caught."""
    assert layer_of("lookup") == "engine"
    assert layer_of("backends.rediscache") == "storage"
    assert layer_of("cached") == "front"
    assert "front" not in ALLOWED["engine"]
    assert "engine" not in ALLOWED["storage"]
