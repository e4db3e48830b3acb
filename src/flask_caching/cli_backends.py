"""What each backend can say about itself, for the ``flask cache`` commands.

Where it is (never with a password), what ``clear()`` removes on it, its keys (where
it can list them) and the remaining lifetime of a key (where it stores one). The
backends are read through the attributes cachelib gives them (``_write_client``,
``_read_client`` and ``key_prefix`` on Redis, ``_path`` on FileSystemCache, ``_cache``
on SimpleCache; our memcached backends keep ``_servers``), looked up with ``getattr``
so that a backend without them is described as "unknown" rather than failing.
Server statistics are in :mod:`.cli_stats`.
"""

from __future__ import annotations

import fnmatch
import os
import stat
import struct
import time
import typing as t

import cachelib

__all__ = [
    "Unsupported",
    "clear_scope",
    "entry_files",
    "kind",
    "list_keys",
    "location",
    "prefix_of",
    "remaining_ttl",
    "simple_items",
]

#: cachelib's entry header: the expiry as a native unsigned int (0 = never)
_FS_HEADER = struct.Struct("I")
#: cachelib's suffix of temporary files (ours use it too)
_FS_TEMP_SUFFIX = ".__wz_cache"
_GLOB_SPECIALS = "\\*?[]"
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


class Unsupported(Exception):
    """The backend cannot do what was asked (list keys, tell a TTL); says why."""


def kind(backend: t.Any) -> str:
    """``redis``, ``memcached``, ``filesystem``, ``simple``, ``null`` or ``other``."""
    kinds: list[tuple[str, t.Any]] = [
        ("redis", cachelib.RedisCache),
        ("memcached", cachelib.MemcachedCache),
        ("filesystem", cachelib.FileSystemCache),
        ("simple", cachelib.SimpleCache),
        ("null", cachelib.NullCache),
    ]
    for name, cls in kinds:
        if isinstance(backend, cls):
            return name
    return "other"


def prefix_of(backend: t.Any) -> str:
    """The backend's key prefix now ('' when it has none; it may be a callable)."""
    prefix = getattr(backend, "key_prefix", None) or ""
    if callable(prefix):
        prefix = prefix()
    return prefix if isinstance(prefix, str) else str(prefix)


# -- where it is ---------------------------------------------------------------------


def location(backend: t.Any) -> str:
    """Where the backend keeps its data, e.g. ``redis://127.0.0.1:6379/0``."""
    which = kind(backend)
    if which == "redis":
        where = redis_location(backend)
        prefix = prefix_of(backend)
        return f"{where}, key prefix {prefix!r}" if prefix else where
    if which == "memcached":
        servers = memcached_servers(backend)
        return ", ".join(servers) if servers else "unknown servers"
    if which == "filesystem":
        return f"directory {getattr(backend, '_path', '?')}"
    if which == "simple":
        return "in-process (the memory of the process that runs it)"
    if which == "null":
        return "nowhere (NullCache stores nothing)"
    return "unknown"


def redis_location(backend: t.Any) -> str:
    """``redis://host:port/db`` (no password), a unix socket, Sentinel or Cluster."""
    client = getattr(backend, "_write_client", None)
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None) or {}
    db = kwargs.get("db", 0)
    service = getattr(pool, "service_name", None)
    if service:
        sentinels = getattr(getattr(backend, "_sentinel", None), "sentinels", [])
        via = ", ".join(_address(s) for s in sentinels) or "unknown sentinels"
        return f"sentinel master {service!r} via {via}, db {db}"
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}?db={db}"
    if kwargs.get("host"):
        conn = getattr(pool, "connection_class", None)
        ssl = "ssl" in getattr(conn, "__name__", "").lower()
        scheme = "rediss" if ssl else "redis"
        return f"{scheme}://{kwargs['host']}:{kwargs.get('port', 6379)}/{db}"
    nodes = getattr(getattr(client, "nodes_manager", None), "startup_nodes", None)
    if nodes:
        return "cluster via " + ", ".join(str(name) for name in nodes)
    return "unknown Redis server"


def _address(client: t.Any) -> str:
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {})
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"


def memcached_servers(backend: t.Any) -> list[str]:
    """The ``host:port`` (or socket path) of each server, as configured."""
    servers = getattr(backend, "_servers", None)
    if not servers:
        return []
    return [str(s) for s in servers]


def redis_db(backend: t.Any) -> t.Any:
    """The database number the Redis client selects (0 when it cannot tell)."""
    pool = getattr(getattr(backend, "_write_client", None), "connection_pool", None)
    return (getattr(pool, "connection_kwargs", None) or {}).get("db", 0)


# -- what clear() removes ------------------------------------------------------------


def clear_scope(backend: t.Any) -> str:
    """One or two sentences: what ``clear()`` removes on this backend."""
    which = kind(backend)
    name = type(backend).__name__
    if which == "memcached":
        servers = ", ".join(memcached_servers(backend)) or "the servers"
        return (
            f"{name}.clear() flushes EVERY key on the memcached server(s) {servers} "
            "(flush_all): the entries of all apps using them, whatever their key "
            "prefix."
        )
    if which == "redis":
        where, prefix = redis_location(backend), prefix_of(backend)
        if prefix:
            return (
                f"{name}.clear() deletes only the keys starting with {prefix!r} "
                f"on {where}."
            )
        return (
            f"{name}.clear() has no key prefix, so it empties the WHOLE database "
            f"number {redis_db(backend)} on {where} (FLUSHDB): every key in it, "
            "whoever wrote it."
        )
    if which == "filesystem":
        count = len(entry_files(backend))
        return (
            f"{name}.clear() removes every entry file in the directory "
            f"{getattr(backend, '_path', '?')} ({count} now)."
        )
    if which == "simple":
        return (
            f"{name}.clear() empties this process's memory only. The CLI runs in "
            "its own process, so the web server's SimpleCache is not touched: "
            "clearing it from here is useless."
        )
    if which == "null":
        return f"{name} stores nothing: clear() removes nothing."
    return f"{name}.clear() removes whatever that backend's clear() removes."


