"""How a column of an old partition becomes the exact contract again: the way back from what
Airbyte (or a compatible write, extractor/compat/rules.py) wrote to the type contract.

`reverse(column, contract, found)` picks the conversion from the type an old partition holds
(`found`) to the contract's Arrow type, most specific first, and says what it is:
- `identical`: the same type;
- `exact`: every value comes back as MySQL held it (a DOUBLE of a DECIMAL(p ≤ 15, s) rounded
  half-even at scale s, base64 text decoded, millis to micros, a timestamp that took
  DATETIME's wall clock as UTC back to that wall clock, member0/member1 to the plain type);
- `not_guaranteed`: the old type may have rounded some values (a DOUBLE of more than 15
  significant digits, a DATETIME(6) in milliseconds, GEOMETRY's text); each is counted;
- `possibly_lost`: the old type merged values (TINYINT(1) 2..127 became true); counted;
- `unsupported`: no conversion (migrate refuses the table).
`apply(array)` returns the contract's array and, by mark, masks of the values to count.
`narrower`: the old type cannot hold every value of the column and Airbyte wrote NULL for
those (BIGINT UNSIGNED in a long, TIME beyond a day); where nothing recorded which (the
legacy era), every NULL of such a column is possibly a lost value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from extractor.compat import decode
from extractor.compat.rules import EXACT_DOUBLE_DIGITS, plain_type
from extractor.contract.types import Column

Kind = Literal["identical", "exact", "not_guaranteed", "possibly_lost", "unsupported"]
# How a value that may not equal the source is counted (extractor/compat/migration.py).
Mark = Literal["lost", "inexact", "possibly_lost", "not_guaranteed", "nulled"]
Marks = list[tuple[Mark, pa.Array]]
Apply = Callable[[pa.Array], tuple[pa.Array, Marks]]
_RANK: dict[Kind, int] = {
    "identical": 0,
    "exact": 1,
    "not_guaranteed": 2,
    "possibly_lost": 3,
    "unsupported": 4,
}
_UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1}
_DIGITS = {"s": 0, "ms": 3, "us": 6, "ns": 9}
_DAY = 86_400_000_000
_GEOMETRY = {
    "geometry",
    "point",
    "linestring",
    "polygon",
    "multipoint",
    "multilinestring",
    "multipolygon",
    "geometrycollection",
    "geomcollection",
}
_FLOAT_DIGITS = 6  # decimal digits a float always holds


@dataclass(frozen=True)
class Reverse:
    kind: Kind
    how: str
    apply: Apply
    narrower: bool = False
    counted: str | None = None  # which values are counted, besides lost and NULLed ones


def reverse(column: Column, contract: pa.DataType, found: pa.DataType) -> Reverse:
    """The conversion of `column`, found as `found`, back to the contract's `contract`."""
    contract, found = plain_type(contract), plain_type(found)
    if contract == found:
        return Reverse("identical", "as it is", lambda a: (a, []))
    if pa.types.is_struct(found) and found.get_field_index("member0") >= 0:
        return _members(column, contract, found)
    for pick in (
        _from_text,
        _from_boolean,
        _from_integer,
        _from_floating,
        _from_decimal,
        _from_temporal,
        _from_binary,
    ):
        chosen = pick(column, contract, found)
        if chosen is not None:
            return chosen
    return unsupported(found, contract)


def unsupported(found: pa.DataType, contract: pa.DataType) -> Reverse:
    def apply(a: pa.Array) -> tuple[pa.Array, Marks]:
        return pa.nulls(len(a), contract), [("lost", a.is_valid())]

    return Reverse("unsupported", f"no conversion from {found} to {contract}", apply)


def _null(t: pa.DataType) -> pa.Scalar:
    return pa.scalar(None, t)


def _where(mask: pa.Array, a: pa.Array) -> pa.Array:
    """`a` with NULL where `mask` is true."""
    return pc.if_else(mask, _null(a.type), a)


def _true(mask: pa.Array) -> pa.Array:
    return pc.fill_null(mask, False)


def _worst(*kinds: Kind) -> Kind:
    return max(kinds, key=lambda k: _RANK[k])


