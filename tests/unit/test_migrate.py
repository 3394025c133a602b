"""The way back without services: every type-matrix case written by Airbyte's rules (both
eras, and the other widths readers may hold) and converted back, the decode kernels against
Python's own, the cell counts, the stored schema's columns, the report and the switch."""

from __future__ import annotations

import base64
import json
import os
import random
import re
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from extractor.cli import main
from extractor.compat import decode, kernels
from extractor.compat.migration import (
    ExactState,
    MigrationReport,
    PartitionResult,
    read_state,
    write_state,
)
from extractor.compat.old_partition import _tally, batch_size, match_columns, stored_columns
from extractor.compat.reverse import Marks, reverse
from extractor.compat.rules import route
from extractor.config import load_settings
from extractor.contract.types import Column, plan_column
from extractor.drift.store import build_schema
from extractor.errors import Step
from extractor.sink.destination import Destination
from tests import airbyte
from tests.type_matrix import CASES, Case

# What a round trip keeps of each lossy case (the rest of the matrix comes back exactly):
# values that differ, and which count holds them.
LOSSY = {
    "tinyint_1": (3, "possibly_lost"),  # 2, 127, -128 were true: back as 1
    "bigint_unsigned": (2, "narrower"),  # NULLed by Airbyte: counted by the era's record
    "decimal_20_0": (0, "not_guaranteed"),  # the clamp recovers the limits
    "decimal_38_0": (2, "not_guaranteed"),
    "decimal_30_20": (1, "not_guaranteed"),
    "decimal_65_30": (1, "not_guaranteed"),
    "time": (2, "narrower"),  # beyond a day: NULL
    "time_6": (2, "narrower"),
    "geometry": (0, "not_guaranteed"),  # the WKB comes back, but no rule promises it
    "geometry_4326": (0, "not_guaranteed"),
}
OTHER_WIDTHS = {
    "int": pa.int32(),
    "bigint": pa.float64(),
    "int_unsigned": pa.float64(),
    "datetime_6": pa.timestamp("ms", tz="UTC"),
    "time_6": pa.time32("ms"),
}


def _column(case: Case) -> Column:
    digits = re.search(r"\((\d+)\)", case.column_type)
    fraction = (
        int(digits.group(1))
        if digits and case.data_type in ("datetime", "timestamp", "time")
        else None
    )
    return Column(
        f"c_{case.id}",
        case.data_type,
        case.column_type,
        precision=case.precision,
        scale=case.scale,
        datetime_precision=fraction,
    )


def _count(marks: Marks, kind: str) -> int:
    return sum(
        int(pc.sum(pc.cast(pc.fill_null(m, False), pa.int64())).as_py() or 0)
        for k, m in marks
        if k == kind
    )


def _round_trip(case: Case, found: pa.DataType) -> tuple[list[Any], list[Any], Any, Any]:
    column = _column(case)
    plan = plan_column(column)
    exact = pa.array([*case.expected, None], plan.arrow_type)
    written, _ = route(column, plan.arrow_type, found).apply(exact)
    way_back = reverse(column, plan.arrow_type, found)
    back, marks = way_back.apply(written)
    assert back.type == plan.arrow_type
    return exact.to_pylist(), back.to_pylist(), way_back, marks


