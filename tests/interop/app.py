"""The app both sides run: one of each cached front end, each marking who computed it.

Every computation returns ``... by <label>#<n>``: the worker's label (for example
``released.a``) and a per-process counter. A reader that gets the writer's label back
was served the writer's entry; its own label means it missed and computed afresh.
The module is imported as ``interop.app`` on both sides, so memoized functions have the
same ``__module__`` and ``__qualname__`` (which memoize keys contain) on both.
"""

from __future__ import annotations

import itertools
import typing as t

from flask import Flask, render_template_string

from flask_caching import Cache

#: seconds every entry of the app lives; long enough to outlast a test run
TIMEOUT = 300
#: the fragment: named ``frag`` and varying on the token
FRAGMENT = (
    '{% cache 300, "frag", token %}fragment {{ token }} by {{ mark() }}{% endcache %}'
)

app = Flask(__name__)
cache = Cache()
_label = ["unconfigured"]
_counter = itertools.count(1)


def mark() -> str:
    """Who computed this, and which computation of that process it was."""
    return f"{_label[0]}#{next(_counter)}"


def configure(label: str, config: dict[str, t.Any]) -> None:
    """Name this side and bind the cache to the backend *config* describes."""
    _label[0] = label
    app.config.update(config)
    cache.init_app(app)


@app.route("/view/<token>")
@cache.cached(timeout=TIMEOUT)
def view(token: str) -> str:
    """A plainly cached view: the key is the path."""
    return f"view {token} by {mark()}"


@app.route("/qs/<token>")
@cache.cached(timeout=TIMEOUT, query_string=True)
def query_view(token: str) -> str:
    """A view cached per query string (whatever the order of its arguments)."""
    return f"qs {token} by {mark()}"


@cache.memoize(timeout=TIMEOUT)
def memo(token: str, n: int) -> str:
    """A memoized function of two arguments."""
    return f"memo {token} {n} by {mark()}"


class Account:
    """An object whose ``__repr__`` is a stable id, so memoize keys match across processes."""

    def __init__(self, ident: str) -> None:
        self.ident = ident

    def __repr__(self) -> str:
        return f"Account({self.ident!r})"

    @cache.memoize(timeout=TIMEOUT)
    def balance(self, token: str) -> str:
        """A memoized method: the key holds ``repr(self)`` and the argument."""
        return f"balance {self.ident} {token} by {mark()}"


def render_fragment(token: str) -> str:
    """Render the ``{% cache %}`` fragment for *token*."""
    with app.app_context():
        return str(render_template_string(FRAGMENT, token=token, mark=mark))
