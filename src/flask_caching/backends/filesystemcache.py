"""A cache in a directory: cachelib's ``FileSystemCache`` files, safe to share.

Files are cachelib's, so released Flask-Caching and this package share a directory:
an entry is named ``hash_method(key).hexdigest()`` (CACHE_FILE_HASH_METHOD, sha256 by
default, no suffix) and holds a 4-byte native unsigned expiry (a whole unix second,
0 = never) followed by the pickle; the entry count is kept in cachelib's count file.
The time is read from ``cachelib.file.time`` at each call, so freezing that clock
freezes this cache.

What this class does better than cachelib's: writes go to a temporary file renamed
into place (a reader sees the old entry or the new one, never half of one); ``add``
is atomic across processes (``os.link`` refuses an existing name); ``inc``/``dec``
hold an exclusive lock of the directory, so no increment is lost between threads or
processes; a file that cannot be read (truncated, corrupt, removed, a symlink, a
FIFO) is a miss; the directory is recreated when it disappears under a running app.

A serializer with ``dumps_for``/``loads_for`` is given the cache key (not the file
name), so the signed serializer binds each file's value to the key it was written for.

Entry files written by earlier versions of this package (``<sha256>.fcache``, an
8-byte double header) are not read: they are misses, removed by pruning and
``clear()``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import tempfile
import time
import typing as t

import cachelib.file
from cachelib import FileSystemCache as _CachelibFileSystemCache

from ..exceptions import ConfigurationError
from ..serializers import PickleSerializer, dumps_for, loads_for
from . import _filesystem_files as files
from ._filesystem_prune import Pruner
from .base import BaseCache, Timeout, cachelib_now, deprecated_ignore_errors

if t.TYPE_CHECKING:
    from flask import Flask
    from typing_extensions import Self

__all__ = ["FileSystemCache"]

logger = logging.getLogger("flask_caching")

#: a write failure is logged as a warning at most this often (others at DEBUG)
WARN_EVERY_SECONDS = 60.0


def _now() -> float:
    return cachelib_now(cachelib.file)  # a patched cachelib.file.time moves expiry


def _live(expires: int, now: float) -> bool:
    """cachelib's rule: 0 never expires, otherwise live through second *expires*."""
    return expires == 0 or expires >= now


