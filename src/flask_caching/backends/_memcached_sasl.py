"""``SASLMemcachedCache``: :class:`~.memcache.MemcachedCache` on pylibmc with the
binary protocol and SASL credentials; import it from
:mod:`flask_caching.backends.memcache`. Its spreading subclass is in
:mod:`._memcached_spread`.
"""

from __future__ import annotations

import typing as t
from collections.abc import Sequence

from ..exceptions import ConfigurationError
from ._memcached import Driver
from ._memcached_drivers import build_driver_factory
from ._memcached_keys import Prefix
from .base import Timeout
from .memcache import MemcachedCache

__all__ = ["SASLMemcachedCache"]


class SASLMemcachedCache(MemcachedCache):
    """memcached with SASL authentication (pylibmc, binary protocol).

    CACHE_OPTIONS other than :class:`MemcachedCache`'s own keyword arguments are
    pylibmc behaviours. The pylibmc wheel bundles a libsasl2 that cannot find the
    system's SASL plugins; unless ``SASL_PATH`` is set, importing the backend's
    client points it at them (see :func:`._pylibmc_driver.ensure_sasl_plugin_path`).
    Wrong credentials make every operation raise a BackendError that says so.

    ``clear()`` flushes the **whole server**, whatever the prefix, as for
    :class:`MemcachedCache`.
    """

    def __init__(
        self,
        servers: Sequence[str] | None = None,
        default_timeout: Timeout = 300,
        key_prefix: Prefix | None = None,
        username: str | None = None,
        password: str | None = None,
        pool_size: int | None = None,
        pool_blocking: bool = True,
        ignore_delete_many_errors: bool = False,
        **options: t.Any,
    ) -> None:
        if options.get("client", "pylibmc") != "pylibmc":
            raise ConfigurationError(
                f"{type(self).__name__} needs pylibmc; remove CACHE_OPTIONS client"
            )
        options.pop("client", None)
        self._credentials = (username, password)
        super().__init__(
            servers,
            default_timeout,
            key_prefix,
            pool_size,
            pool_blocking,
            ignore_delete_many_errors,
            **options,
        )

    def _make_driver(
        self,
        servers: list[str],
        client: str | None,
        connect_timeout: float,
        timeout: float,
        options: dict[str, t.Any],
    ) -> tuple[str, Driver]:
        username, password = self._credentials
        return build_driver_factory(
            servers,
            "pylibmc",
            connect_timeout=connect_timeout,
            timeout=timeout,
            binary=True,
            username=username,
            password=password,
            options=options,
        )

    factory_settings: t.ClassVar[dict[str, str]] = {
        **MemcachedCache.factory_settings,
        "username": "CACHE_MEMCACHED_USERNAME",
        "password": "CACHE_MEMCACHED_PASSWORD",
    }
