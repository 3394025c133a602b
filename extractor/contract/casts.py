"""Vectorized conversion of the bulk reader's batches to the type contract.

Every conversion is an Arrow compute kernel over a whole column, never a Python loop
over values. Values either come out exactly or become NULL by one documented rule
(zero or invalid dates, the zero timestamp), and those NULLs are counted per column.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from extractor.contract.types import ColumnPlan, Convert
from extractor.errors import SourceError, Step

# Days and microseconds of 0001-01-01 since the Unix epoch: MySQL also stores dates with
# year 0 ('0000-01-01'), which no reader's calendar (Python, Java, Spark) can represent.
_FIRST_DAY = -719_162
_FIRST_MICROS = _FIRST_DAY * 86_400 * 1_000_000


# 32-bit offsets (binary, string: the contract's types) address at most 2 GiB - 1 of values
# in one array; connectorx reads BLOBs with 64-bit offsets (large_binary).
OFFSET_LIMIT = 2**31 - 1


def offset_safe(batch: pa.RecordBatch, limit: int = OFFSET_LIMIT) -> list[pa.RecordBatch]:
    """The batch as zero-copy slices whose 64-bit-offset columns hold under `limit` bytes of
    values together, so that each slice casts to the contract's 32-bit offsets. A row larger
    than `limit` gets a slice of its own (MySQL sends none past max_allowed_packet, 1 GiB)."""
    sizes = [
        pc.fill_null(pc.binary_length(c), 0)
        for c in batch.columns
        if pa.types.is_large_binary(c.type) or pa.types.is_large_string(c.type)
    ]
    if not sizes or batch.num_rows < 2:
        return [batch]
    total = sizes[0].cast(pa.int64())
    for more in sizes[1:]:
        total = pc.add(total, more.cast(pa.int64()))
    if pc.sum(total).as_py() < limit:
        return [batch]
    ends = pc.cumulative_sum(total)  # bytes of rows 0..i
    slices, start = [], 0
    while start < batch.num_rows:
        before = ends[start - 1].as_py() if start else 0
        stop = max(start + 1, pc.sum(pc.less(ends, before + limit)).as_py())
        slices.append(batch.slice(start, stop - start))
        start = stop
    return slices


def convert_batch(
    batch: pa.RecordBatch, plans: list[ColumnPlan], schema: pa.Schema, table: str
) -> tuple[pa.RecordBatch, dict[str, int]]:
    """Return the batch in the contract's schema and the count of NULLed values per column."""
    if batch.num_columns != len(plans):
        raise SourceError(
            f"reader returned {batch.num_columns} columns, expected {len(plans)}",
            table=table,
            step=Step.CONVERT,
        )
    arrays: list[pa.Array] = []
    nulled: dict[str, int] = {}
    for plan, array in zip(plans, batch.columns, strict=True):
        try:
            out = convert_array(array, plan)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise SourceError(
                f"column {plan.name!r} ({plan.column.column_type}): value does not fit "
                f"{plan.arrow_type}: {exc}",
                table=table,
                step=Step.CONVERT,
            ) from exc
        lost = out.null_count - array.null_count
        if lost:
            nulled[plan.name] = lost
        arrays.append(out)
    return pa.RecordBatch.from_arrays(arrays, schema=schema), nulled


def convert_array(array: pa.Array, plan: ColumnPlan) -> pa.Array:
    """One column to its contract type; raises ArrowInvalid on anything inexact."""
    target = plan.arrow_type
    if plan.convert is Convert.CAST:
        return array if array.type == target else pc.cast(array, target)
    if plan.convert is Convert.UNSCALED_DECIMAL:
        # decimal128 stores the unscaled integer: int64 -> decimal(38, 0), reinterpreted as (p, s).
        return _as_type(pc.cast(array, pa.decimal128(38, 0)), target)
    if plan.convert is Convert.DATE_DIGITS:
        days, valid = _digits_days(_int64(array))
        days32 = pc.cast(days, pa.int32())  # checked: every valid date fits
        return _null_where(_as_type(days32, target), _invalid(valid))
    if plan.convert is Convert.DATETIME_DIGITS:
        digits = _int64(array)
        ymd = pc.divide(digits, 1_000_000)
        hms = pc.subtract(digits, pc.multiply(ymd, 1_000_000))
        days, valid = _digits_days(ymd)
        second = pc.take(_calendar().second_of_day, _table_index(hms, _SECONDS, 60))
        valid = pc.and_(valid, pc.greater_equal(second, 0))
        micros = pc.multiply(pc.add(pc.multiply(days, 86_400), second), 1_000_000)
        return _null_where(_as_type(micros, target), _invalid(valid))
    if plan.convert is Convert.DATETIME_TEXT:
        return _text_to_temporal(array, target, "%Y-%m-%d %H:%M:%S", 19, _FIRST_MICROS)
    if plan.convert is Convert.EPOCH_MICROS_UTC:
        micros = _int64(array)
        # A valid TIMESTAMP is at least 1970-01-01 00:00:01 UTC; 0 is the zero timestamp.
        micros = _null_where(micros, pc.equal(micros, 0))
        return pc.cast(micros, target)
    raise AssertionError(f"unhandled conversion {plan.convert}")


