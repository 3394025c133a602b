"""Scale-out through the real CLI: plan, shards as separate processes, report merge, validate.

Every run is a real `radar-extract` process against the real MariaDB, to a local path or to
moto's S3 server over HTTP.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import s3fs
from fsspec.implementations.local import LocalFileSystem

from tests.conftest import S3, Result, Server, hex32, numbered_rows
from tests.integration.test_extract import SCHEMA as EXTRACT_SCHEMA

pytestmark = pytest.mark.integration

PREFIX = "origin=airbyte/database=bronze_radar"
DAY = "2024-03-01"
TABLES = ["empty_table", "events", "no_pk", "product", "store"]

SCHEMA = [  # the extract tests' tables, plus one big enough to be the largest by estimate
    *EXTRACT_SCHEMA,
    "CREATE TABLE events (id INT PRIMARY KEY, at DATETIME(6), payload VARCHAR(64))",
    *numbered_rows("events", f"seq, '2024-01-01' + INTERVAL seq SECOND, {hex32('seq')}", 3000),
    "ANALYZE TABLE events",  # so its estimate makes it the largest table
]


@pytest.fixture
def radar(make_database: Callable[..., str]) -> str:
    return make_database(*SCHEMA, sql_mode="")


@pytest.fixture
def bucket(s3: S3) -> Iterator[str]:
    yield s3.new_bucket()


def _env(server: Server, database: str, dest: Path | str, **extra: str) -> dict[str, str]:
    return {
        "RADAR_MYSQL_URL": server.url(database),
        "RADAR_DEST": str(dest),
        "RADAR_WORKERS": "1",
        **extra,
    }


def _partitions(fs: Any, root: str, day: str = DAY) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """table -> file name -> its rows, for every data file of `day` under `root`."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for path in sorted(fs.find(f"{root}/{PREFIX}")):
        table, partition, name = path.split("/")[-3:]
        assert partition == f"cog_dt_ingestion={day}", path
        with fs.open(path, "rb") as handle:
            out.setdefault(table, {})[name] = pq.read_table(handle).to_pylist()
    return out


def _shards(cli: Callable[..., Result], env: dict[str, str], *shards: str) -> list[Result]:
    """Each shard as its own process, all at once, as the orchestrator's mapped tasks run."""
    with ThreadPoolExecutor(len(shards)) as pool:
        return list(
            pool.map(lambda s: cli("extract", "--shard", s, "--date", DAY, env=env), shards)
        )


def _reports(root: Path) -> list[dict[str, Any]]:
    runs = root / "_radar_extract" / "runs"
    return [json.loads(p.read_text()) for p in sorted(runs.iterdir())]


def test_plan_output_json_save_and_xcom_file(
    cli: Callable[..., Result], server: Server, radar: str, tmp_path: Path
) -> None:
    env = _env(server, radar, tmp_path / "out")
    xcom = tmp_path / "airflow" / "xcom" / "return.json"
    result = cli(
        "plan", "--shards", "2", "--date", DAY, "--json", "--save", "--output", str(xcom), env=env
    )
    assert result.code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["date"] == DAY and plan["shards"] == 2
    assert [g["shard"] for g in plan["groups"]] == ["1/2", "2/2"]
    assert plan["groups"][0]["tables"] == ["events"]  # the largest table, alone
    assert sorted(plan["groups"][1]["tables"]) == ["empty_table", "no_pk", "product", "store"]
    assert plan["groups"][0]["estimated_bytes"] > plan["groups"][1]["estimated_bytes"] > 0
    assert json.loads(xcom.read_text()) == plan
    saved = tmp_path / "out" / "_radar_extract" / "plans" / f"{DAY}.json"
    assert json.loads(saved.read_text()) == plan
    # Same tables and estimates: the same plan, as many times as asked (only a saved plan
    # carries the time it was saved, for `extract --resume`).
    again = cli("plan", "--shards", "2", "--date", DAY, "--json", env=env)
    assert plan.pop("saved_at") > f"{DAY}"
    assert json.loads(again.stdout) == plan
    human = cli("plan", "--shards", "3", "--exclude", "events", env=env)
    assert human.code == 0, human.output
    assert "4 tables in 3 shards" in human.stdout and "shard 3/3: 1 tables" in human.stdout
    assert "events" not in human.stdout
    bad = cli("plan", "--shards", "300", env=env)
    assert bad.code == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "from 1 to 256" in bad.stderr
    unknown = cli("plan", "--shards", "2", "--table", "nope", env=env)
    assert unknown.code == 2 and "not a base table of the database: 'nope'" in unknown.stderr


