"""End to end through the real CLI: layout, reruns, failures, exit codes, S3 over HTTP."""

from __future__ import annotations

import glob
import json
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import s3fs

from extractor.config import load_settings
from extractor.run.runner import run_extract
from extractor.run.summary import summary_lines
from tests.conftest import NUMBERS_TO_100K, S3, Result, Server, hex32, query, report_of

pytestmark = pytest.mark.integration

PREFIX = "origin=airbyte/database=bronze_radar"
CANARY = "Canary-pw-7f3a9c"  # must never appear in any output

SCHEMA = [
    "CREATE TABLE store (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL, opened DATE NULL)",
    "INSERT INTO store VALUES (1, 'Farmácia Central 😀', '2020-01-02'), (2, 'Drogaria Sul', NULL),"
    " (3, 'Loja 3', '0000-00-00')",
    "CREATE TABLE product (sku VARCHAR(20) PRIMARY KEY, price DECIMAL(10,2), stock INT UNSIGNED)",
    "INSERT INTO product VALUES ('A-1', 10.50, 4294967295), ('B-2', NULL, 0)",
    "CREATE TABLE empty_table (id INT PRIMARY KEY, note TEXT)",
    "CREATE TABLE no_pk (a INT, b VARCHAR(5))",
    "INSERT INTO no_pk VALUES (1, 'x'), (1, 'x'), (NULL, NULL)",
    "CREATE VIEW store_view AS SELECT id, name FROM store",
]


@pytest.fixture
def radar(make_database: Callable[..., str]) -> str:
    return make_database(*SCHEMA, sql_mode="")


def _partition(root: Path | str, table: str, day: str) -> str:
    return f"{root}/{PREFIX}/{table}/cog_dt_ingestion={day}"


def _rows(path_glob: str, order: str = "1") -> list[tuple[Any, ...]]:
    source = f"read_parquet('{path_glob}', hive_partitioning = false)"
    return query(f"SELECT * FROM {source} ORDER BY {order}").fetchall()


def _env(server: Server, database: str, **extra: str) -> dict[str, str]:
    return {"RADAR_MYSQL_URL": server.url(database), **extra}


def test_extract_all_tables_to_local_layout(
    cli: Callable[..., Result], server: Server, radar: str, tmp_path: Path
) -> None:
    report_file = tmp_path / "report.json"
    result = cli(
        "extract",
        "--dest",
        str(tmp_path / "out"),
        "--date",
        "2024-03-01",
        "--report",
        str(report_file),
        env=_env(server, radar),
    )
    assert result.code == 0, result.output
    root = tmp_path / "out"
    tables = sorted(p.name for p in (root / PREFIX).iterdir())
    assert tables == ["empty_table", "no_pk", "product", "store"]  # the view is skipped
    for table in tables:
        files = sorted(os.listdir(_partition(root, table, "2024-03-01")))
        assert files == [f"file_{table}_001.parquet"]  # nothing else in the data location
    assert _rows(_partition(root, "store", "2024-03-01") + "/*.parquet") == [
        (1, "Farmácia Central 😀", __import__("datetime").date(2020, 1, 2)),
        (2, "Drogaria Sul", None),
        (3, "Loja 3", None),
    ]
    assert _rows(_partition(root, "no_pk", "2024-03-01") + "/*.parquet", "a NULLS LAST") == [
        (1, "x"),
        (1, "x"),
        (None, None),
    ]
    empty = pq.read_table(
        _partition(root, "empty_table", "2024-03-01") + "/file_empty_table_001.parquet"
    )
    assert empty.num_rows == 0 and empty.column_names == ["id", "note"]
    report = json.loads(report_file.read_text())
    assert report["status"] == "success" and report["date"] == "2024-03-01"
    by_table = {t["table"]: t for t in report["tables"]}
    assert by_table["store"]["rows"] == 3 and by_table["store"]["nulled"] == {"opened": 1}
    assert report["totals"]["rows"] == 3 + 2 + 0 + 3
    runs = os.listdir(root / "_radar_extract" / "runs")
    assert runs == [f"{report['run_id']}.json"]
    assert "invalid values written as NULL: opened=1" in result.stderr


