"""S3 without the second copy, on moto's S3 server over HTTP: each file's parts go to its final
key while the table is read, and nothing shows in the partition until the publish completes
the uploads; a failed table leaves no upload behind; the uploads that dead runs left are
aborted unless a journal or a live lock claims them (extractor/sink/multipart.py, publish.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
import s3fs

from extractor.config import load_settings
from extractor.errors import ExtractError
from extractor.run.runner import run_extract
from extractor.sink.destination import Destination
from extractor.sink.journal import Journal
from extractor.sink.lock import TableLock
from extractor.sink.manifest import Manifest, SourceRead
from extractor.sink.multipart import MultipartUploader, PendingUpload, complete
from extractor.sink.parquet import WrittenFile
from extractor.sink.publish import clean_uploads, verify
from tests.conftest import ROOT, S3, Server, hex32, numbered_rows

pytestmark = pytest.mark.integration
PREFIX = "origin=airbyte/database=bronze_radar"
DAY = "2024-05-01"
MIB = 1024 * 1024
SMALL_FILES = {"RADAR_FILE_MAX_MB": "1", "RADAR_ROW_GROUP_MB": "1"}  # several files


def _fs(s3: S3) -> s3fs.S3FileSystem:
    return s3fs.S3FileSystem(
        client_kwargs={"endpoint_url": s3.endpoint},
        key="testing",
        secret="testing",
        use_listings_cache=False,
    )


def _client(s3: S3) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=s3.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _uploads(s3: S3, bucket: str) -> list[str]:
    """bucket/key of every multipart upload in progress."""
    found = _client(s3).list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return sorted(f"{bucket}/{u['Key']}" for u in found)


def _objects(s3: S3, prefix: str) -> dict[str, str]:
    """key -> ETag under `prefix` (what ListObjectsV2 shows): equal dicts, equal bytes."""
    fs = _fs(s3)
    return {key: fs.info(key)["ETag"] for key in fs.find(prefix)}


def _rows(server: Server, database: str) -> list[tuple[Any, ...]]:
    conn = server.connect(database)
    with conn.cursor() as cur:
        cur.execute("SELECT id, v, amount FROM events ORDER BY id")
        rows = [tuple(r) for r in cur.fetchall()]
    conn.close()
    return rows


def _published(s3: S3, partition: str) -> list[tuple[Any, ...]]:
    fs = _fs(s3)
    rows: list[tuple[Any, ...]] = []
    for key in sorted(fs.ls(partition)):
        with fs.open(key, "rb") as handle:
            rows += [(r["id"], r["v"], r["amount"]) for r in pq.read_table(handle).to_pylist()]
    return sorted(rows)


@pytest.fixture
def events(make_database: Callable[..., str]) -> str:
    return make_database(
        "CREATE TABLE events (id INT PRIMARY KEY, v VARCHAR(64), amount DECIMAL(12,2) NULL)",
        *numbered_rows("events", f"seq, {hex32('seq')}, IF(seq % 7 = 0, NULL, seq / 100)", 120_000),
    )


def _held_run(
    server: Server, database: str, env: dict[str, str], gate: Path, while_held: Callable[[], None]
) -> None:
    """One run, held inside its publish (after its journal, before its first completion)
    while `while_held` looks at the bucket."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("RADAR_")}
    full.update(RADAR_MYSQL_URL=server.url(database), RADAR_TEST_HOLD_PUBLISH=str(gate), **env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "extractor", "extract", "--date", DAY],
        env=full,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not Path(f"{gate}.held").exists():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the run never reached its publish"
            time.sleep(0.05)
        while_held()
    finally:
        gate.touch()
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    os.unlink(f"{gate}.held")
    gate.unlink()


