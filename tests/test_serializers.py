"""Serializers: round trips, the JSON type fence, and what the signed pickle refuses.

The refusal tests feed a pickle whose ``__reduce__`` creates a file: if any code path
unpickled it, the file would exist. ``test_the_malicious_pickle_is_live`` shows that it
really does when loaded by the plain pickle serializer.
"""

from __future__ import annotations

import collections
import datetime
import hashlib
import hmac
import importlib
import io
import logging
import math
import pickle
import sys
import typing as t
import uuid
from pathlib import Path

import pytest
from cachelib import FileSystemCache, SimpleCache
from cachelib.serializers import BaseSerializer as CachelibBase
from cachelib.serializers import RedisSerializer as CachelibRedis
from cachelib.serializers import SimpleSerializer as CachelibSimple
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup

from flask_caching.exceptions import CacheError, ConfigurationError
from flask_caching.serializers import (
    ALGORITHMS,
    BaseSerializer,
    JSONSerializer,
    PickleSerializer,
    SignedPickleSerializer,
    UnreadableValueError,
    UnsafeValueError,
    check_algorithm,
    resolve_serializer,
)

SECRET = "app secret"
RESPONSE = (200, [("Content-Type", "text/html; charset=utf-8")], b"<p>hi</p>\x00\xff")
ENVELOPES: list[t.Any] = [
    ("flask_caching", 1, "text", (3, 7), 1700000000.5),
    ("flask_caching", 1, b"\x00\x80bytes", None, None),
    ("flask_caching", 1, {"a": [1, 2.5, None, True], "b": {"c": (1, "x")}}, (1,), 0.0),
    ("flask_caching", 1, RESPONSE, (), None),
    ("flask_caching", 1, [None, False, -5, 1e300, ""], None, None),
    ("flask_caching", 1, None, None, None),
    42,
    "plain",
]


class Touch:
    """A pickle payload that creates ``path`` when unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[t.Any, ...]:
        return (Path.touch, (self.path,))


class Custom:
    pass


def evil(tmp_path: Path) -> tuple[bytes, Path]:
    """A malicious pickle and the file it would create."""
    marker = tmp_path / "pwned"
    return pickle.dumps(Touch(marker), 5), marker


def signed() -> SignedPickleSerializer:
    return SignedPickleSerializer([SECRET])


def derived_key(secret: bytes, algorithm: str = "sha256") -> bytes:
    """The signing key the format documents: HMAC(secret, purpose)."""
    purpose = b"flask_caching.serializer.pickle-signed"
    return hmac.new(secret, purpose, algorithm).digest()


def same(a: t.Any, b: t.Any) -> bool:
    """Equality that also tells tuple from list, bool from int, -0.0 from 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float):
        return repr(a) == repr(b)
    return bool(a == b)


# -- plain pickle ---------------------------------------------------------------------


@pytest.mark.parametrize("value", ENVELOPES)
def test_pickle_round_trip(value: t.Any) -> None:
    s = PickleSerializer()
    data = s.dumps(value)
    assert data[:1] == b"\x80"
    assert same(s.loads(data), value)


def test_the_malicious_pickle_is_live(tmp_path: Path) -> None:
    payload, marker = evil(tmp_path)
    PickleSerializer().loads(payload)
    assert marker.exists()


def test_pickle_reads_and_writes_released_flask_caching_bytes() -> None:
    ours = PickleSerializer()
    value = ENVELOPES[2]
    old = CachelibBase().dumps(value)
    assert old is not None
    assert ours.loads(old) == value
    assert CachelibBase().loads(ours.dumps(value)) == value
    # cachelib's Redis serializer marks pickles with b"!"
    assert ours.loads(CachelibRedis().dumps(value)) == value


def test_pickle_is_cachelibs_simple_serializer_with_its_bytes() -> None:
    from cachelib.serializers import SimpleSerializer

    ours = PickleSerializer()
    assert isinstance(ours, SimpleSerializer)
    for value in [*ENVELOPES, "text", 7, None, {"a": (1, b"x")}]:
        assert ours.dumps(value) == SimpleSerializer().dumps(value)
    assert ours.dumps("x", 2)[:2] == b"\x80\x02"  # cachelib's protocol argument


def test_pickle_refuses_other_formats_and_garbage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    s = PickleSerializer()
    cases = [
        (signed().dumps("x"), "pickle-signed"),
        (JSONSerializer().dumps("x"), "json"),
        (b"\x80\x05garbage", "unsigned pickle"),
        (b"", "0 bytes"),
    ]
    for data, hint in cases:
        with caplog.at_level(logging.WARNING, logger="flask_caching"):
            with pytest.raises(UnreadableValueError, match=hint) as info:
                s.loads(data)
        assert info.value.__cause__ is not None
    assert all(r.name == "flask_caching" for r in caplog.records)
    assert len(caplog.records) == len(cases)


