"""Vectorized conversion of the bulk reader's batches to the type contract.

Every conversion is an Arrow compute kernel over a whole column, never a Python loop
over values. Values either come out exactly or become NULL by one documented rule
(zero or invalid dates, the zero timestamp), and those NULLs are counted per column.
"""

from __future__ import annotations

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
        unscaled = pc.cast(array, pa.decimal128(38, 0))
        return pa.Array.from_buffers(
            target, len(unscaled), unscaled.buffers(), unscaled.null_count, unscaled.offset
        )
    if plan.convert is Convert.DATE_DIGITS:
        days, valid = _civil_days(pc.cast(array, pa.int64()))
        return _null_where(pc.cast(pc.cast(days, pa.int32()), target), _invalid(valid))
    if plan.convert is Convert.DATETIME_DIGITS:
        digits = pc.cast(array, pa.int64())
        ymd = pc.divide(digits, 1_000_000)
        hms = pc.subtract(digits, pc.multiply(ymd, 1_000_000))
        hour, minute, second = _split3(hms)
        days, valid = _civil_days(ymd)
        valid = pc.and_(
            valid,
            pc.and_(
                pc.less_equal(hour, 23),
                pc.and_(pc.less_equal(minute, 59), pc.less_equal(second, 59)),
            ),
        )
        seconds = pc.add(
            pc.multiply(days, 86_400),
            pc.add(pc.multiply(hour, 3600), pc.add(pc.multiply(minute, 60), second)),
        )
        micros = pc.multiply(seconds, 1_000_000)
        return _null_where(pc.cast(micros, target), _invalid(valid))
    if plan.convert is Convert.DATETIME_TEXT:
        return _text_to_temporal(array, target, "%Y-%m-%d %H:%M:%S", 19, _FIRST_MICROS)
    if plan.convert is Convert.EPOCH_MICROS_UTC:
        micros = array if array.type == pa.int64() else pc.cast(array, pa.int64())
        # A valid TIMESTAMP is at least 1970-01-01 00:00:01 UTC; 0 is the zero timestamp.
        micros = _null_where(micros, pc.equal(micros, 0))
        return pc.cast(micros, target)
    raise AssertionError(f"unhandled conversion {plan.convert}")


_DAYS_IN_MONTH = pa.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], pa.int64())


def _split3(number: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """AABBCC -> (AA, BB, CC), for non-negative integers."""
    high = pc.divide(number, 10_000)
    rest = pc.subtract(number, pc.multiply(high, 10_000))
    middle = pc.divide(rest, 100)
    return high, middle, pc.subtract(rest, pc.multiply(middle, 100))


def _civil_days(ymd: pa.Array) -> tuple[pa.Array, pa.Array]:
    """YYYYMMDD digits -> (days since 1970-01-01, is a real calendar date).

    Days from civil date by H. Hinnant's algorithm, in whole-array integer kernels.
    Year 0 (MySQL's '0000-..') and day/month 0 or past the month's end are invalid.
    """
    year, month, day = _split3(ymd)
    month_ok = pc.and_(pc.greater_equal(month, 1), pc.less_equal(month, 12))
    leap = pc.and_(
        _divisible(year, 4), pc.or_(pc.invert(_divisible(year, 100)), _divisible(year, 400))
    )
    month_days = pc.take(_DAYS_IN_MONTH, pc.if_else(month_ok, month, 0))
    month_days = pc.add(month_days, pc.cast(pc.and_(leap, pc.equal(month, 2)), pa.int64()))
    valid = pc.and_(
        pc.and_(month_ok, pc.greater_equal(year, 1)),
        pc.and_(pc.greater_equal(day, 1), pc.less_equal(day, month_days)),
    )
    shifted = pc.subtract(year, pc.cast(pc.less_equal(month, 2), pa.int64()))  # March-based
    era = pc.divide(shifted, 400)
    year_of_era = pc.subtract(shifted, pc.multiply(era, 400))
    march_month = pc.add(month, pc.if_else(pc.greater(month, 2), -3, 9))
    day_of_year = pc.add(
        pc.divide(pc.add(pc.multiply(march_month, 153), 2), 5), pc.subtract(day, 1)
    )
    day_of_era = pc.add(
        pc.add(pc.multiply(year_of_era, 365), pc.divide(year_of_era, 4)),
        pc.subtract(day_of_year, pc.divide(year_of_era, 100)),
    )
    days = pc.subtract(pc.add(pc.multiply(era, 146_097), day_of_era), 719_468)
    return days, valid


def _divisible(number: pa.Array, by: int) -> pa.Array:
    return pc.equal(pc.multiply(pc.divide(number, by), by), number)


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