def test_table_selection_and_rerun_replaces_partition(
    cli: Callable[..., Result], server: Server, radar: str, tmp_path: Path
) -> None:
    env = _env(server, radar, RADAR_DEST=str(tmp_path))
    assert cli("extract", "--table", "store", "--date", "2024-03-01", env=env).code == 0
    assert sorted(os.listdir(tmp_path / PREFIX)) == ["store"]
    # A stale file from an earlier, bigger run must disappear on rerun.
    stale = Path(_partition(tmp_path, "store", "2024-03-01")) / "file_store_002.parquet"
    stale.write_bytes(b"old")
    conn = server.connect(radar)
    with conn.cursor() as cur:
        cur.execute("DELETE FROM store WHERE id = 2")
    conn.close()
    result = cli("extract", "--table", "store", "--date", "2024-03-01", env=env)
    assert result.code == 0, result.output
    assert sorted(os.listdir(_partition(tmp_path, "store", "2024-03-01"))) == [
        "file_store_001.parquet"
    ]
    assert [r[0] for r in _rows(_partition(tmp_path, "store", "2024-03-01") + "/*")] == [1, 3]
    report_file = tmp_path / "report.json"
    result = cli(
        "extract",
        "--exclude",
        "store",
        "--exclude",
        "no_pk",
        "--date",
        "2024-03-02",
        "--report",
        str(report_file),
        env=env,
    )
    assert result.code == 0, result.output
    statuses = {t["table"]: t["status"] for t in json.loads(report_file.read_text())["tables"]}
    assert statuses == {
        "empty_table": "published",
        "product": "published",
        "no_pk": "skipped",
        "store": "skipped",
    }
    assert sorted(os.listdir(tmp_path / PREFIX / "product")) == ["cog_dt_ingestion=2024-03-02"]
    assert not os.path.exists(tmp_path / PREFIX / "store" / "cog_dt_ingestion=2024-03-02")


def test_file_rollover_and_parquet_settings(
    make_database: Callable[..., str], server: Server, tmp_path: Path
) -> None:
    database = make_database(
        "CREATE TABLE big (id INT PRIMARY KEY, payload VARCHAR(200), at DATETIME(6),"
        " kind VARCHAR(10))",
        f"INSERT INTO big SELECT seq, CONCAT({hex32('seq')}, {hex32('seq + 1')},"
        f" {hex32('seq + 2')}),"
        " '2024-01-01 00:00:00' + INTERVAL seq SECOND, ELT(1 + seq % 3, 'a', 'b', 'c')"
        f" FROM ({NUMBERS_TO_100K}) AS numbers",
    )
    settings = load_settings(
        env=_env(
            server,
            database,
            RADAR_DEST=str(tmp_path),
            RADAR_ROW_GROUP_MB="2",
            RADAR_FILE_MAX_MB="3",
            RADAR_BATCH_ROWS="5000",
        )
    )
    report = report_of(run_extract(settings, run_date=date(2024, 3, 1)))
    assert report.ok, summary_lines(report)
    files = sorted(glob.glob(_partition(tmp_path, "big", "2024-03-01") + "/*"))
    assert [os.path.basename(f) for f in files] == [
        f"file_big_{n:03d}.parquet" for n in range(1, len(files) + 1)
    ]
    assert len(files) >= 2  # rolled over at the configured size
    total = 0
    for path in files:
        meta = pq.ParquetFile(path).metadata
        total += meta.num_rows
        for i in range(meta.num_row_groups):
            unique, repeated = meta.row_group(i).column(1), meta.row_group(i).column(3)
            assert unique.compression == repeated.compression == "SNAPPY"
            # Dictionary encoding where it pays; all-distinct values are written PLAIN.
            assert "RLE_DICTIONARY" in repeated.encodings
            assert "RLE_DICTIONARY" not in unique.encodings
    assert total == 100000
    ids = [r[0] for r in _rows(_partition(tmp_path, "big", "2024-03-01") + "/*.parquet")]
    assert ids == list(range(1, 100001))