def test_missing_class_after_deploy_is_unreadable() -> None:
    data = PickleSerializer().dumps(Custom()).replace(b"Custom", b"Gone__")
    with pytest.raises(UnreadableValueError, match="Gone__"):
        PickleSerializer().loads(data)


def test_stream_pair_and_cachelib_backends(tmp_path: Path) -> None:
    for s in (PickleSerializer(), JSONSerializer(), signed()):
        buffer = io.BytesIO()
        s.dump(RESPONSE, buffer)
        assert buffer.getvalue() == s.dumps(RESPONSE)
        buffer.seek(0)
        assert s.load(buffer) == RESPONSE
        # FileSystemCache writes its count file at construction: set it on the class.
        caches = [
            type("Simple", (SimpleCache,), {"serializer": s})(),
            type("Files", (FileSystemCache,), {"serializer": s})(
                str(tmp_path / type(s).__name__)
            ),
        ]
        for cache in caches:
            assert cache.set("k", ENVELOPES[0])
            assert cache.get("k") == ENVELOPES[0]


def test_no_format_starts_like_a_raw_integer() -> None:
    # Redis/memcached keep ints as decimal bytes outside the serializer (INCR/DECR).
    for s in (PickleSerializer(), JSONSerializer(), signed()):
        for value in [*ENVELOPES, -1, 1.5, True, "12", b"3"]:
            assert s.dumps(value)[:1] not in b"0123456789+- "


# -- JSON -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ENVELOPES)
def test_json_round_trip(value: t.Any) -> None:
    s = JSONSerializer()
    data = s.dumps(value)
    assert data[:1] == b"\x02"
    assert same(s.loads(data), value)


def test_json_round_trips_flask_types_and_edge_cases() -> None:
    s = JSONSerializer()
    value = {
        "markup": Markup("<b>bold</b>"),
        "uuid": uuid.UUID(int=7),
        "surrogate": "\ud800 and ☃",
        "inf": [math.inf, -math.inf, -0.0],
        "big": 2**100,
        " t": {" di": {" b": b"", " t__": ()}},
    }
    assert same(s.loads(s.dumps(value)), value)
    assert type(s.loads(s.dumps(Markup("x")))) is Markup


class Color(str):
    pass


class Point(t.NamedTuple):
    x: int
    y: int


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (Custom(), "test_serializers.Custom"),
        ({"when": [datetime.datetime(2024, 1, 1)]}, "datetime.datetime"),
        ((1, {2, 3}), "set"),
        ({1: "int key"}, "dict key of type int"),
        ({"k": {None: 1}}, "dict key of type NoneType"),
        (collections.OrderedDict(a=1), "collections.OrderedDict"),
        (Point(1, 2), "Point"),
        ([Color("red")], "Color"),
        (bytearray(b"x"), "bytearray"),
    ],
)
def test_json_refuses_what_it_cannot_restore(value: t.Any, named: str) -> None:
    with pytest.raises(TypeError, match=named) as info:
        JSONSerializer().dumps(value)
    message = str(info.value)
    assert "pickle-signed" in message
    assert "CACHE_SERIALIZER" in message


def test_json_refuses_foreign_bytes_without_running_code(tmp_path: Path) -> None:
    payload, marker = evil(tmp_path)
    s = JSONSerializer()
    for data in (payload, b"\x02{not json", b"\x02" + b'{" b":5}', b"", b'"plain"'):
        with pytest.raises(UnreadableValueError) as info:
            s.loads(data)
        assert not isinstance(info.value, UnsafeValueError)
    assert not marker.exists()


# -- signed pickle --------------------------------------------------------------------


@pytest.mark.parametrize("value", ENVELOPES)
def test_signed_round_trip(value: t.Any) -> None:
    s = signed()
    assert same(s.loads(s.dumps(value)), value)


def bound(key: str) -> bytes:
    """The key as the format signs it: 8-byte big-endian length, then UTF-8."""
    raw = key.encode("utf-8")
    return len(raw).to_bytes(8, "big") + raw