@pytest.mark.parametrize("era", ["legacy", "1.x"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_every_matrix_case_comes_back(case: Case, era: str) -> None:
    column = _column(case)
    found = airbyte.airbyte_type(
        airbyte.Col(
            column.name,
            case.data_type,
            case.column_type,
            case.precision,
            case.scale,
            column.datetime_precision,
        ),
        era,
    )
    want, got, way_back, marks = _round_trip(case, found)
    differ = sum(a != b for a, b in zip(want, got, strict=True))
    expected, counted_as = LOSSY.get(case.id, (0, None))
    assert differ == expected, (want, got)
    if counted_as is None:
        assert way_back.kind in ("identical", "exact"), way_back
        assert not any(_count(marks, k) for k in ("inexact", "possibly_lost", "lost"))
    elif counted_as == "narrower":
        assert way_back.narrower and all(
            g is None for a, g in zip(want, got, strict=True) if a != g
        )
    else:
        assert way_back.kind == counted_as
        assert _count(marks, counted_as) >= differ


@pytest.mark.parametrize("case", [c for c in CASES if c.id in OTHER_WIDTHS], ids=lambda c: c.id)
def test_other_widths_readers_may_hold_come_back(case: Case) -> None:
    want, got, way_back, marks = _round_trip(case, OTHER_WIDTHS[case.id])
    differ = sum(a != b for a, b in zip(want, got, strict=True))
    # 2^63 - 1 is beyond the double; DATETIME(6) and TIME(6) in milliseconds drop digits.
    assert differ == {"bigint": 1, "datetime_6": 2, "time_6": 2}.get(case.id, 0), (want, got)
    if case.id in ("datetime_6", "time_6"):
        assert way_back.kind == "not_guaranteed"
        assert _count(marks, "not_guaranteed") == sum(v is not None for v in got)
    if case.id == "bigint":
        assert (_count(marks, "lost"), _count(marks, "not_guaranteed")) == (1, 1)


def test_tinyint_1_counts_every_true_as_possibly_lost() -> None:
    case = next(c for c in CASES if c.id == "tinyint_1")
    _, got, way_back, marks = _round_trip(case, pa.bool_())
    assert got == [0, 1, 1, 1, 1, None] and _count(marks, "possibly_lost") == 4
    assert way_back.counted and "2..127" in way_back.counted


@pytest.mark.parametrize(("precision", "scale"), [(5, 2), (14, 2), (15, 4), (15, 0)])
def test_decimals_of_at_most_15_digits_round_back_exactly(precision: int, scale: int) -> None:
    rng = random.Random(precision * 100 + scale)
    values = [
        Decimal(rng.randrange(-(10**precision) + 1, 10**precision)).scaleb(-scale)
        for _ in range(20_000)
    ]
    values += [Decimal(10**precision - 1).scaleb(-scale), Decimal(0).scaleb(-scale)]
    contract = pa.decimal128(precision, scale)
    column = Column(
        "d", "decimal", f"decimal({precision},{scale})", precision=precision, scale=scale
    )
    way_back = reverse(column, contract, pa.float64())
    # Airbyte's Java doubles are correctly rounded; Arrow's own cast is not always.
    for doubles in (
        pa.array([float(v) for v in values]),
        pc.cast(pa.array(values, contract), pa.float64()),
    ):
        back, marks = way_back.apply(doubles)
        assert way_back.kind == "exact" and back.to_pylist() == values
        assert not any(_count(marks, k) for k in ("lost", "inexact", "not_guaranteed"))


def test_wide_decimals_count_what_the_double_cannot_hold() -> None:
    column = Column("d", "decimal", "decimal(20,2)", precision=20, scale=2)
    values = [
        Decimal("0.10"),
        Decimal("123456789012.34"),
        Decimal("12345678901234567.89"),
        Decimal("999999999999999999.99"),
    ]
    back, marks = reverse(column, pa.decimal128(20, 2), pa.float64()).apply(
        pa.array([float(v) for v in values])
    )
    assert back.to_pylist()[:2] == values[:2]  # 15 digits or fewer: exact
    assert back.to_pylist()[3] == values[3]  # beyond the range by rounding: clamped
    assert _count(marks, "not_guaranteed") + _count(marks, "inexact") == 2


def test_base64_decodes_what_the_compatible_write_encodes() -> None:
    rng = random.Random(7)
    values = [os.urandom(rng.randrange(0, 40)) for _ in range(2_000)] + [None, b""]
    decoded, bad = decode.base64_decode(kernels.base64(pa.array(values, pa.binary())))
    assert decoded.to_pylist() == values and not pc.any(bad).as_py()
    text = ["QUJD", "QUI=", "QQ==", "Q===", "QU=I", "abc", "!!!!", "", None]
    decoded, bad = decode.base64_decode(pa.array(text))
    assert decoded.to_pylist() == [b"ABC", b"AB", b"A", None, None, None, None, b"", None]
    assert bad.to_pylist() == [False, False, False, True, True, True, True, False, False]
    assert decoded.to_pylist()[:3] == [base64.b64decode(t) for t in text[:3] if t is not None]


def test_mysqls_geometry_bytes_lose_their_srid_and_wkb_stays() -> None:
    wkb = bytes.fromhex("0101000000000000000000f03f0000000000000040")
    srid = (4326).to_bytes(4, "little")
    out = decode.without_srid(pa.array([srid + wkb, bytes(4) + wkb, wkb, b"", None]))
    assert out.to_pylist() == [wkb, wkb, wkb, b"", None]


def test_big_endian_bytes_and_time_text() -> None:
    numbers, long = decode.big_endian_unsigned(
        pa.array([b"\x0a\xaa", b"", b"\xff" * 8, b"\x01" * 9, None])
    )
    assert numbers.to_pylist() == [2730, 0, 2**64 - 1, None, None]
    assert long.to_pylist() == [False, False, False, True, False]
    micros = pa.array([0, 3_723_500_000, 86_399_999_999, None], pa.int64())
    assert decode.time_text(micros, 0).to_pylist() == ["00:00:00", "01:02:03", "23:59:59", None]
    assert decode.time_text(micros, 3).to_pylist()[1] == "01:02:03.500"
    assert decode.time_text(micros, 6).to_pylist()[2] == "23:59:59.999999"


def test_iso_text_parses_and_invalid_dates_are_nulled_as_the_contract_nulls_them() -> None:
    days, other, invalid = decode.parse_date(
        pa.array(["2024-02-29", "0000-00-00", "2024-02-31", "0000-01-01", "29/02/2024", None])
    )
    assert days.to_pylist() == [date(2024, 2, 29), None, None, None, None, None]
    assert other.to_pylist() == [False, False, False, False, True, False]
    assert invalid.to_pylist() == [False, True, True, True, False, False]
    micros, other, invalid, dropped = decode.parse_timestamp(
        pa.array(
            [
                "2024-02-29T23:59:59.999999Z",
                "1000-01-01 00:00:00",
                "2024-02-30 10:00:00",
                "2024-01-01T00:00:00.1234567",
                "noon",
            ]
        )
    )
    stamps = pc.cast(micros, pa.timestamp("us")).to_pylist()
    assert stamps[:2] == [datetime(2024, 2, 29, 23, 59, 59, 999999), datetime(1000, 1, 1)]
    assert (invalid.to_pylist()[2], dropped.to_pylist()[3], other.to_pylist()[4]) == (
        True,
        True,
        True,
    )


def test_decimal_text_is_mysqls() -> None:
    values = pa.array(
        [Decimal("-1.5"), Decimal(0), Decimal("0.0000001"), None, Decimal("12345.25")],
        pa.decimal128(38, 10),
    )
    assert decode.decimal_text(values).to_pylist() == [
        "-1.5000000000",
        "0.0000000000",
        "0.0000001000",
        None,
        "12345.2500000000",
    ]
    assert decode.significant_digits(values).to_pylist() == [2, 0, 1, None, 7]


def test_member_text_is_parsed_where_member0_is_null() -> None:
    column = Column("d", "datetime", "datetime")
    found = airbyte.TS_UNION
    union = pa.array(
        [
            {"member0": datetime(2024, 1, 1, 10), "member1": None},
            {"member0": None, "member1": "2024-01-02 11:00:00"},
            {"member0": None, "member1": "0000-00-00 00:00:00"},
            {"member0": None, "member1": "garbage"},
            None,
        ],
        found,
    )
    back, marks = reverse(column, pa.timestamp("us"), found).apply(union)
    assert back.to_pylist() == [
        datetime(2024, 1, 1, 10),
        datetime(2024, 1, 2, 11),
        None,
        None,
        None,
    ]
    assert (_count(marks, "nulled"), _count(marks, "lost")) == (1, 1)


def test_cells_are_counted_once_in_the_first_class_that_holds_them() -> None:
    counts = _tally(
        5,
        {
            "lost": [pa.array([True, False, False, False, False])],
            "possibly_lost": [pa.array([True, True, False, False, None])],
            "not_guaranteed": [pa.array([True, True, True, False, False])],
        },
    )
    assert (counts.lost, counts.possibly_lost, counts.not_guaranteed, counts.exact) == (1, 1, 1, 2)
    assert counts.not_exact == 3


def test_old_columns_match_by_source_then_name_then_sanitized_name() -> None:
    stored = ["store name", "id", "2nd score", "preço", "gone"]
    old = ["id", "store_name", "_2nd_score", "preco", "renamed", "extra"]
    matched = match_columns(old, stored, {"renamed": "gone"})
    assert matched == {
        "store name": "store_name",
        "id": "id",
        "2nd score": "_2nd_score",
        "preço": "preco",
        "gone": "renamed",
    }


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_stored_columns_plan_as_the_discovered_ones(case: Case) -> None:
    column = _column(case)
    stored = build_schema("db", "t", [column], [])
    again = stored_columns(stored)[0]
    assert plan_column(again).arrow_type == plan_column(column).arrow_type
    assert (again.precision, again.scale) == (
        (column.precision, column.scale)
        if case.data_type in ("decimal", "bit")
        else (again.precision, again.scale)
    )


def test_report_reads_back_and_the_switch_is_one_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    report = MigrationReport(
        "migrate_20240501T020000Z_1a2b3c4d",
        "store",
        "db",
        str(tmp_path),
        "2024-05-01T02:00:00+00:00",
        partitions=[
            PartitionResult("2024-04-30", "migrated", "airbyte", "legacy", rows=3),
            PartitionResult("2024-05-01", "failed", "airbyte", error="no", error_step=Step.CONVERT),
        ],
    )
    again = MigrationReport.from_json(report.to_json(), "r.json")
    assert again == report and again.to_json() == report.to_json()
    assert again.partitions[1].error_step is Step.CONVERT
    assert json.loads(report.to_json())["partitions"][1]["error_step"] == "convert"
    settings = load_settings(env={"RADAR_DEST": str(tmp_path)})
    destination = Destination(settings)
    assert read_state(destination, "store") is None
    state = ExactState("store", "2024-05-01T02:00:00+00:00", report.migration_id, 3)
    write_state(destination, state)
    assert read_state(destination, "store") == state
    path = Path(destination.keys.migration_state("store"))
    assert path == tmp_path / "_radar_extract" / "migrations" / "store" / "exact.json"
    path.write_text("{not json", encoding="utf-8")
    assert read_state(destination, "store") is not None  # unreadable: still switched
    assert "migration switch" in caplog.text and "counts as set" in caplog.text
    caplog.clear()
    path.write_text(json.dumps({**state.to_dict(), "format": 2}), encoding="utf-8")
    assert read_state(destination, "store") is not None  # a later release's: still switched
    assert "has format 2, newer than the 1 this radar-extract reads" in caplog.text
    assert "it counts as set" in caplog.text


def test_migrate_needs_a_table_and_valid_dates() -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["migrate"]).exit_code == 2
    bad = runner.invoke(
        main, ["migrate", "--table", "t", "--from", "2024-02-30"], env={"RADAR_MYSQL_PORT": "1"}
    )
    assert bad.exit_code == 2 and "--from '2024-02-30' is not a valid date" in bad.output


def test_batches_of_wide_rows_are_bounded_by_bytes(tmp_path: Path) -> None:
    # Rows of 100 kB (a BLOB's base64): 2 MiB hold about 20 of them, far below the row cap.
    path = tmp_path / "old.parquet"
    blobs = [base64.b64encode(os.urandom(75_000)).decode() for _ in range(60)]
    pq.write_table(pa.table({"id": list(range(60)), "blob": blobs}), path, row_group_size=30)
    metadata = pq.ParquetFile(path).metadata
    wide = batch_size(metadata, ["id", "blob"], 50_000, 2 * 1024 * 1024)
    assert 15 <= wide <= 21, wide
    assert batch_size(metadata, ["id"], 50_000, 2 * 1024 * 1024) == 50_000  # narrow: the cap
    assert batch_size(metadata, ["id", "blob"], 50_000, 1) == 1
