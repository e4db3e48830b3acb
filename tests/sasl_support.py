"""Raw SASL pylibmc clients for tests that must write items as other programs do.

libmemcached (bundled in the pylibmc wheels) sometimes fails to start a SASL login
depending on what earlier C calls left on the stack (see the SASL driver in
``flask_caching.backends._pylibmc_driver``); our driver retries that, and a test's
own raw client must too, or earlier tests decide whether it can log in.
"""

from __future__ import annotations

import time
import typing as t

from servers import MemcachedServer

from flask_caching.backends._memcached_drivers import ensure_sasl_plugin_path

ensure_sasl_plugin_path()  # before pylibmc is first imported

import pylibmc  # noqa: E402

from flask_caching.backends._pylibmc_driver import scrub_c_stack  # noqa: E402


class Retrying:
    """A raw SASL pylibmc client that survives libmemcached's SASL bug the way our
    driver does (:func:`_retry_unstarted_auth`): an operation failing with error 40
    (authentication never started) is run once more on a fresh connection after
    the C stack is scrubbed. Without it, whatever earlier tests left on the stack
    decides whether this test's own raw client can log in."""

    def __init__(self, client: t.Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> t.Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: t.Any, **kwargs: t.Any) -> t.Any:
            try:
                return attr(*args, **kwargs)
            except pylibmc.Error as exc:
                # error 40: authentication never started; 47: the failed login
                # left the server marked failed until its retry timeout
                if "error 40" not in str(exc) and "error 47" not in str(exc):
                    raise
            self._client.disconnect_all()
            scrub_c_stack()
            for _ in range(30):  # a failed server is retried after retry_timeout
                try:
                    return attr(*args, **kwargs)
                except pylibmc.Error as exc:
                    if "error 47" not in str(exc):
                        raise
                time.sleep(0.1)
            return attr(*args, **kwargs)

        return call


def sasl_client(server: MemcachedServer, cls: type[t.Any] = pylibmc.Client) -> t.Any:
    """A *cls* (a pylibmc client class) logged in to *server*, retrying as above."""
    client = cls(
        [server.address],
        binary=True,
        username=server.username,
        password=server.password,
    )
    # a server marked failed is retried after 1 s, not libmemcached's 2 s
    client.behaviors["retry_timeout"] = 1
    return Retrying(client)
