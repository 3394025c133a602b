"""Per-table results, the JSON run report, and the human summary."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from extractor.drift.compare import PARQUET_NOTE
from extractor.errors import Step

# not_run: never started because the circuit breaker stopped the run; never a success.
Status = Literal["published", "failed", "skipped", "not_run"]


@dataclass
class TableResult:
    table: str
    status: Status
    rows: int = 0
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    nulled: dict[str, int] = field(default_factory=dict)  # invalid values NULLed, per column
    keys: list[str] = field(default_factory=list)
    error: str | None = None
    error_step: Step | None = None
    error_type: str | None = None
    transient: bool = False
    attempts: int = 0  # reads started (0: never started, or its worker process died)
    retry_note: str | None = None  # why a failed table was or was not retried
    # Schema drift against the stored schema: class, column, stored, live, action, ...
    drift: list[dict[str, Any]] = field(default_factory=list)
    # A compatible write (extractor/compat/): the era written and the drift from the output
    # schema; `converted`, the values per column that a conversion to the old types changed.
    compat: dict[str, Any] | None = None
    converted: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.error_step is not None:  # read back from JSON: the step's string
            self.error_step = Step(self.error_step)

    def error_line(self) -> str:
        """One line naming the table, the step, whether it was retried, and the cause."""
        note = f" ({self.retry_note})" if self.retry_note else ""
        return f"{self.table}: failed at {self.error_step or 'unknown step'}{note}: {self.error}"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableResult:
        """A result read back from a JSON report; keys this version does not know are ignored."""
        return cls(**_known(cls, data))


@dataclass
class RunReport:
    run_id: str
    date: str
    database: str
    destination: str
    started_at: str
    finished_at: str = ""
    seconds: float = 0.0
    tls: bool = False
    reader: str = "connectorx"
    tables: list[TableResult] = field(default_factory=list)
    breaker: str | None = None  # why the circuit breaker stopped the run, if it did
    shard: str | None = None  # "I/N" for a run of one shard (extract --shard)

    @property
    def ok(self) -> bool:
        return all(t.status in ("published", "skipped") for t in self.tables)

    def totals(self) -> dict[str, Any]:
        by_status: dict[str, int] = {}
        for t in self.tables:
            by_status[t.status] = by_status.get(t.status, 0) + 1
        return {
            "tables": len(self.tables),
            "published": by_status.get("published", 0),
            "failed": by_status.get("failed", 0),
            "skipped": by_status.get("skipped", 0),
            "not_run": by_status.get("not_run", 0),
            "rows": sum(t.rows for t in self.tables),
            "files": sum(t.files for t in self.tables),
            "bytes": sum(t.bytes for t in self.tables),
            "nulled": sum(sum(t.nulled.values()) for t in self.tables),
            "converted": sum(sum(t.converted.values()) for t in self.tables),
        }

    def error_rate(self) -> float:
        """Failed tables over the tables that ran (published + failed); 0.0 when none ran."""
        t = self.totals()
        ran = t["published"] + t["failed"]
        return round(t["failed"] / ran, 4) if ran else 0.0

    def metrics(self) -> dict[str, Any]:
        """The four documented metrics; rows only for published tables (nothing else landed)."""
        return {
            "duration_s": self.seconds,
            "rows_per_table": {t.table: t.rows for t in sorted(self.tables, key=lambda t: t.table)
                               if t.status == "published"},
            "bytes_transferred": sum(t.bytes for t in self.tables),
            "error_rate": self.error_rate(),
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tables"] = sorted(data["tables"], key=lambda t: t["table"])
        data["totals"] = self.totals()
        data["status"] = "success" if self.ok else "failed"
        data["metrics"] = self.metrics()
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunReport:
        """A report read back from its JSON (`to_dict`); derived keys (`totals`, `status`) and
        keys this version does not know are ignored."""
        known = _known(cls, data)
        known["tables"] = [TableResult.from_dict(t) for t in data.get("tables", [])]
        return cls(**known)

    def summary_lines(self) -> list[str]:
        t = self.totals()
        lines = [
            f"run {self.run_id}: {t['published']}/{t['tables']} tables published, "
            f"{t['rows']:,} rows, {t['files']} files, {human_bytes(t['bytes'])} "
            f"in {self.seconds:.1f} s to {self.destination} (cog_dt_ingestion={self.date})"
        ]
        for r in sorted(self.tables, key=lambda r: r.table):
            if r.nulled:
                cols = ", ".join(f"{c}={n}" for c, n in sorted(r.nulled.items()))
                lines.append(f"  {r.table}: invalid values written as NULL: {cols}")
            if r.compat is not None:
                changed = ", ".join(f"{c}={n}" for c, n in sorted(r.converted.items()))
                lines.append(f"  {r.table}: written in its Airbyte output schema "
                             f"({r.compat.get('era')}); values changed: {changed or 'none'}")
                for d in r.compat.get("drift", []):
                    lines.append(f"  compat drift {d['action']}: {r.table}: {d['class']} "
                                 f"{d['column']} ({d.get('stored') or '(none)'} → "
                                 f"{d.get('live') or '(none)'})")
        lines.extend(f"  {r.error_line()}" for r in self.tables if r.status == "failed")
        not_run = sorted(r.table for r in self.tables if r.status == "not_run")
        if not_run:
            lines.append(f"  not run, {self.breaker or 'the run was stopped'}: "
                         f"{', '.join(not_run)}")
        lines.extend(drift_lines(self.tables))
        return lines


def _known(cls: type[Any], data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def drift_lines(tables: list[TableResult]) -> list[str]:
    """The summary's drift section: the warnings. Failed tables already have their error
    line; `evolve` changes are in the JSON report only. Tables without a stored schema
    collapse into one line (a database never snapshotted would give one per table)."""
    warned = [r for r in sorted(tables, key=lambda r: r.table) if r.status != "failed"
              and any(d.get("action") == "warn" for d in r.drift)]
    new = [r.table for r in warned if [d.get("class") for d in r.drift] == ["table_added"]]
    lines = []
    if len(new) > 3:
        lines.append(f"  drift warning: {len(new)} tables have no stored schema "
                     "(table_added); `radar-extract schemas snapshot` stores them")
    elif new:
        lines.append(f"  drift warning: no stored schema for {', '.join(new)} (table_added)")
    for r in warned:
        if r.table not in new:
            changes = "; ".join(_drift_text(d) for d in r.drift if d.get("action") == "warn")
            lines.append(f"  drift warning: {r.table}: {changes}")
    if any(d.get("parquet_type_changed") for r in warned for d in r.drift):
        lines.append(f"  drift note, a changed Parquet type: {PARQUET_NOTE}")
    return lines


def _drift_text(d: dict[str, Any]) -> str:
    text = str(d.get("class")) + (f" {d['column']}" if d.get("column") else "")
    if d.get("stored") is not None or d.get("live") is not None:
        text += f": {d.get('stored') or '(none)'} → {d.get('live') or '(none)'}"
    if d.get("parquet_type_changed"):
        text += f" (Parquet {d.get('stored_arrow_type')} → {d.get('live_arrow_type')})"
    return text


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
