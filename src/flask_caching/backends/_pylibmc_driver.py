"""The pylibmc (libmemcached, C) drivers, and libsasl2's plugin path for its wheel.

:class:`PylibmcDriver` adapts ``pylibmc.Client`` to :class:`~._memcached.Driver`
(read timeouts that libmemcached reports as misses, pipelined bulk writes);
:class:`SaslPylibmcDriver` works around a libmemcached SASL bug. pylibmc itself is
never imported here: :func:`ensure_sasl_plugin_path` must run before that happens.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import platform
import sys
import sysconfig
import typing as t
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from time import monotonic

from ._memcached import Item, NotANumber, _explain, _TimeKeywordWrites
from ._memcached_codec import FLAG_INFLATED, FLAG_ZLIB, pylibmc_item

__all__ = [
    "NoReply",
    "item_client_class",
    "PylibmcDriver",
    "SaslPylibmcDriver",
    "ensure_sasl_plugin_path",
    "scrub_c_stack",
]

T = t.TypeVar("T")
P = t.ParamSpec("P")


@functools.cache
def item_client_class(base: type) -> type:
    """A subclass of ``pylibmc.Client`` (*base*) that reads and writes
    :class:`~._memcached_codec.Item` objects as they are: pylibmc never pickles,
    unpickles or decodes anything.

    A value that is not an Item (someone using ``backend._client`` directly) is
    written as pylibmc would write it. libmemcached's client inflates a zlib item in
    C before this class sees it; such an item comes back flagged
    :data:`~._memcached_codec.FLAG_INFLATED` so the codec knows.
    """

    def serialize(self: t.Any, value: t.Any) -> tuple[bytes, int]:
        item = value if type(value) is Item else pylibmc_item(value)
        return item.data, item.flags

    def deserialize(self: t.Any, data: bytes | None, flags: int) -> Item:
        if flags & FLAG_ZLIB:
            flags |= FLAG_INFLATED
        return Item(data or b"", flags)  # get() hands an empty value over as None

    namespace = {"serialize": serialize, "deserialize": deserialize}
    return type("ItemClient", (base,), namespace)


class NoReply(Exception):
    """memcached did not answer a read in time (pylibmc reports that as a miss)."""


class PylibmcDriver(_TimeKeywordWrites):
    """Drive a ``pylibmc.Client`` (libmemcached, C). Each thread gets a ``clone()``.

    Reads: libmemcached reports a read timeout (a hung server) as a *miss* and only
    then marks the server failed. So a read that misses and took at least 90% of the
    poll timeout (``_poll_timeout``, set from ``timeout``) raises :class:`NoReply`
    instead; a real reply is never that slow. :meth:`reset` (after every error)
    disconnects, which also clears libmemcached's failure mark: the next call tries
    the server again, so every call fails while it is down and the first call after
    it is back succeeds (no ``retry_timeout`` wait).

    Bulk writes: libmemcached waits for each ``set``'s reply, so ``set_multi`` and
    ``delete_multi`` send every key but the last with ``_noreply`` (no waiting) and
    only the last one waits. memcached answers a connection's commands in order, so
    that one reply shows the server has read them all: one round trip, and a server
    that cannot be reached still raises. With several servers the reply vouches for
    the last key's server only; a connection to another one that broke since its
    last request fails its next request instead. What noreply cannot report is a
    server refusing a write (out of memory under ``-M``, or a value over its
    ``-I``); the backend never sends values over ``maximum_value_length``, so only a
    server set below that goes unreported.
    """

    def __init__(
        self, module: t.Any, raw: t.Any, poll_timeout: int, quiet: bool = False
    ) -> None:
        # *poll_timeout* is the client's _poll_timeout behaviour (ms). Reading it
        # back from the client would connect: libmemcached opens a socket to answer
        # some behaviours (socket buffer sizes), which on SASL even authenticates.
        self._mod = module
        self.raw = raw
        self.errors: tuple[type[BaseException], ...] = (module.Error, NoReply)
        #: why authentication last failed: libmemcached then marks the server down
        #: and later errors only say "SERVER HAS FAILED"
        self._auth_failure: str | None = None
        self._poll_timeout = poll_timeout
        #: a miss that took this long (seconds) was a read timeout
        self._slow = 0.9 * poll_timeout / 1000
        self._no_reply = (
            f"memcached did not answer within {poll_timeout / 1000:g} s (read timeout)"
        )
        #: the user configured ``_noreply`` for every write: nothing to toggle
        self._quiet = quiet

    @contextmanager
    def _unanswered(self) -> Iterator[None]:
        """Writes sent inside go out with ``_noreply``: nobody waits for them."""
        self.raw.set_behaviors({"_noreply": True})
        try:
            yield
        finally:
            self.raw.set_behaviors({"_noreply": False})

    def set_multi(self, items: dict[str, Item], exptime: int) -> list[str]:
        if len(items) < 2 or self._quiet:
            return super().set_multi(items, exptime)
        *head, last = items
        with self._unanswered():
            failed = list(self.raw.set_multi({k: items[k] for k in head}, exptime))
        if not self.raw.set(last, items[last], time=exptime):
            failed.append(last)
        return failed

    def delete_multi(self, keys: list[str]) -> None:
        # over the binary protocol (every SASL connection) memcached answers an
        # unanswered delete of a missing key anyway (NOT_FOUND), which would put
        # the connection out of step: wait for every reply there
        if len(keys) < 2 or self._quiet or getattr(self.raw, "binary", False):
            return super().delete_multi(keys)
        with self._unanswered():
            self.raw.delete_multi(keys[:-1])
        self.raw.delete(keys[-1])

    def get(self, key: str) -> Item | None:
        started = monotonic()
        try:
            value: Item | None = self.raw.get(key)
        except self._mod.Error as exc:
            if _UNINFLATABLE not in str(exc):
                raise
            return None  # flagged zlib but not zlib: a miss, not a failure
        if value is None and monotonic() - started >= self._slow:
            raise NoReply(self._no_reply)
        return value

    def get_multi(self, keys: list[str]) -> dict[str, Item]:
        started = monotonic()
        try:
            found: dict[str, Item] = self.raw.get_multi(keys)
        except self._mod.Error as exc:
            # one item flagged zlib that is not zlib fails the whole read: read the
            # keys one by one, so only that one is a miss (rare: a forged item)
            if _UNINFLATABLE not in str(exc):
                raise
            items = ((key, self.get(key)) for key in keys)
            return {key: item for key, item in items if item is not None}
        if len(found) < len(keys) and monotonic() - started >= self._slow:
            raise NoReply(self._no_reply)
        return found

    def incr(self, key: str, delta: int) -> int | None:
        try:
            return int(self.raw.incr(key, delta))
        except self._mod.NotFound:
            return None
        except self._mod.ClientError as exc:
            raise NotANumber(key) from exc

    def gets(self, key: str) -> tuple[Item | None, t.Any]:
        started = monotonic()
        found: tuple[Item | None, t.Any] = self.raw.gets(key)
        if found[0] is None and monotonic() - started >= self._slow:
            raise NoReply(self._no_reply)
        return found

    def cas(self, key: str, value: Item, token: t.Any, exptime: int) -> bool:
        return bool(self.raw.cas(key, value, token, time=exptime))

    def flush_all(self) -> None:
        self.raw.flush_all()

    def reset(self) -> None:
        """Disconnect: drops half-read replies and libmemcached's failure marks."""
        self.raw.disconnect_all()

    def close(self) -> None:
        self.raw.disconnect_all()

    def clone(self) -> PylibmcDriver:
        return type(self)(self._mod, self.raw.clone(), self._poll_timeout, self._quiet)

    def explain(self, exc: BaseException) -> str:
        text = str(exc)
        if "AUTHENTICATION FAILURE" in text:
            self._auth_failure = text
        if self._auth_failure and isinstance(exc, self._mod.ServerDown):
            text = f"{text}, after {self._auth_failure}"
        if self._auth_failure:
            return (
                f"memcached SASL authentication failed ({text}): check "
                "CACHE_MEMCACHED_USERNAME and CACHE_MEMCACHED_PASSWORD"
            )
        if _AUTH_NOT_STARTED in text:
            return (
                f"memcached SASL authentication could not start ({text}): libsasl2 "
                "found no PLAIN mechanism. Install your system's SASL modules "
                "(Debian: libsasl2-modules) and set SASL_PATH to their folder "
                "before pylibmc is first imported"
            )
        return _explain(exc)