# -- Airbyte's legacy unions -----------------------------------------------------------------
def _members(column: Column, contract: pa.DataType, found: pa.StructType) -> Reverse:
    inner = reverse(column, contract, found.field("member0").type)
    index = found.get_field_index("member1")
    text = (
        reverse(column, contract, pa.string())
        if index >= 0 and plain_type(found.field(index).type) == pa.string()
        else None
    )
    if inner.kind == "unsupported":
        return unsupported(found, contract)

    def apply(a: pa.Array) -> tuple[pa.Array, Marks]:
        first = pc.struct_field(a, "member0")
        value, marks = inner.apply(first)
        if text is None:
            return value, marks
        second = pc.struct_field(a, "member1")
        use = _true(pc.and_(first.is_null(), second.is_valid()))
        if not pc.any(use).as_py():
            return value, marks
        parsed, more = text.apply(_where(pc.invert(use), second))
        return pc.if_else(use, parsed, value), [*marks, *more]

    kind = _worst(inner.kind, text.kind if text else "exact", "exact")
    how = f"member0 {inner.how}" + ("; member1's text parsed where member0 is NULL" if text else "")
    return Reverse(kind, how, apply, inner.narrower, inner.counted)


# -- text --------------------------------------------------------------------------------------
def _from_text(column: Column, contract: pa.DataType, found: pa.DataType) -> Reverse | None:
    if found != pa.string():
        return None
    if pa.types.is_date(contract):

        def date(a: pa.Array) -> tuple[pa.Array, Marks]:
            out, other, invalid = decode.parse_date(a)
            return out, [("lost", other), ("nulled", invalid)]

        return Reverse("exact", "date text parsed", date)
    if pa.types.is_timestamp(contract):

        def stamp(a: pa.Array) -> tuple[pa.Array, Marks]:
            micros, other, invalid, dropped = decode.parse_timestamp(a)
            out = pc.cast(micros, pa.timestamp("us", tz=contract.tz))
            return out, [("lost", other), ("nulled", invalid), ("inexact", dropped)]

        return Reverse("exact", "ISO text parsed", stamp)
    if pa.types.is_binary(contract):
        geometry = column.data_type in _GEOMETRY

        def binary(a: pa.Array) -> tuple[pa.Array, Marks]:
            out, bad = decode.base64_decode(a)
            marks: Marks = [("lost", bad)]
            if geometry:
                out = decode.without_srid(out)
                marks.append(("not_guaranteed", out.is_valid()))
            return out, marks

        if geometry:
            return Reverse(
                "not_guaranteed",
                "base64 decoded, MySQL's SRID prefix dropped",
                binary,
                counted="every value: the contract's WKB is what MySQL's "
                "ST_AsBinary gives (its axis order), Airbyte's bytes were MySQL's "
                "own",
            )
        return Reverse("exact", "base64 decoded", binary)
    if column.data_type == "bit" and (
        pa.types.is_integer(contract) or pa.types.is_decimal(contract)
    ):

        def bits(a: pa.Array) -> tuple[pa.Array, Marks]:
            raw, bad = decode.base64_decode(a)
            number, long = decode.big_endian_unsigned(raw)
            return pc.cast(number, contract), [("lost", pc.or_(bad, long))]

        return Reverse("exact", "base64 of the big-endian bytes decoded", bits)
    pattern = _number_text(contract)
    if pattern is None:
        return None

    def number(a: pa.Array) -> tuple[pa.Array, Marks]:
        fits = _true(pc.match_substring_regex(a, pattern))
        out = pc.cast(pc.if_else(fits, a, _null(pa.string())), contract)
        return out, [("lost", pc.and_(a.is_valid(), pc.invert(fits)))]

    return Reverse("exact", "its text parsed", number)


def _number_text(contract: pa.DataType) -> str | None:
    """The text a cast to `contract` parses without loss, as a regex; None for no number."""
    if pa.types.is_integer(contract):
        return r"^-?\d{1,19}$"
    if pa.types.is_decimal(contract):
        whole = contract.precision - contract.scale
        return rf"^-?\d{{1,{max(whole, 1)}}}(\.\d{{0,{contract.scale}}})?$"
    if pa.types.is_floating(contract):
        return r"^-?(\d+\.?\d*([eE][-+]?\d+)?|inf|nan)$"
    if pa.types.is_boolean(contract):
        return r"^(true|false)$"
    return None


