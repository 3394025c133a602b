"""How one column of the exact contract becomes the type an old partition holds.

`route(column, contract, found)` picks the conversion, ordered most specific first, and says
what it is: `identical` (the same Arrow type), `lossless` (every value keeps its meaning),
`lossy` (some values change; each is counted), or `unsupported` (no conversion: the drift
policy decides, as a type change, and a table let through writes NULLs, counted).
A route's `apply` returns the converted array and, per kind of change, a mask of the values
it changed, with the Airbyte change and reason recorded for them in `_airbyte_meta`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from extractor.compat import kernels
from extractor.compat.airbyte import FIELD_SIZE, NULLED, SERIALIZATION, TRUNCATED, TYPECAST
from extractor.contract.types import Column

Kind = Literal["identical", "lossless", "lossy", "unsupported"]
# A mask of changed values (true = changed), the Airbyte change and its reason.
Change = tuple[pa.Array, str, str]
Apply = Callable[[pa.Array], tuple[pa.Array, list[Change]]]
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
_INT_RANGE = {pa.int8(): 7, pa.int16(): 15, pa.int32(): 31, pa.int64(): 63}
_UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0}
EXACT_DOUBLE_DIGITS = 15  # any decimal of at most 15 significant digits survives a double


@dataclass(frozen=True)
class Route:
    kind: Kind
    how: str  # what a compatible write does, for `compat inspect`
    apply: Apply
    counted: str | None = None  # which values are counted, for a lossy route


def route(column: Column, contract: pa.DataType, found: pa.DataType) -> Route:
    """The conversion of `column` (written as `contract` by the exact contract) to `found`."""
    contract, found = plain_type(contract), plain_type(found)
    if contract == found:
        return Route("identical", "as the contract writes it", lambda a: (a, []))
    if pa.types.is_struct(found) and found.get_field_index("member0") >= 0:
        return _member_struct(column, contract, found)
    for pick in (
        _to_string,
        _to_boolean,
        _to_integer,
        _to_floating,
        _to_timestamp,
        _to_time,
        _to_binary,
        _to_decimal,
    ):
        chosen = pick(column, contract, found)
        if chosen is not None:
            return chosen
    return unsupported(found)


def unsupported(found: pa.DataType) -> Route:
    def apply(a: pa.Array) -> tuple[pa.Array, list[Change]]:
        return pa.nulls(len(a), found), [(a.is_valid(), NULLED, TYPECAST)]

    return Route("unsupported", f"no conversion to {found}: NULL", apply, "every value")


def plain_type(t: pa.DataType) -> pa.DataType:
    """The 32-bit-offset twin of a large string or binary type: the same values either way."""
    if pa.types.is_large_string(t):
        return pa.string()
    return pa.binary() if pa.types.is_large_binary(t) else t


def _member_struct(column: Column, contract: pa.DataType, found: pa.StructType) -> Route:
    inner = route(column, contract, found.field("member0").type)
    if inner.kind == "unsupported":
        return unsupported(found)

    def apply(a: pa.Array) -> tuple[pa.Array, list[Change]]:
        value, changes = inner.apply(a)
        children = [value if f.name == "member0" else pa.nulls(len(a), f.type) for f in found]
        out = pa.StructArray.from_arrays(children, fields=list(found), mask=value.is_null())
        return out, changes

    kind: Kind = "lossless" if inner.kind == "identical" else inner.kind
    return Route(kind, f"struct: member0 {inner.how}, member1 NULL", apply, inner.counted)


def _nulled_where(mask: pa.Array, a: pa.Array) -> pa.Array:
    return pc.if_else(mask, pa.scalar(None, a.type), a)


# -- text ----------------------------------------------------------------------------------
def _to_string(column: Column, contract: pa.DataType, found: pa.DataType) -> Route | None:
    if found != pa.string():
        return None
    if column.data_type in _GEOMETRY:

        def geometry(a: pa.Array) -> tuple[pa.Array, list[Change]]:
            return kernels.base64(a), [(a.is_valid(), TRUNCATED, SERIALIZATION)]

        return Route(
            "lossy",
            "base64 of the WKB",
            geometry,
            "every value: Airbyte's text held MySQL's SRID-prefixed bytes",
        )
    if pa.types.is_binary(contract):
        return Route("lossless", "base64 text of the bytes", lambda a: (kernels.base64(a), []))
    if column.data_type == "bit" and (
        pa.types.is_integer(contract) or pa.types.is_decimal(contract)
    ):
        width = ((column.precision or 1) + 7) // 8
        return Route(
            "lossless",
            f"base64 text of the {width} bytes",
            lambda a: (kernels.base64(kernels.big_endian(a, width)), []),
        )
    if pa.types.is_date(contract):
        return Route(
            "lossless", "text YYYY-MM-DD", lambda a: (pc.strftime(a, format="%Y-%m-%d"), [])
        )
    if pa.types.is_timestamp(contract):
        zone = "Z" if contract.tz else ""
        return Route(
            "lossless",
            f"ISO text YYYY-MM-DDThh:mm:ss.ffffff{zone}",
            lambda a: (pc.strftime(a, format="%Y-%m-%dT%H:%M:%S" + zone), []),
        )
    if (
        pa.types.is_boolean(contract)
        or pa.types.is_integer(contract)
        or pa.types.is_decimal(contract)
        or pa.types.is_floating(contract)
    ):
        return Route("lossless", "its text", lambda a: (pc.cast(a, pa.string()), []))
    return None


# -- booleans ------------------------------------------------------------------------------
def _to_boolean(column: Column, contract: pa.DataType, found: pa.DataType) -> Route | None:
    if found != pa.bool_() or not pa.types.is_integer(contract):
        return None

    def apply(a: pa.Array) -> tuple[pa.Array, list[Change]]:
        other = pc.fill_null(pc.and_(pc.not_equal(a, 0), pc.not_equal(a, 1)), False)
        return pc.not_equal(a, 0), [(other, TRUNCATED, TYPECAST)]

    return Route(
        "lossy", "true for any value but 0", apply, "values other than 0 and 1 (written as true)"
    )


# -- integers ------------------------------------------------------------------------------
def _to_integer(column: Column, contract: pa.DataType, found: pa.DataType) -> Route | None:
    if found not in _INT_RANGE:
        return None
    low, high = -(2 ** _INT_RANGE[found]), 2 ** _INT_RANGE[found] - 1
    if pa.types.is_boolean(contract):
        return Route("lossless", "1 or 0", lambda a: (pc.cast(a, found), []))
    if pa.types.is_integer(contract):
        info = _int_bounds(contract)
        if low <= info[0] and info[1] <= high:
            return Route("lossless", f"widened to {found}", lambda a: (pc.cast(a, found), []))
        wide = pa.int64() if contract != pa.uint64() else pa.decimal128(20, 0)
        return _range_checked(pc.cast, low, high, found, wide)
    if pa.types.is_decimal(contract) and contract.scale == 0:
        return _range_checked(pc.cast, low, high, found, pa.decimal128(38, 0))
    return None


def _int_bounds(t: pa.DataType) -> tuple[int, int]:
    if t in _INT_RANGE:
        return -(2 ** _INT_RANGE[t]), 2 ** _INT_RANGE[t] - 1
    return 0, 2 ** (t.bit_width) - 1


def _range_checked(
    cast: Callable[..., pa.Array], low: int, high: int, found: pa.DataType, wide: pa.DataType
) -> Route:
    decimal = pa.types.is_decimal(wide)
    lo = kernels.decimal_bound(low) if decimal else pa.scalar(low, wide)
    hi = kernels.decimal_bound(high) if decimal else pa.scalar(high, wide)

    def apply(a: pa.Array) -> tuple[pa.Array, list[Change]]:
        w = pc.cast(a, wide)
        outside = pc.fill_null(pc.or_(pc.less(w, lo), pc.greater(w, hi)), False)
        return cast(_nulled_where(outside, w), found), [(outside, NULLED, FIELD_SIZE)]

    return Route(
        "lossy",
        f"{found}; a value outside its range is NULL",
        apply,
        f"values outside {found} (written as NULL)",
    )


# -- floating point ------------------------------------------------------------------------
def _to_floating(column: Column, contract: pa.DataType, found: pa.DataType) -> Route | None:
    if found not in (pa.float64(), pa.float32()):
        return None
    base = _to_double(column, contract)
    if base is None or found == pa.float64():
        return base

    def narrow(a: pa.Array) -> tuple[pa.Array, list[Change]]:
        double, changes = base.apply(a)
        single = pc.cast(double, pa.float32(), safe=False)
        lost = pc.fill_null(pc.not_equal(pc.cast(single, pa.float64()), double), False)
        return single, [*changes, (lost, TRUNCATED, FIELD_SIZE)]

    return Route("lossy", "float", narrow, "values a float does not hold exactly")


def _to_double(column: Column, contract: pa.DataType) -> Route | None:
    double = pa.float64()
    if pa.types.is_decimal(contract):
        if contract.precision <= EXACT_DOUBLE_DIGITS:
            return Route(
                "lossless", "double (at most 15 digits: exact)", lambda a: (pc.cast(a, double), [])
            )
        back = pa.decimal128(38, contract.scale)

        def decimal(a: pa.Array) -> tuple[pa.Array, list[Change]]:
            out = pc.cast(a, double)
            lost = pc.fill_null(
                pc.not_equal(pc.cast(out, back, safe=False), pc.cast(a, back)), False
            )
            return out, [(lost, TRUNCATED, FIELD_SIZE)]

        return Route(
            "lossy",
            "double",
            decimal,
            f"values the double does not round back to at scale {contract.scale}",
        )
    if pa.types.is_string(contract) and column.data_type in ("decimal", "numeric"):

        def text(a: pa.Array) -> tuple[pa.Array, list[Change]]:
            many = pc.greater(kernels.significant_digits(a), EXACT_DOUBLE_DIGITS)
            return pc.cast(a, double), [(pc.fill_null(many, False), TRUNCATED, FIELD_SIZE)]

        return Route("lossy", "double", text, "values of more than 15 significant digits")
    if pa.types.is_boolean(contract) or contract in (
        pa.int8(),
        pa.int16(),
        pa.int32(),
        pa.uint8(),
        pa.uint16(),
        pa.uint32(),
    ):
        return Route("lossless", "double (exact)", lambda a: (pc.cast(a, double), []))
    if pa.types.is_integer(contract):
        return _int64_to_double()
    if contract == pa.float32():
        # Airbyte carried a FLOAT as JSON text, its shortest decimal: 1.1, not 1.100000023841858.
        return Route(
            "lossless",
            "double of the float's shortest decimal text",
            lambda a: (pc.cast(pc.cast(a, pa.string()), double), []),
        )
    return None


def _int64_to_double() -> Route:
    def apply(a: pa.Array) -> tuple[pa.Array, list[Change]]:
        out = pc.cast(a, pa.float64(), safe=False)
        back = pc.cast(out, pa.decimal128(38, 0), safe=False)
        lost = pc.fill_null(pc.not_equal(back, pc.cast(a, pa.decimal128(38, 0))), False)
        return out, [(lost, TRUNCATED, FIELD_SIZE)]

    return Route("lossy", "double", apply, "integers beyond 2^53 the double rounds")


# -- temporal ------------------------------------------------------------------------------
def _to_timestamp(column: Column, contract: pa.DataType, found: pa.DataType) -> Route | None:
    if not pa.types.is_timestamp(found) or found.unit not in ("s", "ms", "us"):
        return None
    target = pa.timestamp("us", tz=found.tz)
    if pa.types.is_date(contract):
        return Route("lossless", "midnight UTC", lambda a: (pc.cast(a, found), []))
    if not pa.types.is_timestamp(contract) or contract.unit != "us":
        return None
    factor = _UNITS[found.unit]
    wall = "" if contract.tz or not found.tz else ", the wall clock taken as UTC"
    if factor == 1:
        return Route(
            "lossless", f"{found}{wall}", lambda a: (pc.cast(a.cast(pa.int64()), target), [])
        )
    digits = {1_000: 3, 1_000_000: 0}[factor]
    kind: Kind = "lossless" if (column.datetime_precision or 0) <= digits else "lossy"

    def apply(a: pa.Array) -> tuple[pa.Array, list[Change]]:
        units, lost = kernels.floor_divide(a.cast(pa.int64()), factor)
        return pc.cast(units, found), [(lost, TRUNCATED, FIELD_SIZE)]

    return Route(
        kind, f"{found}{wall}", apply, f"values with precision below a {found.unit} (dropped)"
    )


def _to_time(column: Column, contract: pa.DataType, found: pa.DataType) -> Route | None:
    if not pa.types.is_time(found) or found.unit not in ("ms", "us") or column.data_type != "time":
        return None
    factor = _UNITS[found.unit]
    storage = pa.int32() if found.unit == "ms" else pa.int64()

    def apply(a: pa.Array) -> tuple[pa.Array, list[Change]]:
        micros = kernels.time_text_micros(a)
        outside = pc.fill_null(
            pc.or_(pc.less(micros, 0), pc.greater_equal(micros, kernels.DAY_MICROS)), False
        )
        units, lost = kernels.floor_divide(_nulled_where(outside, micros), factor)
        out = pc.cast(pc.cast(units, storage), found)
        return out, [(outside, NULLED, FIELD_SIZE), (lost, TRUNCATED, FIELD_SIZE)]

    return Route(
        "lossy",
        f"{found}",
        apply,
        "values outside 00:00:00..23:59:59 (NULL)"
        + (", precision below a millisecond (dropped)" if factor > 1 else ""),
    )


def _to_binary(column: Column, contract: pa.DataType, found: pa.DataType) -> Route | None:
    if found == pa.binary() and pa.types.is_string(contract):
        return Route("lossless", "the UTF-8 bytes", lambda a: (pc.cast(a, found), []))
    return None


def _to_decimal(column: Column, contract: pa.DataType, found: pa.DataType) -> Route | None:
    if not pa.types.is_decimal(found) or not (
        pa.types.is_decimal(contract) or pa.types.is_integer(contract)
    ):
        return None
    if pa.types.is_decimal(contract) and (
        found.scale < contract.scale
        or found.precision - found.scale < contract.precision - contract.scale
    ):
        return None
    return Route("lossless", f"{found}", lambda a: (pc.cast(a, found), []))
