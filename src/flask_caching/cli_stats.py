"""What a backend's server reports about itself, for ``flask cache stats``.

Redis: a few fields of ``INFO`` and its keyspace lines. memcached: a few fields of
``stats`` from each server, asked over the text protocol on a socket of our own
(the client libraries each expose stats differently, or not at all). FileSystemCache:
its entry files and their bytes. SimpleCache: its entries (in this process).
Everything returned is plain data (str, int, float, dicts) so it prints as text or
JSON alike.
"""

from __future__ import annotations

import re
import socket
import time
import typing as t

from .cli_backends import (
    entry_files,
    kind,
    memcached_servers,
    prefix_of,
    redis_db,
    simple_items,
)

__all__ = ["StatsUnavailable", "backend_stats", "memcached_server_stats"]

REDIS_FIELDS = (
    "redis_version",
    "uptime_in_seconds",
    "connected_clients",
    "used_memory_human",
    "maxmemory_human",
    "maxmemory_policy",
    "keyspace_hits",
    "keyspace_misses",
    "evicted_keys",
    "expired_keys",
)
MEMCACHED_FIELDS = (
    "version",
    "uptime",
    "curr_connections",
    "curr_items",
    "bytes",
    "limit_maxbytes",
    "get_hits",
    "get_misses",
    "evictions",
)
#: seconds to connect to / hear from a memcached server when asking its stats
MEMCACHED_TIMEOUT = 1.0
_KEYSPACE = re.compile(r"db\d+")


class StatsUnavailable(Exception):
    """No server answered the stats request; the message says why."""


def backend_stats(backend: t.Any) -> dict[str, t.Any]:
    """What the backend says about itself, as sections of plain values."""
    which = kind(backend)
    if which == "redis":
        return _redis_stats(backend)
    if which == "memcached":
        return _memcached_stats(backend)
    if which == "filesystem":
        return _filesystem_stats(backend)
    if which == "simple":
        return _simple_stats(backend)
    return {"note": f"{type(backend).__name__} reports no statistics"}


def _hit_ratio(hits: t.Any, misses: t.Any) -> str | None:
    try:
        total = int(hits) + int(misses)
    except (TypeError, ValueError):
        return None
    return f"{int(hits) / total:.1%}" if total else None


def _redis_stats(backend: t.Any) -> dict[str, t.Any]:
    info = backend._read_client.info()
    server = {name: info[name] for name in REDIS_FIELDS if name in info}
    ratio = _hit_ratio(info.get("keyspace_hits"), info.get("keyspace_misses"))
    if ratio is not None:
        server["hit_ratio"] = ratio
    keyspace = {
        name: dict(value) if isinstance(value, dict) else value
        for name, value in info.items()
        if _KEYSPACE.fullmatch(str(name))
    }
    return {
        "server": server,
        "keyspace": keyspace or {"(empty)": "no keys in any database"},
        "this cache": {"db": redis_db(backend), "key prefix": prefix_of(backend)},
    }


def _memcached_stats(backend: t.Any) -> dict[str, t.Any]:
    servers = memcached_servers(backend)
    if not servers:
        raise StatsUnavailable("the memcached backend does not say its servers")
    report: dict[str, t.Any] = {}
    errors = 0
    for server in servers:
        try:
            raw = memcached_server_stats(server)
        except (OSError, ValueError) as exc:
            errors += 1
            report[server] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        picked: dict[str, t.Any] = {k: raw[k] for k in MEMCACHED_FIELDS if k in raw}
        ratio = _hit_ratio(raw.get("get_hits"), raw.get("get_misses"))
        if ratio is not None:
            picked["hit_ratio"] = ratio
        report[server] = picked
    if errors == len(servers):
        raise StatsUnavailable(
            "; ".join(f"{name}: {value['error']}" for name, value in report.items())
        )
    return {"servers": report}


def _connect(server: str) -> socket.socket:
    """A socket to a memcached ``host:port``, ``[v6]:port`` or unix socket path."""
    if server.startswith(("/", "unix:")):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(MEMCACHED_TIMEOUT)
        try:
            sock.connect(server.removeprefix("unix:"))
        except OSError:
            sock.close()
            raise
        return sock
    host, _sep, port = server.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"not a host:port address: {server!r}")
    return socket.create_connection(
        (host.strip("[]"), int(port)), timeout=MEMCACHED_TIMEOUT
    )


def memcached_server_stats(server: str) -> dict[str, t.Any]:
    """The ``stats`` of one memcached server: ``STAT name value`` lines until
    ``END``; numbers as ints."""
    with _connect(server) as sock:
        sock.sendall(b"stats\r\n")
        data = b""
        deadline = time.monotonic() + MEMCACHED_TIMEOUT
        while not data.endswith(b"END\r\n"):
            if data.startswith((b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")):
                line = data.split(b"\r\n", 1)[0].decode("utf-8", "replace")
                raise ValueError(f"the server refused `stats`: {line}")
            if time.monotonic() > deadline:
                raise TimeoutError("no complete `stats` reply")
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            data += chunk
    stats: dict[str, t.Any] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == "STAT":
            value = parts[2]
            stats[parts[1]] = int(value) if value.isdigit() else value
    return stats


def _filesystem_stats(backend: t.Any) -> dict[str, t.Any]:
    entries = entry_files(backend)
    size = 0
    for entry in entries:
        try:
            size += entry.stat(follow_symlinks=False).st_size
        except OSError:  # removed meanwhile
            continue
    return {
        "directory": {
            "path": getattr(backend, "_path", "?"),
            "entries": len(entries),
            "bytes": size,
            "threshold": getattr(backend, "_threshold", "?"),
        }
    }


def _simple_stats(backend: t.Any) -> dict[str, t.Any]:
    items = simple_items(backend)
    now = time.time()
    live = sum(1 for _key, (expires, _data) in items if not expires or expires > now)
    return {
        "memory": {
            "entries": len(items),
            "live entries": live,
            "threshold": getattr(backend, "_threshold", "?"),
            "note": "this process's entries only (the CLI's own process)",
        }
    }
