"""The wheel of this checkout: its own distribution name (Flask-Caching-NG), every
module and ``py.typed`` inside, and a declared dependency for every third-party
package the source imports (required ones in ``Requires-Dist``, optional backends'
clients in an extra).

The wheel is built from a copy of the files the build reads (pyproject.toml,
README.md, src/), so the build leaves no ``build/`` or ``*.egg-info`` in the tree.
"""

from __future__ import annotations

import ast
import email.message
import email.parser
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
PACKAGE = SRC / "flask_caching"
#: seconds the wheel build may take (setuptools is fetched once into pip's cache)
BUILD_TIMEOUT = 240

#: import name -> the distribution that provides it
DISTRIBUTIONS = {
    "blinker": "blinker",
    "cachelib": "cachelib",
    "click": "click",
    "flask": "Flask",
    "jinja2": "Jinja2",
    "markupsafe": "MarkupSafe",
    "memcache": "python-memcached",
    "prometheus_client": "prometheus_client",
    "pylibmc": "pylibmc",
    "pymemcache": "pymemcache",
    "redis": "redis",
    "typing_extensions": "typing_extensions",
    "uwsgi": "uWSGI",
    "werkzeug": "Werkzeug",
}
#: imported by src but installed with Flask, which depends on them
WITH_FLASK = {"click"}
#: imported only by the backend or feature that needs them: an extra is enough
OPTIONAL = {"memcache", "prometheus_client", "pylibmc", "pymemcache", "redis", "uwsgi"}


def normalized(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _literal_module(call: ast.Call) -> str | None:
    """The module named by ``import_module("x")`` / ``find_spec("x")``, if literal."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if name not in ("import_module", "find_spec") or not call.args:
        return None
    first = call.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    return None


def imported_top_levels(path: Path) -> set[str]:
    """Top-level modules *path* imports: statements and literal dynamic imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and (module := _literal_module(node)):
            found.add(module.split(".")[0])
    return found


def third_party_imports() -> set[str]:
    """Every third-party top-level module src/ imports, plus the memcached clients
    it picks by name at run time (``CLIENT_NAMES``)."""
    from flask_caching.backends._memcached_drivers import CLIENT_NAMES

    names = set(CLIENT_NAMES)
    for path in PACKAGE.rglob("*.py"):
        names |= imported_top_levels(path)
    return {
        name
        for name in names
        if name not in sys.stdlib_module_names and name != "flask_caching"
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    tmp = tmp_path_factory.mktemp("wheel")
    checkout = tmp / "checkout"
    checkout.mkdir()
    shutil.copy2(ROOT / "pyproject.toml", checkout)
    shutil.copy2(ROOT / "README.md", checkout)
    shutil.copytree(
        SRC,
        checkout / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"),
    )
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q"]
        + ["--disable-pip-version-check", str(checkout), "-w", str(tmp / "dist")],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = (tmp / "dist").glob("*.whl")
    with zipfile.ZipFile(built) as archive:
        yield archive


def metadata_of(archive: zipfile.ZipFile) -> email.message.Message:
    (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
    return email.parser.Parser().parsestr(archive.read(name).decode("utf-8"))


def requirement_name(requirement: str) -> str:
    """``redis>=5.0; extra == "redis"`` -> ``redis``."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return normalized(match[1])


@pytest.mark.slow
def test_the_distribution_has_its_own_name(wheel: zipfile.ZipFile) -> None:
    metadata = metadata_of(wheel)
    assert metadata["Name"] == "Flask-Caching-NG"
    assert normalized(metadata["Name"]) != normalized("Flask-Caching")
    import flask_caching

    assert metadata["Version"] == flask_caching.__version__
    assert metadata["Requires-Python"] == ">=3.10"


@pytest.mark.slow
def test_every_module_and_py_typed_are_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert "flask_caching/py.typed" in names
    modules = {
        path.relative_to(SRC).as_posix()
        for path in PACKAGE.rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert len(modules) > 30
    assert modules - names == set()
    assert {n for n in names if n.endswith(".py")} == modules  # nothing else shipped


@pytest.mark.slow
def test_every_imported_package_is_a_declared_dependency(
    wheel: zipfile.ZipFile,
) -> None:
    metadata = metadata_of(wheel)
    required: set[str] = set()
    optional: set[str] = set()
    for requirement in metadata.get_all("Requires-Dist") or []:
        name = requirement_name(requirement)
        (optional if "extra ==" in requirement else required).add(name)
    imported = third_party_imports()
    unmapped = imported - DISTRIBUTIONS.keys()
    assert not unmapped, f"src imports {unmapped}: add them to DISTRIBUTIONS"
    for module in sorted(imported):
        dist = normalized(DISTRIBUTIONS[module])
        if module in WITH_FLASK:
            assert normalized("Flask") in required, module
        elif module in OPTIONAL:
            assert dist in optional | required, f"{module}: no extra names {dist}"
        else:
            assert dist in required, f"{module} ({dist}) is not in Requires-Dist"
    assert {"redis", "pymemcache", "pylibmc"} <= optional
    assert set(metadata.get_all("Provides-Extra") or []) >= {
        "redis",
        "memcached",
        "pylibmc",
    }
