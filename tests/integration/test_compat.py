"""The cut-over from Airbyte: `compat inspect` and `extract --compat airbyte`, end to end.

A bucket holds Airbyte partitions (tests/airbyte.py writes them from Airbyte's rules) of
demo-like tables and of the type matrix, in both eras, next to a table Airbyte never wrote
and one whose MySQL schema drifted since. The new partitions' Parquet schema must equal the
old ones' field by field (nullability aside), and DuckDB must read in them, for every
source value, what Airbyte's rules give, with every changed value counted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests import airbyte
from tests.conftest import ROOT, S3, Result, Server, query
from tests.type_matrix import CASES

pytestmark = pytest.mark.integration
PREFIX = "origin=airbyte/database=bronze_radar"
OLD, OLDER, OURS, NEW = "2024-04-30", "2024-03-31", "2024-05-02", "2024-05-03"
_SKIP = {"float", "double"}  # the text protocol rounds these; own columns below
MATRIX = [c for c in CASES if c.id not in _SKIP]

TABLES = [
    *airbyte.STORE_TABLES,
    "CREATE TABLE region (id INT PRIMARY KEY, name VARCHAR(20))",
    "INSERT INTO region VALUES (1, 'Sul'), (2, 'Norte')",
    *airbyte.DRIFTED_TABLE,
]


def _matrix_ddl(table: str) -> list[str]:
    cols = ", ".join(f"`c_{c.id}` {c.ddl}" for c in MATRIX)
    ddl = f"CREATE TABLE {table} (id INT PRIMARY KEY, {cols}, c_float FLOAT, c_double DOUBLE)"
    depth = max(len(c.values) for c in MATRIX) + 1
    floats, doubles = ["1.5", "1.1", "-2.25"], ["3.5", "0.1", "-1e300"]
    rows = []
    for i in range(depth):
        values = [c.values[i] if i < len(c.values) else "NULL" for c in MATRIX]
        values += [floats[i] if i < 3 else "NULL", doubles[i] if i < 3 else "NULL"]
        rows.append(f"({i + 1}, {', '.join(values)})")
    return [ddl, f"INSERT INTO {table} VALUES {', '.join(rows)}"]


# The 1.x partition of the matrix with other widths readers may have: integers as INT32 or
# DOUBLE, a timestamp and a time in milliseconds.
MATRIX_1X = {
    "c_int": pa.int32(),
    "c_bigint": pa.float64(),
    "c_int_unsigned": pa.float64(),
    "c_datetime_6": pa.timestamp("ms", tz="UTC"),
    "c_time_6": pa.time32("ms"),
}


@pytest.fixture(scope="module")
def world(
    server: Server, make_module_database: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    statements = TABLES + _matrix_ddl("matrix_legacy") + _matrix_ddl("matrix_1x")
    database = make_module_database(*statements, sql_mode="")
    dest = tmp_path_factory.mktemp("bucket")
    conn = server.connect(database)
    old: dict[str, Path] = {}

    def partition(table: str, date: str, era: str, **kw: Any) -> Path:
        folder = dest / PREFIX / table / f"cog_dt_ingestion={date}"
        path, _ = airbyte.write_partition(conn, table, folder, era, **kw)
        return path

    with conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
    # An older partition of another shape: only the newest one counts.
    partition("store", OLDER, "1.x")
    old["store"] = partition("store", OLD, "legacy")
    old["store_metrics"] = partition("store_metrics", OLD, "1.x")
    old["matrix_legacy"] = partition("matrix_legacy", OLD, "legacy")
    old["matrix_1x"] = partition("matrix_1x", OLD, "1.x", overrides=MATRIX_1X)
    old["drifted"] = partition("drifted", OLD, "legacy")
    with conn.cursor() as cur:  # drifted since Airbyte's last sync
        cur.execute("ALTER TABLE drifted DROP COLUMN old_col, ADD COLUMN new_col INT")
        cur.execute("UPDATE drifted SET new_col = id * 100")
    return {
        "database": database,
        "dest": dest,
        "conn": conn,
        "old": old,
        "schemas": tmp_path_factory.mktemp("schemas"),
        "url": server.url(database),
    }


def _env(world: dict[str, Any], **extra: str) -> dict[str, str]:
    return {
        "RADAR_MYSQL_URL": world["url"],
        "RADAR_DEST": str(world["dest"]),
        "RADAR_SCHEMAS_DIR": str(world["schemas"]),
        "RADAR_WORKERS": "2",
        **extra,
    }


def _inspect(cli: Any, world: dict[str, Any], *args: str) -> list[dict[str, Any]]:
    result = cli("compat", "inspect", "--json", *args, env=_env(world))
    assert result.code == 0, result.output
    return list(json.loads(result.stdout))


def _columns(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["columns"]}


def test_inspect_finds_eras_and_types(cli: Any, world: dict[str, Any]) -> None:
    # A partition of ours (with its manifest), newer than Airbyte's: inspect looks past it.
    done = cli("extract", "--table", "store", "--date", OURS, env=_env(world))
    assert done.code == 0, done.output
    reports = {r["table"]: r for r in _inspect(cli, world)}
    assert {t: r["status"] for t, r in reports.items()} == {
        "drifted": "airbyte",
        "matrix_1x": "airbyte",
        "matrix_legacy": "airbyte",
        "region": "exact",
        "store": "airbyte",
        "store_metrics": "airbyte",
    }
    store = reports["store"]
    assert (store["era"], store["partition"]) == ("legacy", OLD)
    cols = _columns(store)
    assert list(cols)[:2] == ["_airbyte_ab_id", "_airbyte_emitted_at"]
    assert list(cols)[-1] == "_airbyte_additional_properties"
    assert cols["_airbyte_emitted_at"]["expected"] == "timestamp[ms, tz=UTC]"
    assert cols["store_name"]["source"] == "store name"
    assert cols["_2nd_score"]["source"] == "2nd score"
    assert cols["preco"]["source"] == "preço"
    expect = {
        "active": ("bool", "lossy"),
        "revenue": ("double", "lossless"),
        "big_revenue": ("double", "lossy"),
        "opened": ("struct<member0: date32[day], member1: string>", "lossless"),
        "updated_at": ("struct<member0: timestamp[us, tz=UTC], member1: string>", "lossless"),
        "created_at": ("struct<member0: timestamp[us, tz=UTC], member1: string>", "lossless"),
        "_2nd_score": ("int64", "lossless"),
        "id": ("int64", "lossless"),
        "preco": ("string", "identical"),
    }
    assert {k: (cols[k]["expected"], cols[k]["write"]) for k in expect} == expect
    assert cols["updated_at"]["parquet"] == (
        "member0: INT64 Timestamp(microseconds, True); member1: BYTE_ARRAY String"
    )
    assert "0 and 1" in cols["active"]["counted"]
    metrics = reports["store_metrics"]
    assert metrics["era"] == "1.x"
    mcols = _columns(metrics)
    assert list(mcols)[:4] == [
        "_airbyte_raw_id",
        "_airbyte_extracted_at",
        "_airbyte_meta",
        "_airbyte_generation_id",
    ]
    assert mcols["_airbyte_meta"]["expected"].startswith("struct<sync_id: int64 not null")
    assert (mcols["big"]["expected"], mcols["big"]["write"]) == ("int64", "lossy")
    assert (mcols["at"]["expected"], mcols["at"]["write"]) == ("time64[us]", "lossy")
    assert (mcols["flags"]["write"], mcols["doc"]["write"]) == ("lossless", "identical")


def test_inspect_type_matrix(cli: Any, world: dict[str, Any]) -> None:
    reports = {
        r["table"]: r
        for r in _inspect(cli, world, "--table", "matrix_legacy", "--table", "matrix_1x")
    }
    legacy, modern = _columns(reports["matrix_legacy"]), _columns(reports["matrix_1x"])
    old_legacy = pq.read_schema(world["old"]["matrix_legacy"])
    old_1x = pq.read_schema(world["old"]["matrix_1x"])
    for case in MATRIX:
        name = f"c_{case.id}"
        assert legacy[name]["expected"] == str(old_legacy.field(name).type), name
        assert modern[name]["expected"] == str(old_1x.field(name).type), name
        assert legacy[name]["contract"] == str(case.arrow), name
    writes = {
        n: (legacy[n]["write"], modern[n]["write"])
        for n in (
            "c_tinyint_1",
            "c_bigint_unsigned",
            "c_bit_1",
            "c_bit_64",
            "c_decimal_5_2",
            "c_decimal_38_0",
            "c_decimal_65_30",
            "c_date",
            "c_datetime_6",
            "c_time",
            "c_time_6",
            "c_year",
            "c_geometry",
            "c_blob",
            "c_json",
            "c_int",
            "c_bigint",
            "c_float",
        )
    }
    assert writes == {
        "c_tinyint_1": ("lossy", "lossy"),
        "c_bigint_unsigned": ("lossy", "lossy"),
        "c_bit_1": ("identical", "identical"),
        "c_bit_64": ("lossless", "lossless"),
        "c_decimal_5_2": ("lossless", "lossless"),
        "c_decimal_38_0": ("lossy", "lossy"),
        "c_decimal_65_30": ("lossy", "lossy"),
        "c_date": ("lossless", "identical"),
        "c_datetime_6": ("lossless", "lossy"),
        "c_time": ("lossy", "lossy"),
        "c_time_6": ("lossy", "lossy"),
        "c_year": ("lossless", "lossless"),
        "c_geometry": ("lossy", "lossy"),
        "c_blob": ("lossless", "lossless"),
        "c_json": ("identical", "identical"),
        "c_int": ("lossless", "identical"),
        "c_bigint": ("identical", "lossy"),
        "c_float": ("lossless", "lossless"),
    }


def test_save_is_byte_stable_and_nothing_changes_without_it(
    cli: Any, world: dict[str, Any], tmp_path: Path
) -> None:
    env = _env(world, RADAR_SCHEMAS_DIR=str(tmp_path))
    assert cli("compat", "inspect", env=env).code == 0
    assert not any(tmp_path.rglob("*"))
    first = cli("compat", "inspect", "--save", env=env)
    assert first.code == 0, first.output
    files = sorted(tmp_path.rglob("*.json"))
    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        f"{world['database']}/output/{t}.json"
        for t in ("drifted", "matrix_1x", "matrix_legacy", "store", "store_metrics")
    ]
    before = {f: f.read_bytes() for f in files}
    second = cli("compat", "inspect", "--save", env=env)
    assert "output schema unchanged" in second.stdout and "saved" not in second.stdout
    assert {f: f.read_bytes() for f in files} == before
    stored = json.loads(before[files[3]])
    assert (stored["format"], stored["era"], stored["found"]["partition"]) == (1, "legacy", OLD)
    assert [c["name"] for c in stored["columns"]] == pq.read_schema(world["old"]["store"]).names


def _leaves(path: Path) -> list[tuple[str, str, str]]:
    schema = pq.ParquetFile(path).schema
    return [
        (
            schema.column(i).path,
            schema.column(i).physical_type,
            schema.column(i).logical_type.to_json(),
        )
        for i in range(len(schema))
    ]


def _same_shape(new: Path, old: Path) -> None:
    a, b = pq.read_schema(new), pq.read_schema(old)
    assert a.names == b.names
    for x, y in zip(a, b, strict=True):  # nullability aside
        assert x.type == y.type, (x, y)
    assert _leaves(new) == _leaves(old)


@pytest.fixture(scope="module")
def compat_run(world: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Any:

    env = {k: v for k, v in os.environ.items() if not k.startswith("RADAR_")}
    env.update(_env(world))
    base = [sys.executable, "-m", "extractor"]
    subprocess.run(
        [*base, "compat", "inspect", "--save"], env=env, cwd=ROOT, check=True, capture_output=True
    )
    report = tmp_path_factory.mktemp("report") / "run.json"
    config = tmp_path_factory.mktemp("config") / "radar.toml"
    config.write_text('[drift.tables.drifted]\ncolumn_removed = "warn"\n', encoding="utf-8")
    done = subprocess.run(
        [
            *base,
            "extract",
            "--date",
            NEW,
            "--compat",
            "airbyte",
            "--report",
            str(report),
            "--config",
            str(config),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    data = json.loads(report.read_text(encoding="utf-8"))
    return Result(done.returncode, done.stdout, done.stderr), {
        t["table"]: t for t in data["tables"]
    }


def _new_file(world: dict[str, Any], table: str) -> Path:
    dest: Path = world["dest"]
    return dest / PREFIX / table / f"cog_dt_ingestion={NEW}" / f"file_{table}_001.parquet"


def _manifest(world: dict[str, Any], table: str) -> dict[str, Any]:
    path = world["dest"] / "_radar_extract" / "manifests" / table / f"cog_dt_ingestion={NEW}.json"
    return dict(json.loads(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("table", ["store", "store_metrics", "matrix_legacy", "matrix_1x"])
def test_compatible_write_equals_old_shape_and_airbyte_values(
    world: dict[str, Any], compat_run: Any, table: str
) -> None:
    result, tables = compat_run
    assert result.code == 0, result.output
    new, old = _new_file(world, table), world["old"][table]
    _same_shape(new, old)
    schema = pq.read_schema(old)
    want = airbyte.expected(world["conn"], table, schema)
    got = query(f"SELECT * FROM read_parquet('{new}') ORDER BY id").to_arrow_table()
    for name, (values, _) in want.items():
        assert got.column(name).to_pylist() == values, name
    counted = {n: c for n, (_, c) in want.items() if c}
    assert tables[table]["converted"] == counted
    assert _manifest(world, table)["compat"]["converted"] == counted
    changed = ", ".join(f"{c}={n}" for c, n in sorted(counted.items())) or "none"
    assert (
        f"{table}: written in its Airbyte output schema ({schema_era(schema)}); "
        f"values changed: {changed}"
    ) in result.stderr
    _metadata(got, schema, want)


def schema_era(schema: pa.Schema) -> str:
    return "legacy" if "_airbyte_ab_id" in schema.names else "1.x"


def _metadata(got: pa.Table, schema: pa.Schema, want: dict[str, tuple[list[Any], int]]) -> None:
    ids = got.column(
        "_airbyte_ab_id" if "_airbyte_ab_id" in schema.names else "_airbyte_raw_id"
    ).to_pylist()
    assert len(set(ids)) == len(ids) and all(uuid.UUID(i).version == 4 for i in ids)
    if "_airbyte_emitted_at" in schema.names:
        stamps = set(got.column("_airbyte_emitted_at").to_pylist())
        assert len(stamps) == 1 and next(iter(stamps)).microsecond == 0  # the run's start
        assert got.column("_airbyte_additional_properties").null_count == got.num_rows
        return
    extracted = set(got.column("_airbyte_extracted_at").to_pylist())
    generation = set(got.column("_airbyte_generation_id").to_pylist())
    assert len(extracted) == 1 and len(generation) == 1
    assert next(iter(generation)) == next(iter(extracted)) // 1000  # grows by run
    metas = got.column("_airbyte_meta").to_pylist()
    assert {m["sync_id"] for m in metas} == generation
    # One change per value a conversion changed, in that row.
    per_column: dict[str, int] = {}
    for meta in metas:
        for change in meta["changes"]:
            per_column[change["field"]] = per_column.get(change["field"], 0) + 1
            assert change["change"] in ("NULLED", "TRUNCATED")
    assert sum(per_column.values()) == sum(c for _, c in want.values())


def test_mixed_bucket_table_without_airbyte_partition_is_exact(
    world: dict[str, Any], compat_run: Any
) -> None:
    _, tables = compat_run
    assert tables["region"]["status"] == "published" and tables["region"]["compat"] is None
    schema = pq.read_schema(_new_file(world, "region"))
    assert [(f.name, str(f.type)) for f in schema] == [("id", "int32"), ("name", "string")]
    assert "compat" not in _manifest(world, "region")


def test_drifted_table_appends_new_and_nulls_missing_columns(
    world: dict[str, Any], compat_run: Any
) -> None:
    result, tables = compat_run
    drifted = tables["drifted"]
    assert drifted["status"] == "published", drifted
    names = pq.read_schema(_new_file(world, "drifted")).names
    assert names == [*pq.read_schema(world["old"]["drifted"]).names, "new_col"]
    rows = query(
        f"SELECT id, old_col, new_col FROM read_parquet("
        f"'{_new_file(world, 'drifted')}') ORDER BY id"
    ).fetchall()
    assert rows == [(1, None, 100), (2, None, 200)]
    drift = {(d["class"], d["column"], d["action"]) for d in drifted["compat"]["drift"]}
    assert drift == {("column_removed", "old_col", "warn"), ("column_added", "new_col", "warn")}
    assert "compat drift warn: drifted: column_removed old_col" in result.stderr


def test_validate_compares_a_compatible_partition_with_its_output_schema(
    cli: Any, world: dict[str, Any], compat_run: Any
) -> None:
    # Stored schemas (the exact contract) exist for every table: the compatible partitions
    # are checked against what their manifest says was written, the exact ones as before.
    assert cli("schemas", "snapshot", env=_env(world)).code == 0
    done = cli("validate", "--date", NEW, "--json", env=_env(world))
    assert done.code == 0, done.output
    checks = {t["table"]: t["schema"] for t in json.loads(done.stdout)["tables"]}
    assert checks == dict.fromkeys(
        ("drifted", "matrix_1x", "matrix_legacy", "region", "store", "store_metrics"), "match"
    )


def test_drift_policy_fail_stops_the_table_before_reading(
    cli: Any, world: dict[str, Any], compat_run: Any
) -> None:
    done = cli(
        "extract",
        "--table",
        "drifted",
        "--date",
        "2024-05-04",
        "--compat",
        "airbyte",
        env=_env(world),
    )
    assert done.code == 1
    assert "failed at compat" in done.output and "column_removed old_col" in done.output
    assert not (world["dest"] / PREFIX / "drifted" / "cog_dt_ingestion=2024-05-04").exists()


def test_compat_none_writes_the_exact_contract(
    cli: Any, world: dict[str, Any], compat_run: Any
) -> None:
    done = cli("extract", "--table", "store", "--date", "2024-05-05", env=_env(world))
    assert done.code == 0, done.output
    folder = world["dest"] / PREFIX / "store" / "cog_dt_ingestion=2024-05-05"
    path = folder / "file_store_001.parquet"
    assert pq.read_schema(path).field("revenue").type == pa.decimal128(14, 2)


def test_on_s3(cli: Any, world: dict[str, Any], s3: S3, tmp_path: Path) -> None:
    import s3fs

    bucket = s3.new_bucket()
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3.endpoint})
    for table in ("store", "store_metrics", "region"):
        if table in world["old"]:
            key = f"{bucket}/{PREFIX}/{table}/cog_dt_ingestion={OLD}/file_{table}_001.parquet"
            fs.put_file(str(world["old"][table]), key)
    env = _env(world, RADAR_DEST=f"s3://{bucket}", RADAR_SCHEMAS_DIR=str(tmp_path), **s3.env)
    saved = cli(
        "compat",
        "inspect",
        "--save",
        "--table",
        "store",
        "--table",
        "store_metrics",
        "--table",
        "region",
        env=env,
    )
    assert saved.code == 0, saved.output
    assert "region: exact" in saved.stdout
    done = cli(
        "extract",
        "--compat",
        "airbyte",
        "--date",
        NEW,
        "--table",
        "store",
        "--table",
        "store_metrics",
        "--table",
        "region",
        env=env,
    )
    assert done.code == 0, done.output
    for table in ("store", "store_metrics"):
        local = tmp_path / f"{table}.parquet"
        fs.get_file(
            f"{bucket}/{PREFIX}/{table}/cog_dt_ingestion={NEW}/file_{table}_001.parquet", str(local)
        )
        _same_shape(local, world["old"][table])
        got = query(f"SELECT * FROM read_parquet('{local}') ORDER BY id").to_arrow_table()
        for name, (values, _) in airbyte.expected(
            world["conn"], table, pq.read_schema(world["old"][table])
        ).items():
            assert got.column(name).to_pylist() == values, (table, name)