# -- booleans ----------------------------------------------------------------------------------
def _from_boolean(column: Column, contract: pa.DataType, found: pa.DataType) -> Reverse | None:
    if found != pa.bool_() or not pa.types.is_integer(contract):
        return None

    def apply(a: pa.Array) -> tuple[pa.Array, Marks]:
        return pc.cast(a, contract), [("possibly_lost", _true(a))]

    return Reverse(
        "possibly_lost",
        "true 1, false 0",
        apply,
        counted="true values: a value 2..127 was written as true too",
    )


# -- integers ----------------------------------------------------------------------------------
def _bounds(t: pa.DataType) -> tuple[int, int]:
    if pa.types.is_decimal(t):
        top = 10 ** (t.precision - t.scale) - 1
        return -top, top
    width = t.bit_width
    if pa.types.is_signed_integer(t):
        return -(2 ** (width - 1)), 2 ** (width - 1) - 1
    return 0, 2**width - 1


def _from_integer(column: Column, contract: pa.DataType, found: pa.DataType) -> Reverse | None:
    if not pa.types.is_integer(found):
        return None
    low, high = _bounds(found)
    if pa.types.is_integer(contract) or pa.types.is_decimal(contract):
        want_low, want_high = _bounds(contract)
        narrower = low > want_low or high < want_high
        outside = want_low > low or want_high < high
        wide = pa.decimal128(38, 0)

        def apply(a: pa.Array) -> tuple[pa.Array, Marks]:
            if not outside:
                return pc.cast(a, contract), []
            w = pc.cast(a, wide)
            out_of = _true(
                pc.or_(pc.less(w, _decimal(want_low)), pc.greater(w, _decimal(want_high)))
            )
            return pc.cast(_where(out_of, w), contract), [("lost", out_of)]

        return Reverse("exact", f"{found} to {contract}", apply, narrower)
    if pa.types.is_boolean(contract):

        def flag(a: pa.Array) -> tuple[pa.Array, Marks]:
            other = _true(pc.and_(pc.not_equal(a, 0), pc.not_equal(a, 1)))
            return pc.not_equal(a, 0), [("inexact", other)]

        return Reverse("exact", "0 false, else true", flag)
    return None


def _decimal(value: int, scale: int = 0) -> pa.Scalar:
    return pa.scalar(
        Decimal(value).scaleb(-scale) if scale else Decimal(value), pa.decimal128(38, scale)
    )


# -- floating point ----------------------------------------------------------------------------
def _from_floating(column: Column, contract: pa.DataType, found: pa.DataType) -> Reverse | None:
    if not pa.types.is_floating(found):
        return None
    digits = EXACT_DOUBLE_DIGITS if found == pa.float64() else _FLOAT_DIGITS
    if pa.types.is_decimal(contract):
        if contract.precision <= digits and found == pa.float64():
            return _to_short_decimal(contract)
        return _to_decimal(contract.precision, contract.scale, digits, contract)
    if pa.types.is_string(contract) and column.data_type in ("decimal", "numeric"):
        return _to_decimal(column.precision or 65, column.scale or 0, digits, contract)
    if pa.types.is_floating(contract):
        # FLOAT reached Airbyte as the float's decimal text, which names exactly one float.
        return Reverse(
            "exact", f"{found} to {contract}", lambda a: (pc.cast(a, contract, safe=False), [])
        )
    if pa.types.is_integer(contract):
        return _double_to_integer(contract)
    return None


def _to_decimal(precision: int, scale: int, digits: int, contract: pa.DataType) -> Reverse:
    """A double of a DECIMAL(precision, scale), rounded half-even at the scale: exact when
    the column has at most `digits` digits, else each value of more digits is counted (and
    one that does not even round back to the double as inexact)."""
    text = pa.types.is_string(contract)
    wide = pa.decimal256(min(76, precision + 2), scale)
    most = Decimal(10) ** (precision - scale) - Decimal(1).scaleb(-scale)
    # A double up to the bound may hold a value of the column, clamped to the largest: that
    # value itself can round up to the bound (99999999999999999999 is 1e20 as a double).
    ceiling = float(Decimal(10) ** (precision - scale))
    top, bottom = pa.scalar(most, wide), pa.scalar(-most, wide)

    def apply(a: pa.Array) -> tuple[pa.Array, Marks]:
        d = pc.cast(a, pa.float64())
        outside = _true(pc.or_(pc.invert(pc.is_finite(d)), pc.greater(pc.abs(d), ceiling)))
        rounded = pc.cast(_where(outside, d), wide, safe=False)  # rounds half-even
        rounded = pc.min_element_wise(
            pc.max_element_wise(rounded, bottom, skip_nulls=False), top, skip_nulls=False
        )
        out = decode.decimal_text(rounded) if text else pc.cast(rounded, contract)
        marks: Marks = [("lost", pc.and_(outside, a.is_valid()))]
        if precision > digits:
            many = _true(pc.greater(decode.significant_digits(rounded), digits))
            back = pc.cast(decode.decimal_text(rounded), pa.float64())  # correctly rounded
            wrong = _true(pc.not_equal(back, d))
            marks += [("inexact", wrong), ("not_guaranteed", pc.and_(many, pc.invert(wrong)))]
        return out, marks

    if precision <= digits:
        return Reverse("exact", f"rounded half-even at scale {scale}", apply)
    return Reverse(
        "not_guaranteed",
        f"rounded half-even at scale {scale}",
        apply,
        counted=f"values of more than {digits} significant digits; inexact: "
        "those that do not even round back to the double",
    )


