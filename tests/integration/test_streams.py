"""One table on several streams (primary-key ranges read at once), against the real server:
the same rows and values as one stream, locally and on S3, files numbered without gaps,
every row read once under concurrent writes, a timeout that stops every stream, and the
tables that cannot be split read on one."""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import s3fs

from extractor.config import load_settings
from extractor.run.runner import run_extract
from extractor.sink.keys import Keys
from tests.conftest import (
    S3,
    Result,
    Server,
    hex32,
    numbered_rows,
    query,
    report_of,
    running_statements,
)

pytestmark = pytest.mark.integration

PREFIX = "origin=airbyte/database=bronze_radar"
DAY = "2024-06-01"
ROWS = 150_000
# Small batches and files: each stream writes several files, so the numbering across
# streams is exercised, not just one file each.
SMALL = {
    "RADAR_BATCH_ROWS": "1000",
    "RADAR_ROW_GROUP_MB": "1",
    "RADAR_FILE_MAX_MB": "1",
    "RADAR_WORKERS": "1",
}


@pytest.fixture(scope="module")
def database(make_module_database: Callable[..., str]) -> str:
    """`orders` (150k rows, keys from -74,999 up, every type family), `composite`
    (PK (store_id, day)), `no_pk`, `by_name` (a VARCHAR key), `no_rows`, `one_row`."""
    return make_module_database(
        "CREATE TABLE orders (id BIGINT PRIMARY KEY, store_id INT NOT NULL,"
        " amount DECIMAL(14,2), note VARCHAR(64) NULL, created DATETIME NOT NULL,"
        " seen TIMESTAMP NULL, score DOUBLE, raw VARBINARY(16))",
        *numbered_rows(
            "orders",
            "seq - 75000, seq % 97, seq / 100,"
            f" IF(seq % 7 = 0, NULL, {hex32('seq')}),"
            " TIMESTAMP '2020-01-01 00:00:00' + INTERVAL seq MINUTE,"
            " IF(seq % 5 = 0, NULL, FROM_UNIXTIME(1600000000 + seq)), seq / 7e0,"
            " UNHEX(LEFT(SHA2(seq, 256), 8))",
            ROWS,
        ),
        "CREATE TABLE composite (store_id INT UNSIGNED, day DATE, v INT,"
        " PRIMARY KEY (store_id, day))",
        *numbered_rows(
            "composite", "seq % 300, DATE '2020-01-01' + INTERVAL (seq DIV 300) DAY, seq", 30_000
        ),
        "CREATE TABLE no_pk (a INT, b VARCHAR(8))",
        *numbered_rows("no_pk", "seq % 1000, LEFT(SHA2(seq, 256), 8)", 20_000),
        "CREATE TABLE by_name (name VARCHAR(40) PRIMARY KEY, v INT)",
        *numbered_rows("by_name", f"{hex32('seq')}, seq", 20_000),
        "CREATE TABLE no_rows (id INT PRIMARY KEY, v INT)",
        "CREATE TABLE one_row (id BIGINT UNSIGNED PRIMARY KEY, v INT)",
        "INSERT INTO one_row VALUES (18446744073709551615, 1)",
    )


def _settings(server: Server, database: str, dest: str, **env: str) -> Any:
    return load_settings(
        env={"RADAR_MYSQL_URL": server.url(database), "RADAR_DEST": dest, **SMALL, **env}
    )


def _partition(root: str, table: str) -> str:
    return f"{root}/{PREFIX}/{table}/cog_dt_ingestion={DAY}"


def _rows(directory: str, order: str) -> list[tuple[Any, ...]]:
    source = f"read_parquet('{directory}/*.parquet', hive_partitioning = false)"
    return query(f"SELECT * FROM {source} ORDER BY {order}").fetchall()


def _numbered(names: list[str], table: str) -> None:
    assert sorted(names) == [f"file_{table}_{n:03d}.parquet" for n in range(1, len(names) + 1)]


def _extract(
    server: Server, database: str, dest: str, streams: str, *tables: str, **env: str
) -> dict[str, dict[str, Any]]:
    outcome = run_extract(
        _settings(server, database, dest, RADAR_STREAMS=streams, **env),
        tables=tables,
        run_date=__import__("datetime").date.fromisoformat(DAY),
    )
    report = report_of(outcome)
    assert outcome.exit_code == 0, [t.error for t in report.tables]
    return {t.table: t.to_dict() for t in report.tables}


ORDER = {
    "orders": "id",
    "composite": "store_id, day",
    "no_pk": "a, b",
    "by_name": "name",
    "no_rows": "id",
    "one_row": "id",
}


