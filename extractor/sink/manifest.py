"""The manifest of a partition: what one publish put there, written last (keys.manifest).

Its existence stands for a whole publish: `extract --resume` and `report merge` count a
table as published from it, and `validate` checks the partition against it (files, rows,
schema, the drift the policy let through). One reader, one writer, a `format`
(extractor/sink/formats.py).

The drift entries (`DriftRecord`) are the recorded form of a schema change with its
action, shared by the manifest and the run report; the drift check makes them.

A compatible write (the cut-over from Airbyte, extractor/compat/) adds `compat`
(`CompatWrite`): the output schema written, each column written and how, the values a
conversion changed per column, and the drift from the output schema (`CompatDrift`, shared
with the run report). It is optional: a manifest of an exact write has none, and the
manifests of releases before it still read.

A partition that `migrate` rewrote into the exact contract (extractor/compat/migrate.py)
adds `migrated` (`MigratedFrom`): the migration, who wrote the old partition and its files,
the old columns dropped, and per column where it came from and how many of its values are
exact. Optional too: only a migrate writes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from extractor.drift_policy import ACTIONS, Action
from extractor.sink.formats import (
    as_bool,
    as_counts,
    as_dict,
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

FORMAT = 1
WHAT = "manifest"


@dataclass(frozen=True)
class DriftRecord:
    """One change from the stored schema, with the action the drift policy gave it."""

    kind: str  # the class id, "class" in the JSON (extractor/drift_policy.py CLASSES)
    action: Action
    column: str | None = None
    stored: str | None = None
    live: str | None = None
    policy_key: str | None = None  # the policy key that decided the action
    note: str | None = None
    parquet_type_changed: bool = False
    stored_arrow_type: str | None = None
    live_arrow_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "class": self.kind,
            "column": self.column,
            "stored": self.stored,
            "live": self.live,
            "action": self.action,
            "policy_key": self.policy_key,
            "note": self.note,
            "parquet_type_changed": self.parquet_type_changed,
            "stored_arrow_type": self.stored_arrow_type,
            "live_arrow_type": self.live_arrow_type,
        }

    @classmethod
    def from_dict(cls, data: Any) -> DriftRecord:
        data = as_dict(data)
        return cls(
            kind=as_str(data["class"]),
            action=_action(data["action"]),
            column=as_opt_str(data.get("column")),
            stored=as_opt_str(data.get("stored")),
            live=as_opt_str(data.get("live")),
            policy_key=as_opt_str(data.get("policy_key")),
            note=as_opt_str(data.get("note")),
            parquet_type_changed=as_bool(data.get("parquet_type_changed", False)),
            stored_arrow_type=as_opt_str(data.get("stored_arrow_type")),
            live_arrow_type=as_opt_str(data.get("live_arrow_type")),
        )


@dataclass(frozen=True)
class CompatDrift:
    """One difference between the live columns and the output schema of a compatible write,
    with the action the drift policy gave it."""

    kind: str  # "column_added", "column_removed", "type_changed": "class" in the JSON
    column: str
    action: Action
    stored: str | None = None  # the output schema's type
    live: str | None = None  # the MySQL column's type
    policy_key: str | None = None
    against: str = "output_schema"

    def to_dict(self) -> dict[str, Any]:
        return {
            "class": self.kind,
            "column": self.column,
            "stored": self.stored,
            "live": self.live,
            "action": self.action,
            "policy_key": self.policy_key,
            "against": self.against,
        }

    @classmethod
    def from_dict(cls, data: Any) -> CompatDrift:
        data = as_dict(data)
        return cls(
            kind=as_str(data["class"]),
            column=as_str(data["column"]),
            action=_action(data["action"]),
            stored=as_opt_str(data.get("stored")),
            live=as_opt_str(data.get("live")),
            policy_key=as_opt_str(data.get("policy_key")),
            against=as_str(data.get("against", "output_schema")),
        )


@dataclass(frozen=True)
class CompatColumn:
    """One column a compatible write wrote, in the output schema's order."""

    name: str
    role: str  # Airbyte's role of the column (extractor/compat/airbyte.py): "data", "ab_id"...
    arrow_type: str
    type: dict[str, Any]  # the Arrow type as a tree (extractor/compat/output_schema.py)
    write: str  # the conversion ("identical", "lossless"...), "null" or "metadata"
    source: str | None = None  # the MySQL column, None for metadata and NULLed columns

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "role": self.role,
            "arrow_type": self.arrow_type,
            "type": self.type,
            "write": self.write,
        }

    @classmethod
    def from_dict(cls, data: Any) -> CompatColumn:
        data = as_dict(data)
        return cls(
            name=as_str(data["name"]),
            role=as_str(data["role"]),
            arrow_type=as_str(data["arrow_type"]),
            type=as_dict(data["type"]),
            write=as_str(data["write"]),
            source=as_opt_str(data.get("source")),
        )


