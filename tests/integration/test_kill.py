"""SIGKILL of the whole process while reading or while publishing: nothing partial is ever
left in a table's data location beyond what the next run repairs before anything else. On
S3, a run killed before its journal leaves only invisible multipart uploads, which the next
run aborts; one killed while completing them leaves a journal, which the next run finishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import s3fs

from tests.conftest import ROOT, S3, Server, hex32, numbered_rows
from tests.integration.tcp_proxy import StallingProxy

pytestmark = pytest.mark.integration
ROWS = 500_000  # long enough a read for the poller to catch it streaming
PREFIX = "origin=airbyte/database=bronze_radar"


@pytest.fixture(scope="module")
def database(make_module_database: Callable[..., str]) -> str:
    return make_module_database(
        "CREATE TABLE metrics (id INT PRIMARY KEY, v VARCHAR(64))",
        *numbered_rows("metrics", f"seq, {hex32('seq')}", ROWS),
    )


def _start(server: Server, database: str, **env: str) -> subprocess.Popen[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("RADAR_")}
    # A killed run's lock blocks the next run for one lease: seconds here, not minutes.
    full.update(
        RADAR_MYSQL_URL=server.url(database), RADAR_WORKERS="1", RADAR_LOCK_LEASE_S="2", **env
    )
    return subprocess.Popen(
        [sys.executable, "-m", "extractor", "extract", "--date", "2024-05-01"],
        env=full,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _uploads(s3: S3, bucket: str) -> list[str]:
    """bucket/key of every multipart upload in progress: invisible to every listing."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=s3.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return [
        f"{bucket}/{u['Key']}"
        for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    ]


def _streaming(server: Server, database: str) -> bool:
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = %s AND"
            " INFO LIKE '%%radar-extract%%' AND INFO NOT LIKE '%%PROCESSLIST%%'",
            (database,),
        )
        (count,) = cur.fetchone()
    conn.close()
    return bool(count)


def _wait(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.01)


def test_sigkill_while_reading_leaves_published_partition_identical(
    server: Server, database: str, tmp_path: Path
) -> None:
    assert _start(server, database, RADAR_DEST=str(tmp_path)).wait(60) == 0
    partition = tmp_path / PREFIX / "metrics" / "cog_dt_ingestion=2024-05-01"
    before = {p.name: p.read_bytes() for p in partition.iterdir()}

    proc = _start(server, database, RADAR_DEST=str(tmp_path), RADAR_BATCH_ROWS="2000")
    _wait(lambda: _streaming(server, database))
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert {p.name: p.read_bytes() for p in partition.iterdir()} == before

    result = _start(server, database, RADAR_DEST=str(tmp_path))  # the next run just works
    assert result.wait(60) == 0, result.stderr.read() if result.stderr else ""
    assert sorted(os.listdir(partition)) == ["file_metrics_001.parquet"]
    assert pq.read_table(partition).num_rows == ROWS


def test_sigkill_while_publishing_is_rolled_forward_by_the_next_run(
    server: Server, database: str, s3: S3
) -> None:
    bucket = s3.new_bucket()
    endpoint = s3.endpoint.rsplit(":", 1)
    files_env = {
        "RADAR_FILE_MAX_MB": "1",
        "RADAR_ROW_GROUP_MB": "1",
        **s3.env,
        "RADAR_DEST": f"s3://{bucket}",
    }
    first = _start(server, database, **files_env)
    assert first.wait(120) == 0, first.stderr.read() if first.stderr else ""
    fs = s3fs.S3FileSystem(
        client_kwargs={"endpoint_url": s3.endpoint},
        key="testing",
        secret="testing",
        use_listings_cache=False,
    )
    partition = f"{bucket}/{PREFIX}/metrics/cog_dt_ingestion=2024-05-01"
    old = sorted(fs.ls(partition))
    assert len(old) >= 3

    conn = server.connect(database)
    with conn.cursor() as cur:
        cur.execute("DELETE FROM metrics WHERE id > %s", (ROWS // 2,))  # the new version is smaller
    conn.close()
    # The publish completes one multipart upload per file: hold the second completion.
    with StallingProxy(
        (endpoint[0].split("//")[1], int(endpoint[1])), b"<CompleteMultipartUpload", stall_at=2
    ) as proxy:
        proc = _start(
            server,
            database,
            **{**files_env, "RADAR_S3_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}"},
        )
        assert proxy.stalled.wait(60), "the publish never reached its second completion"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    journal = f"{bucket}/_radar_extract/journal/metrics/cog_dt_ingestion=2024-05-01.json"
    assert fs.exists(journal)  # a half-done publish is on record, with its open uploads
    entry = json.loads(fs.cat(journal))
    assert len(entry["uploads"]) >= 2 and entry["staged"] == []
    # The first upload is completed, the others are still open: the partition is mixed.
    assert sorted(_uploads(s3, bucket)) == sorted(u["key"] for u in entry["uploads"][1:])

    after = _start(server, database, **files_env)  # recovery first, then the run
    assert after.wait(120) == 0, after.stderr.read() if after.stderr else ""
    assert "left half-done" in (after.stderr.read() if after.stderr else "")
    assert not fs.exists(journal)
    assert _uploads(s3, bucket) == []
    new = sorted(fs.ls(partition))
    manifest = json.loads(
        fs.cat(f"{bucket}/_radar_extract/manifests/metrics/cog_dt_ingestion=2024-05-01.json")
    )
    assert [f"{partition}/{f['key']}" for f in manifest["files"]] == new
    with fs.open(new[0], "rb"):
        pass
    rows = sum(pq.ParquetFile(fs.open(key, "rb")).metadata.num_rows for key in new)
    assert rows == manifest["rows"] == ROWS // 2


def test_sigkill_before_the_journal_leaves_uploads_that_the_next_run_aborts(
    server: Server, database: str, s3: S3
) -> None:
    bucket = s3.new_bucket()
    files_env = {
        "RADAR_FILE_MAX_MB": "1",
        "RADAR_ROW_GROUP_MB": "1",
        **s3.env,
        "RADAR_DEST": f"s3://{bucket}",
    }
    fs = s3fs.S3FileSystem(
        client_kwargs={"endpoint_url": s3.endpoint},
        key="testing",
        secret="testing",
        use_listings_cache=False,
    )
    partition = f"{bucket}/{PREFIX}/metrics/cog_dt_ingestion=2024-05-01"
    proc = _start(server, database, RADAR_BATCH_ROWS="2000", **files_env)
    _wait(lambda: len(_uploads(s3, bucket)) >= 2, 60)  # two files opened: still reading
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert not fs.exists(partition)  # the uploads are invisible: nothing was published
    assert not fs.exists(f"{bucket}/_radar_extract/journal")
    left = _uploads(s3, bucket)
    assert left and all(key.startswith(f"{partition}/") for key in left)

    after = _start(server, database, **files_env)
    assert after.wait(120) == 0, after.stderr.read() if after.stderr else ""
    assert "unpublished upload" in (after.stderr.read() if after.stderr else "")
    assert _uploads(s3, bucket) == []
    conn = server.connect(database)
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM metrics")  # an earlier test may have deleted some
        (count,) = cur.fetchone()
    conn.close()
    rows = sum(pq.ParquetFile(fs.open(key, "rb")).metadata.num_rows for key in fs.ls(partition))
    assert rows == count
