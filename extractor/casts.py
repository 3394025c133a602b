"""Vectorized conversion of the bulk reader's batches to the type contract.

Every conversion is an Arrow compute kernel over a whole column, never a Python loop
over values. Values either come out exactly or become NULL by one documented rule
(zero or invalid dates, the zero timestamp), and those NULLs are counted per column.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from extractor.errors import SourceError
from extractor.types import ColumnPlan, Convert

# Days and microseconds of 0001-01-01 since the Unix epoch: MySQL also stores dates with
# year 0 ('0000-01-01'), which no reader's calendar (Python, Java, Spark) can represent.
_FIRST_DAY = -719_162
_FIRST_MICROS = _FIRST_DAY * 86_400 * 1_000_000


def convert_batch(
    batch: pa.RecordBatch, plans: list[ColumnPlan], schema: pa.Schema, table: str
) -> tuple[pa.RecordBatch, dict[str, int]]:
    """Return the batch in the contract's schema and the count of NULLed values per column."""
    if batch.num_columns != len(plans):
        raise SourceError(
            f"reader returned {batch.num_columns} columns, expected {len(plans)}",
            table=table, step="convert",
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
                table=table, step="convert",
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
    if plan.convert is Convert.DATE_TEXT:
        return _text_to_temporal(array, target, "%Y-%m-%d", 10, _FIRST_DAY)
    if plan.convert is Convert.DATETIME_TEXT:
        return _text_to_temporal(array, target, "%Y-%m-%d %H:%M:%S", 19, _FIRST_MICROS)
    if plan.convert is Convert.EPOCH_MICROS_UTC:
        micros = array if array.type == pa.int64() else pc.cast(array, pa.int64())
        # A valid TIMESTAMP is at least 1970-01-01 00:00:01 UTC; 0 is the zero timestamp.
        micros = _null_where(micros, pc.equal(micros, 0))
        return pc.cast(micros, target)
    raise AssertionError(f"unhandled conversion {plan.convert}")


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