def test_two_shards_give_the_same_partitions_as_one_run_and_merge_sums_them(
    cli: Callable[..., Result], server: Server, radar: str, tmp_path: Path
) -> None:
    sharded, single = tmp_path / "sharded", tmp_path / "single"
    env = _env(server, radar, sharded)
    assert cli("plan", "--shards", "2", "--date", DAY, "--save", env=env).code == 0
    for result in _shards(cli, env, "1/2", "2/2"):
        assert result.code == 0, result.output
        assert "from the saved plan" in result.stderr
    assert cli("extract", "--date", DAY, env=_env(server, radar, single)).code == 0

    fs = LocalFileSystem()
    one_run = _partitions(fs, str(single))
    assert sorted(one_run) == TABLES
    assert _partitions(fs, str(sharded)) == one_run  # same tables, files, rows and values
    assert len(one_run["events"]["file_events_001.parquet"]) == 3000

    reports = _reports(sharded)
    assert sorted(r["shard"] for r in reports) == ["1/2", "2/2"]
    held = [sorted(t["table"] for t in r["tables"]) for r in reports]
    assert sorted(held[0] + held[1]) == TABLES  # each table in exactly one shard
    merge = cli("report", "merge", "--date", DAY, "--json", env=env)
    assert merge.code == 0, merge.output
    merged = json.loads(merge.stdout)
    assert merged["status"] == "success" and merged["shards"] == ["1/2", "2/2"]
    assert sorted(merged["runs"]) == sorted(r["run_id"] for r in reports)
    for key in ("tables", "published", "rows", "files", "bytes", "nulled"):
        assert merged["totals"][key] == sum(r["totals"][key] for r in reports), key
    assert merged["totals"]["rows"] == _reports(single)[0]["totals"]["rows"] == 3000 + 3 + 2 + 3
    assert merged["seconds"] >= max(r["seconds"] for r in reports)
    stored = sharded / "_radar_extract" / "reports" / f"{DAY}.json"
    assert json.loads(stored.read_text()) == merged
    assert "2 runs merged, shards 1/2, 2/2): 5/5 tables published" in merge.stderr


def test_two_shards_to_s3_with_a_live_plan(
    cli: Callable[..., Result], server: Server, radar: str, s3: S3, bucket: str, tmp_path: Path
) -> None:
    env = {**_env(server, radar, f"s3://{bucket}/bronze"), **s3.env}
    for result in _shards(cli, env, "2/2", "1/2"):
        assert result.code == 0, result.output
        assert "a live plan over 5 tables" in result.stderr
    single = tmp_path / "single"
    assert cli("extract", "--date", DAY, env=_env(server, radar, single)).code == 0
    fs = s3fs.S3FileSystem(
        client_kwargs={"endpoint_url": s3.endpoint},
        key="testing",
        secret="testing",
        use_listings_cache=False,
    )
    assert _partitions(fs, f"{bucket}/bronze") == _partitions(LocalFileSystem(), str(single))
    merge = cli("report", "merge", "--date", DAY, env=env)
    assert merge.code == 0, merge.output
    assert fs.exists(f"{bucket}/bronze/_radar_extract/reports/{DAY}.json")
    valid = cli("validate", "--date", DAY, "--against-source", env=env)
    assert valid.code == 0, valid.output
    assert f"{len(TABLES)} tables, 0 invalid: valid" in valid.stdout
    assert fs.exists(f"{bucket}/bronze/_radar_extract/validation/{DAY}.json")


