"""The ``{% cache %}`` template tag, on SimpleCache and a real Redis."""

from __future__ import annotations

import logging
import typing as t
from pathlib import Path

import decorator_support as support
import jinja2
import pytest
from decorator_support import Backend, Calls, Clock, MakeApp
from flask import Flask, render_template, render_template_string

from flask_caching import Cache, make_template_fragment_key

# the shared fixtures, used by name
backend = support.backend
make_app = support.make_app
clock = support.clock


def render(app: Flask, source: str, **context: t.Any) -> str:
    with app.test_request_context():
        return render_template_string(source, **context)


def test_block_is_cached_with_explicit_keys(make_app: MakeApp) -> None:
    app, cache = make_app()
    calls = Calls()
    source = '{% cache 60, "sidebar", user %}[{{ n() }}]{% endcache %}'
    assert render(app, source, n=calls, user="ann") == "[1]"
    assert render(app, source, n=calls, user="ann") == "[1]"
    assert render(app, source, n=calls, user="bob") == "[2]"
    key = make_template_fragment_key("sidebar", vary_on=["ann"])
    with app.app_context():
        assert cache.get(key) is not None
        assert cache.delete(key)
    assert render(app, source, n=calls, user="ann") == "[3]"
    assert render(app, source, n=calls, user="bob") == "[2]"


def test_keys_are_shared_between_templates(make_app: MakeApp) -> None:
    app, cache = make_app()
    calls = Calls()
    first = 'A{% cache 60, "shared" %}{{ n() }}{% endcache %}'
    second = '\n\nB{% cache 60, "shared" %}{{ n() }}{% endcache %}'
    assert render(app, first, n=calls) == "A1"
    assert render(app, second, n=calls) == "\n\nB1"


def test_make_template_fragment_key() -> None:
    assert make_template_fragment_key("a") != make_template_fragment_key("b")
    assert make_template_fragment_key("a", vary_on=["x"]) != (
        make_template_fragment_key("a", vary_on=["y"])
    )
    assert make_template_fragment_key("a", vary_on=["x", 1]) == (
        make_template_fragment_key("a", vary_on=["x", "1"])
    )
    assert make_template_fragment_key("a", vary_on=[]) == make_template_fragment_key(
        "a"
    )


def test_default_key_is_template_path_and_line(
    make_app: MakeApp, tmp_path: Path
) -> None:
    (tmp_path / "page.html").write_text(
        "{% cache 60 %}one {{ n() }}{% endcache %}\n"
        "{% cache 60 %}two {{ n() }}{% endcache %}\n"
    )
    (tmp_path / "other.html").write_text("{% cache 60 %}other {{ n() }}{% endcache %}")
    app, cache = make_app(template_folder=str(tmp_path))
    calls = Calls()
    with app.test_request_context():
        assert render_template("page.html", n=calls) == "one 1\ntwo 2"
        assert render_template("page.html", n=calls) == "one 1\ntwo 2"
        # the same line of another template is another block
        assert render_template("other.html", n=calls) == "other 3"
        assert cache.get(make_template_fragment_key("page.html1")) is not None
        assert cache.delete(make_template_fragment_key("page.html2"))
        assert render_template("page.html", n=calls) == "one 1\ntwo 4"


def test_inline_templates_do_not_share_default_keys(make_app: MakeApp) -> None:
    """render_template_string templates have no name; line 1 of two of them differ."""
    app, cache = make_app()
    calls = Calls()
    first = "{% cache 60 %}first {{ n() }}{% endcache %}"
    second = "{% cache 60 %}second {{ n() }}{% endcache %}"
    assert render(app, first, n=calls) == "first 1"
    assert render(app, second, n=calls) == "second 2"
    assert render(app, first, n=calls) == "first 1"
    assert render(app, second, n=calls) == "second 2"


