"""Vectorized kernels of the reverse conversions (extractor/compat/reverse.py): base64 text
back to bytes, big-endian bytes back to integers, time of day to MySQL's TIME text, ISO text
back to dates and timestamps, decimals to MySQL's DECIMAL text, significant digits.

Whole arrays with numpy or Arrow kernels; no Python loop runs over values. A kernel that can
fail on a value returns a mask of the values it could not decode, never an exception.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from extractor.compat.kernels import _offsets

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_PAD, _BAD = 64, 255
_SEXTET = np.full(256, _BAD, np.uint8)
_SEXTET[np.frombuffer(_ALPHABET, np.uint8)] = np.arange(64, dtype=np.uint8)
_SEXTET[ord("=")] = _PAD


def _valid(array: pa.Array) -> np.ndarray:
    if array.null_count == 0:
        return np.ones(len(array), bool)
    return np.asarray(array.is_valid().to_numpy(zero_copy_only=False))


def _gather(offsets: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Indexes into the data buffer of every byte of the values, in order."""
    starts = np.repeat(offsets[:-1], lengths)
    within = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(
        np.concatenate(([0], np.cumsum(lengths)))[:-1], lengths
    )
    out: np.ndarray = starts + within
    return out


def _binary(lengths: np.ndarray, data: np.ndarray, valid: np.ndarray) -> pa.Array:
    offsets = np.concatenate(([0], np.cumsum(np.where(valid, lengths, 0)))).astype(np.int64)
    mask = pa.array(valid)
    large = offsets[-1] >= 2**31
    out = pa.Array.from_buffers(
        pa.large_binary() if large else pa.binary(),
        len(lengths),
        [
            mask.buffers()[1] if not valid.all() else None,
            pa.py_buffer(offsets if large else offsets.astype(np.int32)),
            pa.py_buffer(data),
        ],
        int((~valid).sum()),
    )
    return out if not large else out.cast(pa.binary())