def test_three_streams_read_what_one_stream_reads(
    server: Server, database: str, tmp_path: Path
) -> None:
    one = _extract(server, database, str(tmp_path / "one"), "1")
    three = _extract(server, database, str(tmp_path / "three"), "3")
    for table, order in ORDER.items():
        a, b = _partition(str(tmp_path / "one"), table), _partition(str(tmp_path / "three"), table)
        assert _rows(b, order) == _rows(a, order), table  # every value of every row
        assert three[table]["rows"] == one[table]["rows"], table
        _numbered(os.listdir(b), table)
        manifest = _manifest(str(tmp_path / "three"), table)
        assert sorted(f["key"] for f in manifest["files"]) == sorted(os.listdir(b))
        split = manifest["source"].get("streams")
        if table in ("orders", "composite"):
            assert three[table]["streams"] == 3, table
            assert split is not None and len(split["ranges"]) == 3
            assert sum(r["rows"] for r in split["ranges"]) == manifest["rows"]
            assert split["ranges"][0]["low"] is None and split["ranges"][-1]["high"] is None
        else:  # no usable key, no rows, or one key value: one stream, as reported
            assert three[table]["streams"] == 1, table
            assert split is None, table
        assert "streams" not in one[table], table  # asked for one: reported as before
    three_root = str(tmp_path / "three")
    assert len(os.listdir(_partition(three_root, "orders"))) > 3  # several per stream
    assert _rows(_partition(three_root, "no_rows"), "id") == []
    assert os.listdir(_partition(three_root, "no_rows")) == ["file_no_rows_001.parquet"]


def test_streams_in_the_worker_pool(server: Server, database: str, tmp_path: Path) -> None:
    one = _extract(server, database, str(tmp_path / "one"), "1", "orders", "composite")
    two = _extract(
        server, database, str(tmp_path / "two"), "2", "orders", "composite", RADAR_WORKERS="2"
    )  # two tables, two worker processes, two streams each
    for table in ("orders", "composite"):
        a, b = _partition(str(tmp_path / "one"), table), _partition(str(tmp_path / "two"), table)
        assert _rows(b, ORDER[table]) == _rows(a, ORDER[table]), table
        assert (two[table]["streams"], two[table]["rows"]) == (2, one[table]["rows"]), table
        _numbered(os.listdir(b), table)


def _manifest(root: str, table: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(Keys(root, PREFIX).manifest(table, DAY)).read_text())
    return data


def test_three_streams_on_s3(server: Server, database: str, s3: S3, tmp_path: Path) -> None:
    local = str(tmp_path / "one")
    _extract(server, database, local, "1", "orders")
    bucket = s3.new_bucket()
    result = _extract(server, database, f"s3://{bucket}", "3", "orders", **s3.env)
    assert result["orders"]["streams"] == 3 and result["orders"]["rows"] == ROWS
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3.endpoint})
    keys = fs.ls(_partition(bucket, "orders"))
    _numbered([k.rsplit("/", 1)[1] for k in keys], "orders")
    assert len(keys) > 3
    copy = tmp_path / "from_s3"
    copy.mkdir()
    for key in keys:
        fs.get(key, str(copy / key.rsplit("/", 1)[1]))
    assert _rows(str(copy), "id") == _rows(_partition(local, "orders"), "id")
    assert not fs.call_s3("list_multipart_uploads", Bucket=bucket).get("Uploads")


@pytest.fixture(scope="module")
def live_database(make_module_database: Callable[..., str]) -> str:
    """`live`: even ids 2..200,000 (room for odd ids in every range), values a function of the
    id, and a virtual column that costs the server a SHA-512 per row, so that three streams
    read for a few seconds while another session writes."""
    return make_module_database(
        "CREATE TABLE live (id INT PRIMARY KEY, note VARCHAR(64) NOT NULL, n INT NOT NULL,"
        " h CHAR(128) AS (SHA2(REPEAT(note, 1500), 512)) VIRTUAL)",
        *numbered_rows("live (id, note, n)", f"2 * seq, {hex32('2 * seq')}, 14 * seq", 100_000),
    )


class Writer:
    """Another session that, once the streams are reading, inserts rows beyond MAX(id) and
    odd ids in the middle of the key space, and deletes rows all over it, until stopped."""

    def __init__(self, server: Server, database: str) -> None:
        self.server, self.database = server, database
        self.inserted: set[int] = set()
        self.deleted: set[int] = set()
        self.during_read = 0  # write rounds done while a stream's SELECT was running
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        conn = self.server.connect(self.database)
        deadline = time.monotonic() + 120
        round_ = 0
        with conn.cursor() as cur:
            while not running_statements(cur, self.server, self.database, "%stream=%", 0):
                if self._stop.is_set() or time.monotonic() > deadline:
                    conn.close()
                    return
                time.sleep(0.002)
            while not self._stop.is_set() and round_ < 5_000:
                round_ += 1
                beyond = [200_000 + 2 * round_ + k for k in (1, 2)]  # above MAX(id)
                middle = [2 * (round_ * 211 % 100_000) + 1, 2 * (round_ * 389 % 100_000) + 1]
                gone = [2 * (round_ * 257 % 100_000 + 1), 2 * (round_ * 163 % 100_000 + 1)]
                fresh = [i for i in beyond + middle if i not in self.inserted]
                if fresh:
                    cur.execute(
                        "INSERT INTO live (id, note, n) VALUES "
                        + ", ".join(f"({i}, LEFT(SHA2({i}, 256), 32), {7 * i})" for i in fresh)
                    )
                cur.execute(f"DELETE FROM live WHERE id IN ({', '.join(map(str, gone))})")
                self.inserted.update(fresh)
                self.deleted.update(gone)
                if running_statements(cur, self.server, self.database, "%stream=%", 0):
                    self.during_read += 1
                time.sleep(0.003)
        conn.close()


