"""`migrate` end to end: a table's Airbyte-era history rewritten into the exact contract.

The bucket holds, per table, Airbyte partitions of both eras (tests/airbyte.py writes them
from Airbyte's rules), a partition written by `extract --compat airbyte`, and for `store` an
exact one. After `migrate`, every partition's Parquet schema is the stored schema's, every
value DuckDB reads equals a fresh exact `extract` of the same source wherever the counts say
exact, and the counts bracket what differs (known losses differ, nothing else does beyond
the counted ones). A reader that refuses mismatched schemas reads all partitions at once.
`--dry-run` changes no byte; SIGKILL mid-publish and between partitions leaves each
partition old or new, and a rerun finishes; on S3, `catalog sync --update-columns` then
points Glue at the exact types.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests import airbyte
from tests.conftest import ROOT, S3, Result, Server, query
from tests.type_matrix import CASES

pytestmark = pytest.mark.integration
PREFIX = "origin=airbyte/database=bronze_radar"
OLDER, OLD, COMPAT, EXACT, REF, NEXT = (
    "2024-03-31",
    "2024-04-30",
    "2024-05-02",
    "2024-05-03",
    "2024-06-01",
    "2024-06-02",
)
_SKIP = {"float", "double"}  # the text protocol rounds these; own columns below
MATRIX = [c for c in CASES if c.id not in _SKIP]
TABLES = ("store", "store_metrics", "matrix", "drifted")

SOURCE = [*airbyte.STORE_TABLES, *airbyte.DRIFTED_TABLE]
# The 1.x partition of the matrix with other widths readers may hold.
MATRIX_1X = {
    "c_int": pa.int32(),
    "c_bigint": pa.float64(),
    "c_int_unsigned": pa.float64(),
    "c_datetime_6": pa.timestamp("ms", tz="UTC"),
    "c_time_6": pa.time32("ms"),
}


def _matrix_ddl() -> list[str]:
    cols = ", ".join(f"`c_{c.id}` {c.ddl}" for c in MATRIX)
    ddl = f"CREATE TABLE matrix (id INT PRIMARY KEY, {cols}, c_float FLOAT, c_double DOUBLE)"
    depth = max(len(c.values) for c in MATRIX) + 1
    floats, doubles = ["1.5", "1.1", "-2.25"], ["3.5", "0.1", "-1e300"]
    rows = []
    for i in range(depth):
        values = [c.values[i] if i < len(c.values) else "NULL" for c in MATRIX]
        values += [floats[i] if i < 3 else "NULL", doubles[i] if i < 3 else "NULL"]
        rows.append(f"({i + 1}, {', '.join(values)})")
    return [ddl, f"INSERT INTO matrix VALUES {', '.join(rows)}"]


def _run(env: dict[str, str], *args: str, timeout: float = 300) -> Result:
    full = {k: v for k, v in os.environ.items() if not k.startswith("RADAR_")}
    full.update(env)
    done = subprocess.run(
        [sys.executable, "-m", "extractor", *args],
        env=full,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def _ok(result: Result) -> Result:
    assert result.code == 0, result.output
    return result


@pytest.fixture(scope="module")
def world(
    server: Server, make_module_database: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The bucket before any migrate (kept pristine: tests copy it), and a reference."""
    database = make_module_database(*SOURCE, *_matrix_ddl(), sql_mode="")
    root = tmp_path_factory.mktemp("world")
    dest, schemas, ref = root / "bucket", root / "schemas", root / "reference"
    conn = server.connect(database)
    with conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")

    def partition(table: str, date: str, era: str, **kw: Any) -> None:
        airbyte.write_partition(
            conn, table, dest / PREFIX / table / f"cog_dt_ingestion={date}", era, **kw
        )

    partition("store", OLDER, "1.x")
    partition("store", OLD, "legacy")
    partition("store_metrics", OLD, "1.x")
    partition("matrix", OLDER, "legacy")
    partition("matrix", OLD, "1.x", overrides=MATRIX_1X)
    partition("drifted", OLD, "legacy")
    with conn.cursor() as cur:  # drifted since Airbyte's last sync
        cur.execute("ALTER TABLE drifted DROP COLUMN old_col, ADD COLUMN new_col INT")
        cur.execute("UPDATE drifted SET new_col = id * 100")
    env = {
        "RADAR_MYSQL_URL": server.url(database),
        "RADAR_DEST": str(dest),
        "RADAR_SCHEMAS_DIR": str(schemas),
        "RADAR_WORKERS": "2",
    }
    config = root / "radar.toml"
    config.write_text('[drift.tables.drifted]\ncolumn_removed = "warn"\n', encoding="utf-8")
    _ok(_run(env, "compat", "inspect", "--save"))
    _ok(_run(env, "extract", "--date", COMPAT, "--compat", "airbyte", "--config", str(config)))
    _ok(_run(env, "extract", "--date", EXACT, "--table", "store"))
    _ok(_run(env, "schemas", "snapshot"))
    _ok(_run({**env, "RADAR_DEST": str(ref)}, "extract", "--date", REF))
    return {
        "database": database,
        "env": env,
        "dest": dest,
        "schemas": schemas,
        "ref": ref,
        "conn": conn,
        "config": config,
    }


