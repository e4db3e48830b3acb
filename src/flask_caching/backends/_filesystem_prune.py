"""Keeping a FileSystemCache directory near its threshold, and cachelib's count file.

Listing the directory on every write would make writes O(entries), so the pruner
counts writes since it last listed and lists again when they could have reached the
threshold, or after a tenth of it (other processes sharing the directory write too).
Pruning removes expired entries first, then the oldest, down to 80% of the threshold,
so the expensive pass (opening every file) runs once per many writes. Each listing
also rewrites cachelib's count file, so a released Flask-Caching process sharing the
directory sees about the right number.
"""

from __future__ import annotations

import os
import time
import typing as t

import cachelib.file

from . import _filesystem_files as files
from .base import cachelib_now

if t.TYPE_CHECKING:
    from .filesystemcache import FileSystemCache

__all__ = ["Pruner"]

#: pruning removes entries down to this share of the threshold
PRUNE_TO = 0.8
#: a temp file older than this was left by a writer that died mid-write
TEMP_STALE_SECONDS = 60.0
#: entry files of this package before it wrote cachelib's format
OLD_SUFFIX = ".fcache"


class Pruner:
    """The threshold and count-file bookkeeping of one FileSystemCache."""

    def __init__(self, cache: FileSystemCache) -> None:
        self._cache = cache
        #: entries seen at the last listing, and writes since
        self._known = 0
        self._since = cache._threshold  # list on the first write

    def entries(self) -> list[str]:
        """Paths of the entry files (not the count file, temp files or directories)."""
        cache = self._cache
        try:
            with os.scandir(cache._path) as it:
                return [
                    e.path
                    for e in it
                    if not cache._is_mgmt(e.name)
                    and not e.is_dir(follow_symlinks=False)
                ]
        except OSError:  # removed, replaced by a file, unreadable: nothing to list
            return []

    def counted(self, count: int) -> None:
        """Write cachelib's count file (its format: a never-expiring pickled int)."""
        cache = self._cache
        if not cache._threshold:
            return
        data = cache.serializer.dumps(count)
        if data is not None:
            cache._put(cache._count_name, files.pack(0, data), only_new=False)

    def before_write(self) -> None:
        """Called before each write: list and prune when the threshold may be near."""
        threshold = self._cache._threshold
        if not threshold:
            return
        self._since += 1
        if self._known + self._since < threshold and self._since < threshold // 10 + 1:
            return
        entries = self.entries()
        self._since = 0
        self._known = len(entries)
        if len(entries) >= threshold:
            self._known = self._prune(entries, threshold)
        self.counted(self._known)

    def _prune(self, entries: list[str], threshold: int) -> int:
        """Remove expired, old-format and unreadable entries, then the oldest."""
        cache = self._cache
        now = cachelib_now(cachelib.file)
        aged: list[tuple[float, str]] = []
        for path in entries:
            expires = files.read_expiry(path)
            if path.endswith(OLD_SUFFIX) or expires is None or 0 < expires < now:
                cache._take_over_expired(path)  # never a live file put in its place
                continue
            try:
                aged.append((os.stat(path, follow_symlinks=False).st_mtime, path))
            except OSError:
                continue
        keep = int(threshold * PRUNE_TO)
        overflow = len(aged) - keep
        for _mtime, path in sorted(aged)[: max(overflow, 0)]:
            files.unlink(path)
        return min(len(aged), keep)

    def remove_dead_temp_files(self) -> bool:
        """Remove temp files older than a minute (their writer died); True if all went.

        A writer killed between creating its temp file and renaming it leaves the
        file behind; nothing else would ever remove it. Live writes finish in far
        less time.
        """
        cutoff = time.time() - TEMP_STALE_SECONDS  # file times are real time
        ok = True
        try:
            with os.scandir(self._cache._path) as it:
                temps = [e for e in it if e.name.endswith(files.TEMP_SUFFIX)]
        except OSError:
            return True
        for entry in temps:
            try:
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    ok = files.unlink(entry.path) and ok
            except OSError:
                continue
        return ok
