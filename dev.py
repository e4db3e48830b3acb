#!/usr/bin/env python3
"""Set up the project and run it: ``python3 dev.py demo``, ``test``, ``compat`` or ``oldest``.

Needs only python3. Creates ``.venv`` (installing Debian's python3-venv first when
``venv`` is unavailable and we are root), installs the pinned requirements, and for
``test`` installs the servers the tests start (redis-server, memcached, SASL tools).

``compat`` runs released Flask-Caching's own test suite against ours
(``scripts/conformance.py``); ``oldest`` runs the core suite (no backend server) on
the oldest supported stack in ``.venv-oldest``. ``test`` without pytest arguments
runs lint, type checks, the full suite with coverage, ``compat`` and ``oldest``;
with pytest arguments, lint and type checks and then only that pytest run, e.g.

    python3 dev.py test -m "not slow"        # the quick subset: no fault/load tests
    python3 dev.py test tests/test_memoize.py -x

``busy [test args]`` runs ``test`` while a CPU-bound process spins on every core (each
stopped by PID afterwards, and by itself after 40 minutes): the check to repeat after
touching anything timing-sensitive, since the suite must pass on a busy machine too.
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
#: the oldest stack we support (requirements/oldest.txt), in a venv of its own
OLDEST_VENV = ROOT / ".venv-oldest"
#: what the oldest-stack run leaves out: tests that need a backend server or uWSGI
CORE_ONLY = ["-m", "not redis and not memcached", "-p", "core_only"]
CORE_ONLY += ["--continue-on-collection-errors"]  # report every module that breaks


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


def ensure_venv(venv: Path) -> None:
    if (venv / "bin" / "python").exists():
        return
    if run(sys.executable, "-m", "venv", venv, check=False) != 0:
        shutil.rmtree(venv, ignore_errors=True)
        minor = f"{sys.version_info.major}.{sys.version_info.minor}"
        apt_install("python3-venv", f"python{minor}-venv")
        run(sys.executable, "-m", "venv", venv)


def ensure_requirements(name: str, venv: Path = VENV) -> None:
    """Install requirements/<name>.txt and our package into ``venv`` when they changed."""
    ensure_venv(venv)
    python = venv / "bin" / "python"
    req = ROOT / "requirements" / f"{name}.txt"
    stamp = venv / f".installed-{name}"
    digest = hashlib.sha256(req.read_bytes() + (ROOT / "pyproject.toml").read_bytes())
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        return
    if name != "demo" and not shutil.which("gcc"):
        apt_install("gcc", "python3-dev")  # uWSGI builds from source
    run(python, "-m", "pip", "install", "-q", "--upgrade", "pip")
    run(python, "-m", "pip", "install", "-q", "-r", req, "-e", ".")
    drop_old_distribution(python)
    stamp.write_text(digest.hexdigest())


def drop_old_distribution(python: Path) -> None:
    """Uninstall this checkout's install under its former name, Flask-Caching (it is
    Flask-Caching-NG now; both provide ``flask_caching``). Our venvs never hold the
    released Flask-Caching: that lives in venvs of its own. Its build metadata in
    src/ goes too: on the editable install's path, it would still name the
    checkout Flask-Caching."""
    shutil.rmtree(ROOT / "src" / "Flask_Caching.egg-info", ignore_errors=True)
    probe = "import importlib.metadata as m; m.distribution('Flask-Caching')"
    found = subprocess.run([str(python), "-c", probe], capture_output=True)
    if found.returncode == 0:
        run(python, "-m", "pip", "uninstall", "-y", "-q", "Flask-Caching")


def demo() -> None:
    ensure_requirements("demo")
    os.execv(BIN / "python", [str(BIN / "python"), str(ROOT / "examples" / "demo.py")])


def lint() -> None:
    linted = ("src", "tests", "benchmarks", "examples", "scripts", "dev.py")
    run(BIN / "ruff", "check", *linted)
    run(BIN / "ruff", "format", "--check", *linted)
    run(BIN / "mypy")


def compat(args: list[str]) -> int:
    """Released Flask-Caching's own suite against ours (scripts/conformance.py)."""
    run("bash", ROOT / "scripts" / "install-servers.sh")
    ensure_requirements("dev")
    return run(BIN / "python", ROOT / "scripts" / "conformance.py", *args, check=False)


def oldest(pytest_args: list[str]) -> int:
    """The core suite (no backend server) on the oldest supported stack."""
    ensure_requirements("oldest", OLDEST_VENV)
    env = dict(
        os.environ,
        FLASK_CACHING_OLDEST_STACK="1",  # tests/test_flask_versions.py checks the pins
        PYTHONPATH=str(ROOT / "scripts"),  # the core_only plugin
    )
    pytest = OLDEST_VENV / "bin" / "pytest"
    return run(
        pytest, "-p", "no:cacheprovider", *CORE_ONLY, *pytest_args, check=False, env=env
    )


def test(pytest_args: list[str]) -> None:
    """With pytest arguments a targeted run; without, every check this project has."""
    run("bash", ROOT / "scripts" / "install-servers.sh")
    ensure_requirements("dev")
    lint()
    if pytest_args:
        sys.exit(run(BIN / "pytest", *pytest_args, check=False))
    # the full run also measures branch coverage and holds pyproject's fail_under
    codes = {
        "suite": run(
            BIN / "pytest", "--cov", "--cov-report=term:skip-covered", check=False
        ),
        "compat": compat([]),
        "oldest": oldest([]),
    }
    failed = [name for name, code in codes.items() if code]
    if failed:
        sys.exit(f"dev.py test: failed: {', '.join(failed)}")


#: a CPU-bound loop that ends by itself (a bound on a check left running)
SPIN = "import time\nend = time.time() + 2400\nwhile time.time() < end:\n    pass\n"


def busy(test_args: list[str]) -> int:
    """``test`` with every core kept busy by a spinning process."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", SPIN])
        for _ in range(os.cpu_count() or 1)
    ]
    print(f"busy: {len(spinners)} spinning processes, pids {[p.pid for p in spinners]}")
    try:
        return run(sys.executable, __file__, "test", *test_args, check=False)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


COMMANDS = (
    "demo | test [pytest args] | busy [test args] | oldest [pytest args]"
    " | compat [--report | --update-list] [pytest args]"
)

if __name__ == "__main__":
    command, rest = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if command == "demo":
        demo()
    elif command == "test":
        test(rest)
    elif command == "busy":
        sys.exit(busy(rest))
    elif command == "compat":
        sys.exit(compat(rest))
    elif command == "oldest":
        sys.exit(oldest(rest))
    elif command in ("-h", "--help", "help"):
        print(f"usage: python3 dev.py {COMMANDS}\n\n{__doc__}")
    else:
        sys.exit(f"usage: python3 dev.py {COMMANDS} (--help: what each does)")