@pytest.fixture
def bucket(world: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """A fresh copy of the world's bucket and schemas for one test."""
    dest, schemas = tmp_path / "bucket", tmp_path / "schemas"
    shutil.copytree(world["dest"], dest)
    shutil.copytree(world["schemas"], schemas)
    env = {
        **world["env"],
        "RADAR_DEST": str(dest),
        "RADAR_SCHEMAS_DIR": str(schemas),
        "RADAR_LOCK_LEASE_S": "2",
        "RADAR_LOCK_WAIT_S": "30",
    }
    return {**world, "dest": dest, "schemas": schemas, "env": env}


def _data(dest: Path, table: str, date: str) -> Path:
    return dest / PREFIX / table / f"cog_dt_ingestion={date}"


def _manifest(dest: Path, table: str, date: str) -> dict[str, Any] | None:
    path = dest / "_radar_extract" / "manifests" / table / f"cog_dt_ingestion={date}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _dates(dest: Path, table: str) -> list[str]:
    return sorted(p.name.split("=", 1)[1] for p in (dest / PREFIX / table).iterdir())


def _stored_schema(world: dict[str, Any], table: str) -> list[tuple[str, str]]:
    path = world["schemas"] / world["database"] / f"{table}.json"
    return [(c["name"], c["arrow_type"]) for c in json.loads(path.read_text())["columns"]]


def _schema(path: Path) -> list[tuple[str, str]]:
    return [(f.name, str(f.type)) for f in pq.read_schema(path)]


def _bytes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _migrate(env: dict[str, str], *args: str) -> tuple[Result, list[dict[str, Any]]]:
    result = _run(env, "migrate", *(a for t in TABLES for a in ("--table", t)), "--json", *args)
    return result, json.loads(result.stdout) if result.stdout.startswith("[") else []


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _differences(new: Path, ref: Path, columns: list[str]) -> dict[str, int]:
    """Per column, the rows whose value differs from the reference (joined on id)."""
    counts = ", ".join(
        f"count(*) FILTER (WHERE a.{_quoted(c)} IS DISTINCT FROM b.{_quoted(c)})" for c in columns
    )
    row = query(
        f"SELECT count(*), {counts} FROM read_parquet('{new}/*.parquet') a "
        f"FULL JOIN read_parquet('{ref}/*.parquet') b USING (id)"
    ).fetchall()[0]
    assert row is not None
    return dict(zip(["(rows)", *columns], row, strict=True))


def _by_partition(reports: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["table"], p["date"]): p for r in reports for p in r["partitions"]}


