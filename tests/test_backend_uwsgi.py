"""UWSGICache inside a real uWSGI server, and its clear refusal outside one.

The ``uwsgi`` module exists only in processes uWSGI runs, so the contract checks live
in ``tests/uwsgi_app/app.py``; this module starts ``uwsgi`` with a ``--cache2`` on a
free loopback port, asks the app to run them, and reports each as its own test. The
server is stopped by PID. Skipped when the ``uwsgi`` binary is not installed
(``pip install uwsgi``, built from source with a C compiler).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from flask_caching.backends.uwsgicache import UWSGICache
from flask_caching.exceptions import ConfigurationError

APP = Path(__file__).parent / "uwsgi_app" / "app.py"
#: the names of the checks in uwsgi_app/app.py, each reported as one test
CHECKS = [
    "missing_key",
    "round_trips_types",
    "none_is_stored",
    "add_does_not_overwrite",
    "delete",
    "many",
    "inc_dec",
    "timeouts",
    "too_large_is_refused",
    "clear",
    "unknown_cache_name",
    "import_paths",
    "built_on_cachelib",
    "through_the_extension",
]
START_TIMEOUT = 20.0


def _uwsgi_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "uwsgi"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("uwsgi")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)  # --die-on-term: shut down now
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def uwsgi_results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Start uWSGI with the check app, fetch ``GET /`` once, stop uWSGI."""
    binary = _uwsgi_binary()
    if binary is None:
        pytest.skip("uwsgi is not installed (pip install uwsgi)")
    port = _free_port()
    log = tmp_path_factory.mktemp("uwsgi") / "uwsgi.log"
    argv = [
        binary,
        "--http-socket",
        f"127.0.0.1:{port}",
        "--cache2",
        "name=mycache,items=100",
        "--wsgi-file",
        str(APP),
        "--callable",
        "app",
        "--processes",
        "1",
        "--die-on-term",
        "--need-app",
        "--virtualenv",
        sys.prefix,
        "--disable-logging",
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"uwsgi exited ({process.returncode}):\n{log.read_text()}")
            try:
                url = f"http://127.0.0.1:{port}/"
                with urllib.request.urlopen(url, timeout=15) as response:
                    results: dict[str, str] = json.loads(response.read())
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"uwsgi did not answer:\n{log.read_text()}")
                time.sleep(0.1)
        yield results
    finally:
        _stop(process)


def test_every_check_is_reported(uwsgi_results: dict[str, str]) -> None:
    assert sorted(uwsgi_results) == sorted(CHECKS)


@pytest.mark.parametrize("name", CHECKS)
def test_inside_uwsgi(uwsgi_results: dict[str, str], name: str) -> None:
    assert uwsgi_results.get(name) == "ok", uwsgi_results.get(name)


def test_outside_uwsgi_says_it_needs_uwsgi() -> None:
    config = {"CACHE_UWSGI_NAME": "mycache", "CACHE_DEFAULT_TIMEOUT": 300}
    with pytest.raises(ConfigurationError, match="only inside a uWSGI server"):
        UWSGICache.factory(Flask(__name__), config, [], {})
