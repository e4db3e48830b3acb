"""pytest plugin: write every test's outcome to the JSON file named by $PYTEST_OUTCOMES.

Loaded with ``-p pytest_outcomes`` (``scripts/`` on PYTHONPATH) by the conformance run,
which compares the outcomes with the committed list of expected failures. One entry per
node id: ``[outcome, reason]``, outcome one of passed, failed, error, skipped, xfailed,
xpassed. A module that fails to import is recorded under its path as an error.
"""

from __future__ import annotations

import json
import os

import pytest

#: a worse outcome of a later phase (an error in teardown) replaces a better one
_RANK = {"passed": 0, "xpassed": 0, "skipped": 1, "xfailed": 1, "failed": 2, "error": 3}
_outcomes: dict[str, tuple[str, str]] = {}


def _record(nodeid: str, outcome: str, reason: str) -> None:
    previous = _outcomes.get(nodeid)
    if previous is None or _RANK[outcome] > _RANK[previous[0]]:
        _outcomes[nodeid] = (outcome, reason)


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    """One line saying why: the skip reason, the exception, or the last line."""
    if isinstance(report.longrepr, tuple):  # a skip: (path, line, reason)
        return str(report.longrepr[2])
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:  # a failure: the exception's message
        return str(crash.message).strip().splitlines()[0][:200]
    lines = str(report.longrepr or "").strip().splitlines()
    return lines[-1].strip() if lines else ""


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Fold the setup/call/teardown reports of one test into its outcome."""
    xfail = hasattr(report, "wasxfail")
    if report.failed:
        outcome = "failed" if report.when == "call" else "error"
        _record(report.nodeid, outcome, _reason(report))
    elif report.skipped:
        _record(report.nodeid, "xfailed" if xfail else "skipped", _reason(report))
    elif report.when == "call":
        _record(report.nodeid, "xpassed" if xfail else "passed", "")


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """A module that cannot be collected counts as one erroring entry."""
    if report.failed:
        _record(report.nodeid, "error", _reason(report))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write the outcomes where the runner asked for them."""
    target = os.environ.get("PYTEST_OUTCOMES")
    if target:
        with open(target, "w", encoding="utf-8") as out:
            json.dump({k: list(v) for k, v in sorted(_outcomes.items())}, out, indent=1)