# What differs from the source where the old files lost it, and is counted so.
DIFFER = {
    ("store", OLD, "active"): 1,
    ("store", OLDER, "active"): 1,
    ("store", COMPAT, "active"): 1,
    ("store", OLD, "big_revenue"): 1,
    ("store", COMPAT, "big_revenue"): 1,
    ("store_metrics", OLD, "big"): 1,
    ("store_metrics", OLD, "at"): 1,
    ("store_metrics", COMPAT, "big"): 1,
    ("store_metrics", COMPAT, "at"): 1,
    ("drifted", OLD, "new_col"): 2,
    ("matrix", OLDER, "c_tinyint_1"): 3,
    ("matrix", OLDER, "c_time"): 2,
    ("matrix", OLD, "c_datetime_6"): 2,
    ("matrix", OLD, "c_bigint"): 1,
    ("matrix", COMPAT, "c_decimal_30_20"): 1,
}


def _check_values(bucket: dict[str, Any], reports: list[dict[str, Any]]) -> None:
    """Every rewritten partition against the reference, column by column: what the counts
    say is exact equals the source (nothing differs beyond the counted cells), and the
    losses known here differ as counted."""
    for (table, date), part in _by_partition(reports).items():
        if part["status"] != "migrated":
            continue
        columns = {c["name"]: c for c in part["columns"]}
        differ = _differences(
            _data(bucket["dest"], table, date), _data(bucket["ref"], table, REF), list(columns)
        )
        rows = differ.pop("(rows)")
        assert rows == part["rows"], (table, date)
        for name, count in differ.items():
            c = columns[name]["counts"]
            assert count <= c["rows"] - c["exact"] - c["nulled"], (table, date, name, count, c)
            if (table, date, name) in DIFFER:
                assert count == DIFFER[(table, date, name)], (table, date, name, c)


def test_dry_run_writes_nothing_and_says_what_would_be_exact(bucket: dict[str, Any]) -> None:
    # Before: a reader that refuses mismatched columns fails on the mixed history.
    with pytest.raises(duckdb.Error, match="schema mismatch"):
        query(
            f"SELECT * FROM read_parquet('{bucket['dest'] / PREFIX}/store/*/*."
            "parquet', union_by_name=false)"
        ).fetchall()
    before = {**_bytes(bucket["dest"]), **_bytes(bucket["schemas"])}
    result, reports = _migrate(bucket["env"], "--dry-run")
    assert result.code == 0, result.output
    assert {**_bytes(bucket["dest"]), **_bytes(bucket["schemas"])} == before
    parts = _by_partition(reports)
    assert parts[("store", EXACT)]["status"] == "skipped"
    assert {k: p["status"] for k, p in parts.items() if k != ("store", EXACT)} == dict.fromkeys(
        [k for k in parts if k != ("store", EXACT)], "would_migrate"
    )
    store = {c["name"]: c for c in parts[("store", OLD)]["columns"]}
    assert (store["active"]["conversion"], store["active"]["counts"]["possibly_lost"]) == (
        "possibly_lost",
        2,
    )  # 1 and 2 were both true
    assert store["revenue"]["conversion"] == "exact"
    assert store["big_revenue"]["counts"]["not_guaranteed"] == 1
    assert (store["store name"]["old"], store["2nd score"]["old"], store["preço"]["old"]) == (
        "store_name",
        "_2nd_score",
        "preco",
    )
    compat = {c["name"]: c for c in parts[("store", COMPAT)]["columns"]}
    # The compatible write counted what it changed: 2 became true, one decimal rounded.
    assert {n: c["counts"]["lost"] for n, c in compat.items() if c["counts"]["lost"]} == {
        "active": 1,
        "big_revenue": 1,
    }
    metrics = {c["name"]: c for c in parts[("store_metrics", OLD)]["columns"]}
    # 1.x recorded the values it NULLed: the unsigned beyond a long, the TIME beyond a day.
    assert (metrics["big"]["counts"]["lost"], metrics["at"]["counts"]["lost"]) == (1, 1)
    assert metrics["big"]["counts"]["possibly_lost"] == 0
    drifted = parts[("drifted", OLD)]
    assert drifted["dropped"] == ["old_col"]
    assert {c["name"]: c["counts"]["absent"] for c in drifted["columns"]}["new_col"] == 2
    assert "would rewrite" in _run(bucket["env"], "migrate", "--table", "store", "--dry-run").stdout


