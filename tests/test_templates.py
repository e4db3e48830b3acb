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
        # released 2.5.1's default name: the template's file path and the line
        page = str(tmp_path / "page.html")
        assert cache.get(make_template_fragment_key(f"{page}1")) == "one 1"
        assert cache.get(f"_template_fragment_cache_{page}2") == "two 2"
        assert cache.delete(make_template_fragment_key(f"{page}2"))
        assert render_template("page.html", n=calls) == "one 1\ntwo 4"


def test_inline_templates_on_one_line_share_the_default_key(make_app: MakeApp) -> None:
    """render_template_string templates have no file: the default name is
    ``None<line>``, as in released 2.5.1, so two inline blocks on the same line
    share one entry. (Our old names carried a digest of the block to tell them
    apart; that is gone on purpose, so keys stay released's. Give such blocks a
    key of their own: ``{% cache 60, "name" %}``.)"""
    app, cache = make_app()
    calls = Calls()
    first = "{% cache 60 %}first {{ n() }}{% endcache %}"
    second = "{% cache 60 %}second {{ n() }}{% endcache %}"
    third = "\n{% cache 60 %}third {{ n() }}{% endcache %}"
    assert render(app, first, n=calls) == "first 1"
    assert render(app, second, n=calls) == "first 1"  # None1, filled by first
    assert render(app, third, n=calls) == "\nthird 2"  # line 2: None2
    with app.app_context():
        assert cache.get("_template_fragment_cache_None1") == "first 1"
        assert cache.get("_template_fragment_cache_None2") == "third 2"


def test_fractional_and_negative_timeouts(
    make_app: MakeApp, backend: Backend, clock: Clock
) -> None:
    app, cache = make_app()
    calls = Calls()
    half = '{% cache 0.5, "half" %}{{ n() }}{% endcache %}'
    expired = '{% cache -1, "expired" %}{{ n() }}{% endcache %}'
    assert render(app, half, n=calls) == "1"
    assert render(app, half, n=calls) == "1"  # rounded up to a second, not 0
    assert render(app, expired, n=calls) == "2"
    assert render(app, expired, n=calls) == "3"
    if backend.is_redis:  # the server expires entries: a patched clock cannot
        assert backend.ttl(make_template_fragment_key("half")) in (0, 1)
        assert backend.ttl(make_template_fragment_key("expired")) == -2
        return
    clock.advance(2)
    assert render(app, half, n=calls) == "4"


def test_timeout(make_app: MakeApp, backend: Backend, clock: Clock) -> None:
    app, cache = make_app()
    calls = Calls()
    source = '{% cache 60*5, "t" %}{{ n() }}{% endcache %}'
    assert render(app, source, n=calls) == "1"
    if backend.is_redis:  # the server expires the entry: a patched clock cannot
        assert 290 < backend.ttl(make_template_fragment_key("t")) <= 300
        return
    clock.advance(299)
    assert render(app, source, n=calls) == "1"
    clock.advance(2)
    assert render(app, source, n=calls) == "2"


def test_none_means_the_backend_default_timeout(
    make_app: MakeApp, backend: Backend, clock: Clock
) -> None:
    """``{% cache None %}`` stores with the backend's default timeout, as released
    2.5.1 does (``set(key, value, None)``); our old "never expires" is gone."""
    app, cache = make_app(CACHE_DEFAULT_TIMEOUT=10)
    calls = Calls()
    source = '{% cache None, "default" %}{{ n() }}{% endcache %}'
    assert render(app, source, n=calls) == "1"
    assert render(app, source, n=calls) == "1"
    if backend.is_redis:  # the server expires the entry: a patched clock cannot
        assert 0 < backend.ttl(make_template_fragment_key("default")) <= 10
        return
    clock.advance(9)
    assert render(app, source, n=calls) == "1"
    clock.advance(2)
    assert render(app, source, n=calls) == "2"


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


def test_the_stored_value_is_the_rendered_markup(make_app: MakeApp) -> None:
    """No envelope: the fragment key holds the rendered block, as in released."""
    app, cache = make_app()
    render(app, '{% cache 60, "m", "x" %}<i>{{ v }}</i>{% endcache %}', v="<b>")
    with app.app_context():
        stored = cache.get("_template_fragment_cache_m_x")
    assert stored == "<i>&lt;b&gt;</i>"


def test_a_fragment_set_by_other_code_is_served(make_app: MakeApp) -> None:
    app, cache = make_app()
    calls = Calls()
    with app.app_context():
        cache.set(make_template_fragment_key("pre"), "from elsewhere")
    assert render(app, '{% cache 60, "pre" %}{{ n() }}{% endcache %}', n=calls) == (
        "from elsewhere"
    )
    assert calls.count == 0


def test_the_jinja_env_holds_the_cache(make_app: MakeApp) -> None:
    """``app.jinja_env._template_fragment_cache`` is the Cache (released's name)."""
    app, cache = make_app()
    assert app.jinja_env._template_fragment_cache is cache  # type: ignore[attr-defined]
    assert not hasattr(app.jinja_env, "_flask_caching_runtime")


def test_the_tag_goes_through_the_caches_public_methods(make_app: MakeApp) -> None:
    """A Cache subclass (or a wrapper) sees the tag's reads and writes, as in
    released: one ``get`` per render, one ``set`` after a miss."""
    app, cache = make_app()
    seen: list[tuple[str, tuple[t.Any, ...]]] = []
    for name in ("get", "get_many", "has", "set", "set_many", "add", "delete"):
        original = getattr(cache, name)

        def counting(
            *args: t.Any, _name: str = name, _orig: t.Any = original, **kw: t.Any
        ) -> t.Any:
            seen.append((_name, args[:1]))
            return _orig(*args, **kw)

        setattr(cache, name, counting)
    key = make_template_fragment_key("pub")
    source = '{% cache 60, "pub" %}x{% endcache %}'
    assert render(app, source) == "x"
    assert seen == [("get", (key,)), ("set", (key,))]
    seen.clear()
    assert render(app, source) == "x"
    assert seen == [("get", (key,))]
    seen.clear()
    assert render(app, "{% cache 'del', \"pub\" %}y{% endcache %}") == "y"
    assert seen == [("delete", (key,))]
