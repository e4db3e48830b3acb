"""A small app showing a cached view, a memoized function and a cached template fragment.

Run it with ``python3 dev.py demo`` and open http://127.0.0.1:5000/ ; reload the
pages: the timestamps stay the same until their entries expire. The cache is the
in-memory SimpleCache unless CACHE_TYPE is set in the environment.
"""

from __future__ import annotations

import os
import time

from flask import Flask, render_template_string

from flask_caching import Cache

app = Flask(__name__)
app.config.update(
    CACHE_TYPE=os.environ.get("CACHE_TYPE", "SimpleCache"),
    CACHE_DEFAULT_TIMEOUT=30,
)
cache = Cache(app)

PAGE = """<!doctype html>
<title>flask_caching demo</title>
<h1>flask_caching demo</h1>
<p>This page was rendered at {{ rendered }} (cached view, 10 s).</p>
<p>slow_square(12) = {{ square }}, computed at {{ computed }} (memoized, 20 s).</p>
{% cache 15, "sidebar" %}
<p>This fragment was rendered at {{ now() }} (template fragment, 15 s).</p>
{% endcache %}
<p><a href="/clear">clear the cache</a></p>
"""


@cache.memoize(timeout=20)
def slow_square(n: int) -> tuple[int, str]:
    """Pretend to be expensive: the second call within 20 s is a cache hit."""
    time.sleep(0.5)
    return n * n, time.strftime("%H:%M:%S")


@app.route("/")
@cache.cached(timeout=10)
def index() -> str:
    square, computed = slow_square(12)
    return render_template_string(
        PAGE,
        rendered=time.strftime("%H:%M:%S"),
        square=square,
        computed=computed,
        now=lambda: time.strftime("%H:%M:%S"),
    )


@app.route("/clear")
def clear() -> str:
    cache.clear()
    return 'cleared; <a href="/">back</a>'


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "5000"))
    print(
        f" * flask_caching demo on http://127.0.0.1:{port}/ ({app.config['CACHE_TYPE']})"
    )
    app.run(host="127.0.0.1", port=port)