def test_migrate_makes_every_partition_exact(bucket: dict[str, Any]) -> None:
    dest = bucket["dest"]
    result, reports = _migrate(bucket["env"])
    assert result.code == 0, result.output
    parts = _by_partition(reports)
    assert parts[("store", EXACT)]["status"] == "skipped"
    for table in TABLES:
        stored = _stored_schema(bucket, table)
        for date in _dates(dest, table):
            files = sorted(_data(dest, table, date).glob("*.parquet"))
            manifest = _manifest(dest, table, date)
            assert manifest is not None and "compat" not in manifest
            assert sorted(f.name for f in files) == sorted(f["key"] for f in manifest["files"])
            for path in files:
                assert _schema(path) == stored, (table, date, path.name)
            if date != EXACT:
                migrated = manifest["migrated"]
                assert migrated["migration_id"] == reports[0]["migration_id"]
                assert migrated["from"] == ("compat" if date == COMPAT else "airbyte")
        # A reader that refuses mismatched column sets (DuckDB without union_by_name, as
        # Athena) reads every partition at once; it casts types, so the footers are compared
        # above, column by column.
        rows = query(
            f"SELECT * FROM read_parquet('{dest / PREFIX / table}/*/*."
            "parquet', union_by_name=false)"
        ).fetchall()  # every column read
        assert len(rows) == sum(p["rows"] for (t, _), p in parts.items() if t == table) + (
            3 if table == "store" else 0
        )  # store's exact partition was skipped
    _check_values(bucket, reports)
    lines = _run(bucket["env"], "validate", "--date", OLD).stdout
    assert "validation of cog_dt_ingestion=2024-04-30: 4 tables, 0 invalid: valid" in lines
    # Recorded: a report per table, the switch, and the output schemas gone (to commit).
    for report in reports:
        assert report["exact"] and report["status"] == "success"
        folder = dest / "_radar_extract" / "migrations" / report["table"]
        assert (folder / f"{report['migration_id']}.json").is_file()
        assert (folder / "exact.json").is_file()
        assert report["output_schema"].startswith("removed ")
    assert not list((bucket["schemas"] / bucket["database"] / "output").glob("*.json"))
    # A rerun finds nothing to do and changes no partition.
    data = _bytes(dest / PREFIX)
    again, second = _migrate(bucket["env"])
    assert again.code == 0 and all(
        p["status"] == "skipped" for r in second for p in r["partitions"]
    )
    assert _bytes(dest / PREFIX) == data


def test_the_next_extract_writes_exact_even_with_the_output_schema_back(
    bucket: dict[str, Any],
) -> None:
    output = bucket["schemas"] / bucket["database"] / "output"
    kept = {p.name: p.read_bytes() for p in output.glob("*.json")}
    _ok(_migrate(bucket["env"])[0])
    for name, text in kept.items():  # the deletion is not committed yet: the nightly has them
        (output / name).write_bytes(text)
    done = _ok(
        _run(
            bucket["env"],
            "extract",
            "--date",
            NEXT,
            "--compat",
            "airbyte",
            "--config",
            str(bucket["config"]),
        )
    )
    assert "written exact, not in its output schema" in done.stderr
    for table in TABLES:
        for path in _data(bucket["dest"], table, NEXT).glob("*.parquet"):
            assert _schema(path) == _stored_schema(bucket, table)
        assert "compat" not in (_manifest(bucket["dest"], table, NEXT) or {"compat": 1})


def test_a_range_migrates_only_its_dates_and_keeps_the_switch_off(bucket: dict[str, Any]) -> None:
    result = _ok(
        _run(bucket["env"], "migrate", "--table", "store", "--from", OLD, "--to", OLD, "--json")
    )
    (report,) = json.loads(result.stdout)
    assert [p["date"] for p in report["partitions"]] == [OLD]
    assert not report["exact"] and "not exact yet" in " ".join(report["notes"])
    assert (bucket["schemas"] / bucket["database"] / "output" / "store.json").is_file()
    assert _manifest(bucket["dest"], "store", OLDER) is None  # still Airbyte's
    assert _schema(next(_data(bucket["dest"], "store", OLD).glob("*.parquet"))) == _stored_schema(
        bucket, "store"
    )