def test_failed_table_keeps_previous_partition_and_others_publish(
    cli: Callable[..., Result], server: Server, radar: str, tmp_path: Path
) -> None:
    env = _env(server, radar, RADAR_DEST=str(tmp_path))
    assert cli("extract", "--date", "2024-03-01", env=env).code == 0
    before = Path(_partition(tmp_path, "product", "2024-03-01"), "file_product_001.parquet")
    before_bytes = before.read_bytes()
    # A user that may see `product` (INSERT grant) but not read it: its SELECT fails for real.
    user = f"rt_{uuid.uuid4().hex[:8]}"
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{CANARY}'")
        for table in ("store", "empty_table", "no_pk"):
            cur.execute(f"GRANT SELECT ON `{radar}`.`{table}` TO '{user}'@'%'")
        cur.execute(f"GRANT INSERT ON `{radar}`.`product` TO '{user}'@'%'")
        cur.execute(f"DELETE FROM `{radar}`.store WHERE id = 1")
    try:
        url = f"mysql+pymysql://{user}:{CANARY}@{server.host}:{server.port}/{radar}"
        report_file = tmp_path / "r.json"
        result = cli(
            "extract",
            "--date",
            "2024-03-01",
            "--report",
            str(report_file),
            env={"RADAR_MYSQL_URL": url, "RADAR_DEST": str(tmp_path)},
        )
        assert result.code == 1, result.output
        assert "product: failed at read" in result.stderr
        assert before.read_bytes() == before_bytes  # the previous partition is untouched
        assert [r[0] for r in _rows(_partition(tmp_path, "store", "2024-03-01") + "/*")] == [2, 3]
        report = json.loads(report_file.read_text())
        assert report["status"] == "failed" and report["totals"]["failed"] == 1
        staging = tmp_path / "_radar_extract" / "staging"
        assert not staging.exists() or not any(staging.iterdir())
        assert CANARY not in result.output + report_file.read_text()
        wrong = url.replace(CANARY, CANARY + "x")
        denied = cli("extract", env={"RADAR_MYSQL_URL": wrong, "RADAR_DEST": str(tmp_path)})
        assert denied.code == 3, denied.output
        assert "refused" in denied.stderr and CANARY not in denied.output
        assert len(denied.stderr.strip().splitlines()) == 1 and "Traceback" not in denied.output
    finally:
        conn = server.connect()
        with conn.cursor() as cur:
            cur.execute(f"DROP USER '{user}'@'%'")
        conn.close()


@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        (["extract", "--date", "2024-13-01"], {}, 2, "not a valid date"),
        (["extract", "--table", "nope"], {}, 2, "not a base table of the database: 'nope'"),
        (["extract", "--table", "store_view"], {}, 2, "not a base table"),
        (["extract", "--table", "x`; DROP TABLE store; --"], {}, 2, "not a base table"),
        (["extract", "--table", "st\u043ere"], {}, 2, "not a base table"),  # a Cyrillic o
        (["extract", "--table", "../store"], {}, 2, "is not valid"),
        (["extract", "--table", "s" * 300], {}, 2, "is not valid"),
        (
            ["extract"],
            {"RADAR_MYSQL_DATABASE": "radar`; DROP DATABASE x"},
            2,
            "is not a valid database name",
        ),
        (["extract"], {"RADAR_PREFIX": "../../etc"}, 2, "prefix"),
        (
            ["extract"],
            {"RADAR_WORKERS": "many", "RADAR_MYSQL_PORT": "99999"},
            2,
            "workers must be an integer",
        ),
        (
            ["extract"],
            {"RADAR_MYSQL_URL": f"mysql+pymysql://root:{CANARY}@127.0.0.1:1/x"},
            3,
            "unreachable",
        ),
        (
            ["check"],
            {"RADAR_MYSQL_URL": f"mysql+pymysql://root:{CANARY}@127.0.0.1:1/x"},
            3,
            "unreachable",
        ),
        (["extract", "--dest", "/proc/version/out"], {}, 3, "not writable"),
    ],
    ids=[
        "bad-date",
        "unknown-table",
        "view",
        "hostile-name",
        "look-alike",
        "dot-dot",
        "very-long",
        "hostile-database",
        "hostile-prefix",
        "bad-config",
        "unreachable",
        "check-unreachable",
        "unwritable-dest",
    ],
)
def test_bad_input_one_line_and_exit_code(
    cli: Callable[..., Result],
    server: Server,
    radar: str,
    args: list[str],
    env: dict[str, str],
    code: int,
    message: str,
) -> None:
    result = cli(*args, env={**_env(server, radar), **env})
    assert result.code == code, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.output and CANARY not in result.output


def test_bad_config_lists_every_problem(cli: Callable[..., Result]) -> None:
    result = cli(
        "tables",
        env={
            "RADAR_WORKERS": "0",
            "RADAR_MYSQL_PORT": "x",
            "RADAR_MYSQL_SSL_MODE": "sometimes",
            "RADAR_DEST": "ftp://x",
        },
    )
    assert result.code == 2
    for problem in (
        "workers must be between 1 and 64",
        "mysql_port must be an integer",
        "mysql_ssl_mode 'sometimes'",
        "dest 'ftp://x'",
    ):
        assert problem in result.stderr


