"""Retries, table timeouts and the circuit breaker, against real faults: queries killed
from a second session (KILL QUERY), a user without SELECT, a server that is not there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Server, hex32, numbered_rows, query, running_statements

pytestmark = pytest.mark.integration
ROWS = 300_000
PREFIX = "origin=airbyte/database=bronze_radar"
FAST = {"RADAR_RETRY_BASE_S": "0.01", "RADAR_RETRY_CAP_S": "0.05"}  # backoff in milliseconds


@pytest.fixture(scope="module")
def database(make_module_database: Callable[..., str]) -> str:
    """`metrics` (300k rows, about a second to read) and `small` (2 rows)."""
    return make_module_database(
        "CREATE TABLE metrics (id INT PRIMARY KEY, v DECIMAL(14,2), note VARCHAR(64))",
        *numbered_rows("metrics", f"seq, seq / 100, {hex32('seq')}", ROWS),
        "CREATE TABLE small (id INT PRIMARY KEY)",
        "INSERT INTO small VALUES (1), (2)",
    )


@pytest.fixture(scope="module")
def slow_database(make_module_database: Callable[..., str]) -> str:
    """`slow`: 100k rows whose virtual column costs the server a SHA-512 of 26 KB each, so
    that reading it takes about 4 s however fast the client is; and `small` (2 rows)."""
    return make_module_database(
        "CREATE TABLE slow (id INT PRIMARY KEY, note VARCHAR(64),"
        " h CHAR(128) AS (SHA2(REPEAT(note, 800), 512)) VIRTUAL)",
        *numbered_rows("slow (id, note)", f"seq, {hex32('seq')}", 100_000),
        "CREATE TABLE small (id INT PRIMARY KEY)",
        "INSERT INTO small VALUES (1), (2)",
    )


@pytest.fixture(scope="module")
def six_tables(make_module_database: Callable[..., str]) -> str:
    """Six tables of 20k rows each, with a virtual column that keeps the server busy
    (about 0.4 s a read): every read lasts long enough for the killer to see it."""
    return make_module_database(
        "CREATE TABLE t1 (id INT PRIMARY KEY, note VARCHAR(64),"
        " h CHAR(128) AS (SHA2(REPEAT(note, 400), 512)) VIRTUAL)",
        *numbered_rows("t1 (id, note)", f"seq, {hex32('seq')}", 20_000),
        *[
            s
            for i in range(2, 7)
            for s in (
                f"CREATE TABLE t{i} LIKE t1",
                f"INSERT INTO t{i} (id, note) SELECT id, note FROM t1",
            )
        ],
    )


class Killer:
    """A second session that KILLs (QUERY) the engine's SELECTs matching `pattern` (a LIKE
    on the tag comment) in `database`: at most `limit` of them, or all until stopped."""

    def __init__(
        self,
        server: Server,
        database: str,
        pattern: str,
        *,
        limit: int | None = None,
        streaming_ms: int = 50,
    ) -> None:
        self.server, self.database, self.pattern = server, database, pattern
        self.limit, self.streaming_ms = limit, streaming_ms
        self.killed: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Killer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        conn = self.server.connect()
        deadline = time.monotonic() + 120
        with conn.cursor() as cur:
            while not self._stop.is_set() and time.monotonic() < deadline:
                if self.limit is not None and len(self.killed) >= self.limit:
                    break
                # No memory of killed ids: connectorx runs more than one statement on its
                # connection, and a KILL that lands between them must be repeated.
                for process_id in running_statements(
                    cur, self.server, self.database, self.pattern, self.streaming_ms
                ):
                    cur.execute(f"KILL QUERY {int(process_id)}")
                    self.killed.append(int(process_id))
                time.sleep(0.005)
        conn.close()


def _extract(
    server: Server,
    database: str,
    dest: Path,
    day: str,
    *args: str,
    url: str | None = None,
    **env: str,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RADAR_")}
    environ.update(
        {
            "RADAR_MYSQL_URL": url or server.url(database),
            "RADAR_DEST": str(dest),
            "RADAR_WORKERS": "1",
            "RADAR_BATCH_ROWS": "5000",
            **env,
        }
    )
    report_file = dest / f"report-{uuid.uuid4().hex[:6]}.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "extractor",
            "extract",
            "--date",
            day,
            "--report",
            str(report_file),
            *args,
        ],
        capture_output=True,
        text=True,
        env=environ,
        cwd=ROOT,
        timeout=180,
    )
    report = json.loads(report_file.read_text()) if report_file.exists() else {}
    return proc, report


def _tables(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["table"]: t for t in report["tables"]}


def _partition(dest: Path, table: str, day: str) -> Path:
    return dest / PREFIX / table / f"cog_dt_ingestion={day}"


def _no_staging(dest: Path) -> bool:
    staging = dest / "_radar_extract" / "staging"
    return not staging.exists() or not any(staging.rglob("*.parquet"))


@pytest.mark.parametrize("workers", ["1", "2"], ids=["inline", "pool"])
def test_killed_once_succeeds_on_attempt_two_with_exactly_the_source_rows(
    server: Server, database: str, tmp_path: Path, workers: str
) -> None:
    with Killer(server, database, "%table=metrics_attempt=1_q=%", limit=1) as killer:
        result, report = _extract(
            server, database, tmp_path, "2024-05-01", RADAR_WORKERS=workers, **FAST
        )
    assert killer.killed, "the first attempt was never seen streaming"
    assert result.returncode == 0, result.stderr
    assert "metrics: attempt 1 of 3 failed at read (transient), retrying" in result.stderr
    metrics = _tables(report)["metrics"]
    assert metrics["status"] == "published" and metrics["attempts"] == 2
    assert metrics["rows"] == ROWS and metrics["retry_note"] is None
    assert _tables(report)["small"]["attempts"] == 1
    conn = server.connect(database)
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*), COUNT(DISTINCT id), SUM(id), SUM(v) FROM metrics")
        source = cur.fetchone()
    conn.close()
    written = query(
        "SELECT COUNT(*), COUNT(DISTINCT id), SUM(id), SUM(v) FROM read_parquet("
        f"'{_partition(tmp_path, 'metrics', '2024-05-01')}/*.parquet')"
    ).fetchall()[0]
    assert written == source  # no row lost or doubled by the retry
    assert _no_staging(tmp_path)


def test_permanent_failure_is_attempted_once(server: Server, database: str, tmp_path: Path) -> None:
    """A user that may not SELECT `small`: access denied is never retried."""
    user, password = f"rr_{uuid.uuid4().hex[:8]}", "Pw-retries-1"
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
        cur.execute(f"GRANT SELECT ON `{database}`.`metrics` TO '{user}'@'%'")
        cur.execute(f"GRANT INSERT ON `{database}`.`small` TO '{user}'@'%'")
    try:
        url = f"mysql+pymysql://{user}:{password}@{server.host}:{server.port}/{database}"
        started = time.monotonic()
        # A backoff of up to 10 minutes: had it retried, this would not finish in time.
        result, report = _extract(
            server,
            database,
            tmp_path,
            "2024-05-02",
            url=url,
            RADAR_RETRY_BASE_S="600",
            RADAR_RETRY_CAP_S="600",
        )
        assert time.monotonic() - started < 60
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP USER '{user}'@'%'")
        conn.close()
    assert result.returncode == 1, result.stderr
    small = _tables(report)["small"]
    assert small["status"] == "failed" and small["attempts"] == 1 and not small["transient"]
    assert "small: failed at read (not retried: the error is not transient)" in result.stderr
    assert _tables(report)["metrics"]["status"] == "published"
    assert "retrying" not in result.stderr


@pytest.fixture(scope="module")
def published_slow(
    server: Server, slow_database: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, float]:
    """A destination where `slow` is already published (one full read, shared), and how
    long that full read took."""
    dest = tmp_path_factory.mktemp("published-slow")
    first, report = _extract(server, slow_database, dest, "2024-05-03")
    assert first.returncode == 0, first.stderr
    return dest, float(_tables(report)["slow"]["seconds"])


@pytest.mark.parametrize("workers", ["1", "2"], ids=["inline", "pool"])
def test_timeout_aborts_a_long_read_and_the_others_publish(
    server: Server,
    slow_database: str,
    published_slow: tuple[Path, float],
    tmp_path: Path,
    workers: str,
) -> None:
    shutil.copytree(published_slow[0], tmp_path, dirs_exist_ok=True)
    full_read = published_slow[1]
    partition = _partition(tmp_path, "slow", "2024-05-03")
    before = {p.name: p.read_bytes() for p in partition.iterdir()}

    # 1 s, not less: `small` runs under the same limit, on a cold worker of a busy host.
    result, report = _extract(
        server,
        slow_database,
        tmp_path,
        "2024-05-03",
        RADAR_TABLE_TIMEOUT_S="1",
        RADAR_WORKERS=workers,
        RADAR_BATCH_ROWS="100000",
        **FAST,
    )
    assert result.returncode == 1, result.stderr
    slow = _tables(report)["slow"]
    assert slow["status"] == "failed" and slow["error_step"] == "timeout", slow
    assert slow["error_type"] == "TableTimeout" and not slow["transient"]
    assert slow["attempts"] == 1  # a timeout is not retried
    assert slow["seconds"] < min(2.5, full_read / 1.5), (slow, full_read)  # stopped, not awaited
    assert "slow: failed at timeout (attempt 1 of 3; a timeout is not retried)" in result.stderr
    assert _tables(report)["small"]["status"] == "published", _tables(report)["small"]
    assert {p.name: p.read_bytes() for p in partition.iterdir()} == before  # untouched
    assert _no_staging(tmp_path)
    assert "Traceback" not in result.stderr and "panicked" not in result.stderr
    conn = server.connect()
    with conn.cursor() as cur:  # the server is not left computing the killed read
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = %s"
            " AND INFO LIKE '%%radar-extract%%'",
            (slow_database,),
        )
        assert cur.fetchone() == (0,)
    conn.close()


@pytest.mark.parametrize("workers", ["1", "2"], ids=["inline", "pool"])
def test_breaker_stops_the_run_after_three_consecutive_transient_failures(
    server: Server, six_tables: str, tmp_path: Path, workers: str
) -> None:
    # Every engine SELECT on this database is killed as soon as it shows up.
    with Killer(server, six_tables, "%radar-extract%", streaming_ms=0) as killer:
        result, report = _extract(
            server, six_tables, tmp_path, "2024-05-04", RADAR_WORKERS=workers, **FAST
        )
    assert killer.killed
    assert result.returncode == 1, result.stderr
    tables = _tables(report)
    failed = sorted(t for t, r in tables.items() if r["status"] == "failed")
    not_run = sorted(t for t, r in tables.items() if r["status"] == "not_run")
    assert sorted(failed + not_run) == [f"t{i}" for i in range(1, 7)]  # none published
    assert report["status"] == "failed" and report["totals"]["not_run"] == len(not_run)
    assert report["breaker"].startswith(
        "circuit breaker opened after 3 consecutive tables "
        "failed with transient SourceError at read"
    )
    if workers == "1":
        # One at a time: three tables use their 3 attempts, the other three never start.
        assert len(failed) == 3 and len(not_run) == 3
        assert all(tables[t]["attempts"] == 3 for t in failed)
    else:
        assert len(failed) >= 3 and not_run  # the queued ones were cancelled
    assert all(tables[t]["attempts"] == 0 and tables[t]["rows"] == 0 for t in not_run)
    for table in tables:
        assert not (tmp_path / PREFIX / table).exists()  # nothing published
    assert _no_staging(tmp_path)
    assert "not run, circuit breaker opened after 3 consecutive tables" in result.stderr


def test_unreachable_database_at_start_is_a_fast_exit_3(
    server: Server, database: str, tmp_path: Path
) -> None:
    """Discovery's connect is not retried: exit 3 at once, whatever the backoff settings."""
    started = time.monotonic()
    result, report = _extract(
        server,
        database,
        tmp_path,
        "2024-05-05",
        url="mysql+pymysql://root@127.0.0.1:1/x",
        RADAR_RETRY_BASE_S="600",
        RADAR_RETRY_CAP_S="600",
        RADAR_RETRY_ATTEMPTS="10",
    )
    assert result.returncode == 3, result.stderr
    assert time.monotonic() - started < 30
    assert "unreachable" in result.stderr and not report


def test_retries_off_restores_fail_fast(server: Server, database: str, tmp_path: Path) -> None:
    """RADAR_RETRY_ATTEMPTS=1: a killed read fails its table at once."""
    with Killer(server, database, "%table=metrics_attempt=1_q=%", limit=1) as killer:
        result, report = _extract(
            server, database, tmp_path, "2024-05-06", RADAR_RETRY_ATTEMPTS="1"
        )
    assert killer.killed
    assert result.returncode == 1, result.stderr
    metrics = _tables(report)["metrics"]
    assert metrics["attempts"] == 1 and metrics["transient"]
    assert "metrics: failed at read (transient, but not retried: RADAR_RETRY_ATTEMPTS=1)" in (
        result.stderr
    )
    assert not _partition(tmp_path, "metrics", "2024-05-06").exists()
