"""What a migrate records: per column counts, the per-table report, and the table's switch.

    keys.migration_report(table, migration_id)   the report of one run
    keys.migration_state(table)                  the switch: every partition is exact

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
whose history was rewritten. Each has one writer (`to_json`) and one reader (`from_json`),
with a `format` (extractor/sink/formats.py); the golden files tests/golden/migration_*.json
hold them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal, Self, cast, get_args

from extractor.errors import FormatError, Step
from extractor.sink.destination import Destination
from extractor.sink.formats import (
    as_bool,
    as_dict,
    as_float,
    as_int,
    as_list,
    as_opt_str,
    as_str,
    as_strs,
    checked,
    dumps,
    loads,
    reading,
)

logger = logging.getLogger(__name__)

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

    def to_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Any) -> ColumnCounts:
        data = as_dict(data)
        return cls(**{f.name: as_int(data.get(f.name, 0)) for f in fields(cls)})


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "old": self.old,
            "old_type": self.old_type,
            "contract": self.contract,
            "conversion": self.conversion,
            "how": self.how,
            "counted": self.counted,
            "counts": self.counts.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Any) -> ColumnResult:
        data = as_dict(data)
        return cls(
            name=as_str(data["name"]),
            old=as_opt_str(data.get("old")),
            old_type=as_opt_str(data.get("old_type")),
            contract=as_str(data["contract"]),
            conversion=as_str(data["conversion"]),
            how=as_str(data["how"]),
            counted=as_opt_str(data.get("counted")),
            counts=ColumnCounts.from_dict(data["counts"]),
        )


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
    error_step: Step | None = None

    def not_exact(self) -> dict[str, int]:
        return {c.name: c.counts.not_exact for c in self.columns if c.counts.not_exact}

    def to_dict(self) -> dict[str, Any]:
        return {
            "date": self.date,
            "status": self.status,
            "written_by": self.written_by,
            "era": self.era,
            "reason": self.reason,
            "rows": self.rows,
            "files": self.files,
            "bytes": self.bytes,
            "old_files": self.old_files,
            "seconds": self.seconds,
            "columns": [c.to_dict() for c in self.columns],
            "dropped": list(self.dropped),
            "error": self.error,
            "error_step": None if self.error_step is None else str(self.error_step),
        }

    @classmethod
    def from_dict(cls, data: Any) -> PartitionResult:
        data = as_dict(data)
        step = data.get("error_step")
        return cls(
            date=as_str(data["date"]),
            status=_one_of(data["status"], Status),
            written_by=_one_of(data.get("written_by", "none"), WrittenBy),
            era=as_opt_str(data.get("era")),
            reason=as_opt_str(data.get("reason")),
            rows=as_int(data.get("rows", 0)),
            files=as_int(data.get("files", 0)),
            bytes=as_int(data.get("bytes", 0)),
            old_files=as_int(data.get("old_files", 0)),
            seconds=as_float(data.get("seconds", 0.0)),
            columns=[ColumnResult.from_dict(c) for c in as_list(data.get("columns", []))],
            dropped=as_strs(data.get("dropped", [])),
            error=as_opt_str(data.get("error")),
            error_step=None if step is None else Step(as_str(step)),
        )


@dataclass
class MigrationReport:
    FORMAT: ClassVar[int] = 1
    WHAT: ClassVar[str] = "migration report"

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
        """The JSON's fields, with the derived `totals` and `status`, which `from_dict`
        does not read back."""
        return {
            "format": self.FORMAT,
            "migration_id": self.migration_id,
            "table": self.table,
            "database": self.database,
            "destination": self.destination,
            "started_at": self.started_at,
            "dry_run": self.dry_run,
            "date_from": self.date_from,
            "date_to": self.date_to,
            "finished_at": self.finished_at,
            "seconds": self.seconds,
            "partitions": [p.to_dict() for p in self.partitions],
            "exact": self.exact,
            "output_schema": self.output_schema,
            "notes": list(self.notes),
            "totals": {
                "partitions": len(self.partitions),
                "migrated": self.count("migrated"),
                "would_migrate": self.count("would_migrate"),
                "skipped": self.count("skipped"),
                "failed": self.count("failed"),
                "rows": sum(p.rows for p in self.partitions),
                "columns": {n: c.to_dict() for n, c in sorted(self.columns().items())},
            },
            "status": "success" if self.ok else "failed",
        }

    def to_json(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str, where: str) -> Self:
        """The one reader of the stored report; FormatError (one line) if it cannot be read."""
        return cls.from_dict(loads(text, cls.WHAT, where, cls.FORMAT), where)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "(in memory)") -> Self:
        checked(data, cls.WHAT, where, cls.FORMAT)
        with reading(cls.WHAT, where):
            return cls(
                migration_id=as_str(data["migration_id"]),
                table=as_str(data["table"]),
                database=as_str(data["database"]),
                destination=as_str(data["destination"]),
                started_at=as_str(data["started_at"]),
                dry_run=as_bool(data.get("dry_run", False)),
                date_from=as_opt_str(data.get("date_from")),
                date_to=as_opt_str(data.get("date_to")),
                finished_at=as_str(data.get("finished_at", "")),
                seconds=as_float(data.get("seconds", 0.0)),
                partitions=[PartitionResult.from_dict(p) for p in as_list(data["partitions"])],
                exact=as_bool(data.get("exact", False)),
                output_schema=as_opt_str(data.get("output_schema")),
                notes=as_strs(data.get("notes", [])),
            )

    def lines(self) -> list[str]:
        """The human summary: one line per partition, the columns not exact, the verdict."""
        verb = "would rewrite" if self.dry_run else "rewrote"
        n = self.count("would_migrate" if self.dry_run else "migrated")
        out = [
            f"{self.table}: {verb} {n} of {len(self.partitions)} partitions "
            f"({self.count('skipped')} skipped, {self.count('failed')} failed), "
            f"{sum(p.rows for p in self.partitions if p.status != 'skipped'):,} rows"
            f" in {self.seconds:.1f} s"
        ]
        # Every partition while they fit on a screen; beyond, the failed ones and a range.
        listed = (
            self.partitions
            if len(self.partitions) <= _LISTED
            else [p for p in self.partitions if p.status == "failed"]
        )
        for p in listed:
            out.append(f"  cog_dt_ingestion={p.date}: " + _partition_text(p))
        if len(self.partitions) > _LISTED:
            out.append(
                f"  cog_dt_ingestion={self.partitions[0].date} .. "
                f"{self.partitions[-1].date}: the report lists each partition"
            )
        for name, counts in sorted(self.columns().items()):
            if counts.classes():
                classes = ", ".join(f"{k} {v:,}" for k, v in counts.classes().items())
                out.append(f"  column {name}: exact {counts.exact:,} of {counts.rows:,}; {classes}")
        out.extend(f"  note: {n}" for n in self.notes)
        return out


def _partition_text(p: PartitionResult) -> str:
    if p.status == "skipped":
        return f"skipped ({p.reason})"
    if p.status == "failed":
        return f"FAILED at {p.error_step or Step.MIGRATE}: {p.error}"
    source = f"{p.written_by} {p.era}" if p.era else p.written_by
    lost = ", ".join(f"{k}={v:,}" for k, v in sorted(p.not_exact().items()))
    dropped = f"; dropped {', '.join(p.dropped)}" if p.dropped else ""
    verb = "would be exact" if p.status == "would_migrate" else "exact"
    return f"{source} -> {verb}, {p.rows:,} rows; not exact: {lost or 'none'}{dropped}"


def _one_of(value: Any, kind: Any) -> Any:
    """`value` if it is one of the Literal `kind`'s strings."""
    allowed = get_args(kind)
    if value not in allowed:
        raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")
    return cast(str, value)


