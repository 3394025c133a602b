"""The catalog's pure parts: Parquet/Arrow -> Hive types, the settings, the command's usage
errors before any I/O. Glue itself is tested against moto's server (integration)."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest
from click.testing import CliRunner

from extractor.cli import main
from extractor.config import load_settings
from extractor.contract.types import Column, plan_column
from extractor.errors import ConfigError, GlueError, UsageError
from extractor.ops.catalog import glue_table_name, sync_catalog
from extractor.ops.hive_types import RULES, hive_columns, hive_type
from tests.type_matrix import CASES

HIVE = [
    (pa.bool_(), "boolean"),
    (pa.int8(), "tinyint"),
    (pa.int16(), "smallint"),
    (pa.int32(), "int"),
    (pa.int64(), "bigint"),
    (pa.float32(), "float"),
    (pa.float64(), "double"),
    (pa.decimal128(14, 2), "decimal(14,2)"),
    (pa.decimal128(20, 0), "decimal(20,0)"),
    (pa.decimal128(38, 10), "decimal(38,10)"),
    (pa.decimal256(38, 0), "decimal(38,0)"),
    (pa.string(), "string"),
    (pa.large_string(), "string"),
    (pa.binary(), "binary"),
    (pa.large_binary(), "binary"),
    (pa.binary(16), "binary"),
    (pa.date32(), "date"),
    (pa.date64(), "date"),
    (pa.timestamp("us"), "timestamp"),
    (pa.timestamp("us", tz="UTC"), "timestamp"),
    (pa.timestamp("ms"), "timestamp"),
    (pa.list_(pa.int32()), "array<int>"),
    (pa.large_list(pa.string()), "array<string>"),
    (pa.list_(pa.decimal128(5, 2), 3), "array<decimal(5,2)>"),
    (pa.map_(pa.string(), pa.float64()), "map<string,double>"),
    (
        pa.struct([("a", pa.int64()), ("b", pa.list_(pa.string()))]),
        "struct<a:bigint,b:array<string>>",
    ),
    (pa.list_(pa.struct([("x", pa.bool_())])), "array<struct<x:boolean>>"),
    (pa.dictionary(pa.int32(), pa.string()), "string"),
]


@pytest.mark.parametrize(("arrow", "hive"), HIVE, ids=[str(a) for a, _ in HIVE])
def test_hive_type(arrow: pa.DataType, hive: str) -> None:
    assert hive_type(arrow) == hive


@pytest.mark.parametrize(
    "arrow",
    [
        pa.uint8(),
        pa.uint64(),
        pa.time64("us"),
        pa.null(),
        pa.decimal256(40, 2),
        pa.float16(),
        pa.duration("s"),
        pa.list_(pa.uint32()),
    ],
    ids=str,
)
def test_a_type_without_a_hive_type_never_passes(arrow: pa.DataType) -> None:
    with pytest.raises(GlueError, match="has no Hive type"):
        hive_type(arrow)


def test_every_type_the_contract_writes_has_a_hive_type() -> None:
    """The type matrix's cases, planned by the contract: each Arrow type it yields maps."""
    for case in CASES:
        column = Column(
            "c", case.data_type, case.column_type, precision=case.precision, scale=case.scale
        )
        assert hive_type(plan_column(column).arrow_type), case.id


def test_every_rule_is_reached() -> None:
    reached = {next(r.arrow for r in RULES if r.matches(arrow)) for arrow, _ in HIVE}
    assert reached == {r.arrow for r in RULES}


def test_columns_are_lower_case_and_name_the_column_without_a_type() -> None:
    schema = pa.schema([("Id", pa.int32()), ("Price", pa.decimal128(14, 2))])
    assert hive_columns(schema) == [("id", "int"), ("price", "decimal(14,2)")]
    with pytest.raises(GlueError) as caught:
        hive_columns(pa.schema([("ok", pa.int8()), ("Elapsed", pa.time64("us"))]), "t")
    assert caught.value.message == (
        "column 'Elapsed': Parquet type time64[us] has no Hive type: "
        "the Glue table's columns are not changed"
    )
    assert caught.value.table == "t"


def test_settings_database_prefix_and_sync() -> None:
    settings = load_settings(
        env={
            "RADAR_GLUE_DATABASE": "Bronze_Radar",
            "RADAR_GLUE_TABLE_PREFIX": "Radar_",
            "RADAR_DEST": "s3://bucket",
            "RADAR_CATALOG_SYNC": "yes",
        }
    )
    assert (settings.glue_database, settings.glue_table_prefix, settings.catalog_sync) == (
        "bronze_radar",
        "radar_",
        True,
    )
    assert glue_table_name(settings, "StoreItems") == "radar_storeitems"
    defaults = load_settings(env={})
    assert (defaults.glue_database, defaults.glue_table_prefix, defaults.catalog_sync) == (
        None,
        "",
        False,
    )
    assert glue_table_name(defaults, "Store") == "store"


def test_bad_catalog_settings_are_listed_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(
            env={
                "RADAR_GLUE_DATABASE": "bronze radar",
                "RADAR_CATALOG_SYNC": "maybe",
                "RADAR_GLUE_TABLE_PREFIX": "a/b",
            }
        )
    assert caught.value.problems == [
        "glue_database 'bronze radar' must be 1-255 letters, digits, _ or -",
        "glue_table_prefix 'a/b' must be 1-255 letters, digits, _ or -",
        "catalog_sync must be true or false, got 'maybe'",
    ]
    with pytest.raises(ConfigError) as needs:
        load_settings(env={"RADAR_CATALOG_SYNC": "1"})
    assert needs.value.problems == [
        "catalog_sync needs glue_database (RADAR_GLUE_DATABASE)",
        "catalog_sync needs an s3:// dest: Glue locations are S3 URLs",
    ]


def test_catalog_sync_bad_date_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["catalog", "sync", "--date", "2024-02-30"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "radar-extract: error: --date '2024-02-30' is not a valid date (YYYY-MM-DD)"
    )


@pytest.mark.parametrize(
    ("env", "tables", "line"),
    [
        (
            {"RADAR_DEST": "s3://bucket"},
            None,
            "no Glue database: give --database NAME or set RADAR_GLUE_DATABASE",
        ),
        (
            {"RADAR_GLUE_DATABASE": "bronze", "RADAR_DEST": "/tmp/x"},
            None,
            "catalog sync needs an s3:// destination, not '/tmp/x': Glue locations are S3 URLs",
        ),
        (
            {"RADAR_GLUE_DATABASE": "bronze", "RADAR_DEST": "s3://bucket"},
            ["a/b"],
            "table name 'a/b' is not valid",
        ),
    ],
    ids=["database", "local-dest", "table"],
)
def test_catalog_sync_usage_errors_come_before_any_io(
    env: dict[str, str],
    tables: list[str] | None,
    line: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Glue at a closed port: a call would be exit 3, not a usage error.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    with pytest.raises(UsageError) as caught:
        sync_catalog(load_settings(env=env), date(2024, 3, 1), tables=tables)
    assert caught.value.message == line and caught.value.exit_code == 2
