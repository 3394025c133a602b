"""Two real radar-extract processes on one table and date, locally and on moto's S3 server:
the second waits for the first and then publishes, or refuses with one line, and a
partition always holds exactly one run's files, those of its manifest. A lock left by a
SIGKILLed run expires, and the next run proceeds; on S3, one of two runs that both see it
expired takes it over.

The first process is held inside its publish, after it has listed the partition's keys
(the moment where two unlocked runs mix their files), by the test-only gate
RADAR_TEST_HOLD_PUBLISH (extractor/sink/publish.py). Between the two reads the table grows
from 100k to 300k rows: unlocked, the second run's extra files would survive the first
run's publish beside the first run's own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import fsspec
import pyarrow.parquet as pq
import pytest
import s3fs

from extractor.config import load_settings
from extractor.errors import PartitionLocked
from extractor.sink.destination import Destination
from extractor.sink.lock import TableLock
from tests.conftest import ROOT, S3, Server, numbered_rows

pytestmark = pytest.mark.integration
PREFIX = "origin=airbyte/database=bronze_radar"
DAY = "2024-05-01"
FEW, MANY = 100_000, 300_000


@dataclass
class Dest:
    """A destination as the test reads it: the same checks for a local root and a bucket."""

    fs: Any
    root: str  # local directory, or bucket name
    env: dict[str, str]

    @property
    def partition(self) -> str:
        return f"{self.root}/{PREFIX}/store/cog_dt_ingestion={DAY}"

    def internal(self, *parts: str) -> str:
        return "/".join([self.root, "_radar_extract", *parts])

    @property
    def lock(self) -> str:
        return self.internal("locks", "store", f"cog_dt_ingestion={DAY}.json")

    def json(self, path: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.fs.cat_file(path))
        return data

    def assert_one_run(self, run_id: str, rows: int) -> None:
        """The partition's files are exactly those of its manifest, written by `run_id`."""
        manifest = self.json(self.internal("manifests", "store", f"cog_dt_ingestion={DAY}.json"))
        assert manifest["run_id"] == run_id and manifest["rows"] == rows
        keys = sorted(self.fs.ls(self.partition, detail=False))
        assert [k.rsplit("/", 1)[1] for k in keys] == [f["key"] for f in manifest["files"]]
        for key, listed in zip(keys, manifest["files"], strict=True):
            assert self.fs.size(key) == listed["bytes"]
            with self.fs.open(key, "rb") as handle:
                assert pq.ParquetFile(handle).metadata.num_rows == listed["rows"]
        assert len(keys) >= 2  # several files, so that a mix would show


@pytest.fixture(params=["local", "s3"])
def dest(request: pytest.FixtureRequest, tmp_path: Path) -> Dest:
    if request.param == "local":
        return Dest(
            fsspec.filesystem("file"), str(tmp_path / "out"), {"RADAR_DEST": str(tmp_path / "out")}
        )
    s3: S3 = request.getfixturevalue("s3")
    bucket = s3.new_bucket()
    fs = s3fs.S3FileSystem(
        client_kwargs={"endpoint_url": s3.endpoint},
        key="testing",
        secret="testing",
        use_listings_cache=False,
    )
    return Dest(fs, bucket, {**s3.env, "RADAR_DEST": f"s3://{bucket}"})


@pytest.fixture
def database(make_database: Callable[..., str]) -> str:
    return make_database(
        "CREATE TABLE store (id INT PRIMARY KEY, v VARCHAR(64))",
        *numbered_rows("store", "seq, LEFT(SHA2(seq, 256), 32)", FEW),
    )


def _grow(server: Server, database: str) -> None:
    conn = server.connect(database)
    with conn.cursor() as cur:
        for statement in numbered_rows("store", "seq, LEFT(SHA2(seq, 256), 32)", MANY)[1:]:
            cur.execute(statement)
    conn.close()


class Run:
    """One `radar-extract extract` process, its log file and, optionally, its publish gate."""

    def __init__(
        self,
        server: Server,
        database: str,
        dest: Dest,
        work: Path,
        name: str,
        *,
        hold: bool = False,
        **env: str,
    ) -> None:
        self.log = work / f"{name}.log"
        self.report = work / f"{name}.json"
        self.gate = work / f"{name}.gate"
        full = {k: v for k, v in os.environ.items() if not k.startswith("RADAR_")}
        full.update(
            RADAR_MYSQL_URL=server.url(database),
            RADAR_WORKERS="1",
            RADAR_FILE_MAX_MB="1",
            RADAR_ROW_GROUP_MB="1",
            RADAR_LOG_FILE=str(self.log),
            **dest.env,
            **env,
        )
        if hold:
            full["RADAR_TEST_HOLD_PUBLISH"] = str(self.gate)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "extractor",
                "extract",
                "--date",
                DAY,
                "--report",
                str(self.report),
            ],
            env=full,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def held(self) -> bool:
        return Path(f"{self.gate}.held").exists()

    def release(self) -> None:
        self.gate.touch()

    def logged(self, text: str) -> bool:
        return self.log.exists() and text in self.log.read_text(encoding="utf-8")

    def finish(self, seconds: float = 120) -> tuple[int, str]:
        _, stderr = self.proc.communicate(timeout=seconds)
        return self.proc.returncode, stderr

    @property
    def run_id(self) -> str:
        return str(json.loads(self.report.read_text())["run_id"])


@pytest.fixture
def runs() -> Iterator[list[Run]]:
    started: list[Run] = []
    yield started
    for run in started:  # a failed assertion must not leave a process waiting at its gate
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.communicate()


def _wait(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.05)


