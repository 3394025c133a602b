"""The type contract as a pure table: each case gets the Arrow type and projection it promises."""

from __future__ import annotations

import pyarrow as pa
import pytest

from extractor.contract.types import Column, arrow_schema, plan_column, quote_identifier
from extractor.errors import UnsupportedColumn
from tests.type_matrix import CASES, Case


def _column(case: Case) -> Column:
    return Column(
        "v",
        case.data_type,
        case.column_type,
        precision=case.precision,
        scale=case.scale,
        datetime_precision=6 if case.column_type.endswith("(6)") else 0,
    )


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_contract_row_has_its_arrow_type(case: Case) -> None:
    assert plan_column(_column(case)).arrow_type == case.arrow


def test_unsigned_never_maps_to_unsigned_arrow_types() -> None:
    for case in CASES:
        arrow = plan_column(_column(case)).arrow_type
        assert not pa.types.is_unsigned_integer(arrow), case.id


@pytest.mark.parametrize(
    ("column", "sql"),
    [
        (
            Column("amount", "decimal", "decimal(14,2)", precision=14, scale=2),
            "CAST(`amount` * 100 AS SIGNED) AS `amount`",
        ),
        (
            Column("big", "decimal", "decimal(30,4)", precision=30, scale=4),
            "CAST(`big` AS CHAR) AS `big`",
        ),
        (Column("day", "date", "date"), "`day` + 0 AS `day`"),
        (Column("at", "datetime", "datetime", datetime_precision=0), "`at` + 0 AS `at`"),
        (
            Column("at6", "datetime", "datetime(6)", datetime_precision=6),
            "CAST(`at6` AS CHAR) AS `at6`",
        ),
        (
            Column("ts", "timestamp", "timestamp"),
            "CAST(UNIX_TIMESTAMP(`ts`) * 1000000 AS SIGNED) AS `ts`",
        ),
        (Column("g", "point", "point"), "ST_AsBinary(`g`) AS `g`"),
        (Column("flags", "bit", "bit(8)", precision=8), "CAST(`flags` AS UNSIGNED) AS `flags`"),
        (Column("we`ird", "int", "int(11)"), "`we``ird` AS `we``ird`"),
    ],
    ids=[
        "decimal-unscaled",
        "decimal-text",
        "date",
        "datetime",
        "datetime6",
        "timestamp",
        "geometry",
        "bit",
        "quoted-name",
    ],
)
def test_projections(column: Column, sql: str) -> None:
    assert plan_column(column).select_sql("mariadb") == sql
    if column.data_type != "point":  # the same SQL on MySQL, but for geometry (below)
        assert plan_column(column).select_sql("mysql") == sql


def test_wkb_is_longitude_first_on_mysql_too() -> None:
    plan = plan_column(Column("g", "geometry", "geometry"))
    assert plan.select_sql("mysql") == "ST_AsBinary(`g`, 'axis-order=long-lat') AS `g`"


def test_unknown_type_is_an_error_naming_table_and_column() -> None:
    with pytest.raises(UnsupportedColumn) as info:
        plan_column(Column("embedding", "vector", "vector(3)"), table="product")
    assert info.value.table == "product"
    assert "'embedding'" in str(info.value) and "vector(3)" in str(info.value)


def test_schema_fields_are_all_nullable() -> None:
    plans = [plan_column(Column("d", "date", "date", nullable=False))]
    assert arrow_schema(plans).field("d").nullable


def test_quote_identifier_doubles_backticks() -> None:
    assert quote_identifier("a`b") == "`a``b`"
