"""Run released Flask-Caching's own test suite against our package.

``python3 dev.py compat [--report] [--update-list] [pytest args]`` runs this with the
``.venv`` interpreter. It downloads the pinned sdist from PyPI with pip, checks its
sha256, unpacks only its ``tests/`` and ``pyproject.toml`` (the pytest config, with
``filterwarnings = error``) into the ignored ``.cache/conformance/``, starts the servers
its fixtures expect and runs it there, so the suite imports our installed package.

The outcome is held to ``tests/conformance/expected_failures.txt``: the run fails when a
test not listed there fails or errors, and when a listed test does not fail (the list
must stay true). ``--report`` prints the list as it would be now; ``--update-list``
writes it (reasons of entries still failing kept, new ones marked "provisional").
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from pathlib import Path

from conformance_servers import ServerError, upstream_servers

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "tests" / "conformance"
PIN = HERE / "upstream.txt"
EXPECTED = HERE / "expected_failures.txt"
CACHE = ROOT / ".cache" / "conformance"
FAILING = ("failed", "error")
#: skip reasons of upstream's fixtures when a server or client library is missing:
#: we provide both, so such a skip means the run did not test what it claims
MISSING = ("could not find", "could not start", "requires Redis")


def read_pin() -> tuple[str, str]:
    """The pinned upstream version and its sdist's sha256, from upstream.txt."""
    pin: dict[str, str] = {}
    for line in PIN.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            pin[key.strip()] = value.strip()
    return pin["version"], pin["sha256"]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_sdist(version: str, sha256: str) -> Path:
    """The sdist in the cache, downloaded by pip (hash-checked) when missing."""
    target = CACHE / f"flask_caching-{version}.tar.gz"
    if target.exists() and _sha256(target) == sha256:
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        req = Path(tmp) / "requirement.txt"
        req.write_text(f"Flask-Caching=={version} --hash=sha256:{sha256}\n")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps"]
            + ["--no-binary", ":all:", "--require-hashes", "-r", str(req), "-d", tmp],
            check=True,
        )
        (found,) = Path(tmp).glob("*.tar.gz")
        if _sha256(found) != sha256:
            sys.exit(f"conformance: {found.name} does not match the pinned sha256")
        shutil.move(found, target)
    return target


def unpack(tarball: Path, version: str) -> Path:
    """A fresh copy of the sdist's tests/ and pyproject.toml (never its package)."""
    top = f"flask_caching-{version}"
    dest = CACHE / top
    shutil.rmtree(dest, ignore_errors=True)
    wanted = (f"{top}/tests/", f"{top}/pyproject.toml")
    with tarfile.open(tarball) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(wanted)]
        if hasattr(tarfile, "data_filter"):
            tar.extractall(CACHE, members=members, filter="data")
        else:  # pragma: no cover - Pythons without extraction filters
            tar.extractall(CACHE, members=members)
    return dest


def read_expected() -> dict[str, str]:
    """``node id -> reason`` from expected_failures.txt; a line without a reason is an error."""
    expected: dict[str, str] = {}
    for number, line in enumerate(EXPECTED.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        nodeid, _, reason = line.partition(" # ")
        if not reason.strip():
            sys.exit(f"{EXPECTED.name}:{number}: no ' # reason' after the node id")
        expected[nodeid.strip()] = reason.strip()
    return expected


def run_suite(suite: Path, pytest_args: list[str]) -> dict[str, tuple[str, str]]:
    """Run upstream's pytest in ``suite`` with its own config; outcomes per node id."""
    results = CACHE / "outcomes.json"
    results.unlink(missing_ok=True)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            filter(None, [str(ROOT / "scripts"), os.environ.get("PYTHONPATH")])
        ),
        PYTEST_OUTCOMES=str(results),
        CI="true",  # upstream's fixtures fail instead of skipping when a server is missing
    )
    argv = [sys.executable, "-m", "pytest", "-p", "pytest_outcomes"]
    # no "-p no:cacheprovider": pytest-xprocess keeps its state in the pytest cache,
    # which lands in the (ignored, unpacked afresh) suite directory
    argv += ["--continue-on-collection-errors", "--rootdir", str(suite)]
    argv += ["-c", str(suite / "pyproject.toml"), "-q", "--tb=short", *pytest_args]
    print("+", " ".join(argv), flush=True)
    code = subprocess.run(argv, cwd=suite, env=env).returncode
    if code not in (0, 1) or not results.exists():
        sys.exit(f"conformance: pytest could not run the suite (exit {code})")
    raw = json.loads(results.read_text())
    return {nodeid: (outcome, reason) for nodeid, (outcome, reason) in raw.items()}


