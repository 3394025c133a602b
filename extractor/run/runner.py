"""A run: discover, select, plan, extract (largest table first), report.

A single table, or one worker, runs in this process and skips the cost of spawning
workers; otherwise `extractor.run.workers` runs the tables in a process pool. Either way each
table runs through `retry.run_table` (bounded retries, time limit), and every result
feeds the circuit breaker, which can stop the run from starting more tables.

Discovery's connection is not retried: a server that cannot be reached (or refuses us) at
the start is exit 3 within one connect timeout (10 s), and the scheduler's own task
retries, hours apart if need be, are the right loop for that, not a wait in here.
"""

from __future__ import annotations

import dataclasses
import logging
import posixpath
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from extractor.config import Settings
from extractor.drift.check import DriftCheck, check_drift
from extractor.errors import ExtractError, SchemaDrift, Step
from extractor.run.breaker import CircuitBreaker
from extractor.run.catalog import discover, select_tables
from extractor.run.outcome import LateFailure, RunOutcome
from extractor.run.pipeline import Progress, RunContext, TableTask
from extractor.run.report import RunReport, TableResult
from extractor.run.retry import run_table
from extractor.run.summary import error_line
from extractor.run.watchdog import start_watchdog
from extractor.sink.destination import Destination
from extractor.sink.publish import clean_orphans, clean_uploads, published_since, recover
from extractor.source.reader import reader_name
from extractor.streams_policy import auto_streams

if TYPE_CHECKING:
    from extractor.run.shards import Shard

logger = logging.getLogger(__name__)


def partition_date(day: date | None = None) -> date:
    """The partition date of a run: the one given, or today's UTC date (fixed once, at the
    start: a run that crosses midnight keeps its date)."""
    return day if day is not None else datetime.now(UTC).date()