def test_signed_format_is_pinned() -> None:
    # A format change must be deliberate: old entries would all become misses.
    payload = pickle.dumps(ENVELOPES[0], 5)
    message = b"\x03" + bound("view//page") + payload
    mac = hmac.new(derived_key(SECRET.encode()), message, "sha256").digest()
    assert signed().dumps_for("view//page", ENVELOPES[0]) == b"\x03" + mac + payload
    raw = hmac.new(SECRET.encode(), message, "sha256").digest()
    assert raw != mac  # the app's secret is not used as the HMAC key itself
    empty = hmac.new(derived_key(SECRET.encode()), b"\x03" + bound(""), "sha256")
    empty.update(payload)
    assert signed().dumps(ENVELOPES[0]) == b"\x03" + empty.digest() + payload


def sign_with(
    secret: bytes, payload: bytes, algorithm: str = "sha256", key: str = ""
) -> bytes:
    mac = hmac.new(derived_key(secret, algorithm), b"\x03" + bound(key), algorithm)
    mac.update(payload)
    return b"\x03" + mac.digest() + payload


def sign_v1(secret: bytes, payload: bytes) -> bytes:
    """An entry in the earlier, key-unbound format (``b"\x01"``)."""
    key = derived_key(secret)
    return b"\x01" + hmac.new(key, b"\x01" + payload, "sha256").digest() + payload


def test_signed_rejects_bad_entries_without_unpickling(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    payload, marker = evil(tmp_path)
    good = signed().dumps("harmless")
    good_mac = good[1:33]
    valid_evil = sign_with(SECRET.encode(), payload)
    flipped = bytes([valid_evil[5] ^ 1])
    cases = {
        "tampered payload": b"\x03" + good_mac + payload,
        "tampered signature": valid_evil[:5] + flipped + valid_evil[6:],
        "truncated payload": valid_evil[:-1],
        "truncated signature": valid_evil[:20],
        "only the prefix": b"\x03",
        "the earlier key-unbound format": sign_v1(SECRET.encode(), payload),
        "signed for another key": sign_with(SECRET.encode(), payload, key="other"),
        "empty": b"",
        "wrong key": sign_with(b"another secret", payload),
        "raw secret as key": b"\x03"
        + hmac.new(SECRET.encode(), b"\x03" + bound("") + payload, "sha256").digest()
        + payload,
        "unsigned pickle": payload,
        "cachelib redis pickle": b"!" + payload,
        "signature appended": payload + valid_evil[1:33],
        "not bytes": t.cast(bytes, "\x03" + "a" * 40),
    }
    for name, data in cases.items():
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="flask_caching"):
            with pytest.raises(UnsafeValueError):
                signed().loads(data)
        assert [r.name for r in caplog.records] == ["flask_caching"], name
        assert "not unpickled" in caplog.records[0].getMessage(), name
    assert not marker.exists()
    assert signed().loads(valid_evil) is None  # the control: a valid entry loads
    assert marker.exists()


@pytest.mark.parametrize("forged_with", ["md5", "sha1", "sum", "crc"])
def test_the_value_cannot_choose_the_algorithm(
    tmp_path: Path, forged_with: str
) -> None:
    payload, marker = evil(tmp_path)
    key = derived_key(SECRET.encode())
    if forged_with == "sum":  # the checksum cashews accepted
        sig = (sum(payload) % 2**32).to_bytes(4, "big")
    elif forged_with == "crc":
        import zlib

        sig = zlib.crc32(payload).to_bytes(4, "big")
    else:
        sig = hmac.new(key, b"\x03" + bound("") + payload, forged_with).digest()
    for data in (
        b"\x03" + sig + payload,
        b"\x03" + forged_with.encode() + b":" + sig + payload,
        forged_with.encode() + b":" + sig + payload,
    ):
        with pytest.raises(UnsafeValueError):
            signed().loads(data)
    assert not marker.exists()


def test_entries_signed_with_another_configured_algorithm_are_refused() -> None:
    for algorithm in ("sha512", "sha3_256", "blake2b"):
        other = SignedPickleSerializer([SECRET], algorithm=algorithm)
        assert other.loads(other.dumps(ENVELOPES[0])) == ENVELOPES[0]
        with pytest.raises(UnsafeValueError):
            signed().loads(other.dumps(ENVELOPES[0]))
        with pytest.raises(UnsafeValueError):
            other.loads(signed().dumps(ENVELOPES[0]))


def test_key_rotation() -> None:
    old = SignedPickleSerializer(["old"])
    entry = old.dumps(ENVELOPES[2])
    rotated = SignedPickleSerializer(["new", b"old"])
    assert rotated.loads(entry) == ENVELOPES[2]  # old entries still verify
    fresh = rotated.dumps(ENVELOPES[2])
    assert SignedPickleSerializer(["new"]).loads(fresh) == ENVELOPES[2]  # new signs
    with pytest.raises(UnsafeValueError):
        old.loads(fresh)
    with pytest.raises(UnsafeValueError):  # old key removed: its entries are refused
        SignedPickleSerializer(["new"]).loads(entry)