def test_check_and_tables(
    cli: Callable[..., Result], server: Server, radar: str, tmp_path: Path
) -> None:
    result = cli("check", "--dest", str(tmp_path), env=_env(server, radar))
    assert result.code == 0, result.output
    assert "ok   mysql" in result.stdout and "4 base tables readable" in result.stdout
    # Every privilege: MariaDB says ALL PRIVILEGES, MySQL 8 spells them out.
    first = "ALL PRIVILEGES" if server.flavor == "mariadb" else "INSERT"
    assert f"warn grants: the user can WRITE ({first} ON *.*" in result.stdout
    assert "plaintext" in result.stdout or "TLS in use" in result.stdout
    assert not glob.glob(f"{tmp_path}/**/*.probe", recursive=True)
    listing = cli("tables", "--json", env=_env(server, radar))
    assert listing.code == 0
    assert sorted(t["table"] for t in json.loads(listing.stdout)) == [
        "empty_table",
        "no_pk",
        "product",
        "store",
    ]


@pytest.fixture
def bucket(s3: S3) -> Iterator[str]:
    yield s3.new_bucket()


def test_extract_to_s3_round_trips_and_reruns(
    cli: Callable[..., Result], server: Server, radar: str, s3: S3, bucket: str
) -> None:
    env = {**_env(server, radar, RADAR_DEST=f"s3://{bucket}/bronze"), **s3.env}
    result = cli("extract", "--date", "2024-03-01", env=env)
    assert result.code == 0, result.output
    fs = s3fs.S3FileSystem(
        client_kwargs={"endpoint_url": s3.endpoint},
        key="testing",
        secret="testing",
        use_listings_cache=False,
    )
    keys = sorted(fs.find(f"{bucket}/bronze"))
    data = [k for k in keys if "/_radar_extract/" not in k]
    assert data == [
        f"{bucket}/bronze/{PREFIX}/{t}/cog_dt_ingestion=2024-03-01/file_{t}_001.parquet"
        for t in ("empty_table", "no_pk", "product", "store")
    ]
    assert not [k for k in keys if "/staging/" in k or k.endswith(".probe")]
    with fs.open(data[2], "rb") as handle:
        table = pq.read_table(handle)
    assert table.to_pylist() == [
        {"sku": "A-1", "price": __import__("decimal").Decimal("10.50"), "stock": 4294967295},
        {"sku": "B-2", "price": None, "stock": 0},
    ]
    manifest = json.loads(
        fs.cat(f"{bucket}/bronze/_radar_extract/manifests/product/cog_dt_ingestion=2024-03-01.json")
    )
    assert manifest["rows"] == 2 and manifest["files"][0]["rows"] == 2
    # Rerun of one table: same keys, nothing duplicated.
    assert cli("extract", "--table", "product", "--date", "2024-03-01", env=env).code == 0
    assert sorted(k for k in fs.find(f"{bucket}/bronze") if "/_radar_extract/" not in k) == data


def test_s3_missing_bucket_is_unavailable(
    cli: Callable[..., Result], server: Server, radar: str, s3: S3
) -> None:
    env = {**_env(server, radar, RADAR_DEST="s3://no-such-bucket-radar"), **s3.env}
    result = cli("extract", env=env)
    assert result.code == 3, result.output
    assert "no-such-bucket-radar" in result.stderr and "Traceback" not in result.output


def test_json_logs_and_shared_log_file(
    cli: Callable[..., Result], server: Server, radar: str, tmp_path: Path
) -> None:
    """--log-json gives one parseable line per table and per run; worker processes share
    one rotating log file."""
    log_file = tmp_path / "radar.log"
    result = cli(
        "extract",
        "--log-json",
        "--workers",
        "2",
        "--date",
        "2024-03-01",
        env=_env(server, radar, RADAR_DEST=str(tmp_path / "out"), RADAR_LOG_FILE=str(log_file)),
    )
    assert result.code == 0, result.output
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    tables = {e["table"]: e for e in events if e.get("event") == "table"}
    assert sorted(tables) == ["empty_table", "no_pk", "product", "store"]
    assert tables["store"]["rows"] == 3 and tables["store"]["nulled"] == 1
    (run,) = [e for e in events if e.get("event") == "run"]
    assert run["status"] == "success" and run["rows"] == 8 and run["published"] == 4
    logged = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert {e.get("table") for e in logged if e.get("event") == "table"} == set(tables)
    starts = [e for e in logged if e.get("event") == "table_start"]
    assert sorted(e["table"] for e in starts) == sorted(tables)
    assert {e["pid"] for e in starts} - {run["pid"]}  # written by the worker processes
