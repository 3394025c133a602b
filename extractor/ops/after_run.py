"""What follows a run: the Glue crawler and the catalog sync after a success, then Slack.

`after_extract` does both for an unsharded `extract`; `notify_date` and `crawl_date` do
them for a date from its stored reports (the `notify` and `crawl` commands, run by the
DAG after the shards are merged). The crawler never starts after a failed run, and a
Slack failure never changes an exit code.
"""

from __future__ import annotations

import logging
from datetime import date

from extractor.config import Settings
from extractor.errors import EXIT_USAGE, ExtractError, FormatError, GlueError, Step
from extractor.ops.catalog import sync_catalog
from extractor.ops.glue import Started, start_crawler
from extractor.ops.merge import merge_reports
from extractor.ops.notify import send, send_stopped
from extractor.ops.validation import Validation
from extractor.run.outcome import RunOutcome
from extractor.run.report import RunReport
from extractor.sink.destination import Destination

logger = logging.getLogger(__name__)


def after_extract(settings: Settings, outcome: RunOutcome) -> ExtractError | None:
    """What follows an unsharded run: the crawler and the catalog sync if configured and the
    run published everything, then Slack; a run stopped before any table only tells Slack.

    Returns the crawler's or the catalog's error instead of raising it, so that Slack hears
    of the run (and of them) first; the caller turns it into the exit code.
    """
    if outcome.report is None:
        assert outcome.stopped is not None
        after_stopped_run(settings, outcome.date, outcome.stopped)
        return None
    report = outcome.report
    notes: list[str] = []
    problem: ExtractError | None = None
    if settings.glue_crawler:
        name = settings.glue_crawler
        if not outcome.ok:
            why = _not_a_success_run(outcome)
            logger.warning(
                "glue crawler %r not started: %s",
                name,
                why,
                extra={"fields": {"event": "glue_crawler", "crawler": name, "started": False}},
            )
            notes.append(f"Glue crawler {name} not started: {why}")
        else:
            try:
                notes.append(f"Glue crawler {name}: {start_crawler(name)}")
            except GlueError as exc:
                problem = exc
                notes.append(f"Glue crawler {name} NOT started: {exc}")
    if settings.catalog_sync:
        note, error = _catalog_after(settings, outcome)
        notes.append(note)
        problem = problem or error
    send(settings, report, notes=notes, late=outcome.late)
    return problem


def after_stopped_run(settings: Settings, day: date, error: ExtractError) -> None:
    """A run that stopped before any table ran (source or destination unreachable): the
    crawler is not started and Slack is told. A usage error (exit 2, a typo on the
    command line, nothing touched) is left to the person who typed it."""
    if error.exit_code == EXIT_USAGE:
        return
    notes: list[str] = []
    if settings.glue_crawler:
        logger.warning("glue crawler %r not started: the run stopped", settings.glue_crawler)
        notes.append(f"Glue crawler {settings.glue_crawler} not started: the run stopped")
    if settings.catalog_sync:
        logger.warning("glue catalog not synced: the run stopped")
        notes.append("Glue catalog not synced: the run stopped")
    send_stopped(settings, day, error, notes=notes)


def _catalog_after(settings: Settings, outcome: RunOutcome) -> tuple[str, ExtractError | None]:
    """The catalog sync of a run that published every table (as the crawler, never after a
    failed one): the Slack note, and the error for the exit code if it did not all sync."""
    report = outcome.report
    assert report is not None
    if not outcome.ok:
        why = _not_a_success_run(outcome)
        logger.warning(
            "glue catalog not synced: %s",
            why,
            extra={"fields": {"event": "catalog_sync", "synced": False}},
        )
        return f"Glue catalog not synced: {why}", None
    tables = [t.table for t in report.tables if t.status in ("published", "skipped")]
    if not tables:
        return "Glue catalog: no table to sync", None
    try:
        result = sync_catalog(settings, outcome.date, tables=tables)
    except ExtractError as exc:
        return f"Glue catalog NOT synced: {exc}", exc
    if result.ok:
        return f"Glue catalog {result.database}: {result.outcome()}", None
    problems = "; ".join([*result.problems, *(t.problem for t in result.tables if t.problem)])
    return (
        f"Glue catalog {result.database} NOT fully synced: {result.outcome()}: {problems}",
        GlueError(f"{result.summary()}: {problems}", step=Step.GLUE),
    )


def notify_date(settings: Settings, day: date) -> bool:
    """Post the message of date `day` (its report, and its validation when stored)."""
    report = _required_report(settings, day, "nothing to notify")
    return send(settings, report, validation=validation_of_date(settings, day))


def crawl_date(settings: Settings, day: date, name: str) -> Started:
    """Start crawler `name` if the report of `day` is a success; else ExtractError (exit 1)."""
    report = _required_report(settings, day, f"glue crawler {name!r} not started")
    if not report.ok:
        raise ExtractError(
            f"glue crawler {name!r} not started: the run of {day} {_not_a_success(report)}",
            step=Step.GLUE,
        )
    return start_crawler(name)


def validation_of_date(settings: Settings, day: date) -> Validation | None:
    """The stored result of `radar-extract validate --date D`, if there is one (and it can
    be read: else a warning, and the message goes without it)."""
    destination = Destination(settings)
    path = destination.keys.validation(day.isoformat())
    text = destination.read_text(path)
    if text is None:
        return None
    try:
        return Validation.from_json(text, destination.url(path))
    except FormatError as exc:
        logger.warning("%s: left out of the message", exc)
        return None


def _required_report(settings: Settings, day: date, consequence: str) -> RunReport:
    """The report of the date merged over every run of it (shards and reruns), recomputed
    so that a rerun after the DAG's merge step is seen; no run report at all is exit 1."""
    try:
        return merge_reports(settings, day)
    except ExtractError as exc:
        raise ExtractError(f"{exc.message}: {consequence}", step=exc.step) from exc


def _not_a_success_run(outcome: RunOutcome) -> str:
    """Why a run that has a report is not a success: its tables, or its end."""
    if outcome.late is not None:
        return f"the run failed at its end ({outcome.late.what})"
    assert outcome.report is not None
    return _not_a_success(outcome.report)


def _not_a_success(report: RunReport) -> str:
    t = report.totals()
    return (
        f"did not publish every table ({t.failed} failed, {t.not_run} not run, "
        f"{t.published}/{t.tables} published)"
    )
