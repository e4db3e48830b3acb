"""List one memcached server's keys under a prefix (``lru_crawler metadump``).

This is what lets ``clear()`` delete only its own prefix's keys instead of flushing
the whole server.
"""

from __future__ import annotations

import random
import re
import socket
import time
from urllib.parse import unquote_to_bytes

from ..exceptions import BackendError

__all__ = ["BUSY_WAIT", "KeyListingUnsupported", "list_keys"]

# a key the text protocol can name: what clear() may delete from a metadump listing
_SENDABLE_KEY = re.compile(rb"[!-~]{1,250}\Z")

#: seconds ``list_keys`` keeps retrying while the server's LRU crawler is busy (one
#: metadump at a time per server: another client's, or another ``clear()``)
BUSY_WAIT = 5.0


class KeyListingUnsupported(Exception):
    """The server cannot list its keys: memcached older than 1.4.31, started with
    ``-o no_lru_crawler`` or ``-X``, or not speaking the ASCII protocol."""


def _connect(server: str, connect_timeout: float, timeout: float) -> socket.socket:
    if server.startswith(("/", "unix:")):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(connect_timeout)
            sock.connect(server.removeprefix("unix:"))
        except BaseException:
            sock.close()
            raise
    else:
        host, _, port = server.rpartition(":")
        sock = socket.create_connection(
            (host.strip("[]"), int(port)), timeout=connect_timeout
        )
    sock.settimeout(timeout)
    return sock


def _metadump(sock: socket.socket, prefix: bytes) -> list[str] | None:
    """Keys starting with *prefix* from one ``lru_crawler metadump all``; ``None``
    if the crawler is busy. Lines look like ``key=<url-encoded> exp=... size=...``."""
    sock.sendall(b"lru_crawler metadump all\r\n")
    keys: list[str] = []
    rest = b""
    first = True
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("memcached closed the connection during metadump")
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            if line.startswith(b"key="):
                end = line.find(b" ")
                quoted = line[4:] if end < 0 else line[4:end]
                key = unquote_to_bytes(quoted) if b"%" in quoted else quoted
                # only keys a text-protocol client can name (and so delete)
                if key.startswith(prefix) and _SENDABLE_KEY.match(key):
                    keys.append(key.decode("ascii"))
            elif line == b"END\r":
                return keys
            elif first:
                reply = line.rstrip(b"\r").decode("ascii", "replace")
                if reply.startswith("BUSY"):
                    return None
                if reply.startswith("NOTSTARTED"):  # no items at all
                    return keys
                if reply.startswith(("ERROR", "CLIENT_ERROR")):
                    raise KeyListingUnsupported(reply)
                raise BackendError(f"memcached lru_crawler metadump: {reply}")
            first = False


def list_keys(
    server: str,
    prefix: str,
    *,
    connect_timeout: float,
    timeout: float,
    busy_wait: float | None = None,
) -> list[str]:
    """The keys on *server* that start with *prefix*, from ``lru_crawler metadump``.

    One short-lived connection per attempt; *connect_timeout* bounds the connect and
    *timeout* every read. While the crawler is busy it retries for *busy_wait*
    seconds (default :data:`BUSY_WAIT`), then raises BackendError. Raises
    :class:`KeyListingUnsupported` if the server cannot list keys, and ``OSError``
    if it cannot be reached or a read times out.
    """
    if busy_wait is None:
        busy_wait = BUSY_WAIT
    deadline = time.monotonic() + busy_wait
    wanted = prefix.encode("ascii")
    while True:
        with _connect(server, connect_timeout, timeout) as sock:
            keys = _metadump(sock, wanted)
        if keys is not None:
            return keys
        if time.monotonic() >= deadline:
            raise BackendError(
                f"memcached {server}: its LRU crawler stayed busy for {busy_wait} s"
                " (another metadump running); clear() deleted nothing there"
            )
        time.sleep(random.uniform(0.01, 0.05))
