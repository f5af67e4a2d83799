"""Canonical encoding of values and xxh3_128 hashing for cache keys.

The encoding is type-tagged and length-prefixed, so two different values never encode
to the same bytes (unlike a ``"-".join`` of strings). Plain JSON-like data takes a fast
path through orjson with sorted keys; everything else goes through ``encode``, a
``functools.singledispatch`` function that types can register with.
"""

from __future__ import annotations

import datetime
import enum
import functools
import json
import math
import pathlib
import struct
from collections.abc import Mapping
from typing import Any

import orjson
import xxhash

__all__ = ["UnhashableValueError", "encode", "hash_bytes", "hash_value"]


class UnhashableValueError(TypeError):
    """A value has no deterministic encoding, so it cannot be part of a cache key."""


def hash_bytes(data: bytes) -> str:
    """The hex xxh3_128 digest of ``data``."""
    return xxhash.xxh3_128_hexdigest(data)


def hash_value(value: Any) -> str:
    """The hex xxh3_128 digest of the canonical encoding of ``value``."""
    if type(value) is list and len(value) > _CHUNK:
        pieces = _hash_long_list(value)
        if pieces is not None:
            return pieces
    tag, data = _canonical_parts(value)
    digest = xxhash.xxh3_128(tag)  # streamed: the same digest as hash_bytes(tag + data),
    digest.update(data)            # without copying a large encoding once more
    return digest.hexdigest()


#: Items of a long list encoded at a time (a loader's rows): each piece's JSON stays in
#: the CPU cache and in memory already mapped, where one encoding of 100,000 rows (~20 MB)
#: costs page faults and a scan of memory for "null" three times as long.
_CHUNK = 1024


def _hash_long_list(value: list[Any]) -> str | None:
    """The digest of ``b"J" + orjson.dumps(value)`` (the fast path of ``canonical``),
    computed piece by piece; None when ``value`` needs the tagged encoding instead."""
    digest = xxhash.xxh3_128(b"J[")
    for start in range(0, len(value), _CHUNK):
        piece = value[start:start + _CHUNK]
        try:
            data = orjson.dumps(piece, option=_JSON_OPTIONS)
        except (TypeError, orjson.JSONEncodeError):
            return None
        if _contains_null(data) and _has_non_finite(piece):
            return None
        if start:
            digest.update(b",")
        digest.update(memoryview(data)[1:-1])  # the items, without the piece's brackets
    digest.update(b"]")
    return digest.hexdigest()


def canonical(value: Any) -> bytes:
    """Canonical bytes of ``value``: the orjson fast path or the tagged encoding."""
    tag, data = _canonical_parts(value)
    return tag + data


#: orjson writes dates as ISO strings (so a date and its text would hash alike, and the
#: check for NaN below could not re-encode them): they take the tagged encoding instead.
_JSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def _canonical_parts(value: Any) -> tuple[bytes, bytes]:
    """The canonical encoding as (tag, payload): ``b"J"`` and orjson's sorted-keys JSON
    for plain JSON data, ``b"T"`` and the tagged encoding for everything else."""
    try:
        data = orjson.dumps(value, option=_JSON_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):
        return b"T", encode(value)
    if b"null" in data and _has_non_finite(value):  # orjson writes nan and inf as null
        return b"T", encode(value)
    return b"J", data


def _libc_memmem() -> Any:
    """The C library's ``memmem`` (SIMD, about three times as fast as ``bytes in`` for a
    four-byte needle), or None where ctypes cannot reach it."""
    try:
        import ctypes

        memmem = ctypes.CDLL(None).memmem
    except (ImportError, OSError, AttributeError):
        return None
    memmem.restype = ctypes.c_void_p
    memmem.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
    return memmem


_MEMMEM = _libc_memmem()


def _contains_null(data: bytes) -> bool:
    """Whether orjson's output holds ``null`` (None, or a NaN or infinity it wrote so)."""
    if _MEMMEM is None or len(data) < 4096:
        return b"null" in data
    return _MEMMEM(data, len(data), b"null", 4) is not None


def _has_non_finite(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return True
    return False


def _frame(tag: bytes, payload: bytes) -> bytes:
    return tag + struct.pack("<Q", len(payload)) + payload


@functools.singledispatch
def encode(value: Any) -> bytes:
    """Tagged, length-prefixed encoding; register new types with ``encode.register``."""
    fingerprint = getattr(value, "__cache_fingerprint__", None)
    if callable(fingerprint):
        return _frame(b"O", type(value).__qualname__.encode() + b"\0" + encode(fingerprint()))
    msg = (
        f"cannot hash a value of type {type(value).__module__}.{type(value).__qualname__} "
        "deterministically for the cache key; pass plain data (str, int, float, bool, None, "
        "lists, dicts, paths) or give the type a __cache_fingerprint__() method"
    )
    raise UnhashableValueError(msg)


@encode.register(type(None))
def _(value: None) -> bytes:
    return b"N"


@encode.register(bool)
def _(value: bool) -> bytes:
    return b"B1" if value else b"B0"


@encode.register(int)
def _(value: int) -> bytes:
    return _frame(b"I", str(value).encode())


@encode.register(float)
def _(value: float) -> bytes:
    if math.isnan(value):
        return b"Fnan"
    return _frame(b"F", repr(value).encode())


@encode.register(str)
def _(value: str) -> bytes:
    return _frame(b"S", value.encode("utf-8", "surrogatepass"))


@encode.register(bytes)
def _(value: bytes) -> bytes:
    return _frame(b"Y", value)


@encode.register(list)
@encode.register(tuple)
def _(value: list[Any] | tuple[Any, ...]) -> bytes:
    return _frame(b"L", b"".join(encode(item) for item in value))


@encode.register(set)
@encode.register(frozenset)
def _(value: set[Any] | frozenset[Any]) -> bytes:
    return _frame(b"E", b"".join(sorted(encode(item) for item in value)))


@encode.register(Mapping)
def _(value: Mapping[Any, Any]) -> bytes:
    items = sorted(encode(k) + encode(v) for k, v in value.items())
    return _frame(b"D", b"".join(items))


@encode.register(datetime.datetime)
@encode.register(datetime.date)
@encode.register(datetime.time)
def _(value: datetime.date | datetime.time) -> bytes:
    tz = getattr(value, "tzinfo", None)
    parts = [type(value).__name__, value.isoformat(), str(getattr(value, "fold", 0)),
             "" if tz is None else f"{type(tz).__module__}.{type(tz).__qualname__}:{tz!r}"]
    return _frame(b"M", "\0".join(parts).encode())


@encode.register(pathlib.PurePath)
def _(value: pathlib.PurePath) -> bytes:
    return _frame(b"P", str(value).encode())


@encode.register(enum.Enum)
def _(value: enum.Enum) -> bytes:
    return _frame(b"V", type(value).__qualname__.encode() + b"\0" + encode(value.value))


@functools.lru_cache(maxsize=1)
def _register_pyarrow() -> None:
    import pyarrow as pa

    @encode.register(pa.Table)
    def _(value: pa.Table) -> bytes:
        return _frame(b"A", hash_table(value).encode())


def hash_table(table: Any) -> str:
    """Content hash of a pyarrow Table (schema and values, not chunking)."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    combined = table.combine_chunks()
    with pa.ipc.new_stream(sink, combined.schema) as writer:
        writer.write_table(combined)
    return hash_bytes(sink.getvalue().to_pybytes())


_register_pyarrow()
