"""Schema drift end to end: snapshot a real database, ALTER its tables, then `schemas diff`
and `extract` through the real CLI.

One database holds one small table per change; each table gets one ALTER after the snapshot,
so a single run checks every class and action at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Result, Server

pytestmark = pytest.mark.integration

PREFIX = "origin=airbyte/database=bronze_radar"
DAY = "2024-05-01"

TABLES = [
    "CREATE TABLE t_same (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL)",
    "CREATE TABLE t_added (id INT PRIMARY KEY, a INT)",
    "CREATE TABLE t_added_required (id INT PRIMARY KEY, a INT)",
    "CREATE TABLE t_removed (id INT PRIMARY KEY, a INT, b VARCHAR(10))",
    "CREATE TABLE t_renamed (id INT PRIMARY KEY, b VARCHAR(10), z INT)",
    "CREATE TABLE t_widened (id INT PRIMARY KEY, name VARCHAR(50))",
    "CREATE TABLE t_widened_parquet (id INT PRIMARY KEY, n INT)",
    "CREATE TABLE t_decimal (id INT PRIMARY KEY, price DECIMAL(10,2))",
    "CREATE TABLE t_changed (id INT PRIMARY KEY, code VARCHAR(10))",
    "CREATE TABLE t_nullability (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL)",
    "CREATE TABLE t_order (id INT PRIMARY KEY, a INT, b INT)",
    "CREATE TABLE t_evolve (id INT PRIMARY KEY, a INT, b INT)",
    "CREATE TABLE t_gone (id INT PRIMARY KEY)",
]
ROWS = [f"INSERT INTO {s.split()[2]} (id) VALUES (1), (2)" for s in TABLES]
UPDATES = [
    "UPDATE t_changed SET code = CAST(id AS CHAR)",
    "UPDATE t_same SET name = 'x'",
    "UPDATE t_nullability SET name = 'y'",
    "UPDATE t_decimal SET price = 12.34",
]
ALTERS = [
    "ALTER TABLE t_added ADD COLUMN note VARCHAR(20) NULL",
    "ALTER TABLE t_added_required ADD COLUMN qty INT NOT NULL",
    "ALTER TABLE t_removed DROP COLUMN b",
    "ALTER TABLE t_renamed CHANGE b c VARCHAR(10)",
    "ALTER TABLE t_widened MODIFY name VARCHAR(100)",
    "ALTER TABLE t_widened_parquet MODIFY n BIGINT",
    "ALTER TABLE t_decimal MODIFY price DECIMAL(12,2)",
    "ALTER TABLE t_changed MODIFY code INT",
    "ALTER TABLE t_nullability MODIFY name VARCHAR(50) NULL",
    "ALTER TABLE t_order MODIFY b INT AFTER id",
    "ALTER TABLE t_evolve DROP COLUMN b",
    "CREATE TABLE t_new (id INT PRIMARY KEY)",
    "DROP TABLE t_gone",
]
POLICY = """
[drift]
order_changed = "evolve"

[drift.tables.t_evolve]
column_removed = "evolve"

[drift.tables.t_decimal]
parquet_type_changed = "warn"

[drift.tables.t_typo]
column_added = "fail"
"""

# table -> (classes of its drift, action of the table, status after the run with POLICY)
EXPECTED = {
    "t_same": ([], "evolve", "published"),
    "t_added": (["column_added"], "warn", "published"),
    "t_added_required": (["column_added_required"], "warn", "published"),
    "t_removed": (["column_removed"], "fail", "failed"),
    "t_renamed": (["column_renamed"], "fail", "failed"),
    "t_widened": (["type_widened"], "warn", "published"),
    "t_widened_parquet": (["type_widened"], "fail", "failed"),
    "t_decimal": (["type_widened"], "warn", "published"),  # parquet_type_changed = warn
    "t_changed": (["type_changed"], "fail", "failed"),
    "t_nullability": (["nullability_changed"], "warn", "published"),
    "t_order": (["order_changed"], "evolve", "published"),  # [drift] order_changed
    "t_evolve": (["column_removed"], "evolve", "published"),  # [drift.tables.t_evolve]
    "t_new": (["table_added"], "warn", "published"),
    "t_gone": (["table_removed"], "fail", "failed"),
}


def _run(*args: str, env: dict[str, str], timeout: float = 120) -> Result:
    """`radar-extract` as a real process with a clean RADAR_* environment (module scope)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("RADAR_")}
    base.update(env)
    proc = subprocess.run(
        [sys.executable, "-m", "extractor", *args],
        capture_output=True,
        text=True,
        env=base,
        timeout=timeout,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "/runs/" not in str(p)
    }


