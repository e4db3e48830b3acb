"""A small app that shows what its caches do: a 5 s view, a 30 s memoized function
and a 60 s template fragment on one page, and a ``/stats`` page.

Run it with ``python3 dev.py demo`` and open http://127.0.0.1:5000/ ; reload: each
cache says whether this request was a hit or a miss, how old its value is and how long
it still lives. The cache is the in-memory SimpleCache; every ``CACHE_*`` environment
variable goes into the app's config (numbers and ``true``/``false`` as JSON), e.g.
``CACHE_TYPE=RedisCache CACHE_REDIS_URL=redis://127.0.0.1:6379/0``, or
``CACHE_TYPE=FileSystemCache`` (a temporary directory, removed at exit, unless
``CACHE_DIR`` is set).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import tempfile
import time
import typing as t
from collections.abc import Mapping

from flask import Blueprint, Flask, Response, g, render_template_string

from flask_caching import Cache
from flask_caching.cli_backends import location
from flask_caching.cli_stats import StatsUnavailable, backend_stats

VIEW_TTL, MEMO_TTL, FRAGMENT_TTL = 5, 30, 60
#: seconds slow_square pretends to compute
WORK = 0.3

cache = Cache()
demo = Blueprint("demo", __name__)

PAGE = """<!doctype html>
<title>flask_caching demo</title>
<h1>flask_caching demo</h1>
<p><b>@@banner@@</b></p>
<table border="1" cellpadding="4">
<tr><th>cache</th><th>value made at</th><th>age / lifetime</th><th>this request</th></tr>
<tr><td>@cache.cached view, {{ view_ttl }} s</td><td>{{ clock(rendered) }}</td>
<td>@@age:{{ rendered }}:{{ view_ttl }}@@</td><td>@@view-status@@</td></tr>
<tr><td>@cache.memoize slow_square({{ n }}) = {{ square }}, {{ memo_ttl }} s</td>
<td>{{ clock(computed) }}</td><td>@@age:{{ computed }}:{{ memo_ttl }}@@</td>
<td>{{ memo_status }}@@inner@@</td></tr>
<tr><td>{{ "{% cache %}" }} fragment, {{ fragment_ttl }} s</td>
{% cache fragment_ttl, "clock" -%}
<td>{{ clock(stamp()) }}</td><td>@@age:{{ stamp() }}:{{ fragment_ttl }}@@</td>
{%- endcache %}
<td>{{ fragment_status() }}@@inner@@</td></tr>
</table>
<p>Reload: the view is rendered again every {{ view_ttl }} s, and then the memoized
value is still a hit until it is {{ memo_ttl }} s old, the fragment until
{{ fragment_ttl }} s.</p>
<p>Backend: {{ backend }}. <a href="/stats">stats</a> | <a href="/clear">clear</a></p>
"""

STATS = """<!doctype html>
<title>flask_caching demo: stats</title>
<h1>Cache statistics</h1>
<h2>cache.stats(): the decorators' counters (this process)</h2>
{% if rows %}<table border="1" cellpadding="4">
<tr><th></th>{% for column in columns %}<th>{{ column }}</th>{% endfor %}</tr>
{% for name, counts in rows %}<tr><td>{{ name }}</td>
{% for column in columns %}<td>{{ counts.get(column, "") }}</td>{% endfor %}</tr>
{% endfor %}</table>{% else %}<pre>{{ counters }}</pre>{% endif %}
<h2>What the backend says ({{ backend }}, {{ where }})</h2>
<pre>{{ server }}</pre>
<p><a href="/">back</a></p>
"""

_AGE = re.compile(r"@@age:([0-9.]+):([0-9]+)@@")
_HEADER_NOTE = "No Cache-Status header (this flask_caching does not send one yet)"


def cache_settings(environ: Mapping[str, str]) -> dict[str, t.Any]:
    """The ``CACHE_*`` variables of *environ*, values read as JSON where they parse
    (``60`` is an int, ``true`` a bool), else kept as text."""
    settings: dict[str, t.Any] = {}
    for name, raw in environ.items():
        if name.startswith("CACHE_"):
            try:
                settings[name] = json.loads(raw)
            except ValueError:
                settings[name] = raw
    return settings


def create_app(environ: Mapping[str, str] = os.environ) -> Flask:
    """The demo app with the cache settings of *environ* over the demo's defaults."""
    app = Flask(__name__)
    app.config.update(
        CACHE_TYPE="SimpleCache", CACHE_DEFAULT_TIMEOUT=30, CACHE_STATUS_HEADER=True
    )
    app.config.update(cache_settings(environ))
    kind = str(app.config["CACHE_TYPE"]).rsplit(".", 1)[-1].lower()
    if kind in ("filesystemcache", "filesystem") and not app.config.get("CACHE_DIR"):
        app.config["CACHE_DIR"] = tempfile.mkdtemp(prefix="flask_caching_demo-")
        atexit.register(shutil.rmtree, app.config["CACHE_DIR"], True)
    cache.init_app(app)
    app.register_blueprint(demo)
    app.after_request(show_status)
    return app


def clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch))


@cache.memoize(timeout=MEMO_TTL)
def slow_square(n: int) -> tuple[int, float]:
    """Pretend to be expensive; returns the square and when it was computed."""
    g.memo_ran = True
    time.sleep(WORK)
    return n * n, time.time()


def fragment_stamp() -> float:
    """The fragment's birth time: called only while the fragment renders (a miss)."""
    if "fragment_born" not in g:
        g.fragment_born = time.time()
    born: float = g.fragment_born
    return born


@demo.route("/")
@cache.cached(timeout=VIEW_TTL)
def index() -> str:
    g.view_ran = True
    square, computed = slow_square(12)
    return render_template_string(
        PAGE,
        rendered=time.time(),
        n=12,
        square=square,
        computed=computed,
        memo_status="miss" if g.get("memo_ran") else "hit",
        fragment_status=lambda: "miss" if "fragment_born" in g else "hit",
        stamp=fragment_stamp,
        clock=clock,
        backend=type(cache.cache).__name__,
        view_ttl=VIEW_TTL,
        memo_ttl=MEMO_TTL,
        fragment_ttl=FRAGMENT_TTL,
    )


@demo.route("/stats")
def stats() -> str:
    counters_of = getattr(cache, "stats", None)
    counters: t.Any = (
        counters_of()
        if callable(counters_of)
        else "not available: this flask_caching has no cache.stats() yet"
    )
    try:
        server: t.Any = backend_stats(cache.cache)
    except StatsUnavailable as exc:
        server = f"unavailable: {exc}"
    rows = counter_rows(counters)
    return render_template_string(
        STATS,
        rows=rows,
        columns=list(rows[0][1]) if rows else [],
        counters=_pretty(counters),
        server=_pretty(server),
        backend=type(cache.cache).__name__,
        where=location(cache.cache),
    )


def counter_rows(counters: t.Any) -> list[tuple[str, Mapping[str, t.Any]]]:
    """``cache.stats()`` as table rows, the total first; [] for any other shape."""
    if not isinstance(counters, Mapping) or "total" not in counters:
        return []
    functions = counters.get("functions") or {}
    return [("total", counters["total"]), *sorted(functions.items())]


@demo.route("/clear")
def clear() -> str:
    cache.clear()
    return 'cleared; <a href="/">back</a>'


def show_status(response: Response) -> Response:
    """Fill in a demo page's placeholders for this request: whether the view was a
    hit (the Cache-Status header says so when sent; else the demo knows whether the
    view ran) and each cache's age and remaining lifetime, counted from now."""
    if response.mimetype != "text/html" or response.is_streamed:
        return response
    body = response.get_data(as_text=True)
    if "@@banner@@" not in body:
        return response
    header = response.headers.get("Cache-Status")
    if header:
        hit = "hit" in [part.strip() for part in header.split(";")[1:]]
    else:
        hit = not g.get("view_ran")
    now = time.time()
    body = _AGE.sub(lambda m: _lifetime(now - float(m[1]), int(m[2])), body)
    banner = f"Cache-Status: {header}" if header else _HEADER_NOTE
    if hit:
        banner = f"This page is the stored copy (a hit). {banner}"
    else:
        banner = f"This page was rendered now (a miss). {banner}"
    body = body.replace("@@banner@@", banner)
    body = body.replace("@@view-status@@", "hit" if hit else "miss")
    body = body.replace("@@inner@@", " (when the page was rendered)" if hit else "")
    response.set_data(body)
    return response


def _lifetime(age: float, ttl: int) -> str:
    left = ttl - age
    state = f"{left:.0f} s left" if left > 0 else "expired"
    return f"age {age:.0f} s of {ttl} s, {state}"


def _pretty(value: t.Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, default=str)


app = create_app()

if __name__ == "__main__":
    port = int(os.environ.get("PORT", "5000"))
    where = location(app.extensions["cache"][cache])
    print(f" * flask_caching demo on http://127.0.0.1:{port}/ (cache: {where})")
    app.run(host="127.0.0.1", port=port)