def test_secret_key_forms() -> None:
    entry = SignedPickleSerializer(["k€y"]).dumps(1)
    assert SignedPickleSerializer(["k€y".encode()]).loads(entry) == 1
    assert SignedPickleSerializer("k€y").loads(entry) == 1  # one str is one key
    assert SignedPickleSerializer([None, "", "k€y"]).loads(entry) == 1
    with pytest.raises(UnsafeValueError):  # not each character as a key
        SignedPickleSerializer(["k"]).loads(entry)


def test_signature_is_compared_in_constant_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a: t.Any, b: t.Any) -> bool:
        calls.append((bytes(a), bytes(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    s = SignedPickleSerializer(["first", "second"])
    entry = s.dumps("v")
    assert s.loads(entry) == "v"
    assert calls == [(entry[1:33], entry[1:33])]  # one HMAC on the hot path
    calls.clear()
    with pytest.raises(UnsafeValueError):
        s.loads(entry[:40] + b"x" + entry[41:])
    assert len(calls) == 2  # every key tried, each in constant time


def test_verified_but_unloadable_entry_is_unreadable_not_unsafe() -> None:
    payload = pickle.dumps(Custom(), 5).replace(b"Custom", b"Gone__")
    with pytest.raises(UnreadableValueError, match="Gone__") as info:
        signed().loads(sign_with(SECRET.encode(), payload))
    assert not isinstance(info.value, UnsafeValueError)


def test_error_hierarchy() -> None:
    assert issubclass(UnsafeValueError, UnreadableValueError)
    assert issubclass(UnreadableValueError, CacheError)


# -- property: JSON-safe values round-trip -----------------------------------------

TAG_LIKE = st.sampled_from([" t", " di", " b", " m", " u", " d", " t__", " di__", ""])
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
)
json_safe = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text() | TAG_LIKE, inner, max_size=4)
    ),
    max_leaves=25,
)
round_trippers = [JSONSerializer(), signed(), PickleSerializer()]


@given(json_safe)
def test_json_safe_values_round_trip(value: t.Any) -> None:
    for s in round_trippers:
        assert same(s.loads(s.dumps(value)), value), type(s).__name__


@given(json_safe, st.integers(min_value=0), st.integers(min_value=1, max_value=255))
def test_any_single_byte_change_is_refused(value: t.Any, at: int, flip: int) -> None:
    s = round_trippers[1]
    data = bytearray(s.dumps(value))
    data[at % len(data)] ^= flip
    with pytest.raises(UnsafeValueError):
        s.loads(bytes(data))


# -- resolve_serializer ---------------------------------------------------------------


def test_resolve_named_settings() -> None:
    assert type(resolve_serializer()) is PickleSerializer
    assert type(resolve_serializer(None)) is PickleSerializer
    assert type(resolve_serializer(" Pickle ")) is PickleSerializer
    assert type(resolve_serializer("json")) is JSONSerializer
    s = resolve_serializer("pickle-signed", secret_keys=["a", "b"], algorithm="SHA-512")
    assert isinstance(s, SignedPickleSerializer)
    assert s.algorithm == "sha512"
    assert s.loads(SignedPickleSerializer("b", algorithm="sha512").dumps(1)) == 1


@pytest.mark.parametrize("keys", [(), [None, ""], [b""], ""])
def test_signed_without_a_secret_key_is_a_configuration_error(keys: t.Any) -> None:
    with pytest.raises(ConfigurationError, match="CACHE_SECRET_KEY.*SECRET_KEY"):
        resolve_serializer("pickle-signed", secret_keys=keys)


def test_secret_key_of_the_wrong_type() -> None:
    with pytest.raises(ConfigurationError, match="CACHE_SECRET_KEY"):
        resolve_serializer("pickle-signed", secret_keys=[123])  # type: ignore[list-item]


def test_resolve_objects_and_classes() -> None:
    cachelib_one = CachelibSimple()  # in every cachelib we support (0.9 has no JSON)
    assert resolve_serializer(cachelib_one) is t.cast(object, cachelib_one)
    ours = JSONSerializer()
    assert resolve_serializer(ours) is t.cast(object, ours)
    assert type(resolve_serializer(JSONSerializer)) is t.cast(object, JSONSerializer)

    class Minimal:
        def dumps(self, value: t.Any) -> bytes:
            return repr(value).encode()

        def loads(self, data: bytes) -> t.Any:
            return data.decode()

    wrapped = resolve_serializer(Minimal())
    buffer = io.BytesIO()
    wrapped.dump([1], buffer)
    assert buffer.getvalue() == b"[1]" == wrapped.dumps([1])
    buffer.seek(0)
    assert wrapped.load(buffer) == "[1]" == wrapped.loads(b"[1]")