@dataclass(frozen=True)
class CompatWrite:
    """The manifest's `compat`: the partition was written in a stored output schema."""

    era: str  # the Airbyte era of the output schema ("legacy", "1.x", "other")
    output_schema: str  # the file of the output schema
    mode: str = "airbyte"
    found: dict[str, str] = field(default_factory=dict)  # where the output schema was found
    columns: list[CompatColumn] = field(default_factory=list)  # the columns written
    converted: dict[str, int] = field(default_factory=dict)  # values changed, per column
    drift: list[CompatDrift] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "era": self.era,
            "output_schema": self.output_schema,
            "found": dict(sorted(self.found.items())),
            "columns": [c.to_dict() for c in self.columns],
            "converted": dict(sorted(self.converted.items())),
            "drift": [d.to_dict() for d in self.drift],
        }

    @classmethod
    def from_dict(cls, data: Any) -> CompatWrite:
        data = as_dict(data)
        return cls(
            era=as_str(data["era"]),
            output_schema=as_str(data["output_schema"]),
            mode=as_str(data.get("mode", "airbyte")),
            found={as_str(k): as_str(v) for k, v in as_dict(data.get("found", {})).items()},
            columns=[CompatColumn.from_dict(c) for c in as_list(data.get("columns", []))],
            converted=as_counts(data.get("converted", {})),
            drift=[CompatDrift.from_dict(d) for d in as_list(data.get("drift", []))],
        )


@dataclass(frozen=True)
class MigratedColumn:
    """One column of a migrated partition: where it came from, how, and its cells' counts."""

    conversion: str  # identical, exact, not_guaranteed, possibly_lost, absent
    exact: int  # values equal to what MySQL holds
    old: str | None = None  # the old partition's column; None: it had none (NULL)
    old_type: str | None = None
    classes: dict[str, int] = field(default_factory=dict)  # the other cells, by class

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": self.old,
            "old_type": self.old_type,
            "conversion": self.conversion,
            "exact": self.exact,
            "classes": dict(self.classes),
        }

    @classmethod
    def from_dict(cls, data: Any) -> MigratedColumn:
        data = as_dict(data)
        return cls(
            conversion=as_str(data["conversion"]),
            exact=as_int(data["exact"]),
            old=as_opt_str(data.get("old")),
            old_type=as_opt_str(data.get("old_type")),
            classes=as_counts(data.get("classes", {})),
        )


@dataclass(frozen=True)
class MigratedFrom:
    """The manifest's `migrated`: `migrate` rewrote the partition from an old one."""

    migration_id: str
    written_by: str  # who wrote the old partition: "airbyte" or "compat"; "from" in the JSON
    era: str | None = None  # its Airbyte era
    old_run_id: str | None = None  # the run of its manifest, if it had one
    old_files: list[str] = field(default_factory=list)  # its data files' names
    dropped: list[str] = field(default_factory=list)  # its columns the stored schema lacks
    columns: dict[str, MigratedColumn] = field(default_factory=dict)  # by MySQL column

    def to_dict(self) -> dict[str, Any]:
        return {
            "migration_id": self.migration_id,
            "from": self.written_by,
            "era": self.era,
            "old_run_id": self.old_run_id,
            "old_files": list(self.old_files),
            "dropped": list(self.dropped),
            "columns": {n: c.to_dict() for n, c in self.columns.items()},
        }

    @classmethod
    def from_dict(cls, data: Any) -> MigratedFrom:
        data = as_dict(data)
        return cls(
            migration_id=as_str(data["migration_id"]),
            written_by=as_str(data["from"]),
            era=as_opt_str(data.get("era")),
            old_run_id=as_opt_str(data.get("old_run_id")),
            old_files=as_strs(data.get("old_files", [])),
            dropped=as_strs(data.get("dropped", [])),
            columns={
                as_str(n): MigratedColumn.from_dict(c)
                for n, c in as_dict(data.get("columns", {})).items()
            },
        )


def _action(value: Any) -> Action:
    action = as_str(value)
    if action not in ACTIONS:
        raise ValueError(f"drift action {action!r} is not one of {', '.join(ACTIONS)}")
    return action


@dataclass(frozen=True)
class ManifestFile:
    key: str  # the file's name in the partition
    rows: int
    bytes: int


@dataclass(frozen=True)
class ManifestColumn:
    name: str
    mysql_type: str
    nullable: bool
    arrow_type: str


@dataclass(frozen=True)
class StreamRange:
    """One stream of a table read on several: the rows with low <= key < high (None:
    unbounded), and how many it read."""

    low: int | None
    high: int | None
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "rows": self.rows}

    @classmethod
    def from_dict(cls, data: Any) -> StreamRange:
        data = as_dict(data)
        low, high = data.get("low"), data.get("high")
        return cls(
            None if low is None else as_int(low),
            None if high is None else as_int(high),
            as_int(data["rows"]),
        )


