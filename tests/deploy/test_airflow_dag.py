"""The Airflow DAG (deploy/airflow/) loads in the real Airflow 3 and has the promised shape.

Airflow cannot live in the project's venv, so `make airflow-venv` (a prerequisite of
`make test`) builds .venv-airflow, and airflow_probe.py runs there: DagBag parses the folder,
the probe reports tasks, schedule, retries and rendered arguments as JSON, and this test checks
them. No Airflow database is needed: the probe runs with a database URL that cannot be opened.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_PYTHON = ROOT / ".venv-airflow" / "bin" / "python"
DAG_FOLDER = ROOT / "deploy" / "airflow"
PROBE = Path(__file__).with_name("airflow_probe.py")


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not AIRFLOW_PYTHON.exists():  # fail, never skip: CI must run this test
        pytest.fail(f"{AIRFLOW_PYTHON} is missing: run `make airflow-venv` (make test does)")
    home = tmp_path_factory.mktemp("airflow_home")
    out = home / "probe.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "AIRFLOW_HOME": str(home),  # nothing lands in the repo or $HOME
        # A database that cannot exist: parsing must not need one.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/missing/dir/airflow.db",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    })
    proc = subprocess.run([str(AIRFLOW_PYTHON), str(PROBE), str(DAG_FOLDER), str(out)],
                          capture_output=True, text=True, env=env, cwd=home, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
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
        "notify": ["crawl", "merge", "validate"],
        "run_failed": ["crawl", "extract", "merge", "notify", "validate"],
    }
    pods = [tid for tid, task in probe["tasks"].items()
            if task["operator"] == "KubernetesPodOperator"]
    assert sorted(pods) == ["crawl", "extract", "merge", "notify", "plan", "validate"]


def test_extract_is_mapped_over_the_plan(probe: dict[str, Any]) -> None:
    extract = probe["tasks"]["extract"]
    assert extract["mapped"] is True
    assert probe["extract_expand"] == ["arguments"]
    # The plan's empty third group starts no pod; every shard keeps the plan's date and tables.
    assert probe["shard_arguments"] == [
        ["extract", "--date", "2026-01-02", "--shard", "1/3", "--table", "a", "--table", "b",
         "--log-json"],
        ["extract", "--date", "2026-01-02", "--shard", "2/3", "--table", "a", "--table", "b",
         "--log-json"],
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
    assert rules["run_failed"] == "one_failed"  # the run fails when a step did


@pytest.mark.parametrize("task_id", ["plan", "extract", "merge", "validate", "crawl", "notify"])
def test_retries_backoff_and_timeout(probe: dict[str, Any], task_id: str) -> None:
    task = probe["tasks"][task_id]
    assert task["retries"] == 2  # 3 attempts in total
    assert task["retry_exponential_backoff"] is True
    assert (task["retry_delay_s"], task["max_retry_delay_s"]) == (120.0, 600.0)
    assert task["execution_timeout_s"] == 3600.0


def test_conf_renders_to_argument_lists(probe: dict[str, Any]) -> None:
    rendered = probe["rendered"]
    assert rendered["plan"]["arguments"] == [
        "plan", "--shards", "3", "--date", "2026-01-02", "--table", "a", "--table", "b",
        "--save", "--json", "--output", "/airflow/xcom/return.json"]
    assert rendered["merge"]["arguments"] == ["report", "merge", "--date", "2026-01-02"]
    assert rendered["validate"]["arguments"] == [
        "validate", "--date", "2026-01-02", "--table", "a", "--table", "b"]
    assert rendered["crawl"]["arguments"] == [
        "crawl", "--date", "2026-01-02", "--glue-crawler", "radar-bronze"]
    assert rendered["notify"]["arguments"] == ["notify", "--date", "2026-01-02"]
    assert {r["image"] for r in rendered.values()} == {"registry/radar:1.2"}


def test_scheduled_run_defaults(probe: dict[str, Any]) -> None:
    # The run of 2026-03-04 02:00 UTC extracts partition 2026-03-04 with 4 shards, every table.
    assert probe["rendered_defaults"] == {
        "arguments": ["plan", "--shards", "4", "--date", "2026-03-04", "--save", "--json",
                      "--output", "/airflow/xcom/return.json"],
        "image": "radar-extract:latest",
        "namespace": "data",
    }


@pytest.mark.parametrize(("case", "message"), [
    ("date", "conf date '2026-13-01' is not a date (YYYY-MM-DD)"),
    ("table", "conf tables has invalid names: 'store; rm -rf /'"),
    ("key", "conf has unknown keys: table (known: date, tables)"),
    ("shards", "Variable radar_extract_shards must be 1-64, not 0"),
])
def test_bad_conf_fails_the_plan_clearly(probe: dict[str, Any], case: str, message: str) -> None:
    assert probe["rendered_bad"][case] == {"error": f"ConfError: {message}",
                                           "fails_without_retry": True}