def test_every_row_is_read_once_under_concurrent_inserts_and_deletes(
    cli: Callable[..., Result], server: Server, live_database: str, tmp_path: Path
) -> None:
    original = set(range(2, 200_001, 2))
    report_file = tmp_path / "report.json"
    # The run in a process of its own: its streams' threads would starve a writer thread of
    # this process of the GIL (connectorx holds it while it builds a batch).
    with Writer(server, live_database) as writer:
        result = cli(
            "extract",
            "--streams",
            "3",
            "--date",
            DAY,
            "--report",
            str(report_file),
            env={
                "RADAR_MYSQL_URL": server.url(live_database),
                "RADAR_DEST": str(tmp_path),
                "RADAR_WORKERS": "1",
                "RADAR_BATCH_ROWS": "1000",
            },
        )
    assert result.code == 0, result.output
    assert json.loads(report_file.read_text())["tables"][0]["streams"] == 3
    assert writer.during_read >= 20, "the writes did not overlap the read"

    rows = _rows(_partition(str(tmp_path), "live"), "id")
    assert rows
    ids = Counter(r[0] for r in rows)
    assert [i for i, n in ids.items() if n > 1] == []  # no row twice
    kept = original - writer.deleted  # existed, unchanged, throughout the read
    assert kept <= set(ids)  # none missed
    assert set(ids) <= original | writer.inserted  # nothing invented
    # Some writes landed in ranges already read, some in ranges not read yet: both are
    # allowed, the invariants above are what must hold either way.
    for id_, note, n, _ in rows:  # every value is what the source wrote for its id
        assert (note, n) == (hashlib.sha256(str(id_).encode()).hexdigest()[:32], 7 * id_), id_
    for id_, note, _, h in (r for r in rows if r[0] in writer.deleted):  # no longer in the source
        assert h == hashlib.sha512((note * 1500).encode()).hexdigest(), id_
    conn = server.connect(live_database)
    with conn.cursor() as cur:
        present = ",".join(str(int(i)) for i in sorted(set(ids) - writer.deleted))
        cur.execute(f"SELECT id, note, n, h FROM live WHERE id IN ({present})")
        source = {r[0]: r for r in cur.fetchall()}
    conn.close()
    assert {r[0]: r for r in rows if r[0] not in writer.deleted} == source
    manifest = _manifest(str(tmp_path), "live")
    assert sum(r["rows"] for r in manifest["source"]["streams"]["ranges"]) == len(rows)


@pytest.fixture(scope="module")
def slow_database(make_module_database: Callable[..., str]) -> str:
    """`slow`: 100k rows whose virtual column costs the server about 12 s to read: 4 s a
    stream of three, so a table that ends within 3 s had every stream killed."""
    return make_module_database(
        "CREATE TABLE slow (id INT PRIMARY KEY, note VARCHAR(64),"
        " h CHAR(128) AS (SHA2(REPEAT(note, 2400), 512)) VIRTUAL)",
        *numbered_rows("slow (id, note)", f"seq, {hex32('seq')}", 100_000),
    )


def test_a_table_timeout_kills_every_stream(
    cli: Callable[..., Result], server: Server, slow_database: str, tmp_path: Path
) -> None:
    report_file = tmp_path / "report.json"
    result = cli(
        "extract",
        "--streams",
        "3",
        "--date",
        DAY,
        "--report",
        str(report_file),
        env={
            "RADAR_MYSQL_URL": server.url(slow_database),
            "RADAR_DEST": str(tmp_path),
            "RADAR_TABLE_TIMEOUT_S": "1",
            "RADAR_WORKERS": "1",
            "RADAR_BATCH_ROWS": "100000",
        },
    )
    assert result.code == 1, result.output
    slow = json.loads(report_file.read_text())["tables"][0]
    assert slow["status"] == "failed" and slow["error_step"] == "timeout", slow
    assert slow["seconds"] < 3.0, slow  # stopped, not awaited
    assert "Traceback" not in result.stderr and "panicked" not in result.stderr
    killed = set(re.findall(r"slow: killed query (\d+)", result.stderr))
    assert len(killed) >= 3, result.stderr  # one connection per stream
    assert not (tmp_path / PREFIX / "slow" / f"cog_dt_ingestion={DAY}").exists()
    conn = server.connect()
    with conn.cursor() as cur:  # no stream is left computing its read
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = %s"
            " AND INFO LIKE '%%radar-extract%%'",
            (slow_database,),
        )
        assert cur.fetchone() == (0,)
    conn.close()
