"""Vectorized conversions that Arrow compute has no kernel for: base64, UUID v4, big-endian
bytes of an integer, MySQL TIME text, floor division of timestamps, per-row change lists.

Each works on whole arrays with numpy or Arrow kernels; no Python loop runs over values.
"""

from __future__ import annotations

import os
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_B64 = np.frombuffer(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", dtype=np.uint8
)
# The two hex digits of every byte value, as one uint16 each: one gather per byte.
_HEX_PAIRS = np.frombuffer(b"".join(b"%02x" % i for i in range(256)), dtype=np.uint16)
# Where the 32 hex digits go in the 36 characters of a UUID's text (dashes between).
_UUID_GROUPS = ((0, 8, 0), (9, 13, 8), (14, 18, 12), (19, 23, 16), (24, 36, 20))
_EQ = ord("=")


def _offsets(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Value offsets (relative to the data buffer) and the data buffer of a binary array."""
    large = pa.types.is_large_binary(array.type) or pa.types.is_large_string(array.type)
    width = np.int64 if large else np.int32
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], dtype=width)[array.offset : array.offset + len(array) + 1]
    data = (
        np.frombuffer(buffers[2], dtype=np.uint8)
        if buffers[2] is not None
        else np.zeros(0, np.uint8)
    )
    return offsets.astype(np.int64), data


def base64(array: pa.Array) -> pa.Array:
    """Standard base64 (with padding) of every value of a binary array, as strings."""
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        array = array.cast(
            pa.large_binary() if pa.types.is_large_string(array.type) else pa.binary()
        )
    n = len(array)
    offsets, data = _offsets(array)
    lengths = np.diff(offsets)
    valid = (
        np.ones(n, bool)
        if array.null_count == 0
        else np.asarray(array.is_valid().to_numpy(zero_copy_only=False))
    )
    lengths = np.where(valid, lengths, 0)
    padded = (lengths + 2) // 3 * 3
    padded_start = np.concatenate(([0], np.cumsum(padded)))
    total = int(lengths.sum())
    # Scatter every byte to its place in a copy where each value is padded to 3 bytes.
    within = np.arange(total, dtype=np.int64) - np.repeat(
        np.concatenate(([0], np.cumsum(lengths)))[:-1], lengths
    )
    source = np.repeat(offsets[:-1], lengths) + within
    target = np.repeat(padded_start[:-1], lengths) + within
    buffer = np.zeros(int(padded_start[-1]), np.uint8)
    buffer[target] = data[source]
    groups = buffer.reshape(-1, 3).astype(np.uint32)
    word = (groups[:, 0] << 16) | (groups[:, 1] << 8) | groups[:, 2]
    chars = np.stack([_B64[(word >> shift) & 63] for shift in (18, 12, 6, 0)], axis=1).ravel()
    out_offsets = padded_start // 3 * 4
    ends = out_offsets[1:]
    rest = lengths % 3
    chars[ends[rest == 1] - 2] = _EQ
    chars[ends[(rest == 1) | (rest == 2)] - 1] = _EQ
    large = out_offsets[-1] >= 2**31
    offsets_buffer = pa.py_buffer(out_offsets.astype(np.int64 if large else np.int32))
    validity = None if array.null_count == 0 else array.is_valid().buffers()[1]
    out = pa.Array.from_buffers(
        pa.large_string() if large else pa.string(),
        n,
        [validity, offsets_buffer, pa.py_buffer(chars)],
        array.null_count,
    )
    return out


def big_endian(array: pa.Array, width: int) -> pa.Array:
    """The `width` low bytes of unsigned integers, most significant first (MySQL's BIT bytes)."""
    if pa.types.is_decimal(array.type):
        array = pc.cast(array, pa.uint64())
    values = np.asarray(pc.fill_null(pc.cast(array, pa.uint64()), 0).to_numpy(), ">u8")
    raw = values.view(np.uint8).reshape(-1, 8)[:, 8 - width :]
    fixed = pa.Array.from_buffers(
        pa.binary(width), len(array), [None, pa.py_buffer(np.ascontiguousarray(raw))]
    )
    out = fixed.cast(pa.binary())
    return out if array.null_count == 0 else pc.if_else(array.is_valid(), out, None)


def uuid4(count: int, as_bytes: bool = False) -> pa.Array:
    """`count` random UUIDs, version 4 and RFC 4122 variant, as text (or 16 raw bytes)."""
    raw = np.frombuffer(os.urandom(16 * count), np.uint8).reshape(count, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    if as_bytes:
        return pa.Array.from_buffers(pa.binary(16), count, [None, pa.py_buffer(raw)])
    digits = _HEX_PAIRS[raw].view(np.uint8).reshape(count, 32)
    text = np.full((count, 36), ord("-"), np.uint8)
    for start, end, source in _UUID_GROUPS:
        text[:, start:end] = digits[:, source : source + end - start]
    offsets = pa.py_buffer(np.arange(0, 36 * count + 1, 36, dtype=np.int32))
    return pa.Array.from_buffers(pa.string(), count, [None, offsets, pa.py_buffer(text.ravel())])


def floor_divide(values: pa.Array, by: int) -> tuple[pa.Array, pa.Array]:
    """Integer floor division (toward minus infinity, as Java's floorDiv), and where a
    remainder was dropped."""
    quotient = pc.divide(values, by)  # truncates toward zero
    product = pc.multiply(quotient, by)
    inexact = pc.fill_null(pc.not_equal(product, values), False)
    below = pc.and_(inexact, pc.fill_null(pc.less(values, 0), False))
    return pc.if_else(below, pc.subtract(quotient, 1), quotient), inexact


_TIME = r"^(?P<sign>-?)(?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d)(?:\.(?P<f>\d{1,6}))?$"
DAY_MICROS = 86_400_000_000


def time_text_micros(text: pa.Array) -> pa.Array:
    """MySQL TIME text ('-838:59:59.000000' .. '838:59:59') as signed microseconds."""
    parts = pc.extract_regex(text, _TIME)
    hours = pc.cast(pc.struct_field(parts, "h"), pa.int64())
    minutes = pc.cast(pc.struct_field(parts, "m"), pa.int64())
    seconds = pc.cast(pc.struct_field(parts, "s"), pa.int64())
    fraction = pc.utf8_rpad(pc.fill_null(pc.struct_field(parts, "f"), ""), 6, "0")
    micros = pc.add(
        pc.multiply(
            pc.add(pc.add(pc.multiply(hours, 3600), pc.multiply(minutes, 60)), seconds), 1_000_000
        ),
        pc.cast(fraction, pa.int64()),
    )
    negative = pc.equal(pc.struct_field(parts, "sign"), "-")
    return pc.if_else(negative, pc.negate(micros), micros)


def significant_digits(text: pa.Array) -> pa.Array:
    """Significant digits of decimal text: leading zeros and trailing fractional zeros aside."""
    trimmed = pc.replace_substring_regex(text, r"(\.\d*?)0+$", r"\1")
    digits = pc.replace_substring_regex(trimmed, r"[^0-9]", "")
    return pc.utf8_length(pc.replace_substring_regex(digits, r"^0+", ""))


def decimal_bound(value: int) -> pa.Scalar:
    return pa.scalar(Decimal(value), pa.decimal128(38, 0))


def change_lists(
    count: int, entries: list[tuple[pa.Array, str, str, str]], list_type: pa.DataType
) -> pa.Array:
    """One list per row of {field, change, reason}: an entry for each (mask, field, change,
    reason) whose mask is true on that row, in the order given."""
    rows, which = [], []
    for k, (mask, _, _, _) in enumerate(entries):
        hit = np.flatnonzero(np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False)))
        rows.append(hit)
        which.append(np.full(len(hit), k, np.int32))
    row = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    kind = np.concatenate(which) if which else np.zeros(0, np.int32)
    order = np.lexsort((kind, row))
    row, kind = row[order], kind[order]
    offsets = np.concatenate(([0], np.cumsum(np.bincount(row, minlength=count)))).astype(np.int32)
    item = list_type.value_type
    labels = {
        "field": [e[1] for e in entries],
        "change": [e[2] for e in entries],
        "reason": [e[3] for e in entries],
    }
    indices = pa.array(kind, pa.int32())
    children = []
    for i in range(item.num_fields):
        member = item.field(i)
        if member.name in labels:
            children.append(pc.take(pa.array(labels[member.name], member.type), indices))
        else:
            children.append(pa.nulls(len(kind), member.type))
    values = pa.StructArray.from_arrays(children, fields=list(item))
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values, type=list_type)
