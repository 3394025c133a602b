"""Faults injected for real: a query or connection killed mid-stream is an error for that
table, never an early end of data, and the published partition stays as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pymysql
import pytest

from extractor.config import load_settings
from extractor.errors import SourceError, Step
from extractor.source.connection import classify, connectorx_url
from tests.conftest import ROOT, Server, hex32, numbered_rows, running_statements

pytestmark = pytest.mark.integration
ROWS = 300_000


@pytest.fixture(scope="module")
def database(make_module_database: Callable[..., str]) -> str:
    return make_module_database(
        "CREATE TABLE metrics (id INT PRIMARY KEY, v DECIMAL(14,2), note VARCHAR(64), at DATETIME)",
        *numbered_rows(
            "metrics", f"seq, seq / 100, {hex32('seq')}, '2024-01-01' + INTERVAL seq MINUTE", ROWS
        ),
        "CREATE TABLE small (id INT PRIMARY KEY)",
        "INSERT INTO small VALUES (1), (2)",
    )


def _kill_when_streaming(server: Server, database: str, how: str, found: list[int]) -> None:
    """From a second session, KILL the engine's SELECT on `metrics` once rows flow."""
    conn = server.connect()
    deadline = time.monotonic() + 30
    with conn.cursor() as cur:
        while time.monotonic() < deadline and not found:
            for process_id in running_statements(
                cur, server, database, "%radar-extract%`metrics`%"
            ):
                cur.execute(f"KILL {how} {int(process_id)}")
                found.append(int(process_id))
            time.sleep(0.01)
    conn.close()


