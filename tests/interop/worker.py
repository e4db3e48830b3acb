"""The worker: one side's app, driven by JSON lines on stdin, answering JSON lines.

Run as a script by :class:`interop.harness.Worker` under the side's interpreter. The
first line it writes is a hello (which flask_caching it imported, and the names of the
memoized functions); then each request ``{"op": ..., ...}`` gets one reply
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": traceback}``. Anything the
app prints goes to stderr so it cannot corrupt the protocol on stdout.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys
import traceback
import typing as t
from collections.abc import Callable

# import ``interop`` as a package from tests/, after (not before) the interpreter's own
# paths: this file's folder (sys.path[0]) would otherwise shadow nothing useful
_TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:] = [p for p in sys.path[1:] if os.path.abspath(p) != _TESTS] + [_TESTS]

import flask_caching  # noqa: E402
from flask_caching import make_template_fragment_key  # noqa: E402
from interop import app as appmod  # noqa: E402
from interop.codec import decode, encode  # noqa: E402

Handler = Callable[[dict[str, t.Any]], t.Any]


def _memoized(request: dict[str, t.Any]) -> t.Any:
    """The memoized callable a request names: ``memo`` or an Account's ``balance``."""
    if request["fn"] == "memo":
        return appmod.memo
    if request["fn"] == "balance":
        return appmod.Account(request["ident"]).balance
    raise ValueError(f"unknown memoized function {request['fn']!r}")


def _request(request: dict[str, t.Any]) -> dict[str, t.Any]:
    """GET a path; a body that is not UTF-8 (say, raw pickle served as a page) is
    returned with backslash escapes rather than failing the harness."""
    response = appmod.app.test_client().get(request["path"])
    body = response.get_data().decode("utf-8", "backslashreplace")
    return {"status": response.status_code, "body": body}


def _get(request: dict[str, t.Any]) -> dict[str, t.Any]:
    with appmod.app.app_context():
        value = appmod.cache.get(request["key"])
        has = bool(appmod.cache.has(request["key"]))
    return {"value": encode(value), "has": has}


def _in_app(action: Callable[[dict[str, t.Any]], t.Any]) -> Handler:
    def run(request: dict[str, t.Any]) -> t.Any:
        with appmod.app.app_context():
            return action(request)

    return run


HANDLERS: dict[str, Handler] = {
    "configure": lambda r: appmod.configure(r["label"], r["config"]),
    "set": _in_app(
        lambda r: bool(
            appmod.cache.set(r["key"], decode(r["value"]), timeout=appmod.TIMEOUT)
        )
    ),
    "get": _get,
    "delete": _in_app(lambda r: bool(appmod.cache.delete(r["key"]))),
    "request": _request,
    "call": _in_app(lambda r: _memoized(r)(*r["args"])),
    "delete_memoized": _in_app(
        lambda r: appmod.cache.delete_memoized(_memoized(r), *r["args"])
    ),
    "fragment": lambda r: appmod.render_fragment(r["token"]),
    "delete_fragment": _in_app(
        lambda r: bool(
            appmod.cache.delete(
                make_template_fragment_key("frag", vary_on=[r["token"]])
            )
        )
    ),
}


def _dotted(fn: t.Any) -> str:
    """``module.qualname`` of a memoized callable: what memoize keys are made of."""
    return f"{fn.__module__}.{fn.__qualname__}"


def _distribution_version() -> str:
    """The version of the flask_caching installed here: ours is distributed as
    Flask-Caching-NG, released as Flask-Caching."""
    for name in ("Flask-Caching-NG", "Flask-Caching"):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def hello() -> dict[str, t.Any]:
    """What this side runs: the flask_caching it imported and the memoized names."""
    names = {"memo": _dotted(appmod.memo), "balance": _dotted(appmod.Account.balance)}
    return {
        "flask_caching": flask_caching.__file__,
        "version": _distribution_version(),
        "python": sys.executable,
        "names": names,
    }


def serve(inbox: t.TextIO, outbox: t.TextIO) -> None:
    """Answer requests until stdin closes."""
    outbox.write(json.dumps({"ok": True, "result": hello()}) + "\n")
    outbox.flush()
    for line in inbox:
        try:
            request = json.loads(line)
            reply = {"ok": True, "result": HANDLERS[request["op"]](request)}
        except Exception:
            reply = {"ok": False, "error": traceback.format_exc()}
        outbox.write(json.dumps(reply) + "\n")
        outbox.flush()


if __name__ == "__main__":
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout = sys.stderr
    serve(sys.stdin, protocol)