def test_the_second_run_waits_for_the_first_then_publishes_alone(
    server: Server, database: str, dest: Dest, tmp_path: Path, runs: list[Run]
) -> None:
    first = Run(server, database, dest, tmp_path, "first", hold=True, RADAR_LOCK_LEASE_S="2")
    runs.append(first)
    _wait(first.held)  # it has listed the partition, and holds the lock
    first_id = dest.json(dest.lock)["run_id"]
    _grow(server, database)

    second = Run(
        server,
        database,
        dest,
        tmp_path,
        "second",
        hold=True,
        RADAR_LOCK_LEASE_S="2",
        RADAR_LOCK_WAIT_S="120",
    )
    runs.append(second)
    _wait(lambda: second.logged(f"is being written by run {first_id}"))
    time.sleep(5)  # two and a half leases: only the first run's heartbeat keeps its lock
    assert second.proc.poll() is None and not second.held()
    assert dest.json(dest.lock)["run_id"] == first_id

    first.release()
    code, stderr = first.finish()
    assert code == 0, stderr
    _wait(second.held)  # the second has read 300k rows and listed the first run's partition
    dest.assert_one_run(first_id, FEW)
    second.release()
    code, stderr = second.finish()
    assert code == 0, stderr
    dest.assert_one_run(second.run_id, MANY)
    assert not dest.fs.exists(dest.lock)
    assert not dest.fs.exists(dest.internal("journal", "store", f"cog_dt_ingestion={DAY}.json"))


def test_the_second_run_refuses_with_one_line_and_reads_nothing(
    server: Server, database: str, dest: Dest, tmp_path: Path, runs: list[Run]
) -> None:
    first = Run(server, database, dest, tmp_path, "first", hold=True)
    runs.append(first)
    _wait(first.held)
    lock = dest.json(dest.lock)
    _grow(server, database)

    second = Run(server, database, dest, tmp_path, "second", RADAR_LOCK_WAIT_S="1")
    runs.append(second)
    code, stderr = second.finish()
    assert code == 1, stderr
    since = datetime.fromisoformat(lock["since"]).strftime("%Y-%m-%dT%H:%M:%SZ")
    until = datetime.fromisoformat(lock["lease_until"]).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = (
        f"store: failed at lock (not retried: the error is not transient): "
        f"cog_dt_ingestion={DAY} is being written by run {lock['run_id']} "
        f"(since {since}, lease until {until}); waited 1 s (RADAR_LOCK_WAIT_S)"
    )
    assert line in stderr
    table = json.loads(second.report.read_text())["tables"][0]
    assert (table["status"], table["error_step"], table["error_type"], table["rows"]) == (
        "failed",
        "lock",
        "PartitionLocked",
        0,
    )

    first.release()
    code, stderr = first.finish()
    assert code == 0, stderr
    dest.assert_one_run(lock["run_id"], FEW)


def test_the_lock_of_a_killed_run_expires_and_the_next_run_proceeds(
    server: Server, database: str, dest: Dest, tmp_path: Path, runs: list[Run]
) -> None:
    killed = Run(server, database, dest, tmp_path, "killed", hold=True, RADAR_LOCK_LEASE_S="4")
    runs.append(killed)
    _wait(killed.held)  # journal written, partition listed, nothing moved yet
    lock = dest.json(dest.lock)
    killed.proc.send_signal(signal.SIGKILL)
    killed.proc.wait(10)
    assert dest.json(dest.lock) == lock  # left behind, to expire
    _grow(server, database)

    after = Run(server, database, dest, tmp_path, "after", RADAR_LOCK_WAIT_S="60")
    runs.append(after)
    code, stderr = after.finish()
    assert code == 0, stderr
    assert f"took over the lock of cog_dt_ingestion={DAY} from run {lock['run_id']}" in stderr
    dest.assert_one_run(after.run_id, MANY)
    manifest = dest.json(dest.internal("manifests", "store", f"cog_dt_ingestion={DAY}.json"))
    assert datetime.fromisoformat(manifest["published_at"]) >= datetime.fromisoformat(
        lock["lease_until"]
    )
    assert not dest.fs.exists(dest.lock)
    assert not dest.fs.exists(dest.internal("journal", "store", f"cog_dt_ingestion={DAY}.json"))
    # The killed run's publish was rolled forward and its staging removed.
    assert not dest.fs.exists(dest.internal("staging", lock["run_id"], "store"))


def test_on_s3_of_two_runs_that_see_an_expired_lock_exactly_one_takes_it(s3: S3) -> None:
    bucket = s3.new_bucket()
    destination = Destination(load_settings(env={"RADAR_DEST": f"s3://{bucket}", **s3.env}))

    def lock(run_id: str) -> TableLock:
        return TableLock(destination, "store", DAY, run_id, lease_s=1)

    dead = lock("run-dead")
    assert dead.try_acquire()  # PutObject If-None-Match: *
    assert not lock("run-early").try_acquire()
    time.sleep(1.1)
    a, b = lock("run-a"), lock("run-b")
    real_replace = b._store.replace

    def a_wins_meanwhile(path: str, body: str, etag: str) -> str | None:
        assert a.try_acquire()  # PutObject If-Match: the expired lock's ETag
        return real_replace(path, body, etag)  # the same ETag again: 412

    b._store.replace = a_wins_meanwhile  # type: ignore[method-assign]
    assert not b.try_acquire()
    assert b.blocker is not None and b.blocker.run_id == "run-a"
    with pytest.raises(PartitionLocked, match="lease ran out: run run-a "):
        dead.renew()
    dead.release()  # DeleteObject If-Match with its old ETag: a no-op
    a.renew()
    a.release()
    assert not destination.exists(destination.keys.lock("store", DAY))