def test_the_partition_shows_nothing_new_until_the_publish_completes_the_uploads(
    server: Server, events: str, s3: S3, tmp_path: Path
) -> None:
    bucket = s3.new_bucket()
    env = {**s3.env, "RADAR_DEST": f"s3://{bucket}", **SMALL_FILES}
    partition = f"{bucket}/{PREFIX}/events/cog_dt_ingestion={DAY}"
    journal = f"{bucket}/_radar_extract/journal/events/cog_dt_ingestion={DAY}.json"
    fs = _fs(s3)

    def first_publish_held() -> None:
        assert _objects(s3, f"{bucket}/{PREFIX}") == {}  # a brand-new partition: nothing yet
        entry = json.loads(fs.cat(journal))
        assert entry["staged"] == []  # no staging copy on S3
        assert _uploads(s3, bucket) == sorted(u["key"] for u in entry["uploads"])
        assert len(entry["uploads"]) >= 3
        assert all(u["key"].startswith(f"{partition}/") for u in entry["uploads"])

    _held_run(server, events, env, tmp_path / "gate", first_publish_held)
    assert _published(s3, partition) == _rows(server, events)  # values round-trip
    assert _uploads(s3, bucket) == [] and not fs.exists(journal)
    assert not fs.exists(f"{bucket}/_radar_extract/staging")
    first = _objects(s3, partition)

    conn = server.connect(events)
    with conn.cursor() as cur:  # a new version: other values, fewer rows
        cur.execute("UPDATE events SET v = CONCAT('new-', v), amount = 1.25 WHERE id % 3 = 0")
        cur.execute("DELETE FROM events WHERE id > 60000")
    conn.close()

    def rerun_held() -> None:
        assert _objects(s3, partition) == first  # the old partition, byte for byte
        assert len(_uploads(s3, bucket)) >= 2

    _held_run(server, events, env, tmp_path / "gate", rerun_held)
    rows = _rows(server, events)
    assert rows[2] == (3, f"new-{rows[2][1][4:]}", Decimal("1.25"))
    assert _published(s3, partition) == rows
    manifest = json.loads(
        fs.cat(f"{bucket}/_radar_extract/manifests/events/cog_dt_ingestion={DAY}.json")
    )
    assert sorted(fs.ls(partition)) == [f"{partition}/{f['key']}" for f in manifest["files"]]
    assert _uploads(s3, bucket) == []


