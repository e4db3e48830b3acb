"""pytest plugin for the oldest-stack run: keep only tests that need no backend server.

``dev.py oldest`` also passes ``-m "not redis and not memcached"``; this catches the
rest: any test using a server fixture from ``tests/conftest.py`` (whatever its marks)
or parametrized with a server backend's name, the uWSGI tests, which need a uWSGI
build that the oldest venv does not carry, and the mypy check of our typing.
"""

from __future__ import annotations

import pytest

SERVER_FIXTURES = frozenset(
    {
        "redis_server",
        "redis_sentinel",
        "redis_sentinel_failover",
        "redis_cluster",
        "throwaway_redis",
        "memcached_server",
        "memcached_sasl_server",
        "throwaway_memcached",
    }
)
NEEDS_UWSGI = ("test_backend_uwsgi.py", "test_signed_keys_uwsgi.py")
#: tests that run a tool the oldest venv does not carry (mypy checks our typing on
#: the newest stack only)
NEEDS_TOOLS = frozenset(
    {"test_decorated_functions_keep_their_signature_for_type_checkers"}
)
#: parameters naming a server backend: such tests reach their server through
#: ``request.getfixturevalue``, invisible in the fixture closure
SERVER_PARAMS = ("redis", "memcached", "sentinel")


def _names_a_server(value: object) -> bool:
    name = getattr(value, "name", value)
    return isinstance(name, str) and name.lower().startswith(SERVER_PARAMS)


def _needs_server(item: pytest.Item) -> bool:
    fixtures = set(getattr(item, "fixturenames", ()))
    callspec = getattr(item, "callspec", None)
    params = callspec.params.values() if callspec is not None else ()
    return (
        bool(fixtures & SERVER_FIXTURES)
        or item.path.name in NEEDS_UWSGI
        or getattr(item, "originalname", item.name) in NEEDS_TOOLS
        or any(_names_a_server(value) for value in params)
    )


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Deselect (not skip: CI counts skips as failures) the tests needing a server."""
    dropped = [item for item in items if _needs_server(item)]
    if dropped:
        items[:] = [item for item in items if not _needs_server(item)]
        config.hook.pytest_deselected(items=dropped)