def base64_decode(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The bytes of standard, padded base64 text, and a mask of the values that are not
    base64 (they decode to NULL)."""
    n = len(text)
    offsets, data = _offsets(text)
    lengths = np.diff(offsets)
    present = _valid(text)
    ok = present & (lengths % 4 == 0)
    use = np.where(ok, lengths, 0)
    sextets = _SEXTET[data[_gather(offsets, use)]].reshape(-1, 4)
    quads = use // 4
    owner = np.repeat(np.arange(n), quads)
    last = np.concatenate(([0], np.cumsum(quads)))[1:] - 1  # each value's last quad
    # '=' only as the last one or two characters of a value; nothing else outside the alphabet.
    pads = np.zeros(n, np.int64)
    has = quads > 0
    tail = sextets[last[has]] if has.any() else np.zeros((0, 4), np.uint8)
    pads[has] = (tail[:, 3] == _PAD).astype(np.int64) + (
        (tail[:, 2] == _PAD) & (tail[:, 3] == _PAD)
    )
    bad_quad = (sextets == _BAD).any(axis=1)
    pad_here = sextets == _PAD
    expected = np.zeros_like(pad_here)
    if has.any():
        expected[last[has], 3] = pads[has] >= 1
        expected[last[has], 2] = pads[has] == 2
    bad_quad |= (pad_here != expected).any(axis=1)
    bad = np.zeros(n, bool)
    np.logical_or.at(bad, owner, bad_quad)
    ok &= ~bad
    values = np.where(pad_here, 0, sextets).astype(np.uint32)
    word = (values[:, 0] << 18) | (values[:, 1] << 12) | (values[:, 2] << 6) | values[:, 3]
    raw = (
        np.stack([(word >> 16) & 255, (word >> 8) & 255, word & 255], axis=1)
        .astype(np.uint8)
        .ravel()
    )
    out_lengths = quads * 3 - pads
    # Drop the padding bytes and the bytes of values that turned out not to be base64.
    keep = np.repeat(ok, quads * 3)
    ends = np.cumsum(quads * 3)
    for k in (1, 2):
        cut = (pads >= k) & ok
        keep[ends[cut] - k] = False
    decoded = _binary(out_lengths, raw[keep], ok)
    return decoded, pa.array(present & ~ok)


def big_endian_unsigned(raw: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Big-endian bytes (MySQL's BIT bytes) as uint64, and a mask of the values longer than
    8 bytes (they are NULL)."""
    n = len(raw)
    offsets, data = _offsets(raw)
    lengths = np.diff(offsets)
    present = _valid(raw)
    ok = present & (lengths <= 8)
    use = np.where(ok, lengths, 0)
    matrix = np.zeros((n, 8), np.uint8)
    rows = np.repeat(np.arange(n), use)
    within = np.arange(int(use.sum()), dtype=np.int64) - np.repeat(
        np.concatenate(([0], np.cumsum(use)))[:-1], use
    )
    matrix[rows, 8 - np.repeat(use, use) + within] = data[_gather(offsets, use)]
    values = np.ascontiguousarray(matrix).view(">u8").ravel().astype(np.uint64)
    return pa.array(values, pa.uint64(), mask=~ok), pa.array(present & ~ok)


def without_srid(raw: pa.Array) -> pa.Array:
    """WKB from MySQL's own geometry bytes (a 4-byte little-endian SRID, then WKB), which
    Airbyte's source read: WKB as MySQL and MariaDB write it starts with 01 (little-endian),
    so a value that does not, but does at byte 5, loses its first four bytes. A value that
    is WKB already (a compatible write's) is kept."""
    offsets, data = _offsets(raw)
    starts, lengths = offsets[:-1], np.diff(offsets)
    present = _valid(raw)
    long = present & (lengths >= 5)
    first = np.zeros(len(raw), np.uint8)
    fifth = np.zeros(len(raw), np.uint8)
    first[long], fifth[long] = data[starts[long]], data[starts[long] + 4]
    cut = np.where(long & (first != 1) & (fifth == 1), 4, 0)
    kept = np.where(present, lengths - cut, 0)
    picked = (
        np.repeat(starts + cut, kept)
        + np.arange(int(kept.sum()), dtype=np.int64)
        - np.repeat(np.concatenate(([0], np.cumsum(kept)))[:-1], kept)
    )
    return _binary(kept, data[picked], present)


def time_text(micros: pa.Array, digits: int) -> pa.Array:
    """A time of day in microseconds (0 .. 24 h) as MySQL's TIME text with `digits`
    fractional digits: '09:05:00', '12:00:00.000001'."""

    def two(v: pa.Array) -> pa.Array:
        return pc.utf8_lpad(pc.cast(v, pa.string()), 2, "0")

    seconds = pc.divide(micros, 1_000_000)
    parts = [
        two(pc.divide(seconds, 3600)),
        ":",
        two(pc.divide(pc.subtract(seconds, pc.multiply(pc.divide(seconds, 3600), 3600)), 60)),
        ":",
        two(pc.subtract(seconds, pc.multiply(pc.divide(seconds, 60), 60))),
    ]
    if digits:
        fraction = pc.utf8_lpad(
            pc.cast(pc.subtract(micros, pc.multiply(seconds, 1_000_000)), pa.string()), 6, "0"
        )
        parts += [".", pc.utf8_slice_codeunits(fraction, 0, digits)]
    return pc.binary_join_element_wise(*parts, "")


_DATE = r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})"
_CLOCK = r"(?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2})(?:\.(?P<f>\d{1,9}))?"
_DATE_TEXT = f"^{_DATE}$"
_TIMESTAMP_TEXT = f"^{_DATE}[T ]{_CLOCK}(?:Z|[+-]00:?00)?$"
_TIME_TEXT = f"^{_CLOCK}$"


def _field(parts: pa.Array, name: str) -> pa.Array:
    return pc.struct_field(parts, name)


def _shape(text: pa.Array, pattern: str) -> tuple[pa.Array, pa.Array]:
    """The regex groups of each value, and a mask of present values of another shape."""
    matches = pc.fill_null(pc.match_substring_regex(text, pattern), False)
    other = pc.and_(text.is_valid(), pc.invert(matches))
    return pc.extract_regex(pc.if_else(matches, text, pa.scalar(None, pa.string())), pattern), other


