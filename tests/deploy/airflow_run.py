"""Runs inside .venv-airflow: one DAG run of deploy/airflow/ in the real Airflow (`dag.test()`,
scheduler logic, trigger rules, XCom, dynamic task mapping, template rendering), with every
pod replaced by a stand-in that records its arguments. Writes the result as JSON to OUT_FILE.

Usage: python airflow_run.py DAG_FOLDER OUT_FILE SCENARIO LOGICAL_DATE CONF_JSON
SCENARIO: "ok", or "shard_fails" (the pod of the plan's second group exits non-zero), or
"engine": each pod runs the real engine instead, as a process of the command in
RADAR_EXTRACT_COMMAND (a JSON list), with the pod's own arguments and this environment; the
plan's XCom file is redirected into RADAR_XCOM_DIR.
Needs AIRFLOW_HOME with a migrated database (`airflow db migrate`) and DAGS_FOLDER set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.dag_processing.dagbag import DagBag
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

calls: list[dict[str, Any]] = []


def main(folder: str, out_file: str, scenario: str, logical_date: str, conf: str) -> None:
    def stand_in(self: KubernetesPodOperator, context: Any) -> Any:
        map_index = context["ti"].map_index
        calls.append(
            {
                "task": self.task_id,
                "map_index": map_index,
                "arguments": self.arguments,
                "image": self.image,
            }
        )
        if scenario == "engine":
            return run_engine(self.task_id, list(self.arguments))
        if self.task_id == "plan":  # what `radar-extract plan --json --output ...` returns
            day = self.arguments[self.arguments.index("--date") + 1]
            return {
                "date": day,
                "shards": 3,
                "groups": [
                    {"shard": "1/3", "tables": ["a"], "estimated_bytes": 2, "estimated_rows": 2},
                    {"shard": "2/3", "tables": ["b"], "estimated_bytes": 1, "estimated_rows": 1},
                    {"shard": "3/3", "tables": [], "estimated_bytes": 0, "estimated_rows": 0},
                ],
            }
        if scenario == "shard_fails" and self.task_id == "extract" and map_index == 1:
            raise RuntimeError("pod exited with 1")
        return None

    KubernetesPodOperator.execute = stand_in
    dag = DagBag(dag_folder=folder).dags["radar_extract"]
    # dag.test() serializes the DAG in memory and never stores its deadline alerts, then looks
    # them up by id and crashes; the scheduler stores them. The probe checks the deadline.
    dag.deadline = None
    for task in dag.tasks:
        task.retries = 0  # dag.test() would sleep through the real retry delays
    run = dag.test(logical_date=datetime.fromisoformat(logical_date), run_conf=json.loads(conf))
    states = {
        f"{ti.task_id}[{ti.map_index}]" if ti.map_index >= 0 else ti.task_id: str(ti.state)
        for ti in run.get_task_instances()
    }
    Path(out_file).write_text(
        json.dumps({"run": str(run.state), "states": states, "calls": calls}), encoding="utf-8"
    )


def run_engine(task_id: str, arguments: list[str]) -> Any:
    """What the pod would do: the image's entrypoint with the task's arguments."""
    xcom = None
    if "--output" in arguments:  # /airflow/xcom/return.json in a pod
        xcom = Path(os.environ["RADAR_XCOM_DIR"], f"{task_id}.json")
        arguments[arguments.index("--output") + 1] = str(xcom)
    command = json.loads(os.environ["RADAR_EXTRACT_COMMAND"])
    proc = subprocess.run(
        [*command, *arguments],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
    )
    calls[-1].update(code=proc.returncode, stdout=proc.stdout[-3000:], stderr=proc.stderr[-3000:])
    if proc.returncode != 0:
        raise RuntimeError(f"pod exited with {proc.returncode}")
    return json.loads(xcom.read_text(encoding="utf-8")) if xcom is not None else None


if __name__ == "__main__":
    main(*sys.argv[1:6])
