"""Per-table results, the JSON run report, and the human summary."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

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
    error_step: str | None = None
    error_type: str | None = None
    transient: bool = False
    attempts: int = 0  # reads started (0: never started, or its worker process died)
    retry_note: str | None = None  # why a failed table was or was not retried

    def error_line(self) -> str:
        """One line naming the table, the step, whether it was retried, and the cause."""
        note = f" ({self.retry_note})" if self.retry_note else ""
        return f"{self.table}: failed at {self.error_step or 'unknown step'}{note}: {self.error}"


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
        lines.extend(f"  {r.error_line()}" for r in self.tables if r.status == "failed")
        not_run = sorted(r.table for r in self.tables if r.status == "not_run")
        if not_run:
            lines.append(f"  not run, {self.breaker or 'the run was stopped'}: "
                         f"{', '.join(not_run)}")
        return lines


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