def test_resolve_import_strings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    (tmp_path / "my_serializers.py").write_text(
        "from flask_caching.serializers import JSONSerializer\n"
        "INSTANCE = JSONSerializer()\n"
        "class Holder:\n"
        "    inner = INSTANCE\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    request.addfinalizer(lambda: sys.modules.pop("my_serializers", None))
    module = importlib.import_module("my_serializers")
    assert resolve_serializer("my_serializers.INSTANCE") is module.INSTANCE
    assert resolve_serializer("my_serializers:INSTANCE") is module.INSTANCE
    assert resolve_serializer("my_serializers:Holder.inner") is module.INSTANCE
    made: object = resolve_serializer("flask_caching.serializers.JSONSerializer")
    assert type(made) is JSONSerializer
    made = t.cast(object, resolve_serializer("cachelib.serializers:SimpleSerializer"))
    assert type(made) is CachelibSimple  # returned as is: it has dump/load


@pytest.mark.parametrize(
    "setting",
    [
        "yaml",
        "msgpack",
        "no_such_module_xyz.Serializer",
        "flask_caching.serializers.Nope",
        "flask_caching.serializers:Nope.deeper",
        ":JSONSerializer",
        "json.dumps",  # a function, not a serializer
        "flask_caching.serializers:SignedPickleSerializer",  # needs arguments
        42,
        object(),
    ],
)
def test_bad_serializer_settings_name_the_setting(setting: object) -> None:
    with pytest.raises(ConfigurationError, match="CACHE_SERIALIZER="):
        resolve_serializer(setting)


@pytest.mark.parametrize(
    "algorithm", ["md5", "sha1", "MD5", "crc32", "sum", "shake_128", "nope", "", 5]
)
def test_bad_algorithms_name_the_setting(algorithm: t.Any) -> None:
    with pytest.raises(ConfigurationError, match="CACHE_SERIALIZER_ALGORITHM"):
        resolve_serializer("pickle", algorithm=algorithm)
    with pytest.raises(ConfigurationError, match="CACHE_SERIALIZER_ALGORITHM"):
        SignedPickleSerializer([SECRET], algorithm=algorithm)


def test_every_listed_algorithm_works() -> None:
    for name in ALGORITHMS:
        if name not in hashlib.algorithms_available:
            continue
        assert check_algorithm(name.upper().replace("_", "-")) == name
        s = SignedPickleSerializer([SECRET], algorithm=name)
        assert s.loads(s.dumps(RESPONSE)) == RESPONSE


def test_configuration_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        resolve_serializer("pickle-signed")


def test_algorithm_missing_from_this_openssl(monkeypatch: pytest.MonkeyPatch) -> None:
    def unsupported(*args: t.Any, **kwargs: t.Any) -> t.NoReturn:
        raise ValueError("unsupported hash type")

    monkeypatch.setattr(hmac, "new", unsupported)
    with pytest.raises(ConfigurationError, match="not available.*'sha256'"):
        check_algorithm("sha3_512")


def test_base_serializer_derives_the_stream_pair() -> None:
    class Upper(BaseSerializer):
        def dumps(self, value: t.Any) -> bytes:
            return str(value).upper().encode()

        def loads(self, data: bytes) -> t.Any:
            return data.decode()

    buffer = io.BytesIO()
    Upper().dump("abc", buffer)
    buffer.seek(0)
    assert Upper().load(buffer) == "ABC"
    with pytest.raises(NotImplementedError):
        BaseSerializer().dumps(1)
    with pytest.raises(NotImplementedError):
        BaseSerializer().loads(b"")


def test_a_serializer_class_that_cannot_be_built_says_so() -> None:
    class NeedsArguments:
        def __init__(self, required: str) -> None:
            self.required = required

        def dumps(self, value: t.Any) -> bytes:
            return b""

        def loads(self, data: bytes) -> t.Any:
            return None

    with pytest.raises(ValueError) as caught:
        resolve_serializer(NeedsArguments)
    assert isinstance(caught.value, ConfigurationError)
    assert str(caught.value).startswith(
        f"Couldn't instantiate serializer: {NeedsArguments}!"
    )
    assert "pass an instance" in str(caught.value)
