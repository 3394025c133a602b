"""Runs inside .venv-airflow (not the project's venv): loads deploy/airflow/ with Airflow's own
DagBag and writes what the DAG test checks as one JSON object to OUT_FILE (Airflow logs to
stdout, so the result goes to a file of its own).

Usage: python airflow_probe.py DAG_FOLDER OUT_FILE
"""

from __future__ import annotations

import copy
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.exceptions import AirflowFailException
from airflow.serialization.serialized_objects import DagSerialization

RUN_AT = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)


def _render(dag: Any, task_id: str, conf: dict[str, Any], variables: dict[str, str]) -> Any:
    """A task's templated fields rendered by the DAG's own Jinja environment, for a run with
    this conf; a rendering error becomes {"error": ...}."""
    run = SimpleNamespace(conf=conf, logical_date=RUN_AT, run_after=RUN_AT, run_id="manual")
    var = SimpleNamespace(value=SimpleNamespace(get=lambda k, d=None: variables.get(k, d)))
    task = copy.copy(dag.get_task(task_id))
    try:
        task.render_template_fields({"dag_run": run, "var": var}, jinja_env=dag.get_template_env())
    except Exception as exc:
        return {
            "error": f"{type(exc).__name__}: {exc}",
            "fails_without_retry": isinstance(exc, AirflowFailException),
        }
    return {"arguments": task.arguments, "image": task.image, "namespace": task.namespace}


def main(folder: str, out_file: str) -> None:
    bag = DagBag(dag_folder=folder)
    out: dict[str, Any] = {
        "import_errors": {k: str(v) for k, v in bag.import_errors.items()},
        "dag_ids": sorted(bag.dag_ids),
    }
    dag = bag.dags.get("radar_extract")
    if dag is None:
        Path(out_file).write_text(json.dumps(out), encoding="utf-8")
        return
    tasks = {}
    for task in dag.tasks:
        tasks[task.task_id] = {
            "type": type(task).__name__,
            "operator": getattr(task, "operator_name", type(task).__name__),
            "upstream": sorted(task.upstream_task_ids),
            "trigger_rule": str(task.trigger_rule.value),
            "retries": task.retries,
            "retry_delay_s": task.retry_delay.total_seconds(),
            "retry_exponential_backoff": bool(task.retry_exponential_backoff),
            "max_retry_delay_s": task.max_retry_delay.total_seconds()
            if task.max_retry_delay
            else None,
            "execution_timeout_s": task.execution_timeout.total_seconds()
            if task.execution_timeout
            else None,
            "mapped": type(task).__name__ == "MappedOperator",
        }
    extract = dag.get_task("extract")
    out["extract_expand"] = sorted(extract.expand_input.value)
    partial = extract.partial_kwargs
    out["extract_pod"] = {
        "env_vars": {e.name: e.value for e in partial["env_vars"]}
        if isinstance(partial["env_vars"], list)
        else partial["env_vars"],
        "requests": partial["container_resources"].requests,
    }
    plan_task = dag.get_task("plan")
    out["pod"] = {
        "secrets": [[s.deploy_type, s.deploy_target, s.secret] for s in plan_task.secrets],
        "configmaps": plan_task.configmaps,
        "service_account_name": plan_task.service_account_name,
        "env_vars": plan_task.env_vars,
        "do_xcom_push": plan_task.do_xcom_push,
    }
    deadline = dag.deadline[0]
    serialized = DagSerialization.to_dict(dag)  # what the DAG processor stores
    out.update(
        {
            "tasks": tasks,
            "timetable": type(dag.timetable).__name__,
            "cron": dag.timetable.expression,
            "timezone": str(dag.timetable.timezone),
            "catchup": dag.catchup,
            "deadline": {
                "reference": type(deadline.reference).__name__,
                "interval_s": deadline.interval.total_seconds(),
                "callback": deadline.callback.path,
            },
            "serialized_tasks": len(serialized["dag"]["tasks"]),
        }
    )
    conf = {"tables": ["a", "b"], "date": "2026-01-02"}
    variables = {
        "radar_extract_shards": "3",
        "radar_extract_image": "registry/radar:1.2",
        "radar_extract_glue_crawler": "radar-bronze",
        "radar_extract_glue_database": "bronze_radar",
    }
    out["rendered"] = {
        tid: _render(dag, tid, conf, variables)
        for tid in ("plan", "merge", "validate", "crawl", "catalog_sync", "notify")
    }
    out["rendered_defaults"] = _render(dag, "plan", {}, {})
    out["rendered_bad"] = {
        "date": _render(dag, "plan", {"date": "2026-13-01"}, {}),
        "table": _render(dag, "plan", {"tables": ["store; rm -rf /"]}, {}),
        "key": _render(dag, "plan", {"table": ["store"]}, {}),
        "shards": _render(dag, "plan", {}, {"radar_extract_shards": "0"}),
    }
    plan = {
        "date": "2026-01-02",
        "shards": 3,
        "groups": [
            {"shard": "1/3", "tables": ["a"], "estimated_bytes": 2, "estimated_rows": 2},
            {"shard": "2/3", "tables": ["b"], "estimated_bytes": 1, "estimated_rows": 1},
            {"shard": "3/3", "tables": [], "estimated_bytes": 0, "estimated_rows": 0},
        ],
    }
    run = SimpleNamespace(conf=conf)
    out["shard_arguments"] = dag.get_task("shard_arguments").python_callable(plan, dag_run=run)
    Path(out_file).write_text(json.dumps(out), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