def test_merge_shows_a_missing_shard_and_a_rerun_replaces_a_failure(
    cli: Callable[..., Result], server: Server, radar: str, tmp_path: Path
) -> None:
    dest = tmp_path / "out"
    env = _env(server, radar, dest)
    plan = json.loads(
        cli("plan", "--shards", "3", "--date", DAY, "--save", "--json", env=env).stdout
    )
    groups = {g["shard"]: g["tables"] for g in plan["groups"]}
    assert all(groups.values()), groups
    victim = groups["2/3"][-1]
    # A user that sees `victim` (INSERT grant) but may not read it: its SELECT fails for real.
    user, password = f"rs_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
        for table in TABLES:
            grant = "INSERT" if table == victim else "SELECT"
            cur.execute(f"GRANT {grant} ON `{radar}`.`{table}` TO '{user}'@'%'")
    try:
        url = f"mysql+pymysql://{user}:{password}@{server.host}:{server.port}/{radar}"
        failed = cli(
            "extract", "--shard", "2/3", "--date", DAY, env={**env, "RADAR_MYSQL_URL": url}
        )
        assert failed.code == 1 and f"{victim}: failed at read" in failed.stderr
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP USER '{user}'@'%'")
        conn.close()
    assert cli("extract", "--shard", "1/3", "--date", DAY, env=env).code == 0
    # Shard 3/3 never ran (its pod was lost, say).

    merge = cli("report", "merge", "--date", DAY, "--json", env=env)
    assert merge.code == 1, merge.output
    by_table = {t["table"]: t for t in json.loads(merge.stdout)["tables"]}
    assert sorted(by_table) == TABLES
    for table in groups["3/3"]:
        assert by_table[table]["status"] == "not_run"
        assert by_table[table]["error"] == "shard 3/3 wrote no report"
        assert f"  {table}: not run: shard 3/3 wrote no report" in merge.stderr
    assert by_table[victim]["status"] == "failed"
    assert f"{victim}: failed at read" in merge.stderr

    assert cli("extract", "--table", victim, "--date", DAY, env=env).code == 0  # the rerun
    assert cli("extract", "--shard", "3/3", "--date", DAY, env=env).code == 0
    merge = cli("report", "merge", "--date", DAY, "--json", "--log-json", env=env)
    assert merge.code == 0, merge.output
    merged = json.loads(merge.stdout)
    assert {t["table"]: t["status"] for t in merged["tables"]} == dict.fromkeys(TABLES, "published")
    assert merged["totals"]["rows"] == 3000 + 3 + 2 + 3 and len(merged["runs"]) == 4
    assert merged["shards"] == ["1/3", "2/3", "3/3"]
    (event,) = [
        json.loads(line)
        for line in merge.stderr.splitlines()
        if json.loads(line).get("event") == "merge"
    ]
    assert (event["status"], event["runs"], event["published"], event["rows"]) == (
        "success",
        4,
        5,
        3008,
    )


def test_merge_without_any_report_is_one_clear_line(
    cli: Callable[..., Result], server: Server, radar: str, tmp_path: Path
) -> None:
    result = cli("report", "merge", "--date", "1999-01-01", env=_env(server, radar, tmp_path))
    assert result.code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.endswith(
        f"radar-extract: error: no run report for 1999-01-01 under {tmp_path}/_radar_extract/runs"
    )


def _store_schemas(dest: Path, schemas_dir: Path, database: str) -> None:
    """Stored schemas as `schemas snapshot` writes them, built here from the manifests."""
    for manifest_path in sorted((dest / "_radar_extract" / "manifests").glob(f"*/*{DAY}.json")):
        manifest = json.loads(manifest_path.read_text())
        columns = [
            {
                "arrow_type": c["arrow_type"],
                "data_type": c["mysql_type"].split("(")[0],
                "mysql_type": c["mysql_type"],
                "name": c["name"],
                "nullable": c["nullable"],
            }
            for c in manifest["schema"]
        ]
        stored = {
            "columns": columns,
            "database": database,
            "format": 1,
            "primary_key": manifest["primary_key"],
            "table": manifest["table"],
        }
        path = schemas_dir / database / f"{manifest['table']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")