#: how pylibmc reports an item flagged zlib whose bytes do not inflate
_UNINFLATABLE = "Failed to decompress value"
#: how pylibmc reports that libmemcached could not start SASL authentication (40)
_AUTH_NOT_STARTED = "FAILED TO SEND AUTHENTICATION"

_scrub: Callable[[], None] | None = None


def scrub_c_stack() -> None:
    """Overwrite about 40 KB of C stack below the caller with zeros and pointers
    into shared libraries, and return.

    A C function called with many arguments makes ctypes lay out (zeroed) records
    for them on the stack; ``snprintf(NULL, 0, "", ...)`` ignores them, being
    variadic, and writes nothing. Does nothing without ctypes or a C library.
    """
    global _scrub
    if _scrub is None:
        try:
            import ctypes

            snprintf = ctypes.CDLL(None).snprintf
        except (ImportError, OSError, AttributeError):
            _scrub = lambda: None  # noqa: E731
        else:
            zeros = (0,) * 1000  # ctypes takes at most 1024

            def scrub() -> None:
                snprintf(None, 0, b"", *zeros)

            _scrub = scrub
    _scrub()


#: libmemcached's error for a server it marked failed a moment ago
_DISABLED = "SERVER HAS FAILED AND IS DISABLED"


def _retry_unstarted_auth(
    method: Callable[t.Concatenate[PylibmcDriver, P], T],
) -> Callable[t.Concatenate[PylibmcDriver, P], T]:
    @functools.wraps(method)
    def call(self: PylibmcDriver, /, *args: P.args, **kwargs: P.kwargs) -> T:
        # Authentication runs when the connection opens, before the request is
        # sent, so the request can be made again. The scrub must run in this frame,
        # at the depth from which the retry calls into libmemcached. A server
        # still marked failed by an earlier attempt (error 47) gets a fresh
        # connection too; a server that is really down fails again at once.
        for attempt in range(3):
            try:
                return method(self, *args, **kwargs)
            except self._mod.Error as exc:
                text = str(exc)
                # 47: the server is still marked failed by an earlier attempt of
                # this client (a login the bug broke, whose error went unanswered)
                again = _AUTH_NOT_STARTED in text or _DISABLED in text
                if attempt == 2 or not again:
                    raise
            self.raw.disconnect_all()
            scrub_c_stack()
        raise AssertionError("unreachable")  # pragma: no cover

    return call