def _to_short_decimal(contract: pa.DataType) -> Reverse:
    """A double of a DECIMAL(p ≤ 15, s), exact: the unscaled integer is the double times
    10^s rounded half-even. The double is within a few units of its last place of the
    decimal (Airbyte's are correctly rounded, Arrow's casts not always) and the product
    below 10^15 is within 1/16 of its own, so it lies within 0.3 of the unscaled integer.
    The same as `_to_decimal`, in int64 rather than decimal256: five times faster."""
    factor, bound = 10.0**contract.scale, 10.0**contract.precision

    def apply(a: pa.Array) -> tuple[pa.Array, Marks]:
        scaled = pc.round(pc.multiply(a, factor), ndigits=0, round_mode="half_to_even")
        outside = _true(
            pc.or_(pc.invert(pc.is_finite(scaled)), pc.greater_equal(pc.abs(scaled), bound))
        )
        unscaled = pc.cast(pc.cast(_where(outside, scaled), pa.int64()), pa.decimal128(38, 0))
        # decimal128 stores the unscaled integer: (38, 0) reinterpreted as (p, s).
        out = pa.Array.from_buffers(
            contract, len(unscaled), unscaled.buffers(), unscaled.null_count, unscaled.offset
        )
        return out, [("lost", pc.and_(outside, a.is_valid()))]

    return Reverse("exact", f"rounded half-even at scale {contract.scale}", apply)


def _double_to_integer(contract: pa.DataType) -> Reverse:
    low, high = _bounds(contract)

    def apply(a: pa.Array) -> tuple[pa.Array, Marks]:
        d = pc.cast(a, pa.float64())
        whole = pc.and_(pc.is_finite(d), pc.equal(pc.floor(d), d))
        inside = pc.and_(pc.greater_equal(d, float(low)), pc.less(d, float(high) + 1))
        ok = _true(pc.and_(whole, inside))
        out = pc.cast(_where(pc.invert(ok), d), contract)
        big = _true(pc.and_(ok, pc.greater(pc.abs(d), float(2**53))))
        return out, [("lost", pc.and_(a.is_valid(), pc.invert(ok))), ("not_guaranteed", big)]

    kind: Kind = "not_guaranteed" if high > 2**53 else "exact"
    return Reverse(
        kind,
        f"double to {contract}",
        apply,
        counted="values beyond 2^53, which a double may have rounded",
    )


# -- decimals ----------------------------------------------------------------------------------
def _from_decimal(column: Column, contract: pa.DataType, found: pa.DataType) -> Reverse | None:
    if not pa.types.is_decimal(found):
        return None
    if pa.types.is_string(contract) and column.data_type in ("decimal", "numeric"):
        scale = column.scale or 0
        wide = pa.decimal256(76, scale)
        return Reverse(
            "exact",
            "its text",
            lambda a: (
                decode.decimal_text(
                    pc.cast(pc.round(a, ndigits=scale, round_mode="half_to_even"), wide)
                ),
                [],
            ),
        )
    if not (pa.types.is_decimal(contract) or pa.types.is_integer(contract)):
        return None
    scale = contract.scale if pa.types.is_decimal(contract) else 0
    low, high = _bounds(contract)
    wide = pa.decimal256(76, scale)

    def apply(a: pa.Array) -> tuple[pa.Array, Marks]:
        rounded = pc.round(a, ndigits=scale, round_mode="half_to_even")
        changed = _true(pc.not_equal(rounded, a))
        w = pc.cast(rounded, wide)
        out_of = _true(
            pc.or_(
                pc.less(w, pa.scalar(Decimal(low), wide)),
                pc.greater(w, pa.scalar(Decimal(high), wide)),
            )
        )
        out = pc.cast(_where(out_of, w), contract)
        return out, [("lost", out_of), ("inexact", pc.and_(changed, pc.invert(out_of)))]

    return Reverse(
        "exact",
        f"{found} to {contract}",
        apply,
        narrower=_bounds(found)[1] < high or found.scale < scale,
    )


