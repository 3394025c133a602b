"""Nightly radar-extract (Airflow 3): plan, one pod per shard, merge, validate, catalog, notify.

The catalog step is `catalog sync` (the Variable radar_extract_glue_database set), else the
Glue crawler (radar_extract_glue_crawler set), else nothing.

Every task runs the radar-extract image in a Kubernetes pod (KubernetesPodOperator); the
image's entrypoint is `radar-extract`, so a task's `arguments` are the command and its flags.
See deploy/airflow/README.md for the Variables, the Kubernetes objects it needs, the ECS
alternative and the run conf of manual runs:

    {"date": "YYYY-MM-DD"}           rerun one partition date (default: the run's own day, UTC)
    {"tables": ["store", "sale"]}    only these tables (may be combined with "date")

The conf is validated when the plan task renders its arguments: a bad date, table name or
key fails `plan` with one clear line. Arguments are always lists, never a shell string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.secret import Secret
from airflow.sdk import (
    DAG,
    AsyncCallback,
    CronTriggerTimetable,
    DeadlineAlert,
    DeadlineReference,
    TriggerRule,
    Variable,
    task,
)
from airflow.sdk.exceptions import AirflowFailException
from kubernetes.client import models as k8s

DAG_ID = "radar_extract"
# KubernetesPodOperator's sidecar reads the pod's XCom from this file.
XCOM_FILE = "/airflow/xcom/return.json"
# Deployment structure, fixed per installation (README): a Secret holding RADAR_MYSQL_PASSWORD
# and RADAR_SLACK_WEBHOOK_URL, a ConfigMap holding the other RADAR_* settings, and a service
# account whose IAM role may write the bucket and start the Glue crawler or sync the catalog.
K8S_SECRET = "radar-extract"
K8S_CONFIGMAP = "radar-extract"
K8S_SERVICE_ACCOUNT = "radar-extract"
# Airflow Variables (all optional) and their defaults.
VAR_IMAGE = "radar_extract_image"
VAR_NAMESPACE = "radar_extract_namespace"
VAR_SHARDS = "radar_extract_shards"
VAR_CRAWLER = "radar_extract_glue_crawler"
VAR_GLUE_DATABASE = "radar_extract_glue_database"
DEFAULT_IMAGE = "radar-extract:latest"
DEFAULT_NAMESPACE = "data"
DEFAULT_SHARDS = 4
MAX_SHARDS = 64
# One extract pod: its CPUs are its workers (the engine's default, os.cpu_count(), would see the
# node's cores, not the pod's). Disk: with an S3 destination each table's Parquet files are
# spooled in TMPDIR until published, so size it for the largest tables x workers.
EXTRACT_WORKERS = 2
EXTRACT_RESOURCES = k8s.V1ResourceRequirements(
    requests={"cpu": str(EXTRACT_WORKERS), "memory": "2Gi", "ephemeral-storage": "20Gi"},
    limits={"memory": "4Gi", "ephemeral-storage": "40Gi"},
)
# The Slack connection the 03:00 deadline alert posts through (apache-airflow-providers-slack).
SLACK_CONN_ID = "radar_extract_slack"

# Letters, digits, _ $ -, 1-64 chars (the engine's rule for names, extractor/config.py); the
# engine then refuses, with exit 2, a name that is not a base table.
_TABLE = re.compile(r"^[A-Za-z0-9_$-]{1,64}$")
_CONF_KEYS = frozenset({"date", "tables"})


class ConfError(AirflowFailException):
    """A bad DAG run conf: fails the task at once, without retries."""


def run_date(
    conf: Mapping[str, Any] | None, logical_date: datetime | None, run_after: datetime | None
) -> str:
    """The partition date of a run: conf "date", else the UTC day of the logical date.

    The schedule is a CronTriggerTimetable, so the 02:00 run's logical date is 02:00 of the day
    it runs: the same day the engine picks by default (today, UTC). A manual run without a
    logical date uses the day it was triggered for (`run_after`).
    """
    conf = _checked(conf)
    value = conf.get("date")
    if value is None:
        moment = logical_date or run_after
        if moment is None:
            raise ConfError("the run has neither a logical date nor run_after; pass conf date")
        return moment.astimezone(UTC).date().isoformat()
    if not isinstance(value, str) or len(value) != 10:
        raise ConfError(f"conf date {value!r} is not a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise ConfError(f"conf date {value!r} is not a date (YYYY-MM-DD)") from None


def table_flags(conf: Mapping[str, Any] | None) -> list[str]:
    """`--table NAME` for each conf table (empty: every table)."""
    tables = _checked(conf).get("tables")
    if tables is None:
        return []
    if not isinstance(tables, list) or not tables:
        raise ConfError("conf tables must be a non-empty list of table names")
    bad = [t for t in tables if not isinstance(t, str) or not _TABLE.match(t)]
    if bad:
        raise ConfError(f"conf tables has invalid names: {', '.join(map(repr, bad[:5]))}")
    flags: list[str] = []
    for name in dict.fromkeys(tables):  # dedupe, keep order
        flags += ["--table", name]
    return flags


def shard_count(value: Any) -> int:
    try:
        shards = int(value)
    except (TypeError, ValueError):
        raise ConfError(f"Variable {VAR_SHARDS} {value!r} is not a number") from None
    if not 1 <= shards <= MAX_SHARDS:
        raise ConfError(f"Variable {VAR_SHARDS} must be 1-{MAX_SHARDS}, not {shards}")
    return shards


def _checked(conf: Mapping[str, Any] | None) -> Mapping[str, Any]:
    conf = conf or {}
    unknown = sorted(set(conf) - _CONF_KEYS)
    if unknown:
        raise ConfError(f"conf has unknown keys: {', '.join(unknown)} (known: date, tables)")
    return conf


def plan_arguments(
    conf: Mapping[str, Any] | None,
    logical_date: datetime | None,
    run_after: datetime | None,
    shards: Any,
) -> list[str]:
    """`radar-extract plan ...`: saved for the shards, its JSON written where the XCom is read."""
    return [
        "plan",
        "--shards",
        str(shard_count(shards)),
        "--date",
        run_date(conf, logical_date, run_after),
        *table_flags(conf),
        "--save",
        "--json",
        "--output",
        XCOM_FILE,
    ]


def extract_arguments(plan: Mapping[str, Any], conf: Mapping[str, Any] | None) -> list[list[str]]:
    """One argument list per non-empty group of the plan, with the plan's own date.

    `--resume`: a retry of a shard skips the tables its earlier attempts published since the
    plan was saved, so it redoes only what failed (the engine already retried transient
    failures table by table) and never reads the whole group from production again.
    """
    flags = table_flags(conf)  # the same selection as the plan's
    return [
        [
            "extract",
            "--date",
            str(plan["date"]),
            "--shard",
            str(group["shard"]),
            *flags,
            "--resume",
            "--log-json",
        ]
        for group in plan["groups"]
        if group.get("tables")
    ]


def step_arguments(
    step: str,
    conf: Mapping[str, Any] | None,
    logical_date: datetime | None,
    run_after: datetime | None,
    name: str = "",
) -> list[str]:
    """Arguments of the steps after the shards, all for the same date as the plan; `name` is
    the crawler's (crawl) or the Glue database's (catalog_sync)."""
    day = run_date(conf, logical_date, run_after)
    if step == "merge":
        return ["report", "merge", "--date", day]
    if step == "validate":
        return ["validate", "--date", day, *table_flags(conf)]
    if step == "crawl":
        return ["crawl", "--date", day, "--glue-crawler", name]
    if step == "catalog_sync":
        return ["catalog", "sync", "--date", day, "--database", name, *table_flags(conf)]
    if step == "notify":
        return ["notify", "--date", day]
    raise ValueError(f"unknown step {step!r}")


# Macros for the templates below: the DAG renders templates as native objects, so
# "{{ radar_plan_arguments(dag_run, ...) }}" becomes the list itself, not its repr.
def _plan_macro(dag_run: Any, shards: Any) -> list[str]:
    return plan_arguments(dag_run.conf, dag_run.logical_date, dag_run.run_after, shards)


def _step_macro(step: str, dag_run: Any, name: str = "") -> list[str]:
    return step_arguments(step, dag_run.conf, dag_run.logical_date, dag_run.run_after, name)


def _var(name: str, default: object) -> str:
    """The Jinja expression of an Airflow Variable with its default (read at run time)."""
    return f"var.value.get({name!r}, {str(default)!r})"


default_args: dict[str, Any] = {
    "owner": "data-engineering",
    # 3 attempts in total, as the engine counts them (RADAR_RETRY_ATTEMPTS): 1 + 2 retries,
    # waiting 2 then 4 minutes (exponential, capped at 10).
    "retries": 2,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
    "execution_timeout": timedelta(seconds=3600),
}

# Shared by every pod: settings from the ConfigMap and the Secret (never in this file).
_POD: dict[str, Any] = {
    "image": "{{ " + _var(VAR_IMAGE, DEFAULT_IMAGE) + " }}",
    "namespace": "{{ " + _var(VAR_NAMESPACE, DEFAULT_NAMESPACE) + " }}",
    "service_account_name": K8S_SERVICE_ACCOUNT,
    "configmaps": [K8S_CONFIGMAP],
    "secrets": [Secret("env", None, K8S_SECRET)],
    "get_logs": True,
    "on_finish_action": "delete_pod",
}

with DAG(
    dag_id=DAG_ID,
    description="MySQL (Radar) to S3 Parquet, nightly, sharded over pods",
    # A trigger timetable: the run at 02:00 UTC has that instant as its logical date.
    schedule=CronTriggerTimetable("0 2 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    render_template_as_native_obj=True,
    user_defined_macros={"radar_plan_arguments": _plan_macro, "radar_arguments": _step_macro},
    # Airflow 3 has no SLAs; a deadline alert replaces them (3.1+, experimental): if the run
    # has not finished one hour after its logical date (02:00), i.e. by 03:00 UTC, Slack hears.
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=timedelta(hours=1),
        callback=AsyncCallback(
            "airflow.providers.slack.notifications.slack_webhook.SlackWebhookNotifier",
            kwargs={
                "slack_webhook_conn_id": SLACK_CONN_ID,
                "text": ":alarm_clock: radar-extract {{ dag_run.run_id }} has not finished "
                "by its 03:00 UTC deadline",
            },
        ),
    ),
    tags=["radar-extract"],
    doc_md=__doc__,
) as dag:
    plan = KubernetesPodOperator(
        task_id="plan",
        name="radar-extract-plan",
        arguments="{{ radar_plan_arguments(dag_run, " + _var(VAR_SHARDS, DEFAULT_SHARDS) + ") }}",
        do_xcom_push=True,
        **_POD,
    )

    @task(retries=0)
    def shard_arguments(plan: dict[str, Any], dag_run: Any = None) -> list[list[str]]:
        """The plan's groups as argument lists, one mapped extract pod each."""
        return extract_arguments(plan, dag_run.conf if dag_run is not None else None)

    extract = KubernetesPodOperator.partial(
        task_id="extract",
        name="radar-extract-shard",
        env_vars={"RADAR_WORKERS": str(EXTRACT_WORKERS)},
        container_resources=EXTRACT_RESOURCES,
        **_POD,
    ).expand(arguments=shard_arguments(plan.output))

    # Always runs once the shards are done, failed or not: it records what every shard did.
    # Its exit 1 (a table failed) and validate's (a partition is not sound) are verdicts on
    # the data, which a retry cannot change: no retries, so Slack hears at once.
    merge = KubernetesPodOperator(
        task_id="merge",
        name="radar-extract-merge",
        arguments="{{ radar_arguments('merge', dag_run) }}",
        trigger_rule=TriggerRule.ALL_DONE,
        retries=0,
        **_POD,
    )
    validate = KubernetesPodOperator(
        task_id="validate",
        name="radar-extract-validate",
        arguments="{{ radar_arguments('validate', dag_run) }}",
        retries=0,
        **_POD,
    )

    # The catalog step is optional: without its Variable a step is skipped (notify still
    # runs). The sync replaces the crawler when both are set: a crawl after it could rewrite
    # the schema the sync keeps.
    @task.short_circuit(ignore_downstream_trigger_rules=False, retries=0)
    def crawler_configured() -> bool:
        return bool(Variable.get(VAR_CRAWLER, default="")) and not Variable.get(
            VAR_GLUE_DATABASE, default=""
        )

    @task.short_circuit(ignore_downstream_trigger_rules=False, retries=0)
    def catalog_configured() -> bool:
        return bool(Variable.get(VAR_GLUE_DATABASE, default=""))

    crawl = KubernetesPodOperator(
        task_id="crawl",
        name="radar-extract-crawl",
        arguments="{{ radar_arguments('crawl', dag_run, " + _var(VAR_CRAWLER, "") + ") }}",
        **_POD,
    )
    catalog_sync = KubernetesPodOperator(
        task_id="catalog_sync",
        name="radar-extract-catalog-sync",
        arguments="{{ radar_arguments('catalog_sync', dag_run, "
        + _var(VAR_GLUE_DATABASE, "")
        + ") }}",
        **_POD,
    )
    # Always tells Slack, whatever happened before.
    notify = KubernetesPodOperator(
        task_id="notify",
        name="radar-extract-notify",
        arguments="{{ radar_arguments('notify', dag_run) }}",
        trigger_rule=TriggerRule.ALL_DONE,
        **_POD,
    )

    # notify always succeeds, so on its own it would mark a failed night as a success:
    # this leaf fails the run when anything upstream failed.
    @task(trigger_rule=TriggerRule.ONE_FAILED, retries=0)
    def run_failed() -> None:
        raise AirflowFailException("a radar-extract step failed: see the failed tasks and Slack")

    extract >> merge >> validate >> [crawl, catalog_sync]
    crawler_configured() >> crawl
    catalog_configured() >> catalog_sync
    [merge, validate, crawl, catalog_sync] >> notify
    [extract, merge, validate, crawl, catalog_sync, notify] >> run_failed()
