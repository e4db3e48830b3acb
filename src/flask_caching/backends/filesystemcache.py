"""A cache in a directory, safe for several processes sharing it.

Each entry is one file named by the SHA-256 of its key, holding an 8-byte expiry
followed by the serialized value. Writes go to a temporary file that is renamed into
place, so a reader sees the old entry or the new one, never half of one. A file that
cannot be read (truncated, corrupt, removed, unreadable) is a miss, and the directory
is recreated when it disappears under a running app.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import sys
import tempfile
import time
import typing as t

from ..exceptions import ConfigurationError
from ..serializers import PickleSerializer
from .base import BaseCache, Timeout

if sys.platform != "win32":
    import fcntl

if t.TYPE_CHECKING:
    from flask import Flask
    from typing_extensions import Self

logger = logging.getLogger("flask_caching")

_HEADER = struct.Struct(">d")
_SUFFIX = ".fcache"
#: pruning removes entries down to this share of the threshold
_PRUNE_TO = 0.8
_TMP_PREFIX = ".tmp-"
#: a temp file older than this was left by a writer that died mid-write
_TMP_STALE_SECONDS = 60.0
#: the file whose flock serialises replacing expired entries (see _remove_expired)
_TAKEOVER_LOCK = ".takeover.lock"


class FileSystemCache(BaseCache):
    """Store entries as files in *cache_dir*.

    :param cache_dir: the directory; created if missing.
    :param threshold: when more files than this exist, expired then oldest entries
        are removed. ``0`` means unbounded.
    :param mode: permission bits of entry files, e.g. ``0o600`` (or ``600`` written
        as a 3-digit octal number, as CACHE_OPTIONS ``mode`` is documented).
    :param ignore_errors: ``delete_many`` and ``clear`` keep going past a file that
        cannot be removed instead of stopping there; the result still tells (the
        key is not listed, ``clear`` returns False).
    """

    batched_get_many = False

    def __init__(
        self,
        cache_dir: str,
        threshold: int = 500,
        default_timeout: Timeout = 300,
        mode: int | None = None,
        ignore_errors: bool = False,
        hash_method: t.Callable[..., t.Any] = hashlib.sha256,
    ) -> None:
        super().__init__(default_timeout=default_timeout)
        if not cache_dir:
            raise ConfigurationError(
                "CACHE_DIR must name a directory for FileSystemCache"
            )
        self._path = os.path.abspath(cache_dir)
        self._threshold = threshold
        #: entries seen at the last listing, and writes since (see _prune)
        self._known_count = 0
        self._writes_since_count = self._threshold  # list on the first write
        self._mode = _parse_mode(mode)
        self._hash = hash_method
        self.ignore_errors = ignore_errors
        self.serializer: t.Any = PickleSerializer()
        #: the error of the last failed write while writes keep failing, else None
        self._write_error: str | None = None
        self._ensure_dir()

    @classmethod
    def factory(
        cls,
        app: Flask,
        config: t.Mapping[str, t.Any],
        args: list[t.Any],
        kwargs: dict[str, t.Any],
    ) -> Self:
        """Map CACHE_DIR, CACHE_THRESHOLD, CACHE_DEFAULT_TIMEOUT, CACHE_IGNORE_ERRORS."""
        if not args and "cache_dir" not in kwargs and not config.get("CACHE_DIR"):
            raise ConfigurationError(
                "CACHE_DIR must be set to a directory when CACHE_TYPE is FileSystemCache"
            )
        kwargs = dict(kwargs)
        if not args:
            kwargs.setdefault("cache_dir", config["CACHE_DIR"])
        kwargs.setdefault("threshold", config["CACHE_THRESHOLD"])
        kwargs.setdefault("default_timeout", config["CACHE_DEFAULT_TIMEOUT"])
        kwargs.setdefault("ignore_errors", config["CACHE_IGNORE_ERRORS"])
        return cls(*args, **kwargs)

    # -- files ---------------------------------------------------------------------

    def _ensure_dir(self) -> None:
        try:
            os.makedirs(self._path, exist_ok=True)
        except OSError as exc:
            logger.warning("FileSystemCache: cannot create %s: %s", self._path, exc)

    def _filename(self, key: str) -> str:
        digest = self._hash(key.encode("utf-8")).hexdigest()
        return os.path.join(self._path, digest + _SUFFIX)

    def _entries(self) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(self._path) as it:
                return [e for e in it if e.name.endswith(_SUFFIX)]
        except OSError:  # removed, replaced by a file, unreadable: nothing to list
            return []

    @staticmethod
    def _read_expiry(path: str) -> float | None:
        try:
            with open(path, "rb") as f:
                head = f.read(_HEADER.size)
        except OSError:
            return None
        if len(head) != _HEADER.size:
            return None
        expiry: float = _HEADER.unpack(head)[0]
        return expiry

    def _load(self, path: str) -> tuple[float, t.Any] | None:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        if len(data) < _HEADER.size:
            return None
        (expires,) = _HEADER.unpack_from(data)
        if expires and expires <= time.time():
            return None
        try:
            value = self.serializer.loads(data[_HEADER.size :])
        except Exception as exc:
            logger.warning("FileSystemCache: unreadable entry %s (%s)", path, exc)
            return None
        return expires, value

    def _write(self, key: str, value: t.Any, timeout: Timeout, only_new: bool) -> bool:
        seconds = self._normalize_timeout(timeout)
        path = self._filename(key)
        if seconds < 0:
            self._unlink(path)
            return True
        expires = 0.0 if seconds == 0 else time.time() + seconds
        payload = _HEADER.pack(expires) + self.serializer.dumps(value)
        self._prune()
        for attempt in range(2):
            try:
                fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=self._path)
            except FileNotFoundError:
                if attempt:
                    return False
                self._ensure_dir()  # the directory vanished under us: repair it
                continue
            except OSError as exc:
                self._write_failed(self._path, exc)
                return False
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(payload)
                if self._mode is not None:
                    os.chmod(tmp, self._mode)
                if only_new:
                    added = self._link_new(tmp, path)
                else:
                    os.replace(tmp, path)
                    added = True
            except OSError as exc:
                self._write_failed(path, exc)
                return False
            else:
                self._write_worked()
                return added
            finally:
                self._unlink(tmp)
        return False

    def _write_failed(self, path: str, exc: OSError) -> None:
        # A full disk fails every write: warn when writes start failing, not per write.
        first = self._write_error is None
        self._write_error = f"{type(exc).__name__}: {exc}"
        logger.log(
            logging.WARNING if first else logging.DEBUG,
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
        if not self._remove_expired(path):
            return False
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False

    def _remove_expired(self, path: str) -> bool:
        """Remove *path* if it is expired (or unreadable); False if it is live.

        Racing callers must not each judge the same expired file and then unlink by
        name: the second unlink would remove the live file the first one just linked
        in (two ``add`` callers would both win, e.g. both take a lock). So removal
        happens under an exclusive ``flock`` of one file in the directory. Inside it
        an existing file cannot be replaced by anyone (``os.link`` fails on an
        existing name, and removals take the same flock), so check-then-unlink is
        safe. Without ``fcntl`` (Windows) the removal is best effort.
        """
        if sys.platform == "win32":
            return self._unlink_if_expired(path)
        try:
            fd = os.open(
                os.path.join(self._path, _TAKEOVER_LOCK), os.O_RDWR | os.O_CREAT
            )
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return self._unlink_if_expired(path)
        finally:
            os.close(fd)  # and with it the flock

    def _unlink_if_expired(self, path: str) -> bool:
        # Only a file that exists and was judged here is removed: when *path* is
        # missing, a racing add() may link its live file in at any moment, and a
        # blind unlink would take it away again (two winners).
        try:
            with open(path, "rb") as f:
                head = f.read(_HEADER.size)
        except FileNotFoundError:
            return True  # nothing to remove; os.link decides who wins
        except OSError:
            return False
        if len(head) == _HEADER.size:
            (expiry,) = _HEADER.unpack(head)
            if not (0 < expiry <= time.time()):
                return False
        return self._unlink(path)

    @staticmethod
    def _unlink(path: str) -> bool:
        try:
            os.unlink(path)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            return False

    def _prune(self) -> None:
        # Listing the directory on every write made writes O(entries); instead
        # count writes since the last listing and list again when they could have
        # reached the threshold, or after a tenth of it (other processes sharing
        # the directory write too). Pruning goes down to 80% of the threshold, so
        # the expensive pass (opening every file) runs once per many writes.
        if not self._threshold:
            return
        self._writes_since_count += 1
        since = self._writes_since_count
        if (
            self._known_count + since < self._threshold
            and since < self._threshold // 10 + 1
        ):
            return
        entries = self._entries()
        self._writes_since_count = 0
        self._known_count = len(entries)
        if len(entries) < self._threshold:
            return
        now = time.time()
        aged: list[tuple[float, str]] = []
        for entry in entries:
            expiry = self._read_expiry(entry.path)
            if expiry is None or 0 < expiry <= now:
                self._remove_expired(entry.path)  # never a live file put in its place
                continue
            try:
                aged.append((entry.stat().st_mtime, entry.path))
            except OSError:
                continue
        overflow = len(aged) - int(self._threshold * _PRUNE_TO)
        if overflow > 0:
            for _mtime, path in sorted(aged)[:overflow]:
                self._unlink(path)
        self._known_count = min(len(aged), int(self._threshold * _PRUNE_TO))

    # -- the cache interface -------------------------------------------------------

    def get(self, key: str) -> t.Any:
        found = self._load(self._filename(key))
        return None if found is None else found[1]

    def set(self, key: str, value: t.Any, timeout: Timeout = None) -> bool:
        return self._write(key, value, timeout, only_new=False)

    def add(self, key: str, value: t.Any, timeout: Timeout = None) -> bool:
        return self._write(key, value, timeout, only_new=True)

    def delete(self, key: str) -> bool:
        path = self._filename(key)
        existed = os.path.exists(path)
        return self._unlink(path) and existed

    def delete_many(self, *keys: str) -> list[t.Any]:
        deleted = []
        for key in keys:
            if self._unlink(self._filename(key)):
                deleted.append(key)
            elif not self.ignore_errors:
                break
        return deleted

    def has(self, key: str) -> bool:
        expiry = self._read_expiry(self._filename(key))
        return expiry is not None and not (0 < expiry <= time.time())

    def _remove_dead_temp_files(self) -> None:
        # A writer killed between mkstemp and rename leaves its temp file behind;
        # nothing else would ever remove it. Live writes finish in far less time.
        cutoff = time.time() - _TMP_STALE_SECONDS
        try:
            with os.scandir(self._path) as it:
                names = [e for e in it if e.name.startswith(_TMP_PREFIX)]
        except OSError:
            return
        for entry in names:
            try:
                if entry.stat().st_mtime < cutoff:
                    self._unlink(entry.path)
            except OSError:
                continue

    def clear(self) -> bool:
        """Remove every entry (and temp files left by writers that died)."""
        self._remove_dead_temp_files()
        ok = True
        for entry in self._entries():
            if not self._unlink(entry.path):
                ok = False
                if not self.ignore_errors:
                    return False
        return ok


def _parse_mode(mode: int | None) -> int | None:
    """Accept ``0o600`` or the documented 3-digit form ``600``; reject the rest."""
    if mode is None:
        return None
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


__all__ = ["FileSystemCache"]