def _extract(
    server: Server, database: str, dest: Path, day: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADAR_")}
    # One attempt: the kill must fail the table, not be cured by a retry (test_retries.py).
    env.update(
        RADAR_MYSQL_URL=server.url(database),
        RADAR_DEST=str(dest),
        RADAR_WORKERS="1",
        RADAR_BATCH_ROWS="5000",
        RADAR_RETRY_ATTEMPTS="1",
    )
    report = dest.parent / f"report-{dest.name}-{day}.json"
    proc = subprocess.run(
        [sys.executable, "-m", "extractor", "extract", "--date", day, "--report", str(report)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    tables = json.loads(report.read_text())["tables"] if report.exists() else []
    return proc, {t["table"]: t for t in tables}


@pytest.mark.parametrize("how", ["QUERY", "CONNECTION"])
def test_killed_read_fails_the_table_and_publishes_nothing(
    database: str, server: Server, tmp_path: Path, how: str
) -> None:
    first, _ = _extract(server, database, tmp_path / "out", "2024-05-01")
    assert first.returncode == 0, first.stderr
    partition = (
        tmp_path
        / "out/origin=airbyte/database=bronze_radar/metrics"
        / "cog_dt_ingestion=2024-05-01"
    )
    before = {p.name: p.read_bytes() for p in partition.iterdir()}
    assert pq.read_table(partition).num_rows == ROWS

    killed: list[int] = []
    for day in ("2024-05-01", "2024-05-02"):  # a rerun over a partition, and a new partition
        killed.clear()
        killer = threading.Thread(target=_kill_when_streaming, args=(server, database, how, killed))
        killer.start()
        result, tables = _extract(server, database, tmp_path / "out", day)
        killer.join()
        assert killed, "the SELECT was never seen streaming"
        assert result.returncode == 1, result.stderr
        assert "metrics: failed at read" in result.stderr
        # Worth a retry on either server (MySQL and MariaDB number a killed connection
        # differently): another session's KILL, not something wrong with the table.
        assert tables["metrics"]["transient"] is True, tables["metrics"]
        assert tables["metrics"]["error_type"] == "SourceError"
        assert "small: published 2 rows" in result.stderr  # the other table goes on
        assert "panicked" not in result.stderr and "Traceback" not in result.stderr
    # Nothing partial: the published partition is byte-identical, the new one does not exist.
    assert {p.name: p.read_bytes() for p in partition.iterdir()} == before
    assert not (partition.parent / "cog_dt_ingestion=2024-05-02").exists()


# The server-wide statement time limit: MariaDB's in seconds, MySQL's in milliseconds
# (SELECTs only). 0.1 s either way.
_TIME_LIMIT = {"mariadb": ("max_statement_time", 0.1), "mysql": ("max_execution_time", 100)}


@contextmanager
def _global_limits(server: Server) -> Iterator[None]:
    """A 0.1 s statement time limit and a 1 s net_write_timeout for every new session."""
    variable, value = _TIME_LIMIT[server.flavor]
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute(f"SELECT @@GLOBAL.{variable}, @@GLOBAL.net_write_timeout")
        previous = cur.fetchone()
        cur.execute(f"SET GLOBAL {variable} = %s, net_write_timeout = 1", (value,))
    try:
        yield
    finally:
        with conn.cursor() as cur:
            cur.execute(f"SET GLOBAL {variable} = %s, net_write_timeout = %s", previous)
        conn.close()


def test_server_statement_limits_do_not_cut_a_long_read(
    database: str, server: Server, tmp_path: Path
) -> None:
    """A server-wide statement time limit (RDS parameter groups set them) and a short
    net_write_timeout apply to the control queries, not to the bulk read, which sets its
    own limits on the statement (MariaDB SET STATEMENT / MySQL optimizer hint)."""
    with _global_limits(server):
        result, _ = _extract(server, database, tmp_path / "out", "2024-05-03")
    assert result.returncode == 0, result.stderr
    partition = (
        tmp_path
        / "out/origin=airbyte/database=bronze_radar/metrics"
        / "cog_dt_ingestion=2024-05-03"
    )
    assert pq.read_table(partition).num_rows == ROWS


def test_a_statement_time_limit_is_permanent_and_a_kill_transient(
    database: str, server: Server
) -> None:
    """The errors each server really sends, as both drivers report them: a SELECT cut by
    the server's time limit would be cut again (permanent), a KILL QUERY from another
    session would not (transient). The same classes on MySQL and MariaDB."""
    import connectorx as cx

    settings = load_settings(env={"RADAR_MYSQL_URL": server.url(database)}).mysql
    heavy = (
        f"SELECT SUM(CRC32(CONCAT(m.note, d.d))) FROM metrics m CROSS JOIN"
        f" ({' UNION ALL '.join(f'SELECT {i} AS d' for i in range(10))}) d"
    )

    def pymysql_error(sql: str) -> BaseException:
        conn = server.connect(database)
        try:
            with conn.cursor() as cur, pytest.raises(pymysql.MySQLError) as caught:
                cur.execute(sql)
        finally:
            conn.close()
        error: BaseException = caught.value
        return error

    def connectorx_error(sql: str) -> BaseException:
        with pytest.raises(BaseException) as caught:
            cx.read_sql(connectorx_url(settings), sql, return_type="arrow")
        return caught.value

    with _global_limits(server):
        for error in (pymysql_error(heavy), connectorx_error(heavy)):
            cut = classify(error, settings, table="metrics", step=Step.READ)
            assert isinstance(cut, SourceError) and not cut.transient, cut
            assert "maximum statement execution time exceeded" in str(
                cut
            ) or "max_statement_time exceeded" in str(cut), cut
    # KILL QUERY of a running SELECT, from a second session.
    conn = server.connect(database)
    with conn.cursor() as cur:
        cur.execute("SELECT CONNECTION_ID()")
        (victim,) = cur.fetchone()
    killer = threading.Timer(0.3, _kill_query, args=(server, int(victim)))
    killer.start()
    try:
        with conn.cursor() as cur, pytest.raises(pymysql.MySQLError) as caught:
            cur.execute(
                heavy.replace("SUM(", "/* killme */ SUM(") + " CROSS JOIN"
                f" ({' UNION ALL '.join(f'SELECT {i} AS e' for i in range(10))}) e"
            )
    finally:
        killer.join()
        conn.close()
    killed = classify(caught.value, settings, table="metrics", step=Step.READ)
    assert isinstance(killed, SourceError) and killed.transient, killed
    assert "interrupted" in str(killed)


def _kill_query(server: Server, process_id: int) -> None:
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute(f"KILL QUERY {process_id}")
    conn.close()
