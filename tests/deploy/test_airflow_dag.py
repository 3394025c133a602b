"""The Airflow DAG (deploy/airflow/) loads in the real Airflow 3, has the promised shape, and
runs: plan, mapped shards, merge, validate, crawl or catalog sync, notify with the right
arguments and rules.

Airflow cannot live in the project's venv, so `make airflow-venv` (a prerequisite of
`make test`) builds .venv-airflow, and two scripts run there. airflow_probe.py parses the
folder with DagBag and reports tasks, schedule, retries and rendered arguments; no Airflow
database is needed for that (it runs with a database URL that cannot be opened).
airflow_run.py runs whole DAG runs with `dag.test()` on a throwaway SQLite database, every pod
replaced by a stand-in that records its arguments.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.conftest import S3, Result, Server
from tests.webhook import Webhook, message, webhook

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_PYTHON = ROOT / ".venv-airflow" / "bin" / "python"
DAG_FOLDER = ROOT / "deploy" / "airflow"
PROBE = Path(__file__).with_name("airflow_probe.py")
RUNNER = Path(__file__).with_name("airflow_run.py")


def _airflow_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    return env


def _run_in_airflow(args: list[str], env: dict[str, str], cwd: Path) -> None:
    if not AIRFLOW_PYTHON.exists():  # fail, never skip: CI must run this test
        pytest.fail(f"{AIRFLOW_PYTHON} is missing: run `make airflow-venv` (make test does)")
    proc = subprocess.run(
        [str(AIRFLOW_PYTHON), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("airflow_home")  # nothing lands in the repo or $HOME
    out = home / "probe.json"
    env = _airflow_env(home)
    # A database that cannot exist: parsing must not need one.
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home}/missing/dir/airflow.db"
    _run_in_airflow([str(PROBE), str(DAG_FOLDER), str(out)], env, home)
    assert not (home / "missing").exists()
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


def test_dag_loads_without_import_errors(probe: dict[str, Any]) -> None:
    assert probe["import_errors"] == {}
    assert probe["dag_ids"] == ["radar_extract"]
    assert probe["serialized_tasks"] == len(probe["tasks"])  # the scheduler's form works too


def test_daily_at_two_utc_without_catchup(probe: dict[str, Any]) -> None:
    assert probe["timetable"] == "CronTriggerTimetable"  # logical date = the 02:00 of the run
    assert (probe["cron"], probe["timezone"]) == ("0 2 * * *", "UTC")
    assert probe["catchup"] is False


def test_deadline_is_three_utc(probe: dict[str, Any]) -> None:
    assert probe["deadline"] == {
        "reference": "DagRunLogicalDateDeadline",
        "interval_s": 3600.0,
        "callback": "airflow.providers.slack.notifications.slack_webhook.SlackWebhookNotifier",
    }


def test_tasks_and_dependencies(probe: dict[str, Any]) -> None:
    upstream = {tid: task["upstream"] for tid, task in probe["tasks"].items()}
    assert upstream == {
        "plan": [],
        "shard_arguments": ["plan"],
        "extract": ["shard_arguments"],
        "merge": ["extract"],
        "validate": ["merge"],
        "crawler_configured": [],
        "crawl": ["crawler_configured", "validate"],
        "catalog_configured": [],
        "catalog_sync": ["catalog_configured", "validate"],
        "notify": ["catalog_sync", "crawl", "merge", "validate"],
        "run_failed": ["catalog_sync", "crawl", "extract", "merge", "notify", "validate"],
    }
    pods = [
        tid for tid, task in probe["tasks"].items() if task["operator"] == "KubernetesPodOperator"
    ]
    assert sorted(pods) == [
        "catalog_sync",
        "crawl",
        "extract",
        "merge",
        "notify",
        "plan",
        "validate",
    ]


def test_extract_is_mapped_over_the_plan(probe: dict[str, Any]) -> None:
    extract = probe["tasks"]["extract"]
    assert extract["mapped"] is True
    assert probe["extract_expand"] == ["arguments"]
    # The plan's empty third group starts no pod; every shard keeps the plan's date and tables.
    assert probe["shard_arguments"] == [
        [
            "extract",
            "--date",
            "2026-01-02",
            "--shard",
            "1/3",
            "--table",
            "a",
            "--table",
            "b",
            "--resume",
            "--log-json",
        ],
        [
            "extract",
            "--date",
            "2026-01-02",
            "--shard",
            "2/3",
            "--table",
            "a",
            "--table",
            "b",
            "--resume",
            "--log-json",
        ],
    ]


def test_pods_get_settings_from_kubernetes_objects(probe: dict[str, Any]) -> None:
    # Secrets come from the Kubernetes Secret as env vars, never from the DAG file.
    assert probe["pod"] == {
        "secrets": [["env", None, "radar-extract"]],
        "configmaps": ["radar-extract"],
        "service_account_name": "radar-extract",
        "env_vars": [],
        "do_xcom_push": True,
    }
    # An extract pod runs as many workers as it has CPUs.
    assert probe["extract_pod"]["env_vars"] == {"RADAR_WORKERS": "2"}
    assert probe["extract_pod"]["requests"]["cpu"] == "2"


def test_trigger_rules(probe: dict[str, Any]) -> None:
    rules = {tid: task["trigger_rule"] for tid, task in probe["tasks"].items()}
    assert rules["merge"] == "all_done"  # after every shard, failed or not
    assert rules["notify"] == "all_done"  # Slack always hears
    assert rules["crawl"] == "all_success"  # only after merge and validate succeeded
    assert rules["catalog_sync"] == "all_success"  # the same: only after a sound night
    assert rules["run_failed"] == "one_failed"  # the run fails when a step did


@pytest.mark.parametrize(
    "task_id", ["plan", "extract", "merge", "validate", "crawl", "catalog_sync", "notify"]
)
def test_retries_backoff_and_timeout(probe: dict[str, Any], task_id: str) -> None:
    task = probe["tasks"][task_id]
    # 3 attempts in total; merge's and validate's failures are verdicts on the data
    assert task["retries"] == (0 if task_id in ("merge", "validate") else 2)
    assert task["retry_exponential_backoff"] is True
    assert (task["retry_delay_s"], task["max_retry_delay_s"]) == (120.0, 600.0)
    assert task["execution_timeout_s"] == 3600.0


def test_conf_renders_to_argument_lists(probe: dict[str, Any]) -> None:
    rendered = probe["rendered"]
    assert rendered["plan"]["arguments"] == [
        "plan",
        "--shards",
        "3",
        "--date",
        "2026-01-02",
        "--table",
        "a",
        "--table",
        "b",
        "--save",
        "--json",
        "--output",
        "/airflow/xcom/return.json",
    ]
    assert rendered["merge"]["arguments"] == ["report", "merge", "--date", "2026-01-02"]
    assert rendered["validate"]["arguments"] == [
        "validate",
        "--date",
        "2026-01-02",
        "--table",
        "a",
        "--table",
        "b",
    ]
    assert rendered["crawl"]["arguments"] == [
        "crawl",
        "--date",
        "2026-01-02",
        "--glue-crawler",
        "radar-bronze",
    ]
    assert rendered["catalog_sync"]["arguments"] == [
        "catalog",
        "sync",
        "--date",
        "2026-01-02",
        "--database",
        "bronze_radar",
        "--table",
        "a",
        "--table",
        "b",
    ]
    assert rendered["notify"]["arguments"] == ["notify", "--date", "2026-01-02"]
    assert {r["image"] for r in rendered.values()} == {"registry/radar:1.2"}


def test_scheduled_run_defaults(probe: dict[str, Any]) -> None:
    # The run of 2026-03-04 02:00 UTC extracts partition 2026-03-04 with 4 shards, every table.
    assert probe["rendered_defaults"] == {
        "arguments": [
            "plan",
            "--shards",
            "4",
            "--date",
            "2026-03-04",
            "--save",
            "--json",
            "--output",
            "/airflow/xcom/return.json",
        ],
        "image": "radar-extract:latest",
        "namespace": "data",
    }


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("date", "conf date '2026-13-01' is not a date (YYYY-MM-DD)"),
        ("table", "conf tables has invalid names: 'store; rm -rf /'"),
        ("key", "conf has unknown keys: table (known: date, tables)"),
        ("shards", "Variable radar_extract_shards must be 1-64, not 0"),
    ],
)
def test_bad_conf_fails_the_plan_clearly(probe: dict[str, Any], case: str, message: str) -> None:
    assert probe["rendered_bad"][case] == {
        "error": f"ConfError: {message}",
        "fails_without_retry": True,
    }


@pytest.fixture(scope="module")
def dag_run(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., dict[str, Any]]:
    """Run the DAG once in Airflow: (scenario, logical date, conf, extra env) -> result."""
    home = tmp_path_factory.mktemp("airflow_db")
    env = _airflow_env(home)
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAG_FOLDER)
    _run_in_airflow(["-m", "airflow", "db", "migrate"], env, home)

    def run(
        scenario: str,
        logical_date: str,
        conf: dict[str, Any],
        extra_env: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        out = home / f"run_{logical_date}.json"
        _run_in_airflow(
            [str(RUNNER), str(DAG_FOLDER), str(out), scenario, logical_date, json.dumps(conf)],
            {**env, **(extra_env or {})},
            home,
        )
        result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        return result

    return run


def _arguments(result: dict[str, Any]) -> dict[str, list[str]]:
    return {
        f"{c['task']}[{c['map_index']}]" if c["map_index"] >= 0 else c["task"]: c["arguments"]
        for c in result["calls"]
    }


def test_a_night_runs_every_step_in_order(dag_run: Callable[..., dict[str, Any]]) -> None:
    result = dag_run(
        "ok",
        "2026-03-04T02:00:00+00:00",
        {"tables": ["a", "b"]},
        {
            "AIRFLOW_VAR_RADAR_EXTRACT_GLUE_CRAWLER": "radar-bronze",
            "AIRFLOW_VAR_RADAR_EXTRACT_IMAGE": "registry/radar:1.2",
        },
    )
    assert result["run"] == "success"
    assert result["states"] == {
        "crawler_configured": "success",
        "plan": "success",
        "shard_arguments": "success",
        "extract[0]": "success",
        "extract[1]": "success",
        "merge": "success",
        "validate": "success",
        "crawl": "success",
        "notify": "success",
        "catalog_configured": "success",
        "catalog_sync": "skipped",  # no database Variable
        "run_failed": "skipped",
    }
    tables = ["--table", "a", "--table", "b"]
    assert _arguments(result) == {
        "plan": [
            "plan",
            "--shards",
            "4",
            "--date",
            "2026-03-04",
            *tables,
            "--save",
            "--json",
            "--output",
            "/airflow/xcom/return.json",
        ],
        # The third group of the plan is empty: no pod for it.
        "extract[0]": [
            "extract",
            "--date",
            "2026-03-04",
            "--shard",
            "1/3",
            *tables,
            "--resume",
            "--log-json",
        ],
        "extract[1]": [
            "extract",
            "--date",
            "2026-03-04",
            "--shard",
            "2/3",
            *tables,
            "--resume",
            "--log-json",
        ],
        "merge": ["report", "merge", "--date", "2026-03-04"],
        "validate": ["validate", "--date", "2026-03-04", *tables],
        "crawl": ["crawl", "--date", "2026-03-04", "--glue-crawler", "radar-bronze"],
        "notify": ["notify", "--date", "2026-03-04"],
    }
    assert {c["image"] for c in result["calls"]} == {"registry/radar:1.2"}
    order = [c["task"] for c in result["calls"]]
    assert order.index("plan") < order.index("extract") < order.index("merge")
    assert order.index("merge") < order.index("validate") < order.index("crawl")
    assert order[-1] == "notify"


def test_a_night_with_catalog_sync_in_place_of_the_crawler(
    dag_run: Callable[..., dict[str, Any]],
) -> None:
    """The database Variable set: `catalog sync` runs after validate, and the crawler, though
    its Variable is set too, does not (a crawl could rewrite the schema the sync keeps)."""
    result = dag_run(
        "ok",
        "2026-03-09T02:00:00+00:00",
        {"tables": ["a"]},
        {
            "AIRFLOW_VAR_RADAR_EXTRACT_GLUE_CRAWLER": "radar-bronze",
            "AIRFLOW_VAR_RADAR_EXTRACT_GLUE_DATABASE": "bronze_radar",
        },
    )
    assert result["run"] == "success"
    states = result["states"]
    assert (states["catalog_configured"], states["catalog_sync"]) == ("success", "success")
    assert (states["crawler_configured"], states["crawl"]) == ("success", "skipped")
    assert (states["notify"], states["run_failed"]) == ("success", "skipped")
    arguments = _arguments(result)
    assert arguments["catalog_sync"] == [
        "catalog",
        "sync",
        "--date",
        "2026-03-09",
        "--database",
        "bronze_radar",
        "--table",
        "a",
    ]
    assert "crawl" not in arguments
    order = [c["task"] for c in result["calls"]]
    assert order.index("validate") < order.index("catalog_sync") < order.index("notify")


def test_a_failed_shard_still_merges_and_notifies(dag_run: Callable[..., dict[str, Any]]) -> None:
    result = dag_run("shard_fails", "2026-03-05T02:00:00+00:00", {"date": "2026-01-02"})
    states = result["states"]
    assert (states["extract[0]"], states["extract[1]"]) == ("success", "failed")
    assert states["merge"] == "success"  # all_done: it records the failed shard
    assert states["crawl"] == "skipped"  # no crawler Variable
    assert states["catalog_sync"] == "skipped"  # no database Variable
    assert states["notify"] == "success"
    assert states["run_failed"] == "failed"
    assert result["run"] == "failed"  # the night is marked failed, though Slack was told
    assert _arguments(result)["merge"] == ["report", "merge", "--date", "2026-01-02"]


def test_a_bad_conf_fails_before_any_pod(dag_run: Callable[..., dict[str, Any]]) -> None:
    result = dag_run("ok", "2026-03-06T02:00:00+00:00", {"date": "2026-02-30"})
    assert result["calls"] == []
    assert result["states"]["plan"] == "failed"
    assert result["states"]["extract"] == "upstream_failed"
    assert result["run"] == "failed"


# -- The DAG over the real engine ---------------------------------------------------------
# Each pod is the real `radar-extract` process (this project's venv) against the test MariaDB,
# a local destination and a local Slack webhook: one night from plan to notify, end to end.
ENGINE = [str(ROOT / ".venv" / "bin" / "python"), "-m", "extractor"]
PREFIX = "origin=airbyte/database=bronze_radar"
NIGHT_SCHEMA = [
    "CREATE TABLE store (id INT PRIMARY KEY, name VARCHAR(20))",
    "INSERT INTO store VALUES (1, 'Centro'), (2, 'Norte'), (3, 'Sul')",
    "CREATE TABLE product (sku VARCHAR(10) PRIMARY KEY, price DECIMAL(10,2))",
    "INSERT INTO product VALUES ('A', 1.50), ('B', 2.50)",
    "CREATE TABLE empty_table (id INT PRIMARY KEY)",
]


def _night(
    dag_run: Callable[..., dict[str, Any]],
    server: Server,
    database: str,
    tmp_path: Path,
    hook: Webhook,
    day: str,
    **extra: str,
) -> dict[str, Any]:
    (tmp_path / "xcom").mkdir(exist_ok=True)
    env = {
        "RADAR_EXTRACT_COMMAND": json.dumps(ENGINE),
        "RADAR_XCOM_DIR": str(tmp_path / "xcom"),
        "RADAR_MYSQL_URL": server.url(database),
        "RADAR_DEST": str(tmp_path / "bronze"),
        "RADAR_SCHEMAS_DIR": str(tmp_path / "schemas"),
        "RADAR_SLACK_WEBHOOK_URL": hook.url,
        **extra,
    }
    return dag_run("engine", f"{day}T02:00:00+00:00", {}, env)


def test_a_night_over_the_real_engine(
    dag_run: Callable[..., dict[str, Any]],
    server: Server,
    cli: Callable[..., Result],
    make_database: Callable[..., str],
    tmp_path: Path,
) -> None:
    database = make_database(*NIGHT_SCHEMA)
    assert (
        cli(
            "schemas",
            "snapshot",
            env={
                "RADAR_MYSQL_URL": server.url(database),
                "RADAR_SCHEMAS_DIR": str(tmp_path / "schemas"),
            },
        ).code
        == 0
    )
    with webhook() as hook:
        result = _night(dag_run, server, database, tmp_path, hook, "2026-03-07")
    codes = {
        c["task"] + (f"[{c['map_index']}]" if c["map_index"] >= 0 else ""): c.get("code")
        for c in result["calls"]
    }
    assert result["run"] == "success", json.dumps(result["calls"], indent=1)[-4000:]
    # Three tables over four shards: three extract pods, every step ran and exited 0.
    assert codes == {
        "plan": 0,
        "extract[0]": 0,
        "extract[1]": 0,
        "extract[2]": 0,
        "merge": 0,
        "validate": 0,
        "notify": 0,
    }
    bronze = tmp_path / "bronze" / PREFIX
    for table, rows in {"store": 3, "product": 2, "empty_table": 0}.items():
        files = list((bronze / table / "cog_dt_ingestion=2026-03-07").glob("*.parquet"))
        assert sum(pq.ParquetFile(f).metadata.num_rows for f in files) == rows, table
    store = pq.read_table(bronze / "store" / "cog_dt_ingestion=2026-03-07").sort_by("id")
    assert store.column("name").to_pylist() == ["Centro", "Norte", "Sul"]
    internal = tmp_path / "bronze" / "_radar_extract"
    merged = json.loads((internal / "reports" / "2026-03-07.json").read_text())
    assert merged["status"] == "success" and len(merged["runs"]) == 3
    assert merged["totals"]["rows"] == 5 and merged["shards"] == ["1/4", "2/4", "3/4"]
    validation = json.loads((internal / "validation" / "2026-03-07.json").read_text())
    assert validation["valid"] is True
    (payload,) = hook.payloads  # one message for the night, after the merge
    text = message(payload)
    assert payload["text"].startswith(
        ":white_check_mark: radar-extract 2026-03-07: 3/3 tables published, 5 rows"
    )
    assert "*Validation*: :white_check_mark:" in text


def test_a_night_with_a_failing_table_still_reports_it(
    dag_run: Callable[..., dict[str, Any]],
    server: Server,
    cli: Callable[..., Result],
    make_database: Callable[..., str],
    tmp_path: Path,
) -> None:
    """A column removed at the source fails its table (drift policy `fail`): the other
    tables publish, merge records the failure, validate does not run, Slack hears why."""
    database = make_database(*NIGHT_SCHEMA)
    assert (
        cli(
            "schemas",
            "snapshot",
            env={
                "RADAR_MYSQL_URL": server.url(database),
                "RADAR_SCHEMAS_DIR": str(tmp_path / "schemas"),
            },
        ).code
        == 0
    )
    conn = server.connect(database)
    with conn.cursor() as cur:
        cur.execute("ALTER TABLE product DROP COLUMN price")
    conn.close()
    with webhook() as hook:
        result = _night(dag_run, server, database, tmp_path, hook, "2026-03-08")
    states = result["states"]
    assert result["run"] == "failed"
    assert sorted(s for k, s in states.items() if k.startswith("extract[")) == [
        "failed",
        "success",
        "success",
    ]
    assert (states["merge"], states["validate"], states["notify"]) == (
        "failed",
        "upstream_failed",
        "success",
    )
    bronze = tmp_path / "bronze" / PREFIX
    assert not (bronze / "product").exists()
    assert (bronze / "store" / "cog_dt_ingestion=2026-03-08").is_dir()
    internal = tmp_path / "bronze" / "_radar_extract"
    merged = json.loads((internal / "reports" / "2026-03-08.json").read_text())
    assert merged["status"] == "failed" and merged["totals"]["published"] == 2
    (payload,) = hook.payloads
    assert payload["text"].startswith(":x: radar-extract 2026-03-08 FAILED: 1 failed")
    assert "product: failed at drift" in message(payload)
    assert "column_removed price" in message(payload)


def test_a_night_over_the_real_engine_syncs_the_glue_catalog(
    dag_run: Callable[..., dict[str, Any]],
    server: Server,
    make_database: Callable[..., str],
    s3: S3,
    tmp_path: Path,
) -> None:
    """The database Variable set, the destination moto's S3: the catalog_sync pod is the real
    `catalog sync`, and each Glue table (made as a crawler makes it) gets the night's partition."""
    import boto3

    database = make_database(*NIGHT_SCHEMA)
    bucket = s3.new_bucket()
    glue = boto3.client(
        "glue",
        endpoint_url=s3.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    glue_db = f"bronze_{os.urandom(4).hex()}"
    glue.create_database(DatabaseInput={"Name": glue_db})
    serde = {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}
    for table in ("store", "product", "empty_table"):
        glue.create_table(
            DatabaseName=glue_db,
            TableInput={
                "Name": table,
                "PartitionKeys": [{"Name": "cog_dt_ingestion", "Type": "string"}],
                "StorageDescriptor": {
                    "Columns": [{"Name": "id", "Type": "bigint"}],
                    "Location": f"s3://{bucket}/{PREFIX}/{table}/",
                    "SerdeInfo": serde,
                },
            },
        )
    with webhook() as hook:
        result = _night(
            dag_run,
            server,
            database,
            tmp_path,
            hook,
            "2026-03-10",
            RADAR_DEST=f"s3://{bucket}",
            AWS_ENDPOINT_URL=s3.endpoint,
            AIRFLOW_VAR_RADAR_EXTRACT_GLUE_DATABASE=glue_db,
            **s3.env,
        )
    calls = {c["task"]: c for c in result["calls"] if c["map_index"] < 0}
    assert result["run"] == "success", json.dumps(result["calls"], indent=1)[-4000:]
    assert calls["catalog_sync"]["code"] == 0
    assert calls["catalog_sync"]["stdout"].splitlines()[-1] == (
        f"glue catalog sync of cog_dt_ingestion=2026-03-10 into {glue_db}: 3 tables, "
        "3 created, 0 updated, 0 unchanged, 0 failed: ok"
    )
    for table in ("store", "product", "empty_table"):
        (partition,) = glue.get_partitions(DatabaseName=glue_db, TableName=table)["Partitions"]
        assert partition["Values"] == ["2026-03-10"]
        assert partition["StorageDescriptor"]["Location"] == (
            f"s3://{bucket}/{PREFIX}/{table}/cog_dt_ingestion=2026-03-10/"
        )
