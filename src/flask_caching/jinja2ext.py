"""The ``{% cache %}`` template tag.

::

    {% cache 300 %}...{% endcache %}                    key: template file + line
    {% cache 300, "sidebar", user.id %}...{% endcache %} key: make_template_fragment_key
    {% cache None, "key" %}...{% endcache %}            the backend's default timeout
    {% cache 'del', "key" %}...{% endcache %}           delete, then render fresh

Keys and the stored value (the rendered ``Markup``) are released Flask-Caching's.
The Jinja environment's ``_template_fragment_cache`` attribute holds the ``Cache``,
as there. A backend failure renders the block uncached; it never breaks the page.
"""

from __future__ import annotations

import logging
import math
import typing as t
from collections.abc import Callable

from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.parser import Parser
from markupsafe import Markup

from .entry import Layout
from .flow import Outcome, drive_sync
from .keys import make_template_fragment_key
from .lookup import begin
from .stats import CallNote, count_flow, log_hit
from .utils import normalize_timeout

logger = logging.getLogger("flask_caching")

#: attribute of the Jinja environment holding the ``Cache`` (as in released)
JINJA_CACHE_ATTR_NAME = "_template_fragment_cache"
ENV_ATTR = JINJA_CACHE_ATTR_NAME


class CacheExtension(Extension):
    """Adds ``{% cache timeout[, key, ...] %}...{% endcache %}``."""

    tags = {"cache"}

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        args: list[nodes.Expr] = [parser.parse_expression()]
        while parser.stream.skip_if("comma"):
            args.append(parser.parse_expression())
        timeout = args[0]
        keys = nodes.List(args[1:])
        body = parser.parse_statements(("name:endcache",), drop_needle=True)
        # released Flask-Caching's default name: the template's file and the line
        # (``None<line>`` for an inline template)
        default_name = nodes.Const(f"{parser.filename}{lineno}")
        call = self.call_method("_render", [timeout, keys, default_name])
        return nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _render(
        self,
        timeout: t.Any,
        keys: list[t.Any],
        default_name: str,
        caller: Callable[[], str],
    ) -> str:
        name = str(keys[0]) if keys else default_name
        if keys:
            key = make_template_fragment_key(name, vary_on=keys[1:])
        else:
            key = make_template_fragment_key(default_name)
        cache = getattr(self.environment, ENV_ATTR, None)
        if cache is None:
            return caller()
        rt = cache._runtime()
        if timeout == "del":
            rt.delete(key)
            return caller()
        seconds = None if timeout is None else _seconds(timeout)
        if seconds is not None and seconds < 0:
            return caller()  # already expired: nothing to keep

        def compute() -> Outcome:
            body = caller()
            return Outcome(body, body)

        note = CallNote()
        value, flow = begin(rt, Layout(key), timeout=seconds, note=note)
        counters = rt.stats.function("fragment:" + name)
        if flow is None:
            counters.hits += 1
            if logger.isEnabledFor(logging.DEBUG):
                log_hit("fragment " + name, key)
        else:
            hit, value = drive_sync(flow, compute)
            count_flow(counters, hit, note, "fragment " + name, key)
        # the stored text was rendered (and escaped) by the template already
        return Markup(value) if isinstance(value, str) else str(value)


def _seconds(timeout: t.Any) -> int:
    """A tag's timeout in whole seconds (a timedelta or a number; fractions round up)."""
    normal = normalize_timeout(timeout)
    return math.ceil(float(t.cast(t.Any, normal)))