class SaslPylibmcDriver(PylibmcDriver):
    """:class:`PylibmcDriver` for a client with SASL credentials.

    libmemcached 1.0.16, which the pylibmc wheels bundle, reads the server's list of
    SASL mechanisms (``PLAIN``) into a stack buffer without terminating it, and
    hands it to libsasl2, which reads on to the first NUL. Whatever an earlier C
    call left on the stack there becomes part of the list: a stale pointer makes it
    ``PLAINU...``, a mechanism nobody has, and the connection fails with error 40
    ("FAILED TO SEND AUTHENTICATION"). What is left there depends on every earlier
    call in the thread (a read timeout on any other pylibmc client was enough), so
    any cache could fail at random. Every operation here that fails that way is
    run again once, after :func:`scrub_c_stack` has put zeros where the buffer
    will be; if it fails again, libsasl2 really has no mechanism the server offers.
    """

    get = _retry_unstarted_auth(PylibmcDriver.get)
    get_multi = _retry_unstarted_auth(PylibmcDriver.get_multi)
    set = _retry_unstarted_auth(PylibmcDriver.set)
    set_multi = _retry_unstarted_auth(PylibmcDriver.set_multi)
    add = _retry_unstarted_auth(PylibmcDriver.add)
    delete = _retry_unstarted_auth(PylibmcDriver.delete)
    delete_multi = _retry_unstarted_auth(PylibmcDriver.delete_multi)
    incr = _retry_unstarted_auth(PylibmcDriver.incr)
    gets = _retry_unstarted_auth(PylibmcDriver.gets)
    cas = _retry_unstarted_auth(PylibmcDriver.cas)
    flush_all = _retry_unstarted_auth(PylibmcDriver.flush_all)


def _pylibmc_bundles_libsasl() -> bool:
    spec = importlib.util.find_spec("pylibmc")
    if spec is None or spec.origin is None:
        return False
    libs = Path(spec.origin).parent.parent / "pylibmc.libs"
    return any(libs.glob("libsasl2*"))


def _sasl_plugin_dirs() -> Iterator[Path]:
    multiarch = sysconfig.get_config_var("MULTIARCH") or (
        f"{platform.machine()}-linux-gnu"
    )
    for folder in (f"/usr/lib/{multiarch}", "/usr/lib64", "/usr/lib", "/usr/local/lib"):
        yield Path(folder) / "sasl2"


def ensure_sasl_plugin_path() -> str | None:
    """Point pylibmc's bundled libsasl2 at the system's SASL plugins; return the path.

    The pylibmc wheel ships its own libsasl2, which looks for mechanism plugins in a
    folder that does not exist on the host, so SASL auth fails with "FAILED TO SEND
    AUTHENTICATION". libsasl2 reads ``SASL_PATH`` once, when pylibmc is imported, so
    this must run first. It changes nothing if ``SASL_PATH`` is set, pylibmc does not
    bundle libsasl2, pylibmc is already imported, or no plugin folder is found.
    """
    if "SASL_PATH" in os.environ or "pylibmc" in sys.modules:
        return os.environ.get("SASL_PATH")
    if not sys.platform.startswith("linux") or not _pylibmc_bundles_libsasl():
        return None
    for folder in _sasl_plugin_dirs():
        if any(folder.glob("libplain.so*")):
            os.environ["SASL_PATH"] = str(folder)
            return str(folder)
    return None
