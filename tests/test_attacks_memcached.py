"""Issue 14 on real memcached servers: forged items are misses that never run code
(item 1), and a forged spread value cannot make a read fetch without bound (11c).

Items are planted with a plain socket (ASCII protocol) or, on the SASL server, with
a pylibmc client of the test's own, so no code of ours writes them. The backend-level
tests of forged items are in ``test_backend_memcached_items.py``; these go through a
``@cached`` view.
"""

from __future__ import annotations

import importlib.util
import pickle
import socket
import struct
import threading
import time
import typing as t
import uuid
import zlib
from pathlib import Path

import pytest
from flask import Flask
from sasl_support import sasl_client
from servers import HOST, MEMCACHED_CLIENTS, MemcachedServer

from flask_caching import Cache

try:  # before pylibmc is first imported (SASL needs its plugin path)
    from flask_caching.backends._memcached_drivers import ensure_sasl_plugin_path
except ImportError:  # older trees set it up elsewhere
    pass
else:
    ensure_sasl_plugin_path()

pytestmark = pytest.mark.memcached

#: the most a read of a forged item may take
BOUND = 2.0


CLIENTS = MEMCACHED_CLIENTS


def raw_command(port: int, command: bytes) -> bytes:
    """Send one ASCII-protocol command; return the reply up to its last line."""
    with socket.create_connection((HOST, port), timeout=5) as sock:
        sock.sendall(command)
        reply = b""
        while not reply.endswith((b"END\r\n", b"STORED\r\n")):
            chunk = sock.recv(65536)
            assert chunk, f"memcached closed the connection after {reply!r}"
            reply += chunk
        return reply


def raw_set(port: int, key: str, flags: int, data: bytes) -> None:
    head = f"set {key} {flags} 0 {len(data)}\r\n".encode()
    assert raw_command(port, head + data + b"\r\n") == b"STORED\r\n"


def raw_get(port: int, key: str) -> bytes:
    return raw_command(port, f"get {key}\r\n".encode())


def marker_pickle(marker: Path) -> bytes:
    """A pickle that creates *marker* when it is unpickled (a harmless payload in
    place of ``os.system``)."""

    class Payload:
        def __reduce__(self) -> tuple[t.Any, tuple[str]]:
            import os

            return os.mkdir, (str(marker),)

    return pickle.dumps(Payload())


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("serializer", ["json", "pickle-signed"])
def test_item1_a_forged_pickled_item_under_a_views_key_never_runs(
    memcached_server: MemcachedServer, tmp_path: Path, client: str, serializer: str
) -> None:
    prefix = f"atk-{uuid.uuid4().hex[:8]}:"
    app = Flask(__name__)
    app.secret_key = "attack-secret"
    cache = Cache(
        app,
        config={
            "CACHE_TYPE": "MemcachedCache",
            "CACHE_MEMCACHED_SERVERS": [memcached_server.address],
            "CACHE_OPTIONS": {"client": client},
            "CACHE_SERIALIZER": serializer,
            "CACHE_KEY_PREFIX": prefix,
        },
    )
    runs: list[int] = []

    @app.route("/page")
    @cache.cached(timeout=60)
    def page() -> str:
        runs.append(1)
        return f"page #{len(runs)}"

    web = app.test_client()
    assert web.get("/page").get_data(as_text=True) == "page #1"
    with app.test_request_context("/page"):
        mkey = prefix + page.make_cache_key()
    assert raw_get(memcached_server.port, mkey) != b"END\r\n"  # the view's item

    marker = tmp_path / "payload-ran"
    raw_set(memcached_server.port, mkey, 1, marker_pickle(marker))  # flags: pickled
    assert web.get("/page").get_data(as_text=True) == "page #2"  # a miss
    assert not marker.exists()
    assert web.get("/page").get_data(as_text=True) == "page #2"  # cached again
    assert not marker.exists()


#: the spread header of the tree before issue 14 (magic, write id, chunk count,
#: length, digest): a forged one asked a read for millions of chunks
OLD_SPREAD_MAGIC = b"\x00\xfffc-spread\x01"
OLD_SPREAD_HEADER = struct.Struct(">16sIQ16s")


def _gets(stats_client: t.Any) -> int:
    """``cmd_get`` of the server: keys looked up so far, by anyone."""
    ((_, stats),) = stats_client.get_stats()
    return int(stats["cmd_get"])


def test_item11c_a_forged_spread_value_reads_at_most_maxchunk_keys(
    memcached_sasl_server: MemcachedServer,
) -> None:
    pylibmc = pytest.importorskip("pylibmc")
    server = memcached_sasl_server
    prefix = f"atk-{uuid.uuid4().hex[:8]}:"
    app = Flask(__name__)
    cache = Cache(
        app,
        config={
            "CACHE_TYPE": "SpreadSASLMemcachedCache",
            "CACHE_MEMCACHED_SERVERS": [server.address],
            "CACHE_MEMCACHED_USERNAME": server.username,
            "CACHE_MEMCACHED_PASSWORD": server.password,
            "CACHE_KEY_PREFIX": prefix,
        },
    )
    maxchunk = int(getattr(cache.cache, "maxchunk", 32))
    forger = sasl_client(server, pylibmc.Client)
    try:
        header = OLD_SPREAD_HEADER.pack(b"w" * 16, 5_000_000, 2**40, b"d" * 16)
        forger.set(prefix + "big", OLD_SPREAD_MAGIC + header)
        # and chunks past maxchunk in released Flask-Caching's format
        for n in range(maxchunk + 8):
            forger.set(f"{prefix}big.{n}", b"\x80\x02" + b"x" * 100)
        before = _gets(forger)
        result: list[t.Any] = []

        def read() -> None:
            try:
                result.append(cache.get("big"))
            except Exception as exc:  # kept for the assertion, not lost in the thread
                result.append(exc)

        reader = threading.Thread(target=read, daemon=True)
        started = time.monotonic()
        reader.start()
        reader.join(BOUND * 3)
        took = time.monotonic() - started
        assert not reader.is_alive(), f"the read still runs after {took:.1f}s"
        assert took < BOUND and result == [None]
        assert _gets(forger) - before <= maxchunk + 1  # chunks and the plain item
    finally:
        forger.disconnect_all()


@pytest.mark.parametrize("serializer", ["json", "pickle-signed"])
def test_item1_a_zlib_bomb_is_never_inflated_under_our_serializers(
    memcached_server: MemcachedServer, serializer: str
) -> None:
    """pylibmc inflates an item flagged zlib in C before any hook of ours, so under
    our serializers a client we choose ourselves is pymemcache (when installed),
    which hands the raw item to our codec: the forged bomb is a miss, uninflated."""
    if importlib.util.find_spec("pymemcache") is None:  # pragma: no cover
        pytest.fail("pymemcache is a test dependency (requirements/dev.txt)")
    app = Flask(__name__)
    app.config.update(
        CACHE_TYPE="MemcachedCache",
        CACHE_MEMCACHED_SERVERS=[memcached_server.address],
        CACHE_KEY_PREFIX=f"z-{uuid.uuid4().hex[:8]}:",
        CACHE_SERIALIZER=serializer,
        SECRET_KEY="s3cret",
    )
    cache = Cache(app)
    with app.app_context():
        backend = cache.cache
        assert backend.client_name == "pymemcache"
        bomb = zlib.compress(b"\0" * (80 * 1024 * 1024), 9)
        raw_set(memcached_server.port, backend.key_prefix + "bomb", 8, bomb)
        assert cache.get("bomb") is None
        assert cache.set("fine", {"a": 1}) and cache.get("fine") == {"a": 1}