@dataclass
class Scenario:
    database: str
    env: dict[str, str]
    schemas: Path
    config: Path
    first_snapshot: dict[str, bytes]
    second_snapshot: dict[str, bytes]
    unchanged_diff: Result
    dest: Path
    before: dict[str, bytes]  # the destination after the clean run
    diff: Result
    diff_json: Result
    run: Result
    report: dict[str, Any]

    def result(self, table: str) -> dict[str, Any]:
        return next(t for t in self.report["tables"] if t["table"] == table)


@pytest.fixture(scope="module")
def scenario(
    make_module_database: Callable[..., str],
    server: Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Scenario:
    database = make_module_database(*TABLES, *ROWS, *UPDATES, sql_mode="")
    tmp = tmp_path_factory.mktemp("drift")
    schemas, dest, config = tmp / "schemas", tmp / "out", tmp / "radar.toml"
    config.write_text(POLICY, encoding="utf-8")
    env = {
        "RADAR_MYSQL_URL": server.url(database),
        "RADAR_SCHEMAS_DIR": str(schemas),
        "RADAR_WORKERS": "2",
    }
    first = _run("schemas", "snapshot", env=env)
    assert first.code == 0, first.output
    first_files = _files(schemas)
    second = _run("schemas", "snapshot", env=env)
    assert second.code == 0, second.output
    unchanged = _run("schemas", "diff", env=env)
    clean = _run("extract", "--dest", str(dest), "--date", DAY, env=env)
    assert clean.code == 0, clean.output
    before = _files(dest)
    conn = server.connect(database)
    try:
        with conn.cursor() as cur:
            for statement in ALTERS:
                cur.execute(statement)
    finally:
        conn.close()
    report_file = tmp / "report.json"
    run = _run(
        "extract",
        "--config",
        str(config),
        "--dest",
        str(dest),
        "--date",
        DAY,
        "--report",
        str(report_file),
        env=env,
    )
    return Scenario(
        database,
        env,
        schemas,
        config,
        first_files,
        _files(schemas),
        unchanged,
        dest,
        before,
        _run("schemas", "diff", "--config", str(config), env=env),
        _run("schemas", "diff", "--json", "--config", str(config), env=env),
        run,
        json.loads(report_file.read_text(encoding="utf-8")),
    )


def test_snapshot_is_byte_stable_and_matches_the_database(scenario: Scenario) -> None:
    assert scenario.first_snapshot == scenario.second_snapshot
    assert sorted(scenario.first_snapshot) == sorted(
        f"{scenario.database}/{s.split()[2]}.json" for s in TABLES
    )
    stored = json.loads(scenario.first_snapshot[f"{scenario.database}/t_decimal.json"])
    assert stored["primary_key"] == ["id"] and stored["format"] == 1
    assert [
        (c["name"], c["mysql_type"], c["nullable"], c["arrow_type"]) for c in stored["columns"]
    ] == [("id", "int", False, "int32"), ("price", "decimal(10,2)", True, "decimal128(10, 2)")]
    text = scenario.first_snapshot[f"{scenario.database}/t_decimal.json"].decode()
    assert text == json.dumps(stored, indent=2, sort_keys=True) + "\n"


def test_diff_on_an_unchanged_database_prints_no_drift(scenario: Scenario) -> None:
    assert scenario.unchanged_diff.code == 0, scenario.unchanged_diff.output
    assert (
        scenario.unchanged_diff.stdout
        == f"no drift: 13 tables match {scenario.schemas / scenario.database}\n"
    )


@pytest.mark.parametrize("table", sorted(EXPECTED))
def test_each_change_is_classified_and_acted_on(scenario: Scenario, table: str) -> None:
    classes, action, status = EXPECTED[table]
    result = scenario.result(table)
    assert [d["class"] for d in result["drift"]] == classes
    assert result["status"] == status, result
    if status == "failed":
        assert result["error_step"] == "drift" and result["attempts"] == 0  # never read
        assert result["error_type"] == "SchemaDrift"
        assert {d["action"] for d in result["drift"]} == {"fail"}
    else:
        assert {d["action"] for d in result["drift"]} <= {action}
        files = sorted((scenario.dest / PREFIX / table / f"cog_dt_ingestion={DAY}").iterdir())
        assert [f.name for f in files] == [f"file_{table}_001.parquet"]
    diffed = {t["table"]: t for t in json.loads(scenario.diff_json.stdout)["tables"]}
    if classes:
        assert diffed[table]["action"] == action
        assert [c["class"] for c in diffed[table]["changes"]] == classes
    else:
        assert table not in diffed


def test_drift_details_say_what_changed(scenario: Scenario) -> None:
    (widened,) = scenario.result("t_widened_parquet")["drift"]
    assert widened == {
        "class": "type_widened",
        "column": "n",
        "stored": "int",
        "live": "bigint",
        "action": "fail",
        "policy_key": "parquet_type_changed",
        "note": None,
        "parquet_type_changed": True,
        "stored_arrow_type": "int32",
        "live_arrow_type": "int64",
    }
    error = scenario.result("t_widened_parquet")["error"]
    assert "HIVE_PARTITION_SCHEMA_MISMATCH" in error
    assert "update the Glue table's column type" in error and "rewrite the old partitions" in error
    (varchar,) = scenario.result("t_widened")["drift"]
    assert (varchar["stored"], varchar["live"], varchar["parquet_type_changed"]) == (
        "varchar(50)",
        "varchar(100)",
        False,
    )
    (renamed,) = scenario.result("t_renamed")["drift"]
    assert (renamed["stored"], renamed["live"]) == ("b", "c")
    assert "looks like a rename" in renamed["note"]
    (required,) = scenario.result("t_added_required")["drift"]
    assert (required["column"], required["live"]) == ("qty", "int NOT NULL")
    (decimal,) = scenario.result("t_decimal")["drift"]
    assert (decimal["stored_arrow_type"], decimal["live_arrow_type"], decimal["action"]) == (
        "decimal128(10, 2)",
        "decimal128(12, 2)",
        "warn",
    )


def test_run_exit_code_and_summary(scenario: Scenario) -> None:
    run = scenario.run
    assert run.code == 1, run.output
    assert (
        "t_removed: failed at drift (not retried: the schema must be reviewed): schema "
        "drift: fail: column_removed b: varchar(10) → (none)" in run.stderr
    )
    assert "drift warning: t_widened: type_widened name: varchar(50) → varchar(100)" in run.stderr
    assert "drift warning: no stored schema for t_new (table_added)" in run.stderr
    assert "t_evolve" not in "\n".join(
        line for line in run.stderr.splitlines() if "drift warning" in line
    )
    assert scenario.report["totals"]["published"] == 9
    assert scenario.report["totals"]["failed"] == 5


def test_failed_tables_are_untouched_while_others_publish(scenario: Scenario) -> None:
    after = _files(scenario.dest)
    for table in ("t_removed", "t_renamed", "t_widened_parquet", "t_changed", "t_gone"):
        for key in [k for k in scenario.before if f"/{table}/" in k]:
            assert after[key] == scenario.before[key], key  # data and manifest unchanged
    republished = [k for k in scenario.before if "/t_same/" in k and "manifests" in k]
    assert republished and all(after[k] != scenario.before[k] for k in republished)
    assert any("/t_new/" in k for k in after)


def test_diff_groups_changes_per_table_and_exits_1(scenario: Scenario) -> None:
    diff = scenario.diff
    assert diff.code == 1, diff.output
    lines = diff.stdout.splitlines()
    assert lines[0] == "note: the drift policy has overrides for tables not in the database: t_typo"
    at = lines.index("t_removed: fail")
    assert lines[at + 1] == "  fail: column_removed b: varchar(10) → (none)"
    assert (
        "  fail [parquet_type_changed]: type_widened n: int → bigint (Parquet "
        "int32 → int64)" in lines
    )
    assert any(line.startswith("note: a changed Parquet type:") for line in lines)
    assert lines[-1] == f"13 of 14 tables drifted from {scenario.schemas / scenario.database}"
    data = json.loads(scenario.diff_json.stdout)
    assert data["drift"] is True and data["stored_schemas_found"] is True
    assert [t["table"] for t in data["tables"]] == sorted(t for t in EXPECTED if t != "t_same")


def test_diff_of_one_table_and_unknown_tables(scenario: Scenario) -> None:
    same = _run("schemas", "diff", "--table", "t_same", env=scenario.env)
    assert (same.code, same.stdout) == (
        0,
        f"no drift: 1 tables match {scenario.schemas / scenario.database}\n",
    )
    one = _run("schemas", "diff", "--table", "t_added", "--json", env=scenario.env)
    assert one.code == 1 and [t["table"] for t in json.loads(one.stdout)["tables"]] == [
        "t_added"
    ]  # no table_removed for t_gone when tables are named
    unknown = _run("schemas", "diff", "--table", "nope", env=scenario.env)
    assert unknown.code == 2
    assert unknown.stderr.endswith(
        "radar-extract: error: not a base table of the database: 'nope'\n"
    ), unknown.stderr


@pytest.mark.parametrize(
    ("flag", "env_action", "code", "expected"),
    [
        # the flag beats the per-table overrides and the file: every drifted table extracts
        ("evolve", None, 0, {"t_removed": "published", "t_gone": "skipped"}),
        # RADAR_ON_DRIFT beats the file's per-table overrides too
        (None, "fail", 1, {"t_added": "failed", "t_evolve": "failed", "t_same": "published"}),
        # the flag beats the environment
        ("warn", "fail", 0, {"t_changed": "published", "t_gone": "skipped"}),
    ],
    ids=["flag-evolve", "env-fail", "flag-over-env"],
)
def test_on_drift_sets_every_class(
    scenario: Scenario,
    tmp_path: Path,
    flag: str | None,
    env_action: str | None,
    code: int,
    expected: dict[str, str],
) -> None:
    env = dict(scenario.env)
    if env_action:
        env["RADAR_ON_DRIFT"] = env_action
    report_file = tmp_path / "report.json"
    args = [
        "extract",
        "--config",
        str(scenario.config),
        "--dest",
        str(tmp_path / "out"),
        "--report",
        str(report_file),
    ] + (["--on-drift", flag] if flag else [])
    run = _run(*args, env=env)
    assert run.code == code, run.output
    assert "unknown step" not in run.stderr and "Traceback" not in run.stderr
    tables = {t["table"]: t for t in json.loads(report_file.read_text())["tables"]}
    for table, status in expected.items():
        assert tables[table]["status"] == status, tables[table]
    action = flag or env_action
    assert {d["action"] for t in tables.values() for d in t["drift"]} == {action}


def test_snapshot_after_review_clears_the_drift(scenario: Scenario, tmp_path: Path) -> None:
    env = {**scenario.env, "RADAR_SCHEMAS_DIR": str(tmp_path / "schemas")}
    folder = tmp_path / "schemas" / scenario.database
    folder.mkdir(parents=True)
    for key, data in scenario.second_snapshot.items():
        (tmp_path / "schemas" / key).write_bytes(data)
    one = _run("schemas", "snapshot", "--table", "t_added", env=env)
    assert one.code == 0 and one.stdout.splitlines()[0] == "wrote t_added", one.output
    assert (folder / "t_gone.json").exists()  # --table touches only that table's file
    everything = _run("schemas", "snapshot", env=env)
    assert everything.code == 0, everything.output
    assert "removed t_gone (no longer in the database)" in everything.stdout
    assert "wrote t_new" in everything.stdout and not (folder / "t_gone.json").exists()
    again = _run("schemas", "diff", env=env)
    assert again.code == 0 and again.stdout.startswith("no drift: 13 tables"), again.output


def test_no_stored_schemas_is_one_line_not_one_per_table(
    scenario: Scenario, tmp_path: Path
) -> None:
    env = {**scenario.env, "RADAR_SCHEMAS_DIR": str(tmp_path / "none")}
    diff = _run("schemas", "diff", env=env)
    assert diff.code == 1
    assert (
        diff.stdout == f"no stored schemas in {tmp_path / 'none' / scenario.database}: "
        "all 13 tables are new (table_added); `radar-extract schemas snapshot` stores them\n"
    )
    data = json.loads(_run("schemas", "diff", "--json", env=env).stdout)
    assert data["stored_schemas_found"] is False and len(data["tables"]) == 13
    run = _run("extract", "--dest", str(tmp_path / "out"), env=env)
    assert run.code == 0, run.output
    assert [line for line in run.stderr.splitlines() if "drift warning" in line] == [
        "  drift warning: 13 tables have no stored schema (table_added); "
        "`radar-extract schemas snapshot` stores them"
    ]