def _fraction_micros(parts: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Microseconds of the fractional digits, and where digits beyond them were dropped."""
    digits = pc.fill_null(_field(parts, "f"), "")
    micros = pc.cast(pc.utf8_rpad(pc.utf8_slice_codeunits(digits, 0, 6), 6, "0"), pa.int64())
    beyond = pc.utf8_slice_codeunits(digits, 6, 9)
    dropped = pc.fill_null(pc.match_substring_regex(beyond, "[1-9]"), False)
    return micros, dropped


def _checked(text: pa.Array, parsed: pa.Array, form: str) -> pa.Array:
    """NULL where strptime rolled an invalid date over (2024-02-31 into March): the date
    must print back as the text it came from."""
    same = pc.fill_null(pc.equal(pc.strftime(parsed, format=form), text), False)
    return pc.if_else(same, parsed, pa.scalar(None, parsed.type))


def parse_date(text: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """'YYYY-MM-DD' as date32; masks of the values of another shape (lost) and of zero or
    invalid dates (NULL by the contract's rules, like the contract's own read)."""
    parts, other = _shape(text, _DATE_TEXT)
    day = pc.binary_join_element_wise(
        _field(parts, "y"), _field(parts, "mo"), _field(parts, "d"), "-"
    )
    parsed = _checked(
        day, pc.strptime(day, format="%Y-%m-%d", unit="s", error_is_null=True), "%Y-%m-%d"
    )
    year_zero = pc.equal(_field(parts, "y"), "0000")  # no calendar has it: the contract NULLs it
    parsed = pc.if_else(pc.fill_null(year_zero, False), pa.scalar(None, parsed.type), parsed)
    invalid = pc.and_(parsed.is_null(), parts.is_valid())
    return pc.cast(parsed, pa.date32()), other, invalid


def parse_timestamp(text: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    """ISO text 'YYYY-MM-DD[T ]hh:mm:ss[.f][Z]' as int64 microseconds of the wall clock (or
    UTC when it says Z); masks: another shape, zero or invalid dates, dropped digits."""
    parts, other = _shape(text, _TIMESTAMP_TEXT)
    clock = pc.binary_join_element_wise(
        _field(parts, "y"),
        "-",
        _field(parts, "mo"),
        "-",
        _field(parts, "d"),
        " ",
        _field(parts, "h"),
        ":",
        _field(parts, "mi"),
        ":",
        _field(parts, "s"),
        "",
    )
    seconds = _checked(
        clock,
        pc.strptime(clock, format="%Y-%m-%d %H:%M:%S", unit="s", error_is_null=True),
        "%Y-%m-%d %H:%M:%S",
    )
    year_zero = pc.fill_null(pc.equal(_field(parts, "y"), "0000"), False)
    seconds = pc.if_else(year_zero, pa.scalar(None, seconds.type), seconds)
    micros, dropped = _fraction_micros(parts)
    value = pc.add(pc.multiply(pc.cast(seconds, pa.int64()), 1_000_000), micros)
    invalid = pc.and_(seconds.is_null(), parts.is_valid())
    return value, other, invalid, dropped


def parse_time(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    """'hh:mm:ss[.f]' as microseconds since midnight; a mask of values of another shape."""
    parts, other = _shape(text, _TIME_TEXT)
    hours, minutes, seconds = (pc.cast(_field(parts, k), pa.int64()) for k in ("h", "mi", "s"))
    micros, _ = _fraction_micros(parts)
    total = pc.add(
        pc.multiply(
            pc.add(pc.add(pc.multiply(hours, 3600), pc.multiply(minutes, 60)), seconds), 1_000_000
        ),
        micros,
    )
    return total, other


def decimal_text(values: pa.Array) -> pa.Array:
    """MySQL's text of decimals: every digit of the scale, never an exponent ('0.000', not
    Arrow's '0E-3'). Below 1 Arrow may write an exponent, so those are printed as 1 + |v|
    (which it writes plainly) with the leading 1 turned back into 0."""
    t = pa.decimal256(75, values.type.scale)  # room for the 1 added
    magnitude = pc.abs(pc.cast(values, t))
    one = pa.scalar(1, pa.decimal256(1, 0))
    small = pc.fill_null(pc.less(magnitude, one.cast(t)), False)
    plain = pc.cast(magnitude, pa.string())
    shifted = pc.binary_join_element_wise(
        "0", pc.utf8_slice_codeunits(pc.cast(pc.add(magnitude, one), pa.string()), 1), ""
    )
    text = pc.if_else(small, shifted, plain)
    negative = pc.fill_null(
        pc.less(values, pa.scalar(0, pa.decimal128(1, 0)).cast(values.type)), False
    )
    return pc.if_else(negative, pc.binary_join_element_wise("-", text, ""), text)


def significant_digits(values: pa.Array) -> pa.Array:
    """Significant digits of decimals: leading and trailing zeros do not count (12.50 has
    3, 1200 has 2)."""
    digits = pc.replace_substring_regex(decimal_text(values), r"[^0-9]", "")
    return pc.utf8_length(pc.replace_substring_regex(digits, r"^0+|0+$", ""))
