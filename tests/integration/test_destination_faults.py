"""Faults around the read: a table dropped after discovery, an S3 part upload or completion
cut mid-way (once: retried; always: the table fails with nothing half-published), a slow
destination. Each asserts what "nothing lost" means: the published rows equal the source."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

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
        "CREATE TABLE doomed (id INT PRIMARY KEY)",
        "INSERT INTO doomed VALUES (1)",
        "CREATE TABLE tiny (id INT PRIMARY KEY)",
        "INSERT INTO tiny VALUES (7)",
    )

    def drop_doomed(result: TableResult) -> None:  # `big` goes first: it is the largest
        if result.table == "big":
            conn = server.connect(database)
            with conn.cursor() as cur:
                cur.execute("DROP TABLE doomed")
            conn.close()

    settings = load_settings(
        env={
            "RADAR_MYSQL_URL": server.url(database),
            "RADAR_DEST": str(tmp_path),
            "RADAR_WORKERS": "1",
        }
    )
    report = report_of(run_extract(settings, run_date=date(2024, 5, 1), on_result=drop_doomed))
    status = {t.table: (t.status, t.error_step) for t in report.tables}
    assert status["doomed"] == ("failed", "read")
    assert status["big"][0] == status["tiny"][0] == "published"
    assert not (tmp_path / PREFIX / "doomed").exists()
    assert pq.read_table(tmp_path / PREFIX / "tiny").column("id").to_pylist() == [7]


def _run(server: Server, database: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("RADAR_")}
    full.update(RADAR_MYSQL_URL=server.url(database), **env)
    return subprocess.run(
        [sys.executable, "-m", "extractor", "extract", "--date", "2024-05-01"],
        env=full,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _fs(s3: S3) -> s3fs.S3FileSystem:
    return s3fs.S3FileSystem(
        client_kwargs={"endpoint_url": s3.endpoint},
        key="testing",
        secret="testing",
        use_listings_cache=False,
    )


def _partition(bucket: str, table: str) -> str:
    return f"{bucket}/{PREFIX}/{table}/cog_dt_ingestion=2024-05-01"


def _published_ids(s3: S3, bucket: str, table: str) -> list[int]:
    fs = _fs(s3)
    ids: list[int] = []
    for key in sorted(fs.ls(_partition(bucket, table))):
        with fs.open(key, "rb") as handle:
            ids += pq.read_table(handle).column("id").to_pylist()
    return sorted(ids)


def _objects(s3: S3, bucket: str, table: str) -> dict[str, str]:
    """key -> ETag of the partition's objects: equal dicts are byte-identical partitions."""
    fs = _fs(s3)
    return {key: fs.info(key)["ETag"] for key in fs.ls(_partition(bucket, table))}


def _uploads_in_progress(s3: S3, bucket: str) -> list[str]:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=s3.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


# Each file's parts are PUT ...?uploadId=...&partNumber=N; publishing POSTs the list of parts,
# <CompleteMultipartUpload>, once per file.
UPLOAD_PART, COMPLETE = b"&partNumber=", b"<CompleteMultipartUpload"
SMALL_FILES = {"RADAR_FILE_MAX_MB": "1", "RADAR_ROW_GROUP_MB": "1"}  # several files, 1 part each


@pytest.mark.parametrize(
    ("marker", "options"),
    [
        pytest.param(UPLOAD_PART, {"stall_at": 1, "cut": True}, id="part-cut-once"),
        pytest.param(COMPLETE, {"stall_at": 1, "cut": True}, id="complete-cut-once"),
        pytest.param(UPLOAD_PART, {"delay": 1.5}, id="slow-destination"),
    ],
)
def test_s3_faults_that_a_retry_cures(
    make_database: Callable[..., str],
    server: Server,
    s3: S3,
    marker: bytes,
    options: dict[str, Any],
) -> None:
    database = make_database(
        "CREATE TABLE events (id INT PRIMARY KEY, v VARCHAR(40))",
        f"INSERT INTO events SELECT seq, {hex32('seq')} FROM ({NUMBERS_TO_100K}) AS numbers",
    )
    bucket = s3.new_bucket()
    host, port = s3.endpoint.split("//")[1].split(":")
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.net_write_timeout")
        (previous,) = cur.fetchone()
        cur.execute("SET GLOBAL net_write_timeout = 1")  # a reader that stalls is cut at once
    try:
        with StallingProxy((host, int(port)), marker, **options) as proxy:
            result = _run(
                server,
                database,
                {
                    **s3.env,
                    "RADAR_S3_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}",
                    "RADAR_DEST": f"s3://{bucket}",
                    **SMALL_FILES,
                },
            )
            assert proxy.seen >= 2
    finally:
        with conn.cursor() as cur:
            cur.execute("SET GLOBAL net_write_timeout = %s", (previous,))
        conn.close()
    assert result.returncode == 0, result.stderr
    assert _published_ids(s3, bucket, "events") == list(range(1, 100_001))
    assert _uploads_in_progress(s3, bucket) == []