def judge(
    outcomes: dict[str, tuple[str, str]], expected: dict[str, str], targeted: bool
) -> tuple[list[str], list[str]]:
    """(unexpected failures, stale list entries) of this run.

    A skip for a missing server or client library counts as unexpected: we start the
    servers and install the clients. In a targeted run (pytest arguments given) a
    listed test that did not run is not called stale.
    """
    unexpected = [
        f"{nodeid}  ({outcome}: {reason})"
        for nodeid, (outcome, reason) in outcomes.items()
        if (outcome in FAILING and nodeid not in expected)
        or (outcome == "skipped" and any(m in reason for m in MISSING))
    ]
    stale = []
    for nodeid in expected:
        outcome = outcomes.get(nodeid, ("not run", ""))[0]
        if outcome not in FAILING and not (targeted and outcome == "not run"):
            stale.append(f"{nodeid}  ({outcome})")
    return unexpected, stale


def summarize(outcomes: dict[str, tuple[str, str]], version: str) -> None:
    """Totals in the closing-line style: ``conformance: N passed, N failed, N skipped``."""
    counts = Counter(outcome for outcome, _ in outcomes.values())
    failed = counts["failed"] + counts["error"]
    skipped = counts["skipped"] + counts["xfailed"]
    for nodeid, (outcome, reason) in outcomes.items():
        if outcome == "skipped":
            print(f"conformance: skipped {nodeid}: {reason}")
    print(
        f"conformance: released Flask-Caching {version}'s suite on ours: "
        f"{failed} failed ({counts['error']} of them errors)"
    )
    print(
        f"conformance: {counts['passed'] + counts['xpassed']} passed, {failed} failed, {skipped} skipped"
    )


def current_list(outcomes: dict[str, tuple[str, str]], expected: dict[str, str]) -> str:
    """expected_failures.txt as this run says it should be (header comments kept)."""
    header = [
        line for line in EXPECTED.read_text().splitlines() if line.startswith("#")
    ]
    entries = [
        f"{nodeid} # {expected.get(nodeid, 'provisional')}"
        for nodeid, (outcome, _) in sorted(outcomes.items())
        if outcome in FAILING
    ]
    return "\n".join(header + entries) + "\n"


def _show(title: str, lines: list[str]) -> None:
    if lines:
        print(f"conformance: {len(lines)} {title}:")
        for line in lines:
            print(f"    {line}")


def main(argv: list[str]) -> int:
    """Fetch, run and judge; exit status 1 when the list and the run disagree."""
    report = "--report" in argv
    update = "--update-list" in argv
    pytest_args = [a for a in argv if a not in ("--report", "--update-list")]
    version, sha256 = read_pin()
    expected = read_expected()
    sdist = fetch_sdist(version, sha256)
    try:
        # servers first: a second run at the same time stops at the taken port
        # before it replaces the unpacked suite under the first one
        with upstream_servers(CACHE / "servers"):
            outcomes = run_suite(unpack(sdist, version), pytest_args)
    except ServerError as exc:
        sys.exit(f"conformance: {exc}")
    summarize(outcomes, version)
    if report or update:
        text = current_list(outcomes, expected)
        if update:
            EXPECTED.write_text(text)
            print(f"conformance: wrote {EXPECTED.relative_to(ROOT)}")
        else:
            print("conformance: the failures of this run, as expected_failures.txt:")
            print(text, end="")
        return 0
    unexpected, stale = judge(outcomes, expected, targeted=bool(pytest_args))
    _show("unexpected failures (not in expected_failures.txt)", unexpected)
    _show("stale entries in expected_failures.txt (listed, but not failing)", stale)
    if unexpected or stale:
        return 1
    print("conformance: every failure is listed and every listed test fails")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