# -- temporal ----------------------------------------------------------------------------------
def _from_temporal(column: Column, contract: pa.DataType, found: pa.DataType) -> Reverse | None:
    if pa.types.is_timestamp(found):
        return _from_timestamp(column, contract, found)
    if pa.types.is_date(found) and pa.types.is_date(contract):
        return Reverse("exact", "date", lambda a: (pc.cast(a, contract), []))
    if pa.types.is_time(found) and pa.types.is_string(contract) and column.data_type == "time":
        return _from_time(column, found)
    return None


def _micros(a: pa.Array, unit: str) -> tuple[pa.Array, pa.Array | None]:
    """int64 microseconds of a timestamp or time array, and (for ns) where digits drop."""
    values = pc.cast(
        a.cast(pa.int64() if unit in ("us", "ns") or pa.types.is_timestamp(a.type) else pa.int32()),
        pa.int64(),
    )
    if unit == "ns":
        micros = pc.divide(values, 1000)
        return micros, _true(pc.not_equal(pc.multiply(micros, 1000), values))
    return pc.multiply(values, _UNITS[unit]), None


def _coarse(column: Column, unit: str) -> bool:
    return (column.datetime_precision or 0) > _DIGITS[unit]


def _from_timestamp(
    column: Column, contract: pa.DataType, found: pa.TimestampType
) -> Reverse | None:
    unit = found.unit
    if pa.types.is_timestamp(contract):
        coarse = _coarse(column, unit)

        def stamp(a: pa.Array) -> tuple[pa.Array, Marks]:
            micros, dropped = _micros(a, unit)
            marks: Marks = [("inexact", dropped)] if dropped is not None else []
            if coarse:
                marks.append(("not_guaranteed", a.is_valid()))
            return pc.cast(micros, contract), marks

        wall = ", the wall clock Airbyte took as UTC" if found.tz and not contract.tz else ""
        return Reverse(
            "not_guaranteed" if coarse else "exact",
            f"{found} to {contract}{wall}",
            stamp,
            counted=f"every value: digits below a {unit} were dropped" if coarse else None,
        )
    if pa.types.is_date(contract):

        def day(a: pa.Array) -> tuple[pa.Array, Marks]:
            micros, _ = _micros(a, unit)
            days = pc.floor(pc.divide(pc.cast(micros, pa.float64()), float(_DAY)))
            off = _true(pc.not_equal(pc.multiply(pc.cast(days, pa.int64()), _DAY), micros))
            return pc.cast(pc.cast(days, pa.int32()), pa.date32()), [("inexact", off)]

        return Reverse("exact", "the day of a midnight", day)
    return None


def _from_time(column: Column, found: pa.DataType) -> Reverse:
    digits = column.datetime_precision or 0
    coarse = _coarse(column, found.unit)

    def apply(a: pa.Array) -> tuple[pa.Array, Marks]:
        micros, dropped = _micros(a, found.unit)
        marks: Marks = [("inexact", dropped)] if dropped is not None else []
        if coarse:
            marks.append(("not_guaranteed", a.is_valid()))
        return decode.time_text(micros, digits), marks

    return Reverse(
        "not_guaranteed" if coarse else "exact",
        f"{found} to MySQL's TIME text",
        apply,
        narrower=True,
        counted=f"every value: digits below a {found.unit} were dropped" if coarse else None,
    )


def _from_binary(column: Column, contract: pa.DataType, found: pa.DataType) -> Reverse | None:
    if not (pa.types.is_binary(found) or pa.types.is_fixed_size_binary(found)):
        return None
    if pa.types.is_string(contract):
        return Reverse("exact", "the UTF-8 bytes as text", lambda a: (pc.cast(a, contract), []))
    if pa.types.is_binary(contract):
        return Reverse("exact", "the bytes", lambda a: (pc.cast(a, contract), []))
    return None
