"""File primitives of FileSystemCache: the entry header, safe reads, atomic writes.

An entry file is cachelib's: ``struct.pack("I", expires)`` (4 bytes, native byte order,
unsigned; a whole unix second, 0 = never) followed by the serialized value. Reads open
with ``O_NOFOLLOW | O_NONBLOCK`` and read only a regular file, at most the size it had
when opened, so a symlink to ``/dev/zero`` or a FIFO planted in the directory is a
miss, not an endless read or a hung request.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import struct
import sys
import threading
import typing as t
from collections.abc import Iterator

from ..exceptions import ConfigurationError

if sys.platform != "win32":
    import fcntl

__all__ = [
    "HEADER",
    "MAX_EXPIRES",
    "TEMP_PREFIX",
    "TEMP_SUFFIX",
    "DirectoryLock",
    "pack",
    "parse_mode",
    "read_file",
    "read_expiry",
    "unlink",
]

logger = logging.getLogger("flask_caching")

#: cachelib's header: the expiry as a native unsigned int
HEADER = struct.Struct("I")
MAX_EXPIRES = 2**32 - 1
#: temp files: our prefix, and cachelib's suffix so cachelib's listing skips them too
TEMP_PREFIX = ".tmp-"
TEMP_SUFFIX = ".__wz_cache"

_READ_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_BINARY", 0)
)


def pack(expires: int, data: bytes) -> bytes:
    """The bytes of an entry file: the header, then *data*."""
    return HEADER.pack(min(max(expires, 0), MAX_EXPIRES)) + data


def read_file(path: str, limit: int | None = None) -> bytes | None:
    """The content of the regular file *path* (at most *limit* bytes), else None.

    None for a missing or unreadable file, a symlink, a FIFO, a device: anything
    that is not a plain file. Never blocks and never reads past the size the file
    had when it was opened.
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            logger.warning("FileSystemCache: %s is a symlink; ignored", path)
        else:
            logger.debug("FileSystemCache: cannot open %s: %s", path, exc)
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            logger.warning("FileSystemCache: %s is not a regular file; ignored", path)
            return None
        size = info.st_size if limit is None else min(info.st_size, limit)
        chunks: list[bytes] = []
        while size > 0:
            chunk = os.read(fd, size)
            if not chunk:
                break
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)
    except OSError as exc:
        logger.debug("FileSystemCache: cannot read %s: %s", path, exc)
        return None
    finally:
        os.close(fd)


def read_expiry(path: str) -> int | None:
    """The header of the entry *path*, or None when it has none (or cannot be read)."""
    head = read_file(path, HEADER.size)
    if head is None or len(head) != HEADER.size:
        return None
    expires: int = HEADER.unpack(head)[0]
    return expires


def unlink(path: str) -> bool:
    """Remove *path*; True when it is gone (also when it was never there)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


class DirectoryLock:
    """One exclusive lock per cache directory, for threads and processes alike.

    ``flock`` on a descriptor of the directory itself: each acquisition opens its own
    descriptor, so two threads of one process exclude each other as two processes
    do, and no lock file is left among the entries. Without ``fcntl`` (Windows) only
    the threads of this process are excluded.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._threads = threading.Lock()

    @contextlib.contextmanager
    def held(self) -> Iterator[bool]:
        """Hold the lock; yields False when the directory could not be locked."""
        with self._threads:
            if sys.platform == "win32":
                yield True
                return
            try:
                fd = os.open(self._path, os.O_RDONLY)
            except OSError:
                yield False
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield True
            finally:
                os.close(fd)  # and with it the flock


def parse_mode(mode: t.Any) -> int:
    """Accept ``0o600`` or the documented 3-digit form ``600``; None is 0o600."""
    if mode is None:
        return 0o600  # cachelib's default (on Windows, where only S_IWRITE counts)
    if isinstance(mode, bool) or not isinstance(mode, int):
        raise ConfigurationError(f"CACHE_OPTIONS mode must be an int, got {mode!r}")
    digits = str(mode)
    if len(digits) == 3 and all(c in "01234567" for c in digits) and mode > 0o777:
        return int(digits, 8)
    if 0 <= mode <= 0o777:
        return mode
    raise ConfigurationError(
        f"CACHE_OPTIONS mode={mode!r} is not a permission mode such as 600 or 0o600"
    )
