"""Vectorized conversions: exact values, invalid dates NULLed, nothing else changed."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

import pyarrow as pa
import pytest

from extractor.contract.casts import convert_array, convert_batch
from extractor.contract.types import Column, ColumnPlan, arrow_schema, plan_column
from extractor.errors import SourceError

DATE = plan_column(Column("d", "date", "date"))
DATETIME = plan_column(Column("t", "datetime", "datetime", datetime_precision=0))
DATETIME6 = plan_column(Column("t", "datetime", "datetime(6)", datetime_precision=6))


def test_date_digits_match_the_calendar_for_every_era() -> None:
    rng = random.Random(7)
    days = [rng.randrange(0, 3_652_059) for _ in range(50_000)] + [0, 3_652_058]
    expected = [date(1, 1, 1) + timedelta(days=d) for d in days]
    digits = [d.year * 10_000 + d.month * 100 + d.day for d in expected]
    assert convert_array(pa.array(digits, pa.int64()), DATE).to_pylist() == expected


@pytest.mark.parametrize(
    "digits",
    [0, 20240015, 20240231, 20230229, 19000229, 101, 20241301, 20240100],
    ids=["zero", "month-0", "feb-31", "not-leap", "1900-not-leap", "year-0", "month-13", "day-0"],
)
def test_invalid_dates_become_null(digits: int) -> None:
    assert convert_array(pa.array([digits, None], pa.int64()), DATE).to_pylist() == [None, None]


def test_leap_days_that_exist() -> None:
    out = convert_array(pa.array([20000229, 20240229], pa.int64()), DATE).to_pylist()
    assert out == [date(2000, 2, 29), date(2024, 2, 29)]


def test_datetime_digits() -> None:
    values = [20240229235959, 10000101000000, 99991231235959, 0, 20240231100000, None]
    assert convert_array(pa.array(values, pa.int64()), DATETIME).to_pylist() == [
        datetime(2024, 2, 29, 23, 59, 59),
        datetime(1000, 1, 1),
        datetime(9999, 12, 31, 23, 59, 59),
        None,
        None,
        None,
    ]


def test_datetime_digits_match_the_calendar_and_the_clock() -> None:
    rng = random.Random(11)
    first = datetime(1, 1, 1)
    expected = [first + timedelta(seconds=rng.randrange(0, 315_537_897_600)) for _ in range(50_000)]
    digits = [int(t.strftime("%Y%m%d%H%M%S").rjust(14, "0")) for t in expected]
    assert convert_array(pa.array(digits, pa.int64()), DATETIME).to_pylist() == expected


@pytest.mark.parametrize(
    "digits",
    [20240229240000, 20240229236000, 20240229235960, 20240229999999, 101000000],
    ids=["hour-24", "minute-60", "second-60", "all-nines", "year-0"],
)
def test_invalid_times_become_null(digits: int) -> None:
    out = convert_array(pa.array([digits, 20240229235959], pa.int64()), DATETIME)
    assert out.to_pylist() == [None, datetime(2024, 2, 29, 23, 59, 59)]


@pytest.mark.parametrize("plan", [DATE, DATETIME], ids=["date", "datetime"])
def test_digits_of_no_possible_date_become_null_not_an_error(plan: ColumnPlan) -> None:
    # Never sent by MySQL (negative, or past year 9999): NULL by the invalid-date rule.
    values = [-1, -20240101, 10**15, 2**63 - 1, -(2**63)]
    out = convert_array(pa.array([*values, None], pa.int64()), plan)
    assert out.to_pylist() == [None] * 6


def test_digits_of_a_slice_and_the_bytes_under_nulls_do_not_matter() -> None:
    # A NULL's slot holds whatever the reader left there; a slice starts mid-buffer.
    data = pa.py_buffer(pa.array([0, 20240101, 2**62, 20241231], pa.int64()).buffers()[1])
    validity = pa.array([True, True, False, True]).buffers()[1]
    array = pa.Array.from_buffers(pa.int64(), 4, [validity, data], 1).slice(1)
    assert convert_array(array, DATE).to_pylist() == [date(2024, 1, 1), None, date(2024, 12, 31)]


def test_datetime_text_keeps_microseconds_and_nulls_invalid() -> None:
    text = [
        "2024-02-29 23:59:59.999999",
        "0000-00-00 00:00:00.000000",
        "2024-02-31 10:00:00.500000",
        "0000-01-01 00:00:00.000000",
        None,
        "0001-01-01 00:00:00.000001",
    ]
    assert convert_array(pa.array(text), DATETIME6).to_pylist() == [
        datetime(2024, 2, 29, 23, 59, 59, 999999),
        None,
        None,
        None,
        None,
        datetime(1, 1, 1, 0, 0, 0, 1),
    ]


def test_batch_counts_the_nulled_values_per_column() -> None:
    plans = [DATE, plan_column(Column("n", "int", "int(11)"))]
    raw = pa.RecordBatch.from_arrays(
        [pa.array([0, 20240101, None, 20240015], pa.int64()), pa.array([1, 2, 3, 4], pa.int32())],
        names=["d", "n"],
    )
    batch, nulled = convert_batch(raw, plans, arrow_schema(plans), "t")
    assert nulled == {"d": 2}
    assert batch.column(0).to_pylist() == [None, date(2024, 1, 1), None, None]


def test_value_that_does_not_fit_is_an_error_not_a_coercion() -> None:
    plan = plan_column(Column("n", "tinyint", "tinyint(4)"))
    raw = pa.RecordBatch.from_arrays([pa.array([1000], pa.int64())], names=["n"])
    with pytest.raises(SourceError, match="does not fit"):
        convert_batch(raw, [plan], arrow_schema([plan]), "t")
