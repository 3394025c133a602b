"""Per-table results and the run report: the model and its JSON (keys.run_report).

The run writes its report once, at the end; `report merge` reads every report of a date
back, whichever release wrote it, so the JSON has one writer (`to_json`) and one reader
(`from_json`) and a `format` (extractor/sink/formats.py). The human summary is rendered
from these fields by extractor/run/summary.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Self, get_args

from extractor.errors import Step
from extractor.sink.formats import (
    as_bool,
    as_counts,
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
from extractor.sink.manifest import CompatDrift, DriftRecord

# not_run: never started because the circuit breaker stopped the run; never a success.
Status = Literal["published", "failed", "skipped", "not_run"]
STATUSES: tuple[Status, ...] = get_args(Status)


@dataclass(frozen=True)
class CompatResult:
    """A table written in its output schema (extractor/compat/): the era written and the
    drift from the output schema; the manifest's `compat` holds the rest."""

    era: str
    drift: list[CompatDrift] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"era": self.era, "drift": [d.to_dict() for d in self.drift]}

    @classmethod
    def from_dict(cls, data: Any) -> CompatResult:
        data = as_dict(data)
        return cls(
            era=as_str(data["era"]),
            drift=[CompatDrift.from_dict(d) for d in as_list(data.get("drift", []))],
        )


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
    # Schema drift against the stored schema, each change with its action.
    drift: list[DriftRecord] = field(default_factory=list)
    # A compatible write (extractor/compat/), or None; `converted`, the values per column that
    # a conversion to the output schema's types changed.
    compat: CompatResult | None = None
    converted: dict[str, int] = field(default_factory=dict)
    # The streams the table was read on (extractor/streams_policy.py), set when its setting
    # asked for more than one: 1 when it could not be split. None (no key): one, as asked.
    streams: int | None = None

    def __post_init__(self) -> None:
        if self.error_step is not None:  # given as the step's string
            self.error_step = Step(self.error_step)

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "status": self.status,
            "rows": self.rows,
            "files": self.files,
            "bytes": self.bytes,
            "seconds": self.seconds,
            "nulled": dict(self.nulled),
            "keys": list(self.keys),
            "error": self.error,
            "error_step": self.error_step,
            "error_type": self.error_type,
            "transient": self.transient,
            "attempts": self.attempts,
            "retry_note": self.retry_note,
            "drift": [d.to_dict() for d in self.drift],
            "compat": None if self.compat is None else self.compat.to_dict(),
            "converted": dict(sorted(self.converted.items())),
            **({} if self.streams is None else {"streams": self.streams}),
        }

    @classmethod
    def from_dict(cls, data: Any) -> TableResult:
        """One result of a report's `tables`; keys this release does not know are ignored."""
        data = as_dict(data)
        status = as_str(data["status"])
        if status not in STATUSES:
            raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
        return cls(
            table=as_str(data["table"]),
            status=status,
            rows=as_int(data.get("rows", 0)),
            files=as_int(data.get("files", 0)),
            bytes=as_int(data.get("bytes", 0)),
            seconds=as_float(data.get("seconds", 0.0)),
            nulled=as_counts(data.get("nulled", {})),
            keys=as_strs(data.get("keys", [])),
            error=as_opt_str(data.get("error")),
            error_step=_step(data.get("error_step")),
            error_type=as_opt_str(data.get("error_type")),
            transient=as_bool(data.get("transient", False)),
            attempts=as_int(data.get("attempts", 0)),
            retry_note=as_opt_str(data.get("retry_note")),
            drift=[DriftRecord.from_dict(d) for d in as_list(data.get("drift", []))],
            compat=None if data.get("compat") is None else CompatResult.from_dict(data["compat"]),
            converted=as_counts(data.get("converted", {})),
            streams=None if data.get("streams") is None else as_int(data["streams"]),
        )


def _step(value: Any) -> Step | None:
    """A report's `error_step`: one of the steps (extractor/errors.py `Step`), as its string."""
    return None if value is None else Step(as_str(value))


