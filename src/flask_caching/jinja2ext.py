"""The ``{% cache %}`` template tag.

::

    {% cache 300 %}...{% endcache %}                    key: template name + line
    {% cache 300, "sidebar", user.id %}...{% endcache %} key: make_template_fragment_key
    {% cache None, "key" %}...{% endcache %}            never expires
    {% cache 'del', "key" %}...{% endcache %}           delete, then render fresh

A backend failure renders the block uncached; it never breaks the page.
"""

from __future__ import annotations

import hashlib
import math
import typing as t
from collections.abc import Callable

from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.parser import Parser
from markupsafe import Markup

from .flow import Outcome, drive_sync
from .keys import make_template_fragment_key
from .lookup import begin
from .runtime import Runtime

#: attribute of the Jinja environment holding the function that finds the Runtime
ENV_ATTR = "_flask_caching_runtime"


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
        name = parser.name
        if name is None:
            # an inline template (render_template_string) has no name, so that
            # "None" + line would be shared by every inline template: tell blocks
            # apart by what they contain
            shape = repr(body).encode("utf-8")
            name = "<string>" + hashlib.sha256(shape).hexdigest()[:16] + ":"
        default_name = nodes.Const(f"{name}{lineno}")
        call = self.call_method("_render", [timeout, keys, default_name])
        return nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _render(
        self,
        timeout: t.Any,
        keys: list[t.Any],
        default_name: str,
        caller: Callable[[], str],
    ) -> str:
        if keys:
            key = make_template_fragment_key(str(keys[0]), vary_on=keys[1:])
        else:
            key = make_template_fragment_key(default_name)
        find_runtime: Callable[[], Runtime] | None = getattr(
            self.environment, ENV_ATTR, None
        )
        if find_runtime is None:
            return caller()
        rt = find_runtime()
        if timeout == "del":
            rt.delete(key)
            return caller()
        seconds = 0 if timeout is None else math.ceil(float(timeout))
        if seconds < 0:
            return caller()  # already expired: nothing to keep

        def compute() -> Outcome:
            body = caller()
            return Outcome(body, str(body))

        value, flow = begin(rt, key, timeout=seconds)
        if flow is not None:
            _hit, value = drive_sync(flow, compute)
        # the stored text was rendered (and escaped) by the template already
        return Markup(value) if isinstance(value, str) else str(value)