@pytest.mark.parametrize(
    ("fault", "marker"),
    [
        ("every-part-cut", UPLOAD_PART),
        ("every-complete-cut", COMPLETE),
    ],
    ids=["every-part-cut", "every-complete-cut"],
)
def test_s3_lasting_faults_fail_the_table_with_nothing_half_published(
    make_database: Callable[..., str], server: Server, s3: S3, fault: str, marker: bytes
) -> None:
    database = make_database(
        "CREATE TABLE events (id INT PRIMARY KEY, v VARCHAR(40))",
        f"INSERT INTO events SELECT seq, {hex32('seq')} FROM ({NUMBERS_TO_100K}) AS numbers",
    )
    bucket = s3.new_bucket()
    env = {**s3.env, "RADAR_DEST": f"s3://{bucket}", **SMALL_FILES}
    assert _run(server, database, env).returncode == 0
    before = _objects(s3, bucket, "events")
    assert len(before) >= 2
    conn = server.connect(database)
    with conn.cursor() as cur:
        cur.execute("DELETE FROM events WHERE id > 50000")  # the new version is smaller
    conn.close()

    host, port = s3.endpoint.split("//")[1].split(":")
    with StallingProxy((host, int(port)), marker, stall_at=1, cut=True, repeat=True) as proxy:
        result = _run(
            server, database, {**env, "RADAR_S3_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}"}
        )
        assert proxy.seen >= 1
    assert result.returncode == 1, result.stderr
    assert _objects(s3, bucket, "events") == before  # not one key changed
    journal = f"{bucket}/_radar_extract/journal/events/cog_dt_ingestion=2024-05-01.json"
    if fault == "every-part-cut":  # before the publish decision: every upload aborted
        assert "failed at upload" in result.stderr
        assert _uploads_in_progress(s3, bucket) == []
        assert not _fs(s3).exists(journal)
        return
    # Decided, not one completion done: the journal keeps the uploads for the next run.
    assert "failed at publish" in result.stderr
    entry = json.loads(_fs(s3).cat(journal))
    assert _uploads_in_progress(s3, bucket) == [u["key"].split("/", 1)[1] for u in entry["uploads"]]
    after = _run(server, database, env)
    assert after.returncode == 0, after.stderr
    assert "left half-done" in after.stderr
    assert _published_ids(s3, bucket, "events") == list(range(1, 50_001))
    assert _uploads_in_progress(s3, bucket) == [] and not _fs(s3).exists(journal)


def test_a_publish_failing_after_its_journal_keeps_its_staging_for_the_next_run(
    make_database: Callable[..., str],
    server: Server,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A local publish that fails once its journal is written (the partition folder is a
    file: every move into it fails) leaves the journal and the staged files; the run's end
    must not remove them, or the next run cannot roll the publish forward."""
    database = make_database(
        "CREATE TABLE store (id INT PRIMARY KEY, v VARCHAR(40))",
        "INSERT INTO store VALUES (1, 'one'), (2, 'two')",
    )
    env = {
        "RADAR_MYSQL_URL": server.url(database),
        "RADAR_DEST": str(tmp_path),
        "RADAR_WORKERS": "1",
        "RADAR_RETRY_ATTEMPTS": "1",
    }
    partition = tmp_path / PREFIX / "store" / "cog_dt_ingestion=2024-05-01"
    partition.parent.mkdir(parents=True)
    partition.write_text("not a folder")
    journal = tmp_path / "_radar_extract" / "journal" / "store" / "cog_dt_ingestion=2024-05-01.json"

    first = report_of(run_extract(load_settings(env=env), run_date=date(2024, 5, 1)))
    [result] = first.tables
    assert (result.status, result.error_step) == ("failed", "publish")
    staged = json.loads(journal.read_text())["staged"]
    assert staged and all(Path(p).is_file() for p in staged)  # kept for the next run

    partition.unlink()
    caplog.set_level("WARNING")
    second = report_of(run_extract(load_settings(env=env), run_date=date(2024, 5, 1)))
    assert [(t.table, t.status) for t in second.tables] == [("store", "published")]
    assert "finished publishing store 2024-05-01" in caplog.text  # rolled forward first
    assert not journal.exists()
    assert not (tmp_path / "_radar_extract" / "staging" / first.run_id / "store").exists()
    values = pq.read_table(partition).sort_by("id").to_pydict()
    assert values == {"id": [1, 2], "v": ["one", "two"]}