@dataclass(frozen=True)
class Totals:
    """The report's counts: tables by status, and what the published tables wrote."""

    tables: int
    published: int
    failed: int
    skipped: int
    not_run: int
    rows: int
    files: int
    bytes: int
    nulled: int
    converted: int = 0  # values a compatible write's conversion changed

    def to_dict(self) -> dict[str, int]:
        return {
            "tables": self.tables,
            "published": self.published,
            "failed": self.failed,
            "skipped": self.skipped,
            "not_run": self.not_run,
            "rows": self.rows,
            "files": self.files,
            "bytes": self.bytes,
            "nulled": self.nulled,
            "converted": self.converted,
        }


@dataclass
class RunReport:
    FORMAT: ClassVar[int] = 1
    WHAT: ClassVar[str] = "run report"

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

    def totals(self) -> Totals:
        def count(status: Status) -> int:
            return sum(t.status == status for t in self.tables)

        return Totals(
            tables=len(self.tables),
            published=count("published"),
            failed=count("failed"),
            skipped=count("skipped"),
            not_run=count("not_run"),
            rows=sum(t.rows for t in self.tables),
            files=sum(t.files for t in self.tables),
            bytes=sum(t.bytes for t in self.tables),
            nulled=sum(sum(t.nulled.values()) for t in self.tables),
            converted=sum(sum(t.converted.values()) for t in self.tables),
        )

    def error_rate(self) -> float:
        """Failed tables over the tables that ran (published + failed); 0.0 when none ran."""
        t = self.totals()
        ran = t.published + t.failed
        return round(t.failed / ran, 4) if ran else 0.0

    def metrics(self) -> dict[str, Any]:
        """The four documented metrics; rows only for published tables (nothing else landed)."""
        return {
            "duration_s": self.seconds,
            "rows_per_table": {
                t.table: t.rows
                for t in sorted(self.tables, key=lambda t: t.table)
                if t.status == "published"
            },
            "bytes_transferred": sum(t.bytes for t in self.tables),
            "error_rate": self.error_rate(),
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON's fields, with the derived `totals`, `status` and `metrics` that its
        readers (people, metric filters) want and that `from_dict` does not read back."""
        return {
            "format": self.FORMAT,
            "run_id": self.run_id,
            "date": self.date,
            "database": self.database,
            "destination": self.destination,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "seconds": self.seconds,
            "tls": self.tls,
            "reader": self.reader,
            "tables": [t.to_dict() for t in sorted(self.tables, key=lambda t: t.table)],
            "breaker": self.breaker,
            "shard": self.shard,
            "totals": self.totals().to_dict(),
            "status": "success" if self.ok else "failed",
            "metrics": self.metrics(),
        }

    def to_json(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str, where: str) -> Self:
        """The one reader of the stored JSON; FormatError (one line) if it cannot be read."""
        return cls.from_dict(loads(text, cls.WHAT, where, cls.FORMAT), where)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "(in memory)") -> Self:
        """A report from its JSON object (`to_dict`); the derived keys and keys this release
        does not know are ignored."""
        checked(data, cls.WHAT, where, cls.FORMAT)
        with reading(cls.WHAT, where):
            return cls(**cls._fields(data))

    @classmethod
    def _fields(cls, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "run_id": as_str(data["run_id"]),
            "date": as_str(data["date"]),
            "database": as_str(data["database"]),
            "destination": as_str(data["destination"]),
            "started_at": as_str(data["started_at"]),
            "finished_at": as_str(data.get("finished_at", "")),
            "seconds": as_float(data.get("seconds", 0.0)),
            "tls": as_bool(data.get("tls", False)),
            "reader": as_str(data.get("reader", "connectorx")),
            "tables": [TableResult.from_dict(t) for t in as_list(data.get("tables", []))],
            "breaker": as_opt_str(data.get("breaker")),
            "shard": as_opt_str(data.get("shard")),
        }
