"""The human summary of a run report: lines for the terminal, rendered from its fields.

Each part is its own function, so that another view of a report (a date's merged report,
the Slack message) composes the parts it needs from the same fields instead of editing
these lines.
"""

from __future__ import annotations

from collections.abc import Sequence

from extractor.drift.compare import PARQUET_NOTE
from extractor.run.outcome import RunOutcome
from extractor.run.report import RunReport, TableResult
from extractor.sink.manifest import DriftRecord


def summary_lines(report: RunReport) -> list[str]:
    """The summary of one run: the headline, then its tables' notes, failures and drift."""
    not_run = sorted(r.table for r in report.tables if r.status == "not_run")
    lines = [
        headline(report, f"run {report.run_id}"),
        *nulled_lines(report.tables),
        *compat_lines(report.tables),
        *failure_lines(report.tables),
    ]
    if not_run:
        lines.append(f"  not run, {report.breaker or 'the run was stopped'}: {', '.join(not_run)}")
    return [*lines, *drift_lines(report.tables)]


def outcome_lines(outcome: RunOutcome) -> list[str]:
    """The summary of a run that got past its start: its report's, then its late failure."""
    if outcome.report is None:
        return []
    return [*summary_lines(outcome.report), *late_lines(outcome)]


def late_lines(outcome: RunOutcome) -> list[str]:
    """The late failure and the tables published before it."""
    if outcome.late is None:
        return []
    published = ", ".join(outcome.published) or "none"
    return [
        f"  FAILED at the end of the run: {outcome.late.line()}",
        f"  published before it ({len(outcome.published)}): {published}",
    ]


def headline(report: RunReport, what: str) -> str:
    """`<what>: N/M tables published, rows, files, bytes in seconds to where (date)`."""
    t = report.totals()
    return (
        f"{what}: {t.published}/{t.tables} tables published, {t.rows:,} rows, "
        f"{t.files} files, {human_bytes(t.bytes)} in {report.seconds:.1f} s to "
        f"{report.destination} (cog_dt_ingestion={report.date})"
    )


def nulled_lines(tables: Sequence[TableResult]) -> list[str]:
    lines = []
    for r in sorted(tables, key=lambda r: r.table):
        if r.nulled:
            cols = ", ".join(f"{c}={n}" for c, n in sorted(r.nulled.items()))
            lines.append(f"  {r.table}: invalid values written as NULL: {cols}")
    return lines


def compat_lines(tables: Sequence[TableResult]) -> list[str]:
    """The tables written in their Airbyte output schema: the values a conversion changed,
    and each difference from the output schema that the drift policy let through."""
    lines = []
    for r in sorted(tables, key=lambda r: r.table):
        if r.compat is None:
            continue
        changed = ", ".join(f"{c}={n}" for c, n in sorted(r.converted.items()))
        lines.append(
            f"  {r.table}: written in its Airbyte output schema ({r.compat.era}); "
            f"values changed: {changed or 'none'}"
        )
        lines.extend(
            f"  compat drift {d.action}: {r.table}: {d.kind} {d.column} "
            f"({d.stored or '(none)'} → {d.live or '(none)'})"
            for d in r.compat.drift
        )
    return lines


def failure_lines(tables: Sequence[TableResult]) -> list[str]:
    return [f"  {error_line(r)}" for r in tables if r.status == "failed"]


def error_line(result: TableResult) -> str:
    """One line naming the table, the step, whether it was retried, and the cause."""
    note = f" ({result.retry_note})" if result.retry_note else ""
    return f"{result.table}: failed at {result.error_step or 'unknown step'}{note}: {result.error}"


def drift_lines(tables: Sequence[TableResult]) -> list[str]:
    """The summary's drift section: each of `drift_sentences`, indented."""
    return [f"  drift {sentence}" for sentence in drift_sentences(tables)]


def drift_sentences(tables: Sequence[TableResult]) -> list[str]:
    """The drift warnings of a report, one sentence each. Failed tables already have their
    error line; `evolve` changes are in the JSON report only. Tables without a stored schema
    collapse into one sentence (a database never snapshotted would give one per table)."""
    warned = [
        r
        for r in sorted(tables, key=lambda r: r.table)
        if r.status != "failed" and any(d.action == "warn" for d in r.drift)
    ]
    new = [r.table for r in warned if [d.kind for d in r.drift] == ["table_added"]]
    out = []
    if len(new) > 3:
        out.append(
            f"warning: {len(new)} tables have no stored schema (table_added); "
            "`radar-extract schemas snapshot` stores them"
        )
    elif new:
        out.append(f"warning: no stored schema for {', '.join(new)} (table_added)")
    for r in warned:
        if r.table not in new:
            changes = "; ".join(change_text(d) for d in r.drift if d.action == "warn")
            out.append(f"warning: {r.table}: {changes}")
    if any(d.parquet_type_changed for r in warned for d in r.drift):
        out.append(f"note, a changed Parquet type: {PARQUET_NOTE}")
    return out


def change_text(d: DriftRecord) -> str:
    """`class column: stored → live`, with the Parquet types when they change."""
    text = d.kind + (f" {d.column}" if d.column else "")
    if d.stored is not None or d.live is not None:
        text += f": {d.stored or '(none)'} → {d.live or '(none)'}"
    if d.parquet_type_changed:
        text += f" (Parquet {d.stored_arrow_type} → {d.live_arrow_type})"
    return text


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