@dataclass(frozen=True)
class StreamSplit:
    """The source's `streams`: the table was read as these ranges of `key`, each its own
    consistent read (extractor/source/ranges.py)."""

    key: str
    ranges: list[StreamRange] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "ranges": [r.to_dict() for r in self.ranges]}

    @classmethod
    def from_dict(cls, data: Any) -> StreamSplit:
        data = as_dict(data)
        return cls(
            as_str(data["key"]), [StreamRange.from_dict(r) for r in as_list(data.get("ranges", []))]
        )


@dataclass(frozen=True)
class SourceRead:
    database: str
    rows_read: int  # the count of the one consistent read, or of every stream's together
    estimated_rows: int
    streams: StreamSplit | None = None  # read on several streams; None (no key) on one

    def to_dict(self) -> dict[str, Any]:
        streams = {} if self.streams is None else {"streams": self.streams.to_dict()}
        return {
            "database": self.database,
            "rows_read": self.rows_read,
            "estimated_rows": self.estimated_rows,
            **streams,
        }

    @classmethod
    def from_dict(cls, data: Any) -> SourceRead:
        data = as_dict(data)
        return cls(
            as_str(data["database"]),
            as_int(data["rows_read"]),
            as_int(data["estimated_rows"]),
            None if data.get("streams") is None else StreamSplit.from_dict(data["streams"]),
        )


@dataclass(frozen=True)
class Manifest:
    table: str
    date: str
    run_id: str
    engine: str  # "radar-extract <version>"
    published_at: str  # ISO, µs: `extract --resume` compares it with the plan's saved_at
    rows: int
    bytes: int
    source: SourceRead
    files: list[ManifestFile] = field(default_factory=list)
    schema: list[ManifestColumn] = field(default_factory=list)
    primary_key: list[str] = field(default_factory=list)
    drift: list[DriftRecord] = field(default_factory=list)  # what the policy let through
    nulled: dict[str, int] = field(default_factory=dict)  # invalid values NULLed, per column
    compat: CompatWrite | None = None  # a compatible write; None (no key) for an exact one
    migrated: MigratedFrom | None = None  # rewritten by migrate; None (no key) otherwise

    def to_dict(self) -> dict[str, Any]:
        compat = {} if self.compat is None else {"compat": self.compat.to_dict()}
        migrated = {} if self.migrated is None else {"migrated": self.migrated.to_dict()}
        return {
            "format": FORMAT,
            "table": self.table,
            "date": self.date,
            "run_id": self.run_id,
            "engine": self.engine,
            "published_at": self.published_at,
            "rows": self.rows,
            "bytes": self.bytes,
            "source": self.source.to_dict(),
            "files": [{"key": f.key, "rows": f.rows, "bytes": f.bytes} for f in self.files],
            "schema": [
                {
                    "name": c.name,
                    "mysql_type": c.mysql_type,
                    "nullable": c.nullable,
                    "arrow_type": c.arrow_type,
                }
                for c in self.schema
            ],
            "primary_key": list(self.primary_key),
            "drift": [d.to_dict() for d in self.drift],
            "nulled": dict(sorted(self.nulled.items())),
            **compat,
            **migrated,
        }

    def to_json(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str, where: str) -> Manifest:
        return cls.from_dict(loads(text, WHAT, where, FORMAT), where)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> Manifest:
        """A manifest of any known format (a journal holds one inside)."""
        checked(data, WHAT, where, FORMAT)
        with reading(WHAT, where):
            return cls(
                table=as_str(data["table"]),
                date=as_str(data["date"]),
                run_id=as_str(data["run_id"]),
                engine=as_str(data["engine"]),
                published_at=as_str(data["published_at"]),
                rows=as_int(data["rows"]),
                bytes=as_int(data["bytes"]),
                source=SourceRead.from_dict(data["source"]),
                files=[
                    ManifestFile(as_str(f["key"]), as_int(f["rows"]), as_int(f["bytes"]))
                    for f in map(as_dict, as_list(data["files"]))
                ],
                schema=[
                    ManifestColumn(
                        as_str(c["name"]),
                        as_str(c["mysql_type"]),
                        as_bool(c["nullable"]),
                        as_str(c["arrow_type"]),
                    )
                    for c in map(as_dict, as_list(data["schema"]))
                ],
                primary_key=as_strs(data.get("primary_key", [])),
                drift=[DriftRecord.from_dict(d) for d in as_list(data.get("drift", []))],
                nulled=as_counts(data.get("nulled", {})),
                compat=None
                if data.get("compat") is None
                else CompatWrite.from_dict(data["compat"]),
                migrated=None
                if data.get("migrated") is None
                else MigratedFrom.from_dict(data["migrated"]),
            )
