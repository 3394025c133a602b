"""Both bulk readers give the same values; TIMESTAMP is exact whatever the server's time zone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from extractor.config import load_settings
from extractor.run.catalog import discover
from extractor.run.pipeline import RunContext, extract_table
from extractor.run.runner import run_extract
from extractor.source.reader import Server as ReadServer
from tests.conftest import Server
from tests.integration.test_type_matrix import _ddl
from tests.type_matrix import CASES

pytestmark = pytest.mark.integration


def test_tls_reader_path_matches_connectorx_on_every_contract_row(
    make_database: Callable[..., str], server: Server, tmp_path: Path
) -> None:
    """The pymysql reader (used whenever the connection is encrypted) yields the same
    Parquet values as connectorx for every type in the contract."""
    database = make_database(*[s for case in CASES for s in _ddl(case, server.flavor)], sql_mode="")
    catalog = discover(load_settings(env={"RADAR_MYSQL_URL": server.url(database)}))
    tables = {}
    for tls, dest in ((False, tmp_path / "cx"), (True, tmp_path / "tls")):
        settings = load_settings(
            env={
                "RADAR_MYSQL_URL": server.url(database),
                "RADAR_DEST": str(dest),
                "RADAR_BATCH_ROWS": "1000",
            }
        )
        ctx = RunContext(
            settings, f"run-{tls}", "2024-05-01", ReadServer(catalog.server.flavor, tls=tls)
        )
        for case in CASES:
            result = extract_table(ctx, catalog.tasks[f"m_{case.id}"])
            assert result.status == "published", result.error
            path = (
                f"{dest}/origin=airbyte/database=bronze_radar/m_{case.id}/"
                f"cog_dt_ingestion=2024-05-01/file_m_{case.id}_001.parquet"
            )
            tables[(tls, case.id)] = (pq.read_table(path), result.nulled)
    for case in CASES:
        assert tables[(True, case.id)] == tables[(False, case.id)], case.id


def test_timestamp_is_utc_whatever_the_server_time_zone(
    make_database: Callable[..., str], server: Server, tmp_path: Path
) -> None:
    database = make_database(
        "CREATE TABLE ev (id INT PRIMARY KEY, at TIMESTAMP(6) NULL, local_at DATETIME)",
        "INSERT INTO ev VALUES (1, '2024-03-10 06:59:59.5', '2024-03-10 06:59:59'),"
        " (2, '1970-01-01 00:00:01', '1970-01-01 00:00:01')",
    )  # inserted with time_zone '+00:00': `at` holds these UTC instants
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.time_zone")
        (previous,) = cur.fetchone()
        cur.execute("SET GLOBAL time_zone = '-05:00'")  # new sessions, the engine's included
    try:
        settings = load_settings(
            env={"RADAR_MYSQL_URL": server.url(database), "RADAR_DEST": str(tmp_path)}
        )
        assert run_extract(settings, run_date=date(2024, 5, 1)).ok
    finally:
        with conn.cursor() as cur:
            cur.execute("SET GLOBAL time_zone = %s", (previous,))
        conn.close()
    path = f"{tmp_path}/origin=airbyte/database=bronze_radar/ev/cog_dt_ingestion=2024-05-01"
    rows = pq.read_table(path).to_pylist()
    assert [r["at"].isoformat() for r in rows] == [
        "2024-03-10T06:59:59.500000+00:00",
        "1970-01-01T00:00:01+00:00",
    ]
    # DATETIME has no zone: its wall-clock digits are kept as they are.
    assert [r["local_at"].isoformat() for r in rows] == [
        "2024-03-10T06:59:59",
        "1970-01-01T00:00:01",
    ]
