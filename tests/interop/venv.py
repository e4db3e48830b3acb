"""``.venv-released``: released Flask-Caching 2.5.1 in a venv of its own, built on demand.

:func:`ensure_released_venv` (re)builds it from ``requirements/released.txt`` when it
is missing or when that file (or the Python version) changed since it was built, under
a file lock so two pytest runs in the same tree do not build it at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-released"
REQUIREMENTS = ROOT / "requirements" / "released.txt"
DEV_REQUIREMENTS = ROOT / "requirements" / "dev.txt"
#: what the venv was built from; a different digest means rebuild
STAMP = VENV / "interop-built-from"
LOCK = ROOT / ".venv-released.lock"
#: seconds one build step (venv, pip install, import check) may take
STEP_TIMEOUT = 600


class BuildFailed(RuntimeError):
    """The released venv could not be built; the message says which step and why."""


def python_of(venv: Path) -> Path:
    """The interpreter of *venv*."""
    return venv / "bin" / "python"


def _digest() -> str:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return hashlib.sha256(REQUIREMENTS.read_bytes() + version.encode()).hexdigest()


def _run(step: str, *cmd: str | Path) -> None:
    try:
        done = subprocess.run(
            [str(c) for c in cmd],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BuildFailed(f"{step}: {exc}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise BuildFailed(f"{step} exited with status {done.returncode}:\n{tail}")


def _build() -> None:
    shutil.rmtree(VENV, ignore_errors=True)
    _run("python -m venv .venv-released", sys.executable, "-m", "venv", VENV)
    python = python_of(VENV)
    _run(
        "pip install -r requirements/released.txt",
        python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
        "-r", REQUIREMENTS,
    )  # fmt: skip
    check = (
        "import importlib.metadata as m, flask_caching, pylibmc, redis;"
        "assert m.version('Flask-Caching') == '2.5.1', m.version('Flask-Caching')"
    )
    _run("importing released flask_caching in .venv-released", python, "-c", check)
    STAMP.write_text(_digest())


def ensure_released_venv() -> Path:
    """The interpreter of an up-to-date ``.venv-released``; raises BuildFailed."""
    with open(LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            fresh = STAMP.exists() and STAMP.read_text() == _digest()
            if not (fresh and python_of(VENV).exists()):
                _build()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return python_of(VENV)


def pins(path: Path) -> dict[str, str]:
    """``{lowercased name: version}`` of the ``name==version`` lines of *path*."""
    found = {}
    for line in path.read_text().splitlines():
        name, sep, version = line.split("#", 1)[0].strip().partition("==")
        if sep:
            found[name.strip().lower()] = version.strip()
    return found