def _execute(server: Server, database: str, *statements: str) -> None:
    conn = server.connect(database)
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
    conn.close()


def test_validate_catches_damage_and_accepts_an_empty_table(
    cli: Callable[..., Result], server: Server, radar: str, tmp_path: Path
) -> None:
    dest, schemas = tmp_path / "out", tmp_path / "schemas"
    env = _env(server, radar, dest, RADAR_SCHEMAS_DIR=str(schemas))
    assert cli("extract", "--date", DAY, env=env).code == 0
    _store_schemas(dest, schemas, radar)

    ok = cli("validate", "--date", DAY, env=env)
    assert ok.code == 0, ok.output
    assert "ok   events: 3,000 rows in 1 files, schema match" in ok.stdout
    assert "ok   empty_table: 0 rows in 1 files, schema match" in ok.stdout
    checked = cli("validate", "--date", DAY, "--against-source", "--json", env=env)
    assert checked.code == 0, checked.output
    result = json.loads(checked.stdout)
    assert result["valid"] is True and result["expected_from"] == "source"
    empty = {t["table"]: t for t in result["tables"]}["empty_table"]
    assert (empty["source_rows"], empty["manifest_rows"], empty["valid"]) == (0, 0, True)
    stored = dest / "_radar_extract" / "validation" / f"{DAY}.json"
    assert json.loads(stored.read_text()) == result

    # The source moves on after the extraction.
    _execute(
        server,
        radar,
        "INSERT INTO store VALUES (4, 'Nova', NULL), (5, 'Outra', NULL)",
        "INSERT INTO empty_table VALUES (1, 'first')",
    )
    counted = cli("validate", "--date", DAY, "--against-source", env=env)
    assert counted.code == 1, counted.output
    assert (
        "note store: the source has 5 rows, the partition 3 (difference +2); the source "
        "may have changed since the extraction (fails with --strict)"
    ) in counted.stdout
    assert (
        "FAIL empty_table: the source has 1 rows, the partition 0 (difference +1): the "
        "partition is empty but the source is not"
    ) in counted.stdout
    assert cli("validate", "--date", DAY, "--against-source", "--table", "store", env=env).code == 0
    strict = cli(
        "validate", "--date", DAY, "--against-source", "--strict", "--table", "store", env=env
    )
    assert strict.code == 1 and "FAIL store: the source has 5 rows" in strict.stdout
    alone = cli("validate", "--date", DAY, "--strict", env=env)
    assert alone.code == 2 and "--strict compares counts with the source" in alone.stderr
    assert len(alone.stderr.strip().splitlines()) == 1

    # Damage: a truncated file, an unlisted file, a stored schema that no longer matches.
    product = Path(dest, PREFIX, "product", f"cog_dt_ingestion={DAY}", "file_product_001.parquet")
    product.write_bytes(product.read_bytes()[: product.stat().st_size // 2])
    no_pk = product.parents[1].parent / "no_pk" / f"cog_dt_ingestion={DAY}"
    (no_pk / "file_no_pk_002.parquet").write_bytes((no_pk / "file_no_pk_001.parquet").read_bytes())
    store_schema = schemas / radar / "store.json"
    data = json.loads(store_schema.read_text())
    data["columns"][0]["arrow_type"] = "int64"
    data["columns"].append(
        {
            "arrow_type": "string",
            "data_type": "varchar",
            "mysql_type": "varchar(9)",
            "name": "city",
            "nullable": True,
        }
    )
    store_schema.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    damaged = cli("validate", "--date", DAY, "--json", env=env)
    assert damaged.code == 1
    problems = json.loads(damaged.stdout)["tables"]
    by_table = {t["table"]: t for t in problems}
    assert [t for t, c in sorted(by_table.items()) if not c["valid"]] == [
        "no_pk",
        "product",
        "store",
    ]
    (truncated,) = by_table["product"]["problems"]
    assert truncated.startswith("product: file_product_001.parquet (")
    assert "has no readable Parquet footer" in truncated
    assert by_table["no_pk"]["problems"] == [
        "no_pk: file_no_pk_002.parquet is in the partition but not in the manifest"
    ]
    assert by_table["store"]["schema"] == "mismatch"
    assert by_table["store"]["problems"] == [
        "store: column 'id' is int32 in the partition but int64 in the stored schema",
        "store: column 'city' (string) of the stored schema is not in the partition",
    ]
    human = cli("validate", "--date", DAY, env=env)
    assert human.code == 1
    assert "FAIL no_pk: file_no_pk_002.parquet is in the partition but not" in human.stdout
    assert human.stdout.strip().splitlines()[-1].endswith("5 tables, 3 invalid: INVALID")
    assert "Traceback" not in human.output

    # A date where a table of the stored schemas was never published (the stored schema of
    # `store` was altered above: its drift must not stop this extraction).
    assert (
        cli(
            "extract", "--date", "2024-03-02", "--exclude", "no_pk", "--on-drift", "warn", env=env
        ).code
        == 0
    )
    missing = cli("validate", "--date", "2024-03-02", env=env)
    assert missing.code == 1
    assert "FAIL no_pk: no published partition for 2024-03-02 (no manifest)" in missing.stdout
    # Without stored schemas: the tables with a manifest for the date, and it says so.
    fallback = cli(
        "validate", "--date", "2024-03-02", env={**env, "RADAR_SCHEMAS_DIR": str(tmp_path / "none")}
    )
    assert fallback.code == 0, fallback.output
    assert "note no stored schemas in" in fallback.stdout
    assert "checking the 4 tables with a manifest for 2024-03-02" in fallback.stdout


def test_a_partition_with_no_manifest_left_by_hand_is_reported(
    cli: Callable[..., Result], server: Server, radar: str, tmp_path: Path
) -> None:
    env = _env(server, radar, tmp_path)
    assert cli("extract", "--table", "store", "--date", DAY, env=env).code == 0
    manifest = tmp_path / "_radar_extract" / "manifests" / "store" / f"cog_dt_ingestion={DAY}.json"
    os.remove(manifest)
    result = cli("validate", "--date", DAY, "--table", "store", env=env)
    assert result.code == 1
    assert (
        f"FAIL store: no published partition for {DAY} (no manifest) (1 files without one)"
        in result.stdout
    )


def test_a_shard_reports_a_planned_table_dropped_since_and_other_n_plans_live(
    cli: Callable[..., Result], server: Server, radar: str, tmp_path: Path
) -> None:
    env = _env(server, radar, tmp_path)
    assert cli("plan", "--shards", "2", "--date", DAY, "--save", env=env).code == 0
    _execute(server, radar, "DROP TABLE no_pk")
    report_file = tmp_path / "shard.json"
    result = cli("extract", "--shard", "2/2", "--date", DAY, "--report", str(report_file), env=env)
    assert result.code == 1, result.output
    report = json.loads(report_file.read_text())
    assert report["shard"] == "2/2"
    by_table = {t["table"]: t for t in report["tables"]}
    assert sorted(by_table) == ["empty_table", "no_pk", "product", "store"]
    assert by_table["no_pk"]["status"] == "failed"
    assert by_table["no_pk"]["error"] == (
        "planned for this shard but no longer a base table of the database"
    )
    assert {by_table[t]["status"] for t in ("empty_table", "product", "store")} == {"published"}
    other = cli("extract", "--shard", "1/3", "--date", DAY, env=env)
    assert other.code == 0, other.output
    assert f"the saved plan of {DAY} has 2 shards, not 3: planning live" in other.stderr
    assert "a live plan over 4 tables" in other.stderr


def test_resume_redoes_only_what_is_not_published_since_the_plan(
    cli: Callable[..., Result],
    server: Server,
    radar: str,
    tmp_path: Path,
) -> None:
    """An orchestrator's retry of a shard (`--resume`): the tables its first attempt
    published are skipped and their files left untouched; a new plan of the date (a rerun
    of the night) makes every table run again."""
    dest = tmp_path / "out"
    env = _env(server, radar, dest)
    assert cli("plan", "--shards", "1", "--date", DAY, "--save", env=env).code == 0
    first = cli(
        "extract",
        "--shard",
        "1/1",
        "--date",
        DAY,
        "--resume",
        "--exclude",
        "events",
        "--exclude",
        "no_pk",
        env=env,
    )  # as if the pod died before these two
    assert first.code == 0, first.output
    store = next((dest / PREFIX / "store" / f"cog_dt_ingestion={DAY}").glob("*.parquet"))
    written = store.stat().st_mtime_ns
    (first_report,) = (dest / "_radar_extract" / "runs").glob("*.json")
    first_run = json.loads(first_report.read_text())
    report_file = tmp_path / "retry.json"
    retry = cli(
        "extract",
        "--shard",
        "1/1",
        "--date",
        DAY,
        "--resume",
        "--report",
        str(report_file),
        env=env,
    )
    assert retry.code == 0, retry.output
    statuses = {
        t["table"]: (t["status"], t["retry_note"])
        for t in json.loads(report_file.read_text())["tables"]
    }
    done = f"already published for {DAY} by run {first_run['run_id']} (--resume)"
    assert statuses == {
        "empty_table": ("skipped", done),
        "product": ("skipped", done),
        "store": ("skipped", done),
        "events": ("published", None),
        "no_pk": ("published", None),
    }
    assert store.stat().st_mtime_ns == written
    merged = cli("report", "merge", "--date", DAY, "--json", env=env)
    assert merged.code == 0, merged.output
    tables = {t["table"]: t for t in json.loads(merged.stdout)["tables"]}
    assert {t: r["status"] for t, r in tables.items()} == dict.fromkeys(TABLES, "published")
    assert (tables["store"]["rows"], tables["events"]["rows"]) == (3, 3000)
    # Had the first attempt's pod died after publishing (no report), the manifests say it.
    first_report.unlink()
    merged = cli("report", "merge", "--date", DAY, "--json", env=env)
    assert merged.code == 0, merged.output
    tables = {t["table"]: t for t in json.loads(merged.stdout)["tables"]}
    assert {t: r["status"] for t, r in tables.items()} == dict.fromkeys(TABLES, "published")
    assert (tables["store"]["rows"], tables["store"]["files"]) == (3, 1)
    assert tables["store"]["retry_note"] == (
        f"published by run {first_run['run_id']}, from its manifest"
    )
    assert json.loads(merged.stdout)["totals"]["rows"] == 3 + 2 + 3 + 3000
    # The night is run again: a new plan, so nothing counts as done.
    assert cli("plan", "--shards", "1", "--date", DAY, "--save", env=env).code == 0
    again = cli(
        "extract",
        "--shard",
        "1/1",
        "--date",
        DAY,
        "--resume",
        "--report",
        str(report_file),
        env=env,
    )
    assert again.code == 0, again.output
    assert {t["status"] for t in json.loads(report_file.read_text())["tables"]} == {"published"}
    assert store.stat().st_mtime_ns != written


def test_validate_accepts_the_drift_the_policy_let_through(
    cli: Callable[..., Result],
    server: Server,
    radar: str,
    tmp_path: Path,
) -> None:
    """A column added at the source (drift `warn`) is published with it; validating the
    partition against the not yet refreshed stored schema notes the difference, as the
    manifest records it was accepted, and does not fail the night."""
    env = _env(server, radar, tmp_path / "out", RADAR_SCHEMAS_DIR=str(tmp_path / "schemas"))
    assert cli("schemas", "snapshot", env=env).code == 0
    conn = server.connect(radar)
    with conn.cursor() as cur:
        cur.execute("ALTER TABLE store ADD COLUMN city VARCHAR(9) NULL")
    conn.close()
    assert cli("extract", "--date", DAY, env=env).code == 0
    checked = cli("validate", "--date", DAY, "--json", env=env)
    assert checked.code == 0, checked.output
    store = {t["table"]: t for t in json.loads(checked.stdout)["tables"]}["store"]
    assert (store["valid"], store["schema"], store["problems"]) == (True, "drift accepted", [])
    assert store["notes"] == [
        "column 'city' (string) is in the partition but not in the stored "
        "schema (drift accepted at extraction: column_added city)"
    ]
