"""One run summary for a date, from every run report of that date (shards and reruns).

For each table, the result of the latest report (by `started_at`, then run id) that holds it,
so a rerun of one table replaces its earlier failure. A `skipped` or `not_run` entry means
that run did not touch the table: it never replaces a published or failed result of another
run, which describes what the partition holds. The tables expected are those of the plan
saved for the date (`plan --save`) when there is one: a planned table that no report holds
is `not_run`, with the error "shard I/N wrote no report" — unless the partition's manifest
says this night published it (after the plan was saved): a pod that died after publishing
wrote no report, and the `--resume` retry only skipped the table.

The merged report is stored at keys.merged_report: a run report's JSON plus `runs` and
`shards`, with its own `format`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar

from extractor.config import Settings
from extractor.errors import ExtractError, FormatError, Step
from extractor.run.report import RunReport, TableResult
from extractor.run.shards import load_plan
from extractor.run.summary import (
    compat_lines,
    drift_lines,
    failure_lines,
    headline,
    nulled_lines,
)
from extractor.sink.destination import Destination
from extractor.sink.formats import as_strs
from extractor.sink.publish import published_since

logger = logging.getLogger(__name__)

_TOUCHED = ("published", "failed")  # results that say what the partition holds now


@dataclass
class MergedReport(RunReport):
    """A RunReport over several runs; `run_id` is `<date>_merged`."""

    FORMAT: ClassVar[int] = 1
    WHAT: ClassVar[str] = "merged report"

    runs: list[str] = field(default_factory=list)  # run ids merged, oldest first
    shards: list[str] = field(default_factory=list)  # "I/N" of the shard runs among them

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "runs": list(self.runs), "shards": list(self.shards)}

    @classmethod
    def _fields(cls, data: dict[str, Any]) -> dict[str, Any]:
        return {
            **super()._fields(data),
            "runs": as_strs(data.get("runs", [])),
            "shards": as_strs(data.get("shards", [])),
        }


def summary_lines(merged: MergedReport) -> list[str]:
    """The summary of a date: a run's, but headed by the date and its runs, and each table
    not run with its own cause (a run's summary blames the circuit breaker)."""
    shards = f", shards {', '.join(merged.shards)}" if merged.shards else ""
    what = f"date {merged.date} ({len(merged.runs)} runs merged{shards})"
    return [
        headline(merged, what),
        *nulled_lines(merged.tables),
        *compat_lines(merged.tables),
        *failure_lines(merged.tables),
        *drift_lines(merged.tables),
        *(
            f"  {r.table}: not run: {r.error or 'no report holds it'}"
            for r in sorted(merged.tables, key=lambda r: r.table)
            if r.status == "not_run"
        ),
    ]


def run_reports(destination: Destination, date: str) -> list[RunReport]:
    """Every readable run report of `date`, oldest first; an unreadable one is logged and
    left out (a report is written whole, so this is damage from outside, or a later
    release's format)."""
    reports = []
    keys = destination.keys
    for path in destination.list_files(keys.runs()):
        if not keys.is_run_report_of(path, date):
            continue
        text = destination.read_text(path)
        try:
            report = RunReport.from_json(text or "", destination.url(path))
        except FormatError as exc:
            logger.warning("%s; left out", exc)
            continue
        if report.date == date:
            reports.append(report)
    return sorted(reports, key=lambda r: (r.started_at, r.run_id))


def merge_reports(settings: Settings, day: date) -> MergedReport:
    """Merge every run report of `day`, store the result, and return it (a MergedReport).

    Raises ExtractError (exit 1) when no run report exists for the date.
    """
    return _merge(Destination(settings), day.isoformat())


def _merge(destination: Destination, date: str) -> MergedReport:
    reports = run_reports(destination, date)
    if not reports:
        raise ExtractError(
            f"no run report for {date} under {destination.url(destination.keys.runs())}",
            step=Step.MERGE,
        )
    merged = combine(reports, date, destination.url(destination.root))
    plan = load_plan(destination, date)
    if plan is not None:
        held = {t.table for t in merged.tables}
        reported = {r.shard for r in reports if r.shard}
        for table, shard in sorted(plan.shard_of().items()):
            if table in held:
                continue
            why = (
                f"shard {shard} wrote no report"
                if shard not in reported
                else f"shard {shard}'s report does not hold it"
            )
            merged.tables.append(TableResult(table=table, status="not_run", error=why))
        _from_manifests(destination, merged, date, plan.saved_at)
    merged.tables.sort(key=lambda t: t.table)
    destination.write_text(destination.keys.merged_report(date), merged.to_json())
    status = "success" if merged.ok else "failed"
    logger.info(
        "merged %d run reports of %s: %s",
        len(merged.runs),
        date,
        status,
        extra={
            "fields": {
                "event": "merge",
                "date": date,
                "status": status,
                "runs": len(merged.runs),
                "seconds": merged.seconds,
                **merged.totals().to_dict(),
            }
        },
    )
    return merged


def _from_manifests(
    destination: Destination, merged: MergedReport, date: str, since: str | None
) -> None:
    """A table that no report shows as published, though this night published it: its run's
    pod died after the publish (no report), and a `--resume` retry then only skipped it.
    The manifest, written last, says what the partition holds."""
    untold = {t.table: t for t in merged.tables if t.status in ("skipped", "not_run")}
    for table, manifest in published_since(destination, untold, date, since).items():
        result = untold[table]
        result.status, result.error = "published", None
        result.rows, result.bytes = manifest.rows, manifest.bytes
        result.files = len(manifest.files)
        result.retry_note = f"published by run {manifest.run_id}, from its manifest"


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
        run_id=f"{date}_merged",
        date=date,
        database=last.database,
        destination=destination,
        started_at=started_at,
        finished_at=finished_at,
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
        return max(
            0.0, (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds()
        )
    except ValueError:
        return 0.0


def load_merged(settings: Settings, date: str) -> MergedReport | None:
    """The merged report stored for `date` by `merge_reports`, or None."""
    destination = Destination(settings)
    path = destination.keys.merged_report(date)
    text = destination.read_text(path)
    if text is None:
        return None
    return MergedReport.from_json(text, destination.url(path))