@dataclass(frozen=True)
class _Calendar:
    """The proleptic Gregorian calendar as lookup tables, so that a column of digits becomes
    days in a handful of whole-array kernels: a gather instead of calendar arithmetic (the
    days-from-civil algorithm took 35 kernels): 3x less CPU for DATE and DATETIME alike
    (bench/consumer.py).

    Indexed by YYYYMM (0..999_999): `day_zero`, the day before the month's first, in days
    since 1970-01-01; `month_days`, the month's length, 0 where there is no such month (year
    0, month 0 or over 12), so that every day of it is invalid. Indexed by hhmmss
    (0..235_959): `second_of_day`, -1 where there is no such time. 6 MB in all (int32, int8):
    memory is bounded per process, and every pool worker holds its own copy.
    """

    day_zero: pa.Array
    month_days: pa.Array
    second_of_day: pa.Array


_MONTHS = 1_000_000  # YYYYMM: six digits
_SECONDS = 240_000  # hhmmss below 24:00:00


@functools.cache
def _calendar() -> _Calendar:
    import numpy as np  # the tables are built once per process, in a few milliseconds

    month = np.arange(-1969 * 12, (10_000 - 1970) * 12 + 1)  # 0001-01 .. 10000-01, from 1970-01
    first = month.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    yyyymm = (month[:-1] // 12 + 1970) * 100 + month[:-1] % 12 + 1
    day_zero = np.zeros(_MONTHS, np.int32)
    day_zero[yyyymm] = first[:-1] - 1
    month_days = np.zeros(_MONTHS, np.int8)
    month_days[yyyymm] = np.diff(first)
    hour, minute, second = np.meshgrid(np.arange(24), np.arange(60), np.arange(60), indexing="ij")
    second_of_day = np.full(_SECONDS, -1, np.int32)
    second_of_day[(hour * 10_000 + minute * 100 + second).ravel()] = (
        hour * 3600 + minute * 60 + second
    ).ravel()
    return _Calendar(pa.array(day_zero), pa.array(month_days), pa.array(second_of_day))


def _digits_days(ymd: pa.Array) -> tuple[pa.Array, pa.Array]:
    """YYYYMMDD digits -> (days since 1970-01-01, is a real calendar date: year 1 or later,
    month 1..12, day 1..the month's length; MySQL stores year 0 and zero days and months)."""
    yyyymm = pc.divide(ymd, 100)
    day = pc.subtract(ymd, pc.multiply(yyyymm, 100))
    calendar = _calendar()
    index = _table_index(yyyymm, _MONTHS, 0)
    valid = pc.and_(
        pc.greater_equal(day, 1), pc.less_equal(day, pc.take(calendar.month_days, index))
    )
    return pc.add(pc.take(calendar.day_zero, index), day), valid


def _table_index(number: pa.Array, size: int, invalid: int) -> pa.Array:
    """`number` as an index of a calendar table of `size` entries: as is when it is one of
    them (always, from MySQL: years stop at 9999 and no date is negative), else `invalid`,
    an entry that holds no valid value (month 0 of year 0; 00:00:60)."""
    low, high = pc.min_max(number).values()
    if (low.as_py() or 0) < 0 or (high.as_py() or 0) >= size:
        inside = pc.and_(pc.greater_equal(number, 0), pc.less(number, size))
        number = pc.if_else(inside, number, invalid)
    return number


def _int64(array: pa.Array) -> pa.Array:
    return array if array.type == pa.int64() else pc.cast(array, pa.int64())


def _as_type(array: pa.Array, target: pa.DataType) -> pa.Array:
    """The same buffers read as `target` (date32 from int32, timestamp from int64, decimal(p, s)
    from decimal(38, 0)): no copy."""
    return pa.Array.from_buffers(
        target, len(array), array.buffers(), array.null_count, array.offset
    )


def _invalid(valid: pa.Array) -> pa.Array:
    return pc.invert(pc.fill_null(valid, True))


def _text_to_temporal(
    text: pa.Array, target: pa.DataType, fmt: str, width: int, first: int
) -> pa.Array:
    try:
        values = pc.cast(text, target)
    except pa.ArrowInvalid:
        # Slow path, only for a batch holding zero or invalid dates: Arrow's cast is strict
        # but all-or-nothing, strptime is per-value but lenient (2024-02-31 -> 2024-03-02),
        # so keep exactly the values whose strptime/strftime round trip is the identity.
        head = pc.utf8_slice_codeunits(text, 0, width)
        parsed = pc.strptime(head, format=fmt, unit="s", error_is_null=True)
        valid = pc.fill_null(pc.equal(pc.strftime(parsed, format=fmt), head), False)
        values = pc.cast(_null_where(text, pc.invert(valid)), target)
    storage = values.cast(pa.int32() if target == pa.date32() else pa.int64())
    return _null_where(values, pc.less(storage, first))


def _null_where(array: pa.Array, mask: pa.Array) -> pa.Array:
    if not pc.any(mask).as_py():
        return array
    return pc.if_else(mask, pa.scalar(None, array.type), array)