def new_run_id(run_date: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{run_date}_{stamp}_{uuid.uuid4().hex[:8]}"


def run_extract(
    settings: Settings,
    *,
    tables: Sequence[str] = (),
    exclude: Sequence[str] = (),
    run_date: date | None = None,
    progress: Progress | None = None,
    on_result: Callable[[TableResult], None] | None = None,
    shard: Shard | None = None,
    resume: bool = False,
) -> RunOutcome:
    """Extract the selected tables and write the run report; never raises an ExtractError:
    how the run ended, its date included, is the returned outcome.

    A run-level error before any table ran (unreachable, unknown table) is the outcome's
    `stopped`; one after the tables ran (staging, the run report), its `late` failure.
    Tables named by `exclude` appear in the report as `skipped`; tables the circuit
    breaker kept from starting, as `not_run`. With `shard` (I of N), only group I of the
    plan for N shards over the selected tables runs (extractor/run/shards.py). With `resume`,
    tables already published for the date since its plan was saved (at any time without a
    saved plan) are `skipped`: an orchestrator's retry of a shard redoes only what failed.
    """
    started = time.monotonic()
    day = partition_date(run_date)
    try:
        run = _prepare(settings, tables, exclude, day.isoformat(), on_result, shard, resume)
    except ExtractError as exc:
        return RunOutcome(day, stopped=exc)
    report, run_id = run.report, run.report.run_id
    breaker = CircuitBreaker(settings.breaker_failures)
    for result in _execute(run.ctx, run.tasks, progress, breaker):
        result.drift = run.drift.tables[result.table].records()
        report.tables.append(result)
        _log_result(run_id, result)
        if breaker.open and report.breaker is None:  # logged after the result that opened it
            report.breaker = breaker.reason
            logger.error(
                "%s: no new table starts, the running ones finish",
                breaker.reason,
                extra={"fields": {"event": "breaker", "run_id": run_id, "reason": breaker.reason}},
            )
        if on_result is not None:
            on_result(result)
    outcome = RunOutcome(day, report, late=_finish(run.destination, report, started))
    totals = report.totals()
    logger.info(
        "run %s: %s, %d/%d tables published, %d rows, %d bytes in %.1f s",
        run_id,
        outcome.status,
        totals.published,
        totals.tables,
        totals.rows,
        totals.bytes,
        report.seconds,
        extra={
            "fields": {
                "event": "run",
                "run_id": run_id,
                "date": report.date,
                "status": outcome.status,
                "seconds": report.seconds,
                **totals.to_dict(),
                "error_rate": report.error_rate(),
            }
        },
    )
    return outcome


@dataclasses.dataclass(frozen=True)
class _Prepared:
    destination: Destination
    report: RunReport
    ctx: RunContext
    tasks: list[TableTask]
    drift: DriftCheck


def _prepare(
    settings: Settings,
    tables: Sequence[str],
    exclude: Sequence[str],
    day: str,
    on_result: Callable[[TableResult], None] | None,
    shard: Shard | None,
    resume: bool,
) -> _Prepared:
    """Everything before the first table: discovery, selection, drift, the destination's
    probe and recovery, the report's skeleton. Any ExtractError here stops the run."""
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    if settings.workers <= 1 or len(set(tables)) == 1:  # tables will run in this process
        start_watchdog()  # booted during discovery, rather than next to the first read
    destination = Destination(settings)
    catalog = discover(settings)
    names = select_tables(catalog, tables, exclude)
    gone: list[str] = []
    if shard is not None:
        from extractor.run.shards import shard_tables

        chosen = shard_tables(destination, catalog.tables, names, shard, day)
        names, gone = chosen.tables, chosen.gone
        logger.info(
            "shard %s: %d tables, from %s",
            shard,
            len(names),
            chosen.how,
            extra={
                "fields": {
                    "event": "shard",
                    "shard": str(shard),
                    "tables": len(names),
                    "plan": "saved" if chosen.saved else "live",
                }
            },
        )
    # Before any read: a table whose drift the policy fails is never read nor published.
    # Stored tables that vanished count only when the run covers the whole database (shard 1
    # reports them for a sharded run).
    whole = not tables and (shard is None or shard.index == 1)
    drift = check_drift(settings, catalog.tasks, names, whole_database=whole)
    run_id = new_run_id(day)
    destination.probe(run_id)
    scope = None if shard is None else {*names, *gone}
    for item in recover(destination, scope, run_id=run_id):
        logger.warning("finished publishing %s, which an earlier run left half-done", item)
    for orphan in clean_orphans(destination):
        logger.info("removed staging of a dead run: %s", destination.url(orphan))
    for key in clean_uploads(destination, scope, run_id=run_id):
        logger.info("aborted the unpublished upload of a dead run: %s", destination.url(key))
    report = RunReport(
        run_id=run_id,
        date=day,
        database=settings.mysql.database,
        destination=destination.url(destination.root),
        started_at=started_at,
        tls=catalog.server.tls,
        reader=reader_name(catalog.server),
        tables=[TableResult(table=name, status="skipped") for name in sorted(set(exclude))],
        shard=None if shard is None else str(shard),
    )
    logger.info(
        "run %s: %d tables from %s to %s, %s",
        run_id,
        len(names),
        settings.mysql.describe(),
        report.destination,
        "TLS" if catalog.server.tls else "plaintext",
    )
    drift.log()
    for blocked in _drift_results(drift, names):
        report.tables.append(blocked)
        if blocked.status == "failed":  # a vanished table that only warns: drift.log() said so
            _log_result(run_id, blocked)
        if on_result is not None:
            on_result(blocked)
    for name in gone:  # in the saved plan, dropped from the source since
        report.tables.append(
            TableResult(
                table=name,
                status="failed",
                error="planned for this shard but no longer a base table of the database",
                error_step=Step.DISCOVER,
                error_type="UsageError",
            )
        )
        _log_result(run_id, report.tables[-1])
    failed_drift = set(drift.failed)
    tasks = [
        dataclasses.replace(catalog.tasks[n], drift=drift.tables[n].records())
        for n in names
        if n not in failed_drift
    ]
    if resume:
        tasks = _resume(destination, tasks, day, report)
    return _Prepared(
        destination, report, RunContext(settings, run_id, day, catalog.server), tasks, drift
    )


def _finish(destination: Destination, report: RunReport, started: float) -> LateFailure | None:
    """Remove the run's staging and write its report, each tried whatever the other did.
    Their tables are published by now: a failure here is the run's late failure, logged
    with the tables it leaves published (a failed report write outranks a cleanup)."""
    late: LateFailure | None = None
    try:
        _remove_staging(destination, report)
    except ExtractError as exc:
        late = _late(report, LateFailure("staging not removed", exc, report_written=True))
    report.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
    report.seconds = round(time.monotonic() - started, 3)
    try:
        destination.write_text(destination.keys.run_report(report.run_id), report.to_json())
    except ExtractError as exc:
        late = _late(report, LateFailure("run report not written", exc, report_written=False))
    return late


def _remove_staging(destination: Destination, report: RunReport) -> None:
    """Remove the run's staging, but for the tables whose publish failed after its journal:
    the next run rolls that publish forward from the staged files (`recover`), and
    `clean_orphans` leaves a journaled run's staging alone."""
    staging = destination.keys.staging(report.run_id)
    journaled = {
        t.table
        for t in report.tables
        if t.status != "published"
        and destination.exists(destination.keys.journal(t.table, report.date))
    }
    if not journaled:
        destination.remove_tree(staging)
        return
    for table_dir in destination.list_dirs(staging):
        if posixpath.basename(table_dir) not in journaled:
            destination.remove_tree(table_dir)


def _late(report: RunReport, late: LateFailure) -> LateFailure:
    published = sorted(t.table for t in report.tables if t.status == "published")
    logger.error(
        "run %s: %s, after publishing %d tables (%s)",
        report.run_id,
        late.line(),
        len(published),
        ", ".join(published) or "none",
        extra={
            "fields": {
                "event": "run_end_failed",
                "run_id": report.run_id,
                "date": report.date,
                "step": late.error.step,
                "error": str(late.error),
                "published": published,
            }
        },
    )
    return late


def _drift_results(drift: DriftCheck, names: Sequence[str]) -> list[TableResult]:
    """Results of the tables that will not run for drift: those the policy fails, and the
    stored tables that no longer exist (`failed` when the policy fails them, else
    `skipped`: there is nothing left to extract)."""
    out = []
    for name, table in sorted(drift.tables.items()):
        if table.action == "fail":
            out.append(
                TableResult(
                    table=name,
                    status="failed",
                    error=table.error(),
                    error_step=Step.DRIFT,
                    error_type=SchemaDrift.__name__,
                    retry_note="not retried: the schema must be reviewed",
                    drift=table.records(),
                )
            )
        elif name not in names:  # a removed table under warn or evolve
            out.append(TableResult(table=name, status="skipped", drift=table.records()))
    return out


def _resume(
    destination: Destination, tasks: list[TableTask], day: str, report: RunReport
) -> list[TableTask]:
    from extractor.run.shards import load_plan

    plan = load_plan(destination, day)
    since = plan.saved_at if plan is not None else None
    done = published_since(destination, [t.table for t in tasks], day, since)
    for table, manifest in sorted(done.items()):
        note = f"already published for {day} by run {manifest.run_id} (--resume)"
        report.tables.append(TableResult(table=table, status="skipped", retry_note=note))
        logger.info(
            "%s: %s",
            table,
            note,
            extra={
                "fields": {
                    "event": "table",
                    "run_id": report.run_id,
                    "table": table,
                    "status": "skipped",
                }
            },
        )
    return [t for t in tasks if t.table not in done]


def plan_streams(settings: Settings, tasks: list[TableTask]) -> list[TableTask]:
    """Each task with the streams its setting gives it; `auto` is decided here, over the
    run's tables (largest first) and its workers (extractor/streams_policy.py)."""
    sizes = [t.estimated_bytes for t in tasks]
    planned = []
    for index, task in enumerate(tasks):
        wanted = setting = settings.streams.streams_for(task.table)
        if wanted == "auto":
            wanted = auto_streams(sizes, settings.workers) if index == 0 else 1
            if wanted > 1:
                logger.info(
                    "%s: auto: %d streams (%d of the run's %d estimated bytes, %d workers)",
                    task.table,
                    wanted,
                    task.estimated_bytes,
                    sum(sizes),
                    settings.workers,
                )
        planned.append(dataclasses.replace(task, streams=wanted, streams_asked=setting != 1))
    return planned


def _execute(
    ctx: RunContext, tasks: list[TableTask], progress: Progress | None, breaker: CircuitBreaker
) -> Iterator[TableResult]:
    tasks = plan_streams(ctx.settings, tasks)
    workers = min(ctx.settings.workers, len(tasks))
    if workers <= 1:  # one table or one worker: no process to spawn
        for task in tasks:
            if breaker.open:
                yield breaker.not_run(task.table)
                continue
            result = run_table(ctx, task, progress, stop=lambda: breaker.open)
            breaker.record(result)
            yield result
        return
    from extractor.run.workers import run_in_pool

    yield from run_in_pool(ctx, tasks, workers, progress, breaker)


def _log_result(run_id: str, r: TableResult) -> None:
    """One line per table; with --log-json its fields are JSON keys for metric filters."""
    fields = {
        "event": "table",
        "run_id": run_id,
        "table": r.table,
        "status": r.status,
        "rows": r.rows,
        "files": r.files,
        "bytes": r.bytes,
        "seconds": r.seconds,
        "nulled": sum(r.nulled.values()),
        "attempts": r.attempts,
    }
    if r.status == "published":
        again = f" on attempt {r.attempts}" if r.attempts > 1 else ""
        logger.info(
            "%s: published %d rows in %d files (%d bytes) in %.1f s%s",
            r.table,
            r.rows,
            r.files,
            r.bytes,
            r.seconds,
            again,
            extra={"fields": fields},
        )
    elif r.status == "not_run":
        fields.update(error=r.error)
        logger.warning("%s: not run (circuit breaker open)", r.table, extra={"fields": fields})
    else:
        fields.update(step=r.error_step, error=r.error, transient=r.transient)
        logger.error("%s", error_line(r), extra={"fields": fields})
