"""Faults injected for real: a query or connection killed mid-stream is an error for that
table, never an early end of data, and the published partition stays as it was."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT, Server, hex32, numbered_rows

pytestmark = pytest.mark.integration
ROWS = 300_000


@pytest.fixture(scope="module")
def database(make_module_database: Callable[..., str]) -> str:
    return make_module_database(
        "CREATE TABLE metrics (id INT PRIMARY KEY, v DECIMAL(14,2), note VARCHAR(64), at DATETIME)",
        *numbered_rows("metrics", f"seq, seq / 100, {hex32('seq')},"
                       " '2024-01-01' + INTERVAL seq MINUTE", ROWS),
        "CREATE TABLE small (id INT PRIMARY KEY)", "INSERT INTO small VALUES (1), (2)",
    )


def _kill_when_streaming(server: Server, database: str, how: str, found: list[int]) -> None:
    """From a second session, KILL the engine's SELECT on `metrics` once rows flow."""
    conn = server.connect()
    deadline = time.monotonic() + 30
    with conn.cursor() as cur:
        while time.monotonic() < deadline and not found:
            cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s"
                        " AND INFO LIKE '%%radar-extract%%`metrics`%%'"
                        " AND INFO NOT LIKE '%%PROCESSLIST%%'"
                        " AND TIME_MS > 50", (database,))
            for (process_id,) in cur.fetchall():
                cur.execute(f"KILL {how} {int(process_id)}")
                found.append(int(process_id))
            time.sleep(0.01)
    conn.close()


def _extract(
    server: Server, database: str, dest: Path, day: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADAR_")}
    # One attempt: the kill must fail the table, not be cured by a retry (test_retries.py).
    env.update(RADAR_MYSQL_URL=server.url(database), RADAR_DEST=str(dest), RADAR_WORKERS="1",
               RADAR_BATCH_ROWS="5000", RADAR_RETRY_ATTEMPTS="1")
    return subprocess.run([sys.executable, "-m", "extractor", "extract", "--date", day],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


@pytest.mark.parametrize("how", ["QUERY", "CONNECTION"])
def test_killed_read_fails_the_table_and_publishes_nothing(
    database: str, server: Server, tmp_path: Path, how: str
) -> None:
    first = _extract(server, database, tmp_path, "2024-05-01")
    assert first.returncode == 0, first.stderr
    partition = (tmp_path / "origin=airbyte/database=bronze_radar/metrics"
                 / "cog_dt_ingestion=2024-05-01")
    before = {p.name: p.read_bytes() for p in partition.iterdir()}
    assert pq.read_table(partition).num_rows == ROWS

    killed: list[int] = []
    for day in ("2024-05-01", "2024-05-02"):  # a rerun over a partition, and a new partition
        killed.clear()
        killer = threading.Thread(target=_kill_when_streaming,
                                  args=(server, database, how, killed))
        killer.start()
        result = _extract(server, database, tmp_path, day)
        killer.join()
        assert killed, "the SELECT was never seen streaming"
        assert result.returncode == 1, result.stderr
        assert "metrics: failed at read" in result.stderr
        assert "small: published 2 rows" in result.stderr  # the other table goes on
        assert "panicked" not in result.stderr and "Traceback" not in result.stderr
    # Nothing partial: the published partition is byte-identical, the new one does not exist.
    assert {p.name: p.read_bytes() for p in partition.iterdir()} == before
    assert not (partition.parent / "cog_dt_ingestion=2024-05-02").exists()


def test_server_statement_limits_do_not_cut_a_long_read(
    database: str, server: Server, tmp_path: Path
) -> None:
    """A server-wide statement time limit (RDS parameter groups set them) and a short
    net_write_timeout apply to the control queries, not to the bulk read, which sets its
    own limits on the statement (MariaDB SET STATEMENT / MySQL optimizer hint)."""
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.max_statement_time, @@GLOBAL.net_write_timeout")
        previous = cur.fetchone()
        cur.execute("SET GLOBAL max_statement_time = 0.1, net_write_timeout = 1")
    try:
        result = _extract(server, database, tmp_path, "2024-05-03")
    finally:
        with conn.cursor() as cur:
            cur.execute("SET GLOBAL max_statement_time = %s, net_write_timeout = %s", previous)
        conn.close()
    assert result.returncode == 0, result.stderr
    partition = (tmp_path / "origin=airbyte/database=bronze_radar/metrics"
                 / "cog_dt_ingestion=2024-05-03")
    assert pq.read_table(partition).num_rows == ROWS