def test_a_table_failing_at_verify_leaves_no_upload_and_the_old_partition(
    server: Server, events: str, s3: S3, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3.new_bucket()
    settings = load_settings(
        env={
            **s3.env,
            "RADAR_MYSQL_URL": server.url(events),
            "RADAR_DEST": f"s3://{bucket}",
            "RADAR_WORKERS": "1",
            **SMALL_FILES,
        }
    )
    assert run_extract(settings, run_date=date(2024, 5, 1)).ok
    partition = f"{bucket}/{PREFIX}/events/cog_dt_ingestion={DAY}"
    before = _objects(s3, partition)
    assert len(before) >= 3

    def one_row_short(staged: Any, rows_read: int, destination: Any, table: str) -> None:
        verify(staged, rows_read + 1, destination, table)  # the footers hold one too few

    monkeypatch.setattr("extractor.run.pipeline.verify", one_row_short)
    report = run_extract(settings, run_date=date(2024, 5, 1)).report
    assert report is not None
    [result] = report.tables
    assert (result.status, result.error_step) == ("failed", "verify")
    assert "footers hold" in (result.error or "")
    assert _uploads(s3, bucket) == []  # every upload of the failed table is aborted
    assert _objects(s3, partition) == before
    assert not _fs(s3).exists(f"{bucket}/_radar_extract/journal")


def _destination(s3: S3, bucket: str) -> Destination:
    return Destination(load_settings(env={**s3.env, "RADAR_DEST": f"s3://{bucket}"}))


def test_parts_are_sent_while_the_file_grows_and_stay_invisible_until_completed(
    s3: S3, tmp_path: Path
) -> None:
    bucket = s3.new_bucket()
    dest = _destination(s3, bucket)
    data_dir = dest.keys.data_dir("t", DAY)
    uploader = MultipartUploader(dest, data_dir, part_size=5 * MIB)
    path = tmp_path / "file_t_001.parquet"
    body = os.urandom(13 * MIB)
    sent_early = threading.Event()
    with open(path, "wb") as handle:
        uploader.open(str(path))
        for start in range(0, len(body), MIB):
            handle.write(body[start : start + MIB])
            handle.flush()
            if start == 11 * MIB:  # the file is not finished: two full parts are due
                deadline = time.monotonic() + 30
                client = _client(s3)
                while not sent_early.is_set() and time.monotonic() < deadline:
                    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
                        parts = client.list_parts(
                            Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        if len(parts.get("Parts", [])) == 2:
                            sent_early.set()
                    time.sleep(0.05)
    assert sent_early.is_set(), "no part was sent before the file was finished"
    uploader.finish(WrittenFile(str(path), 1, len(body)))
    [(local, pending)] = uploader.wait()
    uploader.shutdown()
    assert local.bytes == pending.bytes == len(body)
    assert [p.bytes for p in pending.parts] == [5 * MIB, 5 * MIB, 3 * MIB]
    assert _objects(s3, bucket) == {}  # every part sent, nothing to see

    complete(dest, pending, "t")
    key = f"{data_dir}/file_t_001.parquet"
    assert _fs(s3).cat(key) == body
    assert _fs(s3).info(key)["ETag"].strip('"') == pending.composite_etag()
    complete(dest, pending, "t")  # completing again (a reply lost, a rolled-forward publish)
    assert _uploads(s3, bucket) == []


def test_a_small_file_is_one_invisible_part_and_an_aborted_upload_cannot_be_completed(
    s3: S3, tmp_path: Path
) -> None:
    bucket = s3.new_bucket()
    dest = _destination(s3, bucket)
    path = tmp_path / "file_t_001.parquet"
    path.write_bytes(b"PAR1 tiny PAR1")
    uploader = MultipartUploader(dest, dest.keys.data_dir("t", DAY), part_size=5 * MIB)
    uploader.open(str(path))
    uploader.finish(WrittenFile(str(path), 1, path.stat().st_size))
    [(_, pending)] = uploader.wait()
    assert [p.bytes for p in pending.parts] == [14]
    assert _objects(s3, bucket) == {} and len(_uploads(s3, bucket)) == 1

    uploader.abort()
    assert _uploads(s3, bucket) == [] and _objects(s3, bucket) == {}
    # AWS answers NoSuchUpload (then VerificationError: the key does not hold its object);
    # moto answers 500. Either way nothing appears.
    with pytest.raises(ExtractError):
        complete(dest, pending, "t")
    assert _objects(s3, bucket) == {}


def test_dead_runs_uploads_are_aborted_unless_a_journal_or_a_live_lock_claims_them(
    s3: S3,
) -> None:
    bucket = s3.new_bucket()
    dest = _destination(s3, bucket)

    def start(table: str, day: str) -> tuple[str, str]:
        key = f"{dest.keys.data_dir(table, day)}/file_{table}_001.parquet"
        return key, dest.create_upload(key)

    dead = start("store", "2024-04-30")  # nothing claims it
    locked = start("store", DAY)  # its partition's lock is live: that run may be uploading
    journaled = start("orders", "2024-04-30")  # a publish decision: the next run completes it
    other = start("outside", "2024-04-30")  # a table this run does not cover (another shard)
    holder = TableLock(dest, "store", DAY, "run-alive", lease_s=300)
    assert holder.try_acquire()
    manifest = Manifest(
        table="orders",
        date="2024-04-30",
        run_id="run-dead",
        engine="t",
        published_at="2024-04-30T00:00:00+00:00",
        rows=0,
        bytes=0,
        source=SourceRead("radar", rows_read=0, estimated_rows=0),
        files=[],
        schema=[],
        primary_key=[],
        drift=[],
        nulled={},
    )
    entry = Journal(
        "orders", "2024-04-30", manifest, uploads=[PendingUpload(journaled[0], journaled[1], (), 0)]
    )
    dest.write_text(dest.keys.journal("orders", "2024-04-30"), entry.to_json())
    every = [dead[0], locked[0], journaled[0], other[0]]

    # moto reports every upload as started in 2010: an age no one has is a young upload.
    assert clean_uploads(dest, older_than_hours=24 * 365 * 100) == []
    assert clean_uploads(dest, {"store", "orders"}, run_id="run-next") == [dead[0]]
    assert _uploads(s3, bucket) == sorted(k for k in every if k != dead[0])
    assert not dest.exists(dest.keys.lock("store", "2024-04-30"))  # its lock was released
    assert clean_uploads(dest, run_id="run-next") == [other[0]]
    holder.release()
    assert clean_uploads(dest, run_id="run-next") == [locked[0]]
    assert _uploads(s3, bucket) == [journaled[0]]
