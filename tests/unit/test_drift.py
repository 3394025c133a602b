"""Drift without a database: classification, widening rules, the policy, its configuration,
the stored files and the summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from extractor.config import load_settings
from extractor.contract.types import Column
from extractor.drift.compare import Change, compare, is_widening
from extractor.drift.store import (
    StoredSchema,
    build_schema,
    load_schemas,
    schema_path,
    write_schema,
)
from extractor.drift_policy import DEFAULTS, KEYS, Action, DriftPolicy, strictest
from extractor.errors import ConfigError, UsageError
from extractor.run.report import RunReport, TableResult
from extractor.run.summary import summary_lines
from extractor.sink.manifest import DriftRecord


def col(
    name: str,
    column_type: str,
    nullable: bool = True,
    has_default: bool = True,
) -> Column:
    """A Column as discovery would give it, from the COLUMN_TYPE text."""
    data_type = column_type.split("(")[0].split()[0].lower()
    precision = scale = dt_precision = None
    if data_type in ("decimal", "numeric"):
        p, s = column_type.split("(")[1].split(")")[0].split(",")
        precision, scale = int(p), int(s)
    if data_type in ("datetime", "timestamp", "time"):
        dt_precision = int(column_type.split("(")[1][0]) if "(" in column_type else 0
    return Column(
        name,
        data_type,
        column_type,
        nullable,
        precision,
        scale,
        dt_precision,
        has_default=nullable or has_default,
    )


def schema(*columns: Column, table: str = "t") -> StoredSchema:
    return build_schema("db", table, columns, ["id"])


ID = col("id", "int(11)", nullable=False)


def kinds(changes: list[Change]) -> list[str]:
    return [c.kind for c in changes]


# --- classification -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ([ID], [ID, col("a", "int(11)")], ["column_added"]),
        ([ID], [ID, col("a", "int(11)", nullable=False, has_default=True)], ["column_added"]),
        (
            [ID],
            [ID, col("a", "int(11)", nullable=False, has_default=False)],
            ["column_added_required"],
        ),
        ([ID, col("a", "int(11)")], [ID], ["column_removed"]),
        ([ID, col("a", "int(11)")], [ID, col("b", "int(11)")], ["column_renamed"]),
        ([ID, col("a", "varchar(5)")], [ID, col("a", "varchar(9)")], ["type_widened"]),
        ([ID, col("a", "varchar(9)")], [ID, col("a", "varchar(5)")], ["type_changed"]),
        (
            [ID, col("a", "int(11)")],
            [ID, col("a", "int(11)", nullable=False)],
            ["nullability_changed"],
        ),
        (
            [ID, col("a", "int(11)"), col("b", "date")],
            [ID, col("b", "date"), col("a", "int(11)")],
            ["order_changed"],
        ),
        ([ID, col("a", "int(11)")], [ID, col("a", "int(11)")], []),
    ],
    ids=[
        "added",
        "added-not-null-with-default",
        "added-required",
        "removed",
        "renamed",
        "widened",
        "narrowed",
        "nullability",
        "order",
        "unchanged",
    ],
)
def test_every_column_class(before: list[Column], after: list[Column], expected: list[str]) -> None:
    assert kinds(compare(schema(*before), schema(*after))) == expected


def test_table_added_and_removed() -> None:
    assert kinds(compare(None, schema(ID))) == ["table_added"]
    assert kinds(compare(schema(ID), None)) == ["table_removed"]
    assert compare(None, None) == []


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # another type at the same position: not a rename
        ([ID, col("a", "int(11)")], [ID, col("b", "bigint(20)")]),
        # the same type at another position: not a rename
        ([ID, col("a", "int(11)"), col("x", "date")], [ID, col("x", "date"), col("b", "int(11)")]),
    ],
    ids=["other-type", "other-position"],
)
def test_a_removal_and_an_addition_that_do_not_look_like_a_rename(
    before: list[Column], after: list[Column]
) -> None:
    assert set(kinds(compare(schema(*before), schema(*after)))) >= {
        "column_removed",
        "column_added",
    }


def test_rename_reports_old_and_new_name() -> None:
    (change,) = compare(schema(ID, col("a", "varchar(3)")), schema(ID, col("b", "varchar(3)")))
    assert (change.column, change.stored, change.live) == ("a", "a", "b")
    assert change.note == "looks like a rename: same type varchar(3) at position 2"
    assert not change.parquet_type_changed


def test_a_type_change_and_a_nullability_change_of_one_column() -> None:
    changes = compare(
        schema(ID, col("a", "int(11)")), schema(ID, col("a", "bigint(20)", nullable=False))
    )
    assert kinds(changes) == ["nullability_changed", "type_widened"]
    assert [c.parquet_type_changed for c in changes] == [False, True]


@pytest.mark.parametrize(
    ("before", "after", "widened"),
    [
        ("int(11)", "bigint(20)", True),
        ("tinyint(1)", "tinyint(4)", True),  # display width only
        ("smallint(6)", "mediumint(9)", True),
        ("int(10) unsigned", "bigint(20)", True),
        ("int(10) unsigned", "bigint(20) unsigned", True),
        ("int(10) unsigned", "int(11)", False),
        ("int(11)", "int(10) unsigned", False),
        ("int(11)", "bigint(20) unsigned", False),
        ("bigint(20)", "int(11)", False),
        ("varchar(50)", "varchar(100)", True),
        ("varchar(100)", "varchar(50)", False),
        ("char(2)", "char(3)", True),
        ("varbinary(4)", "varbinary(8)", True),
        ("binary(4)", "binary(8)", False),  # BINARY pads with zero bytes: values change
        ("varchar(50)", "text", True),  # any VARCHAR fits TEXT's 65,535 bytes
        ("varchar(255)", "longtext", True),
        ("varchar(50)", "tinytext", False),  # 255 bytes: 50 utf8mb4 characters may not fit
        ("char(2)", "varchar(2)", True),
        ("char(3)", "varchar(2)", False),
        ("varbinary(8)", "blob", True),
        ("binary(8)", "blob", False),
        ("text", "varchar(50)", False),
        ("text", "mediumtext", True),
        ("mediumtext", "longtext", True),
        ("longtext", "text", False),
        ("blob", "longblob", True),
        ("decimal(10,2)", "decimal(12,2)", True),
        ("decimal(10,2)", "decimal(12,4)", True),
        ("decimal(10,2)", "decimal(10,4)", False),  # fewer integer digits
        ("decimal(10,2)", "decimal(11,1)", False),  # fewer fractional digits
        ("decimal(10,2) unsigned", "decimal(10,2)", True),
        ("decimal(10,2)", "decimal(10,2) unsigned", False),
        ("float", "double", True),
        ("double", "float", False),
        ("float(7,3)", "double", False),
        ("datetime", "datetime(3)", True),
        ("datetime(6)", "datetime(3)", False),
        ("timestamp", "timestamp(6)", True),
        ("time(1)", "time(2)", True),
        ("enum('a','b')", "enum('a','b','c')", True),
        ("enum('a','b')", "enum('b','a')", False),
        ("enum('a','b')", "enum('a')", False),
        ("enum('A')", "enum('a')", False),
        ("enum('it''s')", "enum('it''s','x')", True),
        ("set('x')", "set('x','y')", True),
        ("int(11)", "varchar(20)", False),
        ("date", "datetime", False),
    ],
)
def test_widening_rules(before: str, after: str, widened: bool) -> None:
    old, new = schema(ID, col("c", before)).columns[1], schema(ID, col("c", after)).columns[1]
    assert is_widening(old, new) is widened
    (change,) = compare(schema(ID, col("c", before)), schema(ID, col("c", after)))
    assert change.kind == ("type_widened" if widened else "type_changed")


@pytest.mark.parametrize(
    ("before", "after", "arrow"),
    [
        ("int(11)", "bigint(20)", ("int32", "int64")),
        ("decimal(10,2)", "decimal(12,2)", ("decimal128(10, 2)", "decimal128(12, 2)")),
        ("varchar(5)", "varchar(6)", None),
        ("datetime", "datetime(6)", None),
        ("int(10) unsigned", "bigint(20)", None),
    ],  # int64 both: the contract widened it already
)
def test_parquet_type_change_is_visible(
    before: str, after: str, arrow: tuple[str, str] | None
) -> None:
    (change,) = compare(schema(ID, col("c", before)), schema(ID, col("c", after)))
    assert change.parquet_type_changed is (arrow is not None)
    if arrow:
        assert (change.stored_arrow, change.live_arrow) == arrow
        assert change.describe().endswith(f"(Parquet {arrow[0]} → {arrow[1]})")


def test_changes_are_sorted_for_stable_json() -> None:
    before = schema(ID, col("b", "int(11)"), col("a", "int(11)"), col("z", "date"))
    after = schema(ID, col("a", "bigint(20)"), col("b", "int(11)"), col("y", "text"))
    assert [(c.column, c.kind) for c in compare(before, after)] == [
        (None, "order_changed"),
        ("a", "type_widened"),
        ("y", "column_added"),
        ("z", "column_removed"),
    ]


# --- policy -------------------------------------------------------------------------------


def test_defaults_are_the_documented_ones() -> None:
    assert {k for k, v in DEFAULTS.items() if v == "fail"} == {
        "table_removed",
        "column_removed",
        "column_renamed",
        "type_changed",
        "parquet_type_changed",
    }
    assert set(DEFAULTS) == set(KEYS)
    assert strictest(["evolve", "fail", "warn"]) == "fail" and strictest([]) == "evolve"


def test_resolution_takes_the_strictest_applicable_key() -> None:
    policy = DriftPolicy()
    assert policy.resolve("t", "type_widened") == ("warn", "type_widened")
    assert policy.resolve("t", "type_widened", True) == ("fail", "parquet_type_changed")
    relaxed = DriftPolicy(keys={"parquet_type_changed": "warn"})
    assert relaxed.resolve("t", "type_widened", True) == ("warn", "type_widened")
    assert relaxed.resolve("t", "type_changed", True) == ("fail", "type_changed")


def test_table_overrides_replace_the_global_key_and_on_drift_beats_everything() -> None:
    policy = DriftPolicy(
        keys={"column_added": "fail"},
        tables={"store": {"column_added": "evolve", "type_changed": "warn"}},
    )
    assert policy.resolve("store", "column_added") == ("evolve", "column_added")
    assert policy.resolve("other", "column_added") == ("fail", "column_added")
    # type_changed is relaxed for store, parquet_type_changed is not: the strictest wins
    assert policy.resolve("store", "type_changed", True) == ("fail", "parquet_type_changed")
    emergency = DriftPolicy(policy.keys, policy.tables, on_drift="warn")
    assert emergency.resolve("store", "column_removed") == ("warn", "on_drift")


# --- configuration ------------------------------------------------------------------------


def test_drift_settings_from_file_environment_and_flags(tmp_path: Path) -> None:
    config = tmp_path / "radar.toml"
    config.write_text(
        'schemas_dir = "golden"\non_drift = "evolve"\n[drift]\n'
        'column_removed = "warn"\n[drift.tables.store]\ntype_changed = "evolve"\n',
        encoding="utf-8",
    )
    settings = load_settings(config, env={})
    assert settings.schemas_dir == "golden"
    assert settings.drift_policy == DriftPolicy(
        {"column_removed": "warn"}, {"store": {"type_changed": "evolve"}}, "evolve"
    )
    env = {"RADAR_ON_DRIFT": "fail", "RADAR_SCHEMAS_DIR": "elsewhere"}
    assert load_settings(config, env=env).drift_policy.on_drift == "fail"
    assert load_settings(config, env=env).schemas_dir == "elsewhere"
    assert (
        load_settings(config, env=env, overrides={"on_drift": "warn"}).drift_policy.on_drift
        == "warn"
    )
    defaults = load_settings(env={})
    assert (defaults.schemas_dir, defaults.drift_policy) == ("schemas", DriftPolicy())


def test_bad_drift_configuration_lists_every_problem(tmp_path: Path) -> None:
    config = tmp_path / "radar.toml"
    config.write_text(
        '[drift]\ncolumn_gone = "fail"\ntype_changed = "explode"\n'
        "[drift.tables.store]\norder_changed = 3\n[drift.tables]\nx = 1\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env={"RADAR_ON_DRIFT": "maybe"})
    problems = caught.value.problems
    assert any("unknown drift class 'column_gone'" in p for p in problems)
    assert any("type_changed = 'explode' must be one of evolve, warn, fail" in p for p in problems)
    assert any("[drift.tables.store] order_changed = 3" in p for p in problems)
    assert any("[drift.tables.x] must be a table" in p for p in problems)
    assert any("on_drift 'maybe' must be one of" in p for p in problems)
    assert len(problems) == 5


# --- stored files -------------------------------------------------------------------------


def test_serialisation_is_the_contract_format(tmp_path: Path) -> None:
    stored = schema(ID, col("price", "decimal(10,2)"), table="store")
    text = stored.to_json()
    assert text == json.dumps(stored.to_dict(), indent=2, sort_keys=True) + "\n"
    assert json.loads(text)["columns"][1] == {
        "arrow_type": "decimal128(10, 2)",
        "data_type": "decimal",
        "has_default": True,
        "mysql_type": "decimal(10,2)",
        "name": "price",
        "nullable": True,
    }
    assert write_schema(tmp_path, stored) is True
    assert write_schema(tmp_path, stored) is False  # unchanged: not rewritten
    assert (tmp_path / "db" / "store.json").read_text(encoding="utf-8") == text
    assert load_schemas(tmp_path, "db") == {"store": stored}
    assert load_schemas(tmp_path, "other") is None


def test_unsupported_column_is_stored_without_arrow_type() -> None:
    stored = schema(ID, Column("g", "weird", "weird"))
    assert stored.columns[1].arrow_type is None


@pytest.mark.parametrize(
    "content", ["{", "[]", '{"format": 2}', '{"format": 1, "database": "db", "table": "other"}']
)
def test_a_broken_stored_file_is_a_usage_error(tmp_path: Path, content: str) -> None:
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "store.json").write_text(content, encoding="utf-8")
    with pytest.raises(UsageError, match=r"stored schema .*store\.json"):
        load_schemas(tmp_path, "db")


def test_table_names_cannot_escape_the_folder(tmp_path: Path) -> None:
    for name in ("..", "a/b", "a\\b"):
        with pytest.raises(UsageError):
            schema_path(tmp_path, "db", name)


# --- summary ------------------------------------------------------------------------------


def _drift(kind: str, action: Action, **extra: Any) -> DriftRecord:
    return DriftRecord(kind, action, **extra)


def test_summary_collapses_tables_without_stored_schema() -> None:
    report = RunReport(
        "r",
        "2024-05-01",
        "db",
        "/d",
        "now",
        tables=[
            TableResult(f"t{i}", "published", drift=[_drift("table_added", "warn")])
            for i in range(5)
        ],
    )
    drift = [line for line in summary_lines(report) if "drift" in line]
    assert drift == [
        "  drift warning: 5 tables have no stored schema (table_added); "
        "`radar-extract schemas snapshot` stores them"
    ]


def test_summary_warns_for_warn_only_and_explains_a_parquet_change() -> None:
    report = RunReport(
        "r",
        "2024-05-01",
        "db",
        "/d",
        "now",
        tables=[
            TableResult(
                "a",
                "published",
                drift=[
                    _drift(
                        "type_widened",
                        "warn",
                        column="n",
                        stored="int(11)",
                        live="bigint(20)",
                        parquet_type_changed=True,
                        stored_arrow_type="int32",
                        live_arrow_type="int64",
                    )
                ],
            ),
            TableResult("b", "published", drift=[_drift("column_removed", "evolve", column="x")]),
            TableResult("c", "published", drift=[_drift("table_added", "warn")]),
        ],
    )
    drift = [line for line in summary_lines(report) if "drift" in line]
    assert drift[0] == "  drift warning: no stored schema for c (table_added)"
    assert (
        drift[1] == "  drift warning: a: type_widened n: int(11) → bigint(20) (Parquet "
        "int32 → int64)"
    )
    assert drift[2].startswith("  drift note, a changed Parquet type: older partitions keep")
    assert "HIVE_PARTITION_SCHEMA_MISMATCH" in drift[2] and len(drift) == 3


def test_on_drift_flag_accepts_only_the_actions() -> None:
    from click.testing import CliRunner

    from extractor.cli import main

    result = CliRunner().invoke(
        main, ["extract", "--on-drift", "maybe"], env={"RADAR_MYSQL_PORT": "1"}
    )
    assert result.exit_code == 2 and "'maybe' is not one of" in result.output
    for command in (["schemas", "snapshot", "--help"], ["schemas", "diff", "--help"]):
        assert CliRunner().invoke(main, command).exit_code == 0