# -- SIGKILL ------------------------------------------------------------------------------------
def _start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("RADAR_")}
    full.update(env)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "extractor",
            "migrate",
            "--table",
            "store",
            "--table",
            "matrix",
            *args,
        ],
        env=full,
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.02)


def _old_or_new(bucket: dict[str, Any], pristine: Path) -> dict[tuple[str, str], str]:
    """Each partition is entirely old (byte-identical to before, or its files matching the
    manifest it had) or entirely new (the stored schema, its files matching its manifest)."""
    states = {}
    for table in ("store", "matrix"):
        stored = _stored_schema(bucket, table)
        for date in _dates(pristine, table):
            files = sorted(_data(bucket["dest"], table, date).glob("*.parquet"))
            manifest = _manifest(bucket["dest"], table, date)
            schemas = {tuple(_schema(f)) for f in files}
            assert len(schemas) == 1, (table, date, schemas)
            names = sorted(f.name for f in files)
            if schemas == {tuple(stored)}:
                assert manifest is not None and "compat" not in manifest
                assert names == sorted(f["key"] for f in manifest["files"])
                states[(table, date)] = "new"
                continue
            before = _data(pristine, table, date)
            assert _bytes(_data(bucket["dest"], table, date)) == _bytes(before), (table, date)
            assert manifest == _manifest(pristine, table, date)
            states[(table, date)] = "old"
    return states


