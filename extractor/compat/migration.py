"""What a migrate records: per column counts, the per-table report, and the table's switch.

    <root>/_radar_extract/migrations/<table>/<migration_id>.json   the report of one run
    <root>/_radar_extract/migrations/<table>/exact.json            every partition is exact

Every cell of a rewritten column is counted once, in the first class that holds it:
`absent` (the old partition has no such column: NULL), `lost` (the old write NULLed it, or a
compatible write of the legacy era changed it: its record says so), `inexact` (the old write
recorded a change, or the value provably differs from the source; a recorded change may
still have been undone, such as a decimal clamped back to its largest value),
`possibly_lost` (the old type merged values, or a NULL may stand for a value Airbyte could
not write), `not_guaranteed` (may differ: rounded by the old type), `nulled` (NULL by the
contract's own rules: a zero date in the old text); the rest is `exact`, and every value
counted exact equals what MySQL holds.

The switch (`exact.json`) is written once every partition of the table is exact; a
compatible write (extractor/compat/writer.py) then writes the table exact, whatever its
stored output schema says, so the nightly cannot add an Airbyte-shaped partition to a table
whose history was rewritten. One reader and one writer each, with a format.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from extractor.sink.destination import Destination

FORMAT = 1
FOLDER = "migrations"
CLASSES = ("absent", "lost", "inexact", "possibly_lost", "not_guaranteed", "nulled")
Status = Literal["migrated", "skipped", "failed", "would_migrate"]
WrittenBy = Literal["airbyte", "compat", "radar-extract", "none"]
_LISTED = 20  # partitions a summary lists one by one


@dataclass
class ColumnCounts:
    rows: int = 0
    exact: int = 0
    absent: int = 0
    lost: int = 0
    inexact: int = 0
    possibly_lost: int = 0
    not_guaranteed: int = 0
    nulled: int = 0

    @property
    def not_exact(self) -> int:
        return self.rows - self.exact - self.nulled

    def add(self, other: ColumnCounts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def classes(self) -> dict[str, int]:
        """The classes other than exact that hold a value, in the order cells are counted."""
        return {c: getattr(self, c) for c in CLASSES if getattr(self, c)}


@dataclass
class ColumnResult:
    name: str  # the MySQL column, as the contract writes it
    old: str | None  # the old partition's column it comes from; None: absent
    old_type: str | None
    contract: str
    conversion: str  # identical, exact, not_guaranteed, possibly_lost, absent
    how: str
    counted: str | None = None
    counts: ColumnCounts = field(default_factory=ColumnCounts)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnResult:
        known = {k: v for k, v in data.items() if k in _names(cls)}
        known["counts"] = ColumnCounts(**{k: int(v) for k, v in data["counts"].items()
                                          if k in _names(ColumnCounts)})
        return cls(**known)


@dataclass
class PartitionResult:
    date: str
    status: Status
    written_by: WrittenBy = "none"
    era: str | None = None
    reason: str | None = None  # why skipped
    rows: int = 0
    files: int = 0  # written
    bytes: int = 0
    old_files: int = 0
    seconds: float = 0.0
    columns: list[ColumnResult] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # old columns the stored schema lacks
    error: str | None = None
    error_step: str | None = None

    def not_exact(self) -> dict[str, int]:
        return {c.name: c.counts.not_exact for c in self.columns if c.counts.not_exact}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PartitionResult:
        known = {k: v for k, v in data.items() if k in _names(cls)}
        known["columns"] = [ColumnResult.from_dict(c) for c in data.get("columns", [])]
        return cls(**known)


@dataclass
class MigrationReport:
    migration_id: str
    table: str
    database: str
    destination: str
    started_at: str
    dry_run: bool = False
    date_from: str | None = None
    date_to: str | None = None
    finished_at: str = ""
    seconds: float = 0.0
    partitions: list[PartitionResult] = field(default_factory=list)
    exact: bool = False  # after this run, every partition of the table is exact
    output_schema: str | None = None  # what became of the table's output schema file
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(p.status != "failed" for p in self.partitions)

    def count(self, status: Status) -> int:
        return sum(p.status == status for p in self.partitions)

    def columns(self) -> dict[str, ColumnCounts]:
        """Counts per column over every partition rewritten (or that would be)."""
        total: dict[str, ColumnCounts] = {}
        for p in self.partitions:
            for c in p.columns:
                total.setdefault(c.name, ColumnCounts()).add(c.counts)
        return total

    def to_dict(self) -> dict[str, Any]:
        data = {"format": FORMAT, **asdict(self)}
        data["totals"] = {
            "partitions": len(self.partitions), "migrated": self.count("migrated"),
            "would_migrate": self.count("would_migrate"), "skipped": self.count("skipped"),
            "failed": self.count("failed"), "rows": sum(p.rows for p in self.partitions),
            "columns": {n: asdict(c) for n, c in sorted(self.columns().items())}}
        data["status"] = "success" if self.ok else "failed"
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MigrationReport:
        if data.get("format") != FORMAT:
            raise ValueError(f"migration report format {data.get('format')!r} is not {FORMAT}")
        known = {k: v for k, v in data.items() if k in _names(cls)}
        known["partitions"] = [PartitionResult.from_dict(p) for p in data["partitions"]]
        return cls(**known)

    def lines(self) -> list[str]:
        """The human summary: one line per partition, the columns not exact, the verdict."""
        verb = "would rewrite" if self.dry_run else "rewrote"
        n = self.count("would_migrate" if self.dry_run else "migrated")
        out = [f"{self.table}: {verb} {n} of {len(self.partitions)} partitions "
               f"({self.count('skipped')} skipped, {self.count('failed')} failed), "
               f"{sum(p.rows for p in self.partitions if p.status != 'skipped'):,} rows"
               f" in {self.seconds:.1f} s"]
        # Every partition while they fit on a screen; beyond, the failed ones and a range.
        listed = self.partitions if len(self.partitions) <= _LISTED else [
            p for p in self.partitions if p.status == "failed"]
        for p in listed:
            out.append(f"  cog_dt_ingestion={p.date}: " + _partition_text(p))
        if len(self.partitions) > _LISTED:
            out.append(f"  cog_dt_ingestion={self.partitions[0].date} .. "
                       f"{self.partitions[-1].date}: the report lists each partition")
        for name, counts in sorted(self.columns().items()):
            if counts.classes():
                classes = ", ".join(f"{k} {v:,}" for k, v in counts.classes().items())
                out.append(f"  column {name}: exact {counts.exact:,} of {counts.rows:,}; "
                           f"{classes}")
        out.extend(f"  note: {n}" for n in self.notes)
        return out


def _partition_text(p: PartitionResult) -> str:
    if p.status == "skipped":
        return f"skipped ({p.reason})"
    if p.status == "failed":
        return f"FAILED at {p.error_step or 'migrate'}: {p.error}"
    source = f"{p.written_by} {p.era}" if p.era else p.written_by
    lost = ", ".join(f"{k}={v:,}" for k, v in sorted(p.not_exact().items()))
    dropped = f"; dropped {', '.join(p.dropped)}" if p.dropped else ""
    verb = "would be exact" if p.status == "would_migrate" else "exact"
    return (f"{source} -> {verb}, {p.rows:,} rows; not exact: {lost or 'none'}{dropped}")


def _names(cls: type[Any]) -> set[str]:
    return {f.name for f in fields(cls)}


# -- keys ------------------------------------------------------------------------------------
def report_path(destination: Destination, table: str, migration_id: str) -> str:
    return destination.internal(FOLDER, table, f"{migration_id}.json")


def state_path(destination: Destination, table: str) -> str:
    return destination.internal(FOLDER, table, "exact.json")


def write_report(destination: Destination, report: MigrationReport) -> str:
    path = report_path(destination, report.table, report.migration_id)
    destination.write_text(path, report.to_json())
    return path


@dataclass(frozen=True)
class ExactState:
    """The table is exact since `since`: migration `migration_id` left no partition of
    another shape."""

    table: str
    since: str
    migration_id: str
    partitions: int

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, **asdict(self)}, indent=2, sort_keys=True) + "\n"


def write_state(destination: Destination, state: ExactState) -> None:
    destination.write_text(state_path(destination, state.table), state.to_json())


def read_state(destination: Destination, table: str) -> ExactState | None:
    """The table's switch, None when it has none. One that cannot be read counts as set:
    a migrate wrote it, and writing the table exact is what it asked."""
    text = destination.read_text(state_path(destination, table))
    if text is None:
        return None
    try:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}")
        return ExactState(str(data["table"]), str(data["since"]), str(data["migration_id"]),
                          int(data["partitions"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return ExactState(table, "", "unreadable", 0)