# -- listing keys --------------------------------------------------------------------


def list_keys(backend: t.Any, pattern: str, limit: int) -> tuple[list[str], bool]:
    """Up to *limit* keys matching the glob *pattern*, sorted, without the prefix;
    and whether more matched. Raises :class:`Unsupported` where it cannot list."""
    which = kind(backend)
    if which == "redis":
        return _redis_keys(backend, pattern, limit)
    if which == "simple":
        return _simple_keys(backend, pattern, limit)
    if which == "filesystem":
        raise Unsupported(
            "FileSystemCache cannot list keys: its files are named by a hash of "
            "the key, so the keys themselves are not stored (see `flask cache "
            "stats` for the number of entries)."
        )
    if which == "memcached":
        raise Unsupported(
            "memcached cannot list keys reliably, so listing is not supported."
        )
    if which == "null":
        return [], False
    raise Unsupported(f"{type(backend).__name__} cannot list its keys.")


def _limited(names: t.Iterable[str], limit: int) -> tuple[list[str], bool]:
    found: list[str] = []
    for name in names:
        if len(found) == limit:
            return sorted(found), True
        found.append(name)
    return sorted(found), False


def _redis_keys(backend: t.Any, pattern: str, limit: int) -> tuple[list[str], bool]:
    prefix = prefix_of(backend)
    escaped = "".join("\\" + c if c in _GLOB_SPECIALS else c for c in prefix)
    client = backend._read_client
    scan = client.scan_iter(match=escaped + pattern, count=1000)
    size = len(prefix.encode("utf-8"))
    names = (
        (raw if isinstance(raw, bytes) else str(raw).encode("utf-8"))[size:].decode(
            "utf-8", "backslashreplace"
        )
        for raw in scan
    )
    return _limited(names, limit)


def _simple_keys(backend: t.Any, pattern: str, limit: int) -> tuple[list[str], bool]:
    now = time.time()
    live = [
        key
        for key, (expires, _data) in simple_items(backend)
        if (not expires or expires > now) and fnmatch.fnmatchcase(key, pattern)
    ]
    return _limited(live, limit)


def simple_items(backend: t.Any) -> list[tuple[str, tuple[t.Any, t.Any]]]:
    """A snapshot of SimpleCache's dict ``{key: (expires, data)}``, taken under its
    lock when it has one (the dict may change while it is copied)."""
    store = getattr(backend, "_cache", None)
    if not isinstance(store, dict):
        return []
    lock = getattr(backend, "_lock", None)
    if lock is not None and hasattr(lock, "__enter__"):
        with lock:
            return list(store.items())
    return list(store.items())


# -- remaining lifetime --------------------------------------------------------------


def remaining_ttl(backend: t.Any, key: str) -> str:
    """How long *key* still lives: ``"12.3 s"``, ``"never expires"`` or
    ``"unknown (why)"``."""
    which = kind(backend)
    try:
        if which == "redis":
            ms = backend._read_client.pttl(prefix_of(backend) + key)
            return _redis_ttl(ms)
        if which == "simple":
            item = dict(simple_items(backend)).get(key)
            return _expiry_ttl(item[0] if item else None)
        if which == "filesystem":
            return _expiry_ttl(_fs_expiry(backend._get_filename(key)))
    except (AttributeError, TypeError, IndexError, ValueError, OSError) as exc:
        return f"unknown ({type(exc).__name__}: {exc})"
    if which == "memcached":
        return "unknown (memcached does not report it)"
    return f"unknown ({type(backend).__name__} does not report it)"


def _redis_ttl(ms: t.Any) -> str:
    if ms is None or ms == -2:
        return "unknown (the key is gone)"
    if ms == -1:
        return "never expires"
    return f"{int(ms) / 1000:.1f} s"


def _expiry_ttl(expires: t.Any) -> str:
    """From a stored whole-second unix expiry (0 = never)."""
    if expires is None:
        return "unknown (the entry is gone)"
    if not expires:
        return "never expires"
    return f"{max(0.0, float(expires) - time.time()):.1f} s"


def _fs_expiry(path: str) -> int | None:
    """The expiry header of the entry file *path*; None if it is not a readable
    regular file (never follows a symlink or blocks on a FIFO)."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        head = os.read(fd, _FS_HEADER.size)
    finally:
        os.close(fd)
    if len(head) < _FS_HEADER.size:
        return None
    expires: int = _FS_HEADER.unpack(head)[0]
    return expires


def entry_files(backend: t.Any) -> list[os.DirEntry[str]]:
    """The entry files of a FileSystemCache: not the count file, temp files or
    directories."""
    path = getattr(backend, "_path", None)
    if not path:
        return []
    is_mgmt = getattr(backend, "_is_mgmt", None)
    if not callable(is_mgmt):
        count_file = getattr(backend, "_fs_count_file", "__wz_cache_count")
        count = os.path.basename(backend._get_filename(count_file))

        def is_mgmt(name: str) -> bool:
            return name == count or name.endswith(_FS_TEMP_SUFFIX)

    try:
        with os.scandir(path) as it:
            return [
                e
                for e in it
                if not is_mgmt(e.name) and e.is_file(follow_symlinks=False)
            ]
    except OSError:
        return []