def test_fractional_and_negative_timeouts(make_app: MakeApp, clock: Clock) -> None:
    app, cache = make_app()
    calls = Calls()
    half = '{% cache 0.5, "half" %}{{ n() }}{% endcache %}'
    expired = '{% cache -1, "expired" %}{{ n() }}{% endcache %}'
    assert render(app, half, n=calls) == "1"
    assert render(app, half, n=calls) == "1"  # rounded up to a second, not 0
    clock.advance(2)
    assert render(app, half, n=calls) == "2"
    assert render(app, expired, n=calls) == "3"
    assert render(app, expired, n=calls) == "4"


def test_timeout(make_app: MakeApp, clock: Clock) -> None:
    app, cache = make_app()
    calls = Calls()
    source = '{% cache 60*5, "t" %}{{ n() }}{% endcache %}'
    assert render(app, source, n=calls) == "1"
    clock.advance(299)
    assert render(app, source, n=calls) == "1"
    clock.advance(2)
    assert render(app, source, n=calls) == "2"


def test_none_means_no_timeout(
    make_app: MakeApp, backend: Backend, clock: Clock
) -> None:
    app, cache = make_app(CACHE_DEFAULT_TIMEOUT=10)
    calls = Calls()
    source = '{% cache None, "forever" %}{{ n() }}{% endcache %}'
    assert render(app, source, n=calls) == "1"
    clock.advance(10_000)
    assert render(app, source, n=calls) == "1"
    if backend.is_redis:
        assert backend.ttl(make_template_fragment_key("forever")) == -1


def test_timeout_reaches_redis(make_app: MakeApp, backend: Backend) -> None:
    app, cache = make_app()
    render(app, '{% cache 33, "k" %}x{% endcache %}')
    with app.app_context():
        assert cache.get(make_template_fragment_key("k")) is not None
    if backend.is_redis:
        assert 25 < backend.ttl(make_template_fragment_key("k")) <= 33


def test_del_deletes_and_renders_fresh(make_app: MakeApp) -> None:
    app, cache = make_app()
    calls = Calls()
    cached = '{% cache 60, "k1" %}{{ n() }}{% endcache %}'
    delete = "{% cache 'del', \"k1\" %}{{ n() }}{% endcache %}"
    assert render(app, cached, n=calls) == "1"
    assert render(app, delete, n=calls) == "2"
    with app.app_context():
        assert cache.get(make_template_fragment_key("k1")) is None
    assert render(app, cached, n=calls) == "3"
    assert render(app, cached, n=calls) == "3"


def test_escaping_is_kept_on_a_hit(make_app: MakeApp) -> None:
    app, cache = make_app()
    source = '{% cache 60, "esc" %}{{ value }}{% endcache %}|{{ value }}'
    first = render(app, source, value="<b>")
    assert first == "&lt;b&gt;|&lt;b&gt;"
    assert render(app, source, value="<b>") == first


def test_without_jinja_extension_the_tag_is_unknown(make_app: MakeApp) -> None:
    app, cache = make_app(with_jinja2_ext=False)
    assert not any(
        type(ext).__name__ == "CacheExtension"
        for ext in app.jinja_env.extensions.values()
    )
    with pytest.raises(jinja2.TemplateSyntaxError, match="cache"):
        render(app, "{% cache 60 %}x{% endcache %}")


def test_backend_errors_render_the_block(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        default_timeout = 300

        def __getattr__(self, name: str) -> t.Any:
            def fail(*args: t.Any, **kwargs: t.Any) -> t.Any:
                raise ConnectionError("backend down")

            return fail

    app = Flask(__name__)
    Cache(app, config={"CACHE_TYPE": lambda *args: Broken()})
    calls = Calls()
    source = '{% cache 60, "k" %}{{ n() }}{% endcache %}'
    delete = "{% cache 'del', \"k\" %}{{ n() }}{% endcache %}"
    with caplog.at_level(logging.WARNING, "flask_caching"):
        assert render(app, source, n=calls) == "1"
        assert render(app, source, n=calls) == "2"
        for expected in ("3", "4", "5", "6"):  # failing, then with the breaker open
            assert render(app, delete, n=calls) == expected
    assert "backend down" in caplog.text
