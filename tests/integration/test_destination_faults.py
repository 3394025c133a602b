"""Faults around the read: a table dropped after discovery, an S3 upload cut mid-way, a slow
destination. Each asserts what "nothing lost" means: the published rows equal the source."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import s3fs

from extractor.config import load_settings
from extractor.run.report import TableResult
from extractor.run.runner import run_extract
from tests.conftest import NUMBERS_TO_100K, ROOT, S3, Server, hex32, report_of
from tests.integration.tcp_proxy import StallingProxy

pytestmark = pytest.mark.integration
PREFIX = "origin=airbyte/database=bronze_radar"


def test_table_dropped_after_discovery_fails_alone(
    make_database: Callable[..., str], server: Server, tmp_path: Path
) -> None:
    database = make_database(
        "CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(40))",
        f"INSERT INTO big SELECT seq, {hex32('seq')} FROM ({NUMBERS_TO_100K}) AS numbers",
        "CREATE TABLE doomed (id INT PRIMARY KEY)", "INSERT INTO doomed VALUES (1)",
        "CREATE TABLE tiny (id INT PRIMARY KEY)", "INSERT INTO tiny VALUES (7)",
    )

    def drop_doomed(result: TableResult) -> None:  # `big` goes first: it is the largest
        if result.table == "big":
            conn = server.connect(database)
            with conn.cursor() as cur:
                cur.execute("DROP TABLE doomed")
            conn.close()

    settings = load_settings(env={"RADAR_MYSQL_URL": server.url(database),
                                  "RADAR_DEST": str(tmp_path), "RADAR_WORKERS": "1"})
    report = report_of(run_extract(settings, run_date=date(2024, 5, 1), on_result=drop_doomed))
    status = {t.table: (t.status, t.error_step) for t in report.tables}
    assert status["doomed"] == ("failed", "read")
    assert status["big"][0] == status["tiny"][0] == "published"
    assert not (tmp_path / PREFIX / "doomed").exists()
    assert pq.read_table(tmp_path / PREFIX / "tiny").column("id").to_pylist() == [7]


def _run(server: Server, database: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("RADAR_")}
    full.update(RADAR_MYSQL_URL=server.url(database), **env)
    return subprocess.run([sys.executable, "-m", "extractor", "extract", "--date", "2024-05-01"],
                          env=full, cwd=ROOT, capture_output=True, text=True, timeout=180)


def _published_ids(s3: S3, bucket: str, table: str) -> list[int]:
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3.endpoint}, key="testing",
                           secret="testing", use_listings_cache=False)
    ids: list[int] = []
    for key in sorted(fs.ls(f"{bucket}/{PREFIX}/{table}/cog_dt_ingestion=2024-05-01")):
        with fs.open(key, "rb") as handle:
            ids += pq.read_table(handle).column("id").to_pylist()
    return sorted(ids)


@pytest.mark.parametrize("fault", ["upload-cut-once", "slow-destination"])
def test_s3_faults_during_upload(
    make_database: Callable[..., str], server: Server, s3: S3, fault: str
) -> None:
    database = make_database(
        "CREATE TABLE events (id INT PRIMARY KEY, v VARCHAR(40))",
        f"INSERT INTO events SELECT seq, {hex32('seq')} FROM ({NUMBERS_TO_100K}) AS numbers",
    )
    bucket = s3.new_bucket()
    host, port = s3.endpoint.split("//")[1].split(":")
    # Staging uploads are PUTs of file_*.parquet; cut the first, or slow every one down.
    options = {"stall_at": 1, "cut": True} if fault == "upload-cut-once" else {"delay": 1.5}
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.net_write_timeout")
        (previous,) = cur.fetchone()
        cur.execute("SET GLOBAL net_write_timeout = 1")  # a reader that stalls is cut at once
    try:
        with StallingProxy((host, int(port)), b".parquet HTTP/1.1", **options) as proxy:
            result = _run(server, database, {
                **s3.env, "RADAR_S3_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}",
                "RADAR_DEST": f"s3://{bucket}", "RADAR_FILE_MAX_MB": "1",
                "RADAR_ROW_GROUP_MB": "1"})
            assert proxy.seen >= 2
    finally:
        with conn.cursor() as cur:
            cur.execute("SET GLOBAL net_write_timeout = %s", (previous,))
        conn.close()
    assert result.returncode == 0, result.stderr
    assert _published_ids(s3, bucket, "events") == list(range(1, 100_001))
