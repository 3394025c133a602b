"""Every row of the type contract, round-tripped server -> Parquet -> DuckDB, value by value,
on MariaDB and on MySQL (legacy zero dates included, inserted in a permissive session)."""

from __future__ import annotations

import glob
import json
from datetime import date
from typing import Any

import pyarrow.parquet as pq
import pytest

from extractor.config import load_settings
from extractor.run.catalog import discover
from extractor.run.report import RunReport
from extractor.run.runner import run_extract
from tests.conftest import Server, query
from tests.type_matrix import CASES, Case

pytestmark = pytest.mark.integration
DATE = "2024-05-01"


def _ddl(case: Case, flavor: str = "mariadb") -> list[str]:
    table = f"m_{case.id}"
    values = case.values_on(flavor)
    rows = ", ".join(f"({i}, {v})" for i, v in enumerate(values, start=1))
    return [
        f"CREATE TABLE `{table}` (id INT PRIMARY KEY, v {case.ddl})",
        f"INSERT INTO `{table}` (id, v) VALUES {rows}, ({len(values) + 1}, NULL)",
    ]


@pytest.fixture(scope="module")
def extracted(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Any:
    import pymysql

    name = "radar_test_matrix_" + tmp_path_factory.mktemp("x").name[-6:].replace("-", "_")
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        cur.execute(f"USE `{name}`")
        cur.execute("SET SESSION sql_mode = '', time_zone = '+00:00'")
        for case in CASES:
            for statement in _ddl(case, server.flavor):
                cur.execute(statement)
    dest = tmp_path_factory.mktemp("dest")
    settings = load_settings(
        env={"RADAR_MYSQL_URL": server.url(name), "RADAR_DEST": str(dest), "RADAR_WORKERS": "2"}
    )
    try:
        report = run_extract(settings, run_date=date.fromisoformat(DATE)).report
        yield dest, report, discover(settings)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()
        del pymysql


def _files(dest: Any, table: str) -> list[str]:
    pattern = f"{dest}/origin=airbyte/database=bronze_radar/{table}/cog_dt_ingestion={DATE}/*"
    return sorted(glob.glob(pattern))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_values_round_trip_exactly(extracted: Any, server: Server, case: Case) -> None:
    dest, report, _ = extracted
    table = f"m_{case.id}"
    files = _files(dest, table)
    assert [f.rsplit("/", 1)[1] for f in files] == [f"file_{table}_001.parquet"]
    rows = query(f"SELECT id, v FROM read_parquet('{files[0]}') ORDER BY id").fetchall()
    assert [v for _, v in rows] == [*case.expected_on(server.flavor), None]
    # The Arrow type the contract promises, and the NULLs it counted.
    assert pq.read_schema(files[0]).field("v").type == case.arrow
    result = next(t for t in report.tables if t.table == table)
    assert result.status == "published"
    assert result.nulled == ({"v": case.nulled} if case.nulled else {})


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_discovery_describes_each_type_alike_on_both_servers(extracted: Any, case: Case) -> None:
    """MySQL 8 drops integer display widths (but TINYINT(1)'s) and has a JSON type; MariaDB
    says int(11) and keeps JSON as a checked LONGTEXT. Discovery, and so the type contract
    and the stored schemas, see one form on both."""
    (column,) = [c for c in extracted[2].tasks[f"m_{case.id}"].columns if c.name == "v"]
    assert (column.data_type, column.column_type) == (case.data_type, case.column_type)


def test_parquet_types_readers_understand(extracted: Any) -> None:
    """No unsigned annotations, no INT96, timestamps as INT64 microseconds."""
    dest, _, _ = extracted
    for case in CASES:
        parquet_schema = pq.ParquetFile(_files(dest, f"m_{case.id}")[0]).schema
        column = parquet_schema.column(1)
        logical = str(column.logical_type)
        assert "isSigned=false" not in logical, case.id
        assert column.physical_type != "INT96", case.id
        if "Timestamp" in logical:
            assert column.physical_type == "INT64" and "timeUnit=microseconds" in logical


def test_report_and_manifest_count_nulled_values(extracted: Any) -> None:
    dest, report, _ = extracted
    assert isinstance(report, RunReport) and report.ok
    manifest_path = f"{dest}/_radar_extract/manifests/m_date/cog_dt_ingestion={DATE}.json"
    with open(manifest_path, encoding="utf-8") as handle:
        manifest = json.load(handle)
    assert manifest["nulled"] == {"v": 3}
    assert manifest["rows"] == 8
    assert manifest["files"][0]["key"] == "file_m_date_001.parquet"
