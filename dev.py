#!/usr/bin/env python3
"""Set up the project and run it: ``python3 dev.py demo`` or ``python3 dev.py test``.

Needs only python3. Creates ``.venv`` (installing Debian's python3-venv first when
``venv`` is unavailable and we are root), installs the pinned requirements, and for
``test`` installs the servers the tests start (redis-server, memcached, SASL tools).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import typing as t
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"


def run(*cmd: str | Path, check: bool = True, **kw: t.Any) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    code = subprocess.run([str(c) for c in cmd], cwd=ROOT, **kw).returncode
    if check and code:
        sys.exit(f"failed ({code}): {' '.join(str(c) for c in cmd)}")
    return code


def apt_install(*packages: str) -> None:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit(f"missing system packages {packages}; install them and retry")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run("apt-get", "update", "-qq", env=env)
    run("apt-get", "install", "-y", "-qq", *packages, env=env)


def ensure_venv() -> None:
    if (BIN / "python").exists():
        return
    if run(sys.executable, "-m", "venv", VENV, check=False) != 0:
        shutil.rmtree(VENV, ignore_errors=True)
        minor = f"{sys.version_info.major}.{sys.version_info.minor}"
        apt_install("python3-venv", f"python{minor}-venv")
        run(sys.executable, "-m", "venv", VENV)


def ensure_requirements(name: str) -> None:
    ensure_venv()
    req = ROOT / "requirements" / f"{name}.txt"
    stamp = VENV / f".installed-{name}"
    digest = hashlib.sha256(req.read_bytes() + (ROOT / "pyproject.toml").read_bytes())
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        return
    if name != "demo" and not shutil.which("gcc"):
        apt_install("gcc", "python3-dev")  # uWSGI builds from source
    run(BIN / "python", "-m", "pip", "install", "-q", "--upgrade", "pip")
    run(BIN / "python", "-m", "pip", "install", "-q", "-r", req, "-e", ".")
    stamp.write_text(digest.hexdigest())


def demo() -> None:
    ensure_requirements("demo")
    os.execv(BIN / "python", [str(BIN / "python"), str(ROOT / "examples" / "demo.py")])


def test(pytest_args: list[str]) -> None:
    run("bash", ROOT / "scripts" / "install-servers.sh")
    ensure_requirements("dev")
    linted = ("src", "tests", "benchmarks", "examples", "dev.py")
    run(BIN / "ruff", "check", *linted)
    run(BIN / "ruff", "format", "--check", *linted)
    run(BIN / "mypy")
    # the full run also measures branch coverage and holds pyproject's fail_under;
    # a targeted run (with pytest arguments) covers too little to be held to it
    cover = [] if pytest_args else ["--cov", "--cov-report=term:skip-covered"]
    sys.exit(run(BIN / "pytest", *cover, *pytest_args, check=False))


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "demo":
        demo()
    elif command == "test":
        test(sys.argv[2:])
    else:
        sys.exit("usage: python3 dev.py demo | test [pytest args]")
