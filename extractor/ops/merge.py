"""One run summary for a date, from every run report of that date (shards and reruns).

For each table, the result of the latest report (by `started_at`, then run id) that holds it,
so a rerun of one table replaces its earlier failure. A `skipped` or `not_run` entry means
that run did not touch the table: it never replaces a published or failed result of another
run, which describes what the partition holds. The tables expected are those of the plan
saved for the date (`plan --save`) when there is one: a planned table that no report holds
is `not_run`, with the error "shard I/N wrote no report" — unless the partition's manifest
says this night published it (after the plan was saved): a pod that died after publishing
wrote no report, and the `--resume` retry only skipped the table.

    <root>/_radar_extract/reports/<date>.json   the merged report (RunReport JSON + runs, shards)
"""

from __future__ import annotations

import json
import logging
import posixpath
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from extractor.config import Settings
from extractor.errors import ExtractError, Step
from extractor.run.report import RunReport, TableResult
from extractor.run.shards import load_plan
from extractor.sink.destination import Destination
from extractor.sink.publish import published_since

logger = logging.getLogger(__name__)

_TOUCHED = ("published", "failed")  # results that say what the partition holds now


@dataclass
class MergedReport(RunReport):
    """A RunReport over several runs; `run_id` is `<date>_merged`."""

    runs: list[str] = field(default_factory=list)  # run ids merged, oldest first
    shards: list[str] = field(default_factory=list)  # "I/N" of the shard runs among them

    def summary_lines(self) -> list[str]:
        lines = super().summary_lines()
        shards = f", shards {', '.join(self.shards)}" if self.shards else ""
        lines[0] = lines[0].replace(f"run {self.run_id}:", f"date {self.date} "
                                    f"({len(self.runs)} runs merged{shards}):", 1)
        # The base class explains not_run by the circuit breaker; here each has its own cause.
        lines = [line for line in lines if not line.startswith("  not run,")]
        lines.extend(f"  {r.table}: not run: {r.error or 'no report holds it'}"
                     for r in sorted(self.tables, key=lambda r: r.table)
                     if r.status == "not_run")
        return lines


def reports_path(destination: Destination, date: str) -> str:
    return destination.internal("reports", f"{date}.json")


def run_reports(destination: Destination, date: str) -> list[RunReport]:
    """Every readable run report of `date`, oldest first; an unreadable one is logged and
    left out (a report is written whole, so this is damage from outside)."""
    reports = []
    for path in destination.list_files(destination.internal("runs")):
        name = posixpath.basename(path)
        if not (name.startswith(f"{date}_") and name.endswith(".json")):
            continue
        text = destination.read_text(path)
        try:
            report = RunReport.from_dict(json.loads(text or ""))
        except (ValueError, TypeError, KeyError) as exc:
            logger.warning("run report %s is not readable, left out: %s",
                           destination.url(path), exc)
            continue
        if report.date == date:
            reports.append(report)
    return sorted(reports, key=lambda r: (r.started_at, r.run_id))


def merge_reports(settings: Settings, day: date) -> RunReport:
    """Merge every run report of `day`, store the result, and return it (a MergedReport).

    Raises ExtractError (exit 1) when no run report exists for the date.
    """
    return _merge(Destination(settings), day.isoformat())


def _merge(destination: Destination, date: str) -> RunReport:
    reports = run_reports(destination, date)
    if not reports:
        raise ExtractError(f"no run report for {date} under "
                           f"{destination.url(destination.internal('runs'))}", step=Step.MERGE)
    merged = combine(reports, date, destination.url(destination.root))
    plan = load_plan(destination, date)
    if plan is not None:
        held = {t.table for t in merged.tables}
        reported = {r.shard for r in reports if r.shard}
        for table, shard in sorted(plan.shard_of().items()):
            if table in held:
                continue
            why = (f"shard {shard} wrote no report" if shard not in reported
                   else f"shard {shard}'s report does not hold it")
            merged.tables.append(TableResult(table=table, status="not_run", error=why))
        _from_manifests(destination, merged, date, plan.saved_at)
    merged.tables.sort(key=lambda t: t.table)
    destination.write_text(reports_path(destination, date), merged.to_json())
    status = "success" if merged.ok else "failed"
    logger.info("merged %d run reports of %s: %s", len(merged.runs), date, status,
                extra={"fields": {"event": "merge", "date": date, "status": status,
                                  "runs": len(merged.runs), "seconds": merged.seconds,
                                  **merged.totals()}})
    return merged


def _from_manifests(destination: Destination, merged: MergedReport, date: str,
                    since: str | None) -> None:
    """A table that no report shows as published, though this night published it: its run's
    pod died after the publish (no report), and a `--resume` retry then only skipped it.
    The manifest, written last, says what the partition holds."""
    untold = {t.table: t for t in merged.tables if t.status in ("skipped", "not_run")}
    for table, manifest in published_since(destination, untold, date, since).items():
        result = untold[table]
        result.status, result.error = "published", None
        result.rows, result.bytes = int(manifest["rows"]), int(manifest["bytes"])
        result.files = len(manifest["files"])
        result.retry_note = f"published by run {manifest.get('run_id')}, from its manifest"


def combine(reports: list[RunReport], date: str, destination: str) -> MergedReport:
    """The merge proper, over reports sorted oldest first."""
    latest: dict[str, TableResult] = {}
    for report in reports:
        for result in report.tables:
            earlier = latest.get(result.table)
            if earlier is None or result.status in _TOUCHED or earlier.status not in _TOUCHED:
                latest[result.table] = result
    last = reports[-1]
    started_at = min(r.started_at for r in reports)
    finished_at = max((r.finished_at for r in reports if r.finished_at), default="")
    shards = {r.shard for r in reports if r.shard}
    return MergedReport(
        run_id=f"{date}_merged", date=date, database=last.database, destination=destination,
        started_at=started_at, finished_at=finished_at,
        # The timestamps have whole seconds: never less than the longest run's own duration.
        seconds=max(_span(started_at, finished_at), *(r.seconds for r in reports)),
        tls=any(r.tls for r in reports),
        reader=", ".join(sorted({r.reader for r in reports})),
        tables=sorted(latest.values(), key=lambda t: t.table),
        breaker="; ".join(sorted({r.breaker for r in reports if r.breaker})) or None,
        runs=[r.run_id for r in reports],
        shards=sorted(shards, key=lambda s: tuple(int(p) for p in s.split("/"))[::-1]),
    )


def _span(first: str, last: str) -> float:
    """Wall seconds from the first start to the last finish (the reports' ISO timestamps)."""
    try:
        return max(0.0, (datetime.fromisoformat(last) - datetime.fromisoformat(first))
                   .total_seconds())
    except ValueError:
        return 0.0


def load_merged(settings: Settings, date: str) -> RunReport | None:
    """The merged report stored for `date` by `merge_reports`, or None."""
    destination = Destination(settings)
    text = destination.read_text(reports_path(destination, date))
    if text is None:
        return None
    data: dict[str, Any] = json.loads(text)
    return MergedReport.from_dict(data)