def test_sigkill_in_the_publish_leaves_each_partition_old_or_new(
    bucket: dict[str, Any], world: dict[str, Any], tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    proc = _start({**bucket["env"], "RADAR_TEST_HOLD_PUBLISH": str(gate)})
    try:
        _wait(lambda: Path(f"{gate}.held").exists() or proc.poll() is not None)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    states = _old_or_new(bucket, world["dest"])
    # Held before its first key changed: as before, where only store's newest was exact.
    assert states == {k: "new" if k == ("store", EXACT) else "old" for k in states}
    journals = list((bucket["dest"] / "_radar_extract" / "journal").rglob("*.json"))
    assert len(journals) == 1  # the verified staged files, for the next run to finish
    result, reports = _migrate(bucket["env"])  # the lock's lease (2 s) runs out first
    assert result.code == 0, result.output
    assert set(_old_or_new(bucket, world["dest"]).values()) == {"new"}
    assert not list((bucket["dest"] / "_radar_extract" / "journal").rglob("*.json"))
    assert not list((bucket["dest"] / "_radar_extract" / "staging").rglob("*.parquet"))
    _check_values(bucket, reports)


def test_sigkill_between_partitions_and_a_rerun_finishes(
    bucket: dict[str, Any], world: dict[str, Any]
) -> None:
    from extractor.config import load_settings
    from extractor.sink.destination import Destination
    from extractor.sink.lock import TableLock

    # This test holds the lock of matrix's last partition: migrate does store's, then waits.
    settings = load_settings(env={"RADAR_DEST": str(bucket["dest"])})
    lock = TableLock(Destination(settings), "matrix", COMPAT, "the-test", lease_s=120)
    lock.acquire(0)
    proc = _start({**bucket["env"], "RADAR_LOCK_WAIT_S": "120"})
    try:
        _wait(
            lambda: _manifest(bucket["dest"], "matrix", OLD) is not None or proc.poll() is not None
        )
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        lock.release()
    states = _old_or_new(bucket, world["dest"])
    assert states[("matrix", COMPAT)] == "old"
    assert states[("store", OLD)] == states[("matrix", OLD)] == "new"
    # store was done before the kill: its partitions already read as one schema.
    query(
        f"SELECT * FROM read_parquet('{bucket['dest'] / PREFIX}/store/*/*."
        "parquet', union_by_name=false)"
    ).fetchall()
    result, reports = _migrate(bucket["env"])
    assert result.code == 0, result.output
    parts = _by_partition(reports)
    assert parts[("store", OLD)]["status"] == "skipped"
    assert parts[("matrix", COMPAT)]["status"] == "migrated"
    assert set(_old_or_new(bucket, world["dest"]).values()) == {"new"}
    _check_values(bucket, reports)


# -- on S3, then Glue ----------------------------------------------------------------------------
def test_on_s3_then_catalog_sync_points_glue_at_the_exact_types(
    world: dict[str, Any], s3: S3, tmp_path: Path
) -> None:
    import boto3
    import s3fs

    schemas = tmp_path / "schemas"
    shutil.copytree(world["schemas"], schemas)

    bucket = s3.new_bucket()
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3.endpoint})
    for date in (OLDER, OLD):
        for path in _data(world["dest"], "store", date).glob("*.parquet"):
            fs.put_file(str(path), f"{bucket}/{PREFIX}/store/cog_dt_ingestion={date}/{path.name}")
    glue = boto3.client(
        "glue",
        endpoint_url=s3.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    glue_db = f"bronze_{bucket[-8:]}"
    glue.create_database(DatabaseInput={"Name": glue_db})
    crawled = [
        {"Name": f.name, "Type": t}
        for f, t in zip(
            pq.read_schema(next(_data(world["dest"], "store", OLD).glob("*.parquet"))),
            [
                "string",
                "timestamp",
                "bigint",
                "string",
                "boolean",
                "double",
                "double",
                "struct<member0:date,member1:string>",
                "struct<member0:timestamp,member1:string>",
                "struct<member0:timestamp,member1:string>",
                "bigint",
                "string",
                "map<string,string>",
            ],
            strict=True,
        )
    ]
    sd = {
        "Columns": crawled,
        "Location": f"s3://{bucket}/{PREFIX}/store/",
        "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        "SerdeInfo": {
            "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
        },
    }
    glue.create_table(
        DatabaseName=glue_db,
        TableInput={
            "Name": "store",
            "TableType": "EXTERNAL_TABLE",
            "StorageDescriptor": sd,
            "PartitionKeys": [{"Name": "cog_dt_ingestion", "Type": "string"}],
        },
    )
    for date in (OLDER, OLD):
        glue.create_partition(
            DatabaseName=glue_db,
            TableName="store",
            PartitionInput={
                "Values": [date],
                "StorageDescriptor": {
                    **sd,
                    "Location": f"s3://{bucket}/{PREFIX}/store/cog_dt_ingestion={date}/",
                },
            },
        )
    env = {
        **world["env"],
        "RADAR_DEST": f"s3://{bucket}",
        "RADAR_SCHEMAS_DIR": str(schemas),
        **s3.env,
        "AWS_ENDPOINT_URL": s3.endpoint,
        "RADAR_GLUE_DATABASE": glue_db,
    }
    result = _ok(_run(env, "migrate", "--table", "store", "--json"))
    (report,) = json.loads(result.stdout)
    assert [p["status"] for p in report["partitions"]] == ["migrated", "migrated"]
    assert report["exact"] and not (schemas / world["database"] / "output" / "store.json").exists()
    mirror = tmp_path / "mirror"
    for date in (OLDER, OLD):
        (key,) = fs.ls(f"{bucket}/{PREFIX}/store/cog_dt_ingestion={date}")
        copy = _data(mirror, "store", date) / posixpath.basename(key)
        copy.parent.mkdir(parents=True)
        fs.get_file(key, str(copy))
        assert _schema(copy) == _stored_schema(world, "store")
    _check_values({"dest": mirror, "ref": world["ref"]}, [report])
    assert not fs.find(f"{bucket}/_radar_extract/staging")
    # Written as extract writes on S3: multipart uploads to the final keys, all completed.
    client = boto3.client(
        "s3",
        endpoint_url=s3.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    manifest = json.loads(
        fs.cat_file(f"{bucket}/_radar_extract/manifests/store/cog_dt_ingestion={OLD}.json")
    )
    assert manifest["migrated"]["from"] == "airbyte" and manifest["files"] == [
        {"key": posixpath.basename(k), "rows": 3, "bytes": fs.size(k)}
        for k in fs.ls(f"{bucket}/{PREFIX}/store/cog_dt_ingestion={OLD}")
    ]
    synced = _ok(
        _run(env, "catalog", "sync", "--date", OLD, "--table", "store", "--update-columns")
    )
    assert "columns updated" in synced.stdout
    table = glue.get_table(DatabaseName=glue_db, Name="store")["Table"]
    columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
    assert columns[:4] == [
        ("id", "int"),
        ("store name", "string"),
        ("active", "tinyint"),
        ("revenue", "decimal(14,2)"),
    ]
    for partition in glue.get_partitions(DatabaseName=glue_db, TableName="store")["Partitions"]:
        assert [
            (c["Name"], c["Type"]) for c in partition["StorageDescriptor"]["Columns"]
        ] == columns  # every partition, the older one too: no mixed schemas in Athena


def test_a_destination_without_the_table_switches_nothing(
    bucket: dict[str, Any], tmp_path: Path
) -> None:
    # A mistyped --dest finds no partition: that is no history made exact.
    result = _ok(
        _run(
            bucket["env"],
            "migrate",
            "--table",
            "store",
            "--json",
            "--dest",
            str(tmp_path / "elsewhere"),
        )
    )
    (report,) = json.loads(result.stdout)
    assert report["partitions"] == [] and not report["exact"]
    assert "nothing switched" in " ".join(report["notes"])
    assert (bucket["schemas"] / bucket["database"] / "output" / "store.json").is_file()
    assert not (
        tmp_path / "elsewhere" / "_radar_extract" / "migrations" / "store" / "exact.json"
    ).exists()


def test_on_s3_a_kill_in_the_publish_leaves_its_uploads_to_the_next_run(
    world: dict[str, Any], s3: S3, tmp_path: Path
) -> None:
    import boto3
    import s3fs

    schemas = tmp_path / "schemas"
    shutil.copytree(world["schemas"], schemas)
    bucket = s3.new_bucket()
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3.endpoint})
    old = {}
    for path in _data(world["dest"], "store", OLD).glob("*.parquet"):
        key = f"{bucket}/{PREFIX}/store/cog_dt_ingestion={OLD}/{path.name}"
        fs.put_file(str(path), key)
        old[key] = path.read_bytes()
    client = boto3.client(
        "s3",
        endpoint_url=s3.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    env = {
        **world["env"],
        "RADAR_DEST": f"s3://{bucket}",
        "RADAR_SCHEMAS_DIR": str(schemas),
        **s3.env,
        "AWS_ENDPOINT_URL": s3.endpoint,
        "RADAR_LOCK_LEASE_S": "2",
    }
    gate = tmp_path / "gate"
    full = {k: v for k, v in os.environ.items() if not k.startswith("RADAR_")}
    full.update({**env, "RADAR_TEST_HOLD_PUBLISH": str(gate)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "extractor", "migrate", "--table", "store"],
        env=full,
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait(lambda: Path(f"{gate}.held").exists() or proc.poll() is not None)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # Journaled, not completed: the old files are still what readers see.
    journal = f"{bucket}/_radar_extract/journal/store/cog_dt_ingestion={OLD}.json"
    assert json.loads(fs.cat_file(journal))["uploads"]
    assert {k: fs.cat_file(k) for k in fs.ls(os.path.dirname(next(iter(old))))} == old
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    result = _ok(_run(env, "migrate", "--table", "store", "--json"))  # after the lease
    (report,) = json.loads(result.stdout)
    # The killed run's publish is rolled forward under the lock: then the partition is exact.
    assert [p["status"] for p in report["partitions"]] == ["skipped"] and report["exact"]
    manifest = json.loads(
        fs.cat_file(f"{bucket}/_radar_extract/manifests/store/cog_dt_ingestion={OLD}.json")
    )
    assert manifest["migrated"]["from"] == "airbyte"
    assert manifest["migrated"]["migration_id"] != report["migration_id"]
    assert not fs.exists(journal)
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    (key,) = fs.ls(f"{bucket}/{PREFIX}/store/cog_dt_ingestion={OLD}")
    mirror = _data(tmp_path / "mirror", "store", OLD) / posixpath.basename(key)
    mirror.parent.mkdir(parents=True)
    fs.get_file(key, str(mirror))
    assert _schema(mirror) == _stored_schema(world, "store")