def write_report(destination: Destination, report: MigrationReport) -> str:
    path = destination.keys.migration_report(report.table, report.migration_id)
    destination.write_text(path, report.to_json())
    return path


# -- the switch ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExactState:
    """The table is exact since `since`: migration `migration_id` left no partition of
    another shape."""

    FORMAT: ClassVar[int] = 1
    WHAT: ClassVar[str] = "migration switch"

    table: str
    since: str
    migration_id: str
    partitions: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.FORMAT,
            "table": self.table,
            "since": self.since,
            "migration_id": self.migration_id,
            "partitions": self.partitions,
        }

    def to_json(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str, where: str) -> ExactState:
        data = loads(text, cls.WHAT, where, cls.FORMAT)
        with reading(cls.WHAT, where):
            return cls(
                as_str(data["table"]),
                as_str(data["since"]),
                as_str(data["migration_id"]),
                as_int(data["partitions"]),
            )


def write_state(destination: Destination, state: ExactState) -> None:
    destination.write_text(destination.keys.migration_state(state.table), state.to_json())


def read_state(destination: Destination, table: str) -> ExactState | None:
    """The table's switch, None when it has none. One that cannot be read, damaged or of a
    newer format, counts as set (with a warning): a migrate wrote it, and writing the table
    exact is what it asked; a compatible partition would mix a history rewritten exact."""
    path = destination.keys.migration_state(table)
    text = destination.read_text(path)
    if text is None:
        return None
    try:
        return ExactState.from_json(text, destination.url(path))
    except FormatError as exc:
        logger.warning("%s: %s; it counts as set: the table is written exact", table, exc.message)
        return ExactState(table, "", "unreadable", 0)
