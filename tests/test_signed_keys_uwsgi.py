"""``pickle-signed`` binds each uWSGI cache entry to its key (issue 14 item 11a).

uWSGI's cache exists only inside a uWSGI server, so the checks run in one: this
module starts ``uwsgi`` with a ``--cache2`` on a free loopback port and
:data:`UWSGI_APP`, which copies a stored entry's bytes under another key and checks
that it is a miss and never unpickled (the payload would create a directory), that
the original, a new backend object and rotated secrets still read, and that ``inc``
works. The server is stopped by PID. The other backends are in
``tests/test_signed_keys.py``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import typing as t
import urllib.request
from pathlib import Path

import pytest

#: run by uWSGI; ``GET /`` answers "ok" or the traceback of the failed check
UWSGI_APP = """
import os, traceback, uwsgi
from flask_caching.contrib.uwsgicache import UWSGICache
from flask_caching.serializers import SignedPickleSerializer

MARKER = os.environ["SIGNED_KEYS_MARKER"]

class Payload:
    def __reduce__(self):
        return (os.mkdir, (MARKER,))

def backend(*secrets):
    cache = UWSGICache(cache="mycache")
    cache.serializer = SignedPickleSerializer(list(secrets))
    return cache

def checks():
    cache = backend("secret")
    assert cache.set("basic", [Payload(), "ok"])
    raw = uwsgi.cache_get("basic", "mycache")
    assert raw[8:9] == b"\\x03", raw  # after the 8-byte expiry
    assert uwsgi.cache_update("premium", raw, 0, "mycache")
    copied = cache.get("premium"), cache.get_many("premium"), cache.has("premium")
    assert copied == (None, [None], False), copied
    assert not os.path.exists(MARKER), "a copied entry was unpickled"
    assert cache.get("basic") == [None, "ok"] and os.path.exists(MARKER)
    assert cache.add("page", {"html": "hi"})
    assert backend("secret").get("page") == {"html": "hi"}
    assert backend("new", "secret").get("page") == {"html": "hi"}
    assert backend("new").get("page") is None
    assert cache.set("n", 5) and cache.inc("n") == 6 and cache.get("n") == 6

def app(environ, start_response):
    try:
        checks()
        result = "ok"
    except Exception:
        result = traceback.format_exc()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [result.encode()]
"""


def _uwsgi_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "uwsgi"
    return str(beside_python) if beside_python.exists() else shutil.which("uwsgi")


def _ask_uwsgi(binary: str, tmp_path: Path) -> str:
    """Start uWSGI on a free loopback port with :data:`UWSGI_APP`, fetch ``/``
    once, stop it by PID."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = tmp_path / "signed_app.py"
    app.write_text(UWSGI_APP)
    argv = [binary, "--http-socket", f"127.0.0.1:{port}"]
    argv += ["--cache2", "name=mycache,items=100", "--wsgi-file", str(app)]
    argv += ["--callable", "app", "--processes", "1", "--die-on-term"]
    argv += ["--need-app", "--virtualenv", sys.prefix, "--disable-logging"]
    env = dict(os.environ, SIGNED_KEYS_MARKER=str(tmp_path / "unpickled"))
    log = tmp_path / "uwsgi.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 20
        while process.poll() is None and time.monotonic() < deadline:
            try:
                url = f"http://127.0.0.1:{port}/"
                with urllib.request.urlopen(url, timeout=15) as response:
                    return t.cast(bytes, response.read()).decode()
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"uwsgi did not answer:\n{log.read_text()}")
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            process.wait(timeout=10)


def test_uwsgi_entries_are_bound_to_their_key(tmp_path: Path) -> None:
    binary = _uwsgi_binary()
    if binary is None:
        pytest.skip("uwsgi is not installed (pip install uwsgi)")
    assert _ask_uwsgi(binary, tmp_path) == "ok"