class FileSystemCache(BaseCache, _CachelibFileSystemCache):
    """Store entries as files in *cache_dir*.

    :param cache_dir: the directory (``str`` or any ``os.PathLike``); created if
        missing.
    :param threshold: when about this many entries exist, expired then oldest
        entries are removed. ``0`` means unbounded.
    :param default_timeout: seconds an entry lives by default; ``0`` = forever.
    :param mode: permission bits of entry files: ``0o600`` (the default, as
        cachelib's) or the 3-digit form ``600`` CACHE_OPTIONS documents.
    :param hash_method: names the files: ``hash_method(key).hexdigest()``.
    :param ignore_delete_many_errors: see :class:`~.base.BaseCache`; also lets
        ``clear()`` go on past a file it cannot remove (it still returns False).
    :param ignore_errors: deprecated alias of *ignore_delete_many_errors*; warns.
    """

    batched_get_many = False

    #: cachelib's serializer class (our subclass of it); assign another to change
    #: the format of the values after the header
    serializer: t.Any = PickleSerializer()

    def __init__(
        self,
        cache_dir: str | os.PathLike[str],
        threshold: int = 500,
        default_timeout: Timeout = 300,
        mode: int | None = None,
        hash_method: t.Callable[..., t.Any] = hashlib.sha256,
        ignore_delete_many_errors: bool = False,
        ignore_errors: bool | None = None,
    ) -> None:
        flag = deprecated_ignore_errors(ignore_errors, ignore_delete_many_errors)
        BaseCache.__init__(self, default_timeout, ignore_delete_many_errors=flag)
        if not cache_dir:
            raise ConfigurationError(
                "CACHE_DIR must name a directory for FileSystemCache"
            )
        if not callable(hash_method):
            raise ConfigurationError(
                f"CACHE_FILE_HASH_METHOD must be a hashlib function such as"
                f" hashlib.sha256, got {hash_method!r}"
            )
        self._path = os.path.abspath(os.fspath(cache_dir))
        self._threshold = threshold
        self._mode = files.parse_mode(mode)
        self._hash_method = hash_method
        self._lock = files.DirectoryLock(self._path)
        self._count_name = self._get_filename(self._fs_count_file)
        self._pruner = Pruner(self)
        #: the error of the last failed write while writes keep failing, else None
        self._write_error: str | None = None
        #: when the last write failure was logged as a warning (time.monotonic)
        self._warned_at = -WARN_EVERY_SECONDS
        self._ensure_dir()

    @classmethod
    def factory(
        cls,
        app: Flask,
        config: t.Mapping[str, t.Any],
        args: list[t.Any],
        kwargs: dict[str, t.Any],
    ) -> Self:
        """Map CACHE_DIR, CACHE_THRESHOLD, CACHE_DEFAULT_TIMEOUT,
        CACHE_FILE_HASH_METHOD and CACHE_IGNORE_ERRORS (CACHE_OPTIONS: ``mode``)."""
        if not args and "cache_dir" not in kwargs and not config.get("CACHE_DIR"):
            raise ConfigurationError(
                "CACHE_DIR must be set to a directory when CACHE_TYPE is FileSystemCache"
            )
        kwargs = dict(kwargs)
        if not args:
            kwargs.setdefault("cache_dir", config["CACHE_DIR"])
        kwargs.setdefault("threshold", config.get("CACHE_THRESHOLD", 500))
        kwargs.setdefault("default_timeout", config.get("CACHE_DEFAULT_TIMEOUT", 300))
        hash_method = config.get("CACHE_FILE_HASH_METHOD")
        kwargs.setdefault("hash_method", hash_method or hashlib.sha256)
        kwargs.setdefault(
            "ignore_delete_many_errors", bool(config.get("CACHE_IGNORE_ERRORS"))
        )
        return cls(*args, **kwargs)

    # -- files ---------------------------------------------------------------------

    def _ensure_dir(self) -> None:
        try:
            os.makedirs(self._path, exist_ok=True)
        except OSError as exc:
            logger.warning("FileSystemCache: cannot create %s: %s", self._path, exc)

    def _get_filename(self, key: str) -> str:
        """The entry file of *key*: cachelib's name, the key's hex digest."""
        if not isinstance(key, str):
            raise TypeError(f"Key must be a string, received type {type(key)}")
        digest = self._hash_method(key.encode("utf-8")).hexdigest()
        return os.path.join(self._path, digest)

    _filename = _get_filename

    def _is_mgmt(self, name: str) -> bool:
        """The count file and temp files (ours and cachelib's) are not entries."""
        return name == os.path.basename(self._count_name) or name.endswith(
            files.TEMP_SUFFIX
        )

    def _read(self, key: str, path: str, now: float) -> tuple[bool, t.Any, int]:
        """``(found, value, expires)`` of *key*'s entry file *path*."""
        data = files.read_file(path)
        if data is None or len(data) < files.HEADER.size:
            return False, None, 0
        (expires,) = files.HEADER.unpack_from(data)
        if not _live(expires, now):
            return False, None, 0
        try:
            value = loads_for(self.serializer, key, data[files.HEADER.size :])
            return True, value, expires
        except Exception as exc:
            logger.warning("FileSystemCache: unreadable entry %s (%s)", path, exc)
            return False, None, 0

    def _expires(self, timeout: Timeout, now: float) -> int | None:
        """The header for *timeout*: 0 = never, None = already expired."""
        seconds = self._normalize_timeout(timeout)
        if seconds < 0:
            return None
        # cachelib's whole seconds: the entry lives between seconds - 1 and seconds
        return 0 if seconds == 0 else int(now) + seconds

    def _temp_file(self, payload: bytes) -> str | None:
        """Write *payload* to a new temp file in the directory; its path, or None."""
        for attempt in range(2):
            try:
                fd, tmp = tempfile.mkstemp(
                    prefix=files.TEMP_PREFIX, suffix=files.TEMP_SUFFIX, dir=self._path
                )
            except FileNotFoundError:
                if attempt:
                    return None
                self._ensure_dir()  # the directory vanished under us: repair it
                continue
            except OSError as exc:
                self._write_failed(self._path, exc)
                return None
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(payload)
                mode = self._mode
                if mode is not None and mode != 0o600:  # mkstemp made it 0o600
                    os.chmod(tmp, mode)
            except OSError as exc:
                files.unlink(tmp)
                self._write_failed(tmp, exc)
                return None
            return tmp
        return None

    def _put(self, path: str, payload: bytes, only_new: bool) -> bool:
        """Put *payload* in place as *path* (only if absent or expired: *only_new*)."""
        tmp = self._temp_file(payload)
        if tmp is None:
            return False
        try:
            if only_new:
                added = self._link_new(tmp, path)
            else:
                os.replace(tmp, path)
                added = True
        except OSError as exc:
            self._write_failed(path, exc)
            return False
        finally:
            files.unlink(tmp)
        return added

    def _write(self, key: str, value: t.Any, timeout: Timeout, only_new: bool) -> bool:
        now = _now()
        path = self._get_filename(key)
        expires = self._expires(timeout, now)
        if expires is None:  # already expired: set removes the entry, add does not
            if only_new:
                return False
            files.unlink(path)
            return True
        data = dumps_for(self.serializer, key, value)
        if data is None:  # cachelib's serializers return None when pickling fails
            return False
        self._pruner.before_write()
        if not self._put(path, files.pack(expires, data), only_new):
            return False
        # only entry writes count: the tiny count file may fit where entries do not
        self._write_worked()
        return True

    def _write_failed(self, path: str, exc: OSError) -> None:
        # A full disk fails every big write while small ones may still fit: warn
        # when writes start failing and then at most once a minute, not per write.
        now = time.monotonic()
        loud = now - self._warned_at >= WARN_EVERY_SECONDS
        if loud:
            self._warned_at = now
        self._write_error = f"{type(exc).__name__}: {exc}"
        logger.log(
            logging.WARNING if loud else logging.DEBUG,
            "FileSystemCache: cannot write %s (%s); values are not cached until"
            " writes work again (free disk space or fix the directory's permissions)",
            path,
            self._write_error,
        )

    def _write_worked(self) -> None:
        if self._write_error is not None:
            self._write_error = None
            logger.info("FileSystemCache: writes to %s work again", self._path)

    def _link_new(self, tmp: str, path: str) -> bool:
        # os.link fails when *path* exists, so exactly one of several racing
        # processes creates the entry (the O_EXCL guarantee, without a partial file).
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            pass
        if not self._take_over_expired(path):
            return False
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False

    def _take_over_expired(self, path: str) -> bool:
        """Remove *path* if it is expired (or unreadable); False if it is live.

        Racing callers must not each judge the same expired file and then unlink by
        name: the second unlink would remove the live file the first one just linked
        in (two ``add`` callers would both win, e.g. both take a lock). So removal
        happens under the directory's lock. Inside it an existing file cannot be
        replaced by anyone taking the same path (``os.link`` fails on an existing
        name, and removals take the same lock), so check-then-unlink is safe.
        """
        with self._lock.held() as locked:
            if not locked:
                return False
            if not os.path.lexists(path):
                return True  # nothing to remove; os.link decides who wins
            expires = files.read_expiry(path)
            if expires is not None and _live(expires, _now()):
                return False
            return files.unlink(path)

    # -- the cache interface -------------------------------------------------------

    def get(self, key: str) -> t.Any:
        return self._read(key, self._get_filename(key), _now())[1]

    def has(self, key: str) -> bool:
        expires = files.read_expiry(self._get_filename(key))
        return expires is not None and _live(expires, _now())

    def set(
        self,
        key: str,
        value: t.Any,
        timeout: Timeout = None,
        mgmt_element: bool = False,
    ) -> bool:
        """Store *value*; *mgmt_element* (cachelib's flag) means never expire."""
        return self._write(key, value, 0 if mgmt_element else timeout, only_new=False)

    def add(self, key: str, value: t.Any, timeout: Timeout = None) -> bool:
        return self._write(key, value, timeout, only_new=True)

    def delete(self, key: str, mgmt_element: bool = False) -> bool:
        """Remove *key*'s file; True only if it existed and is gone.

        *mgmt_element* is accepted for cachelib's signature and changes nothing.
        """
        try:
            os.unlink(self._get_filename(key))
        except OSError:
            return False
        return True

    def clear(self) -> bool:
        """Remove every entry (and temp files left by writers that died)."""
        ok = self._pruner.remove_dead_temp_files()
        for path in self._pruner.entries():
            if not files.unlink(path):
                ok = False
                if not self.ignore_delete_many_errors:
                    break
        self._pruner.counted(0 if ok else len(self._pruner.entries()))
        return ok

    def inc(self, key: str, delta: int = 1) -> int | None:
        """Add *delta* under the directory's lock: no update is lost between
        threads or processes. A missing key starts at 0 with the default timeout,
        an existing one keeps its expiry; a non-int value raises TypeError.
        """
        path = self._get_filename(key)
        with self._lock.held() as locked:
            if not locked:
                return None
            now = _now()
            found, value, expires = self._read(key, path, now)
            if not found:
                value, expires = 0, self._expires(None, now) or 0
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"cannot increment non-integer value at {key!r}")
            value += delta
            data = dumps_for(self.serializer, key, value)
            if data is None or not self._put(path, files.pack(expires, data), False):
                return None
            return value

    def dec(self, key: str, delta: int = 1) -> int | None:
        return self.inc(key, -delta)

    def acquire_lock(self, key: str, token: str, timeout: float) -> bool:
        """Take the lock as :class:`~.base.BaseCache` does, with one second more:
        expiry counts whole seconds, so the lease lasts at least *timeout*."""
        return self.add(key, token, timeout=math.ceil(timeout) + 1)

    def release_lock(self, key: str, token: str) -> bool:
        """Delete the lock *key* only if *token* holds it, under the directory's
        lock, so a lease taken over meanwhile is never removed."""
        path = self._get_filename(key)
        with self._lock.held() as locked:
            if not locked or self._read(key, path, _now())[1] != token:
                return False
            return files.unlink(path)
