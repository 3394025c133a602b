"""The manifest of a partition: what one publish put there, written last (keys.manifest).

Its existence stands for a whole publish: `extract --resume` and `report merge` count a
table as published from it, and `validate` checks the partition against it (files, rows,
schema, the drift the policy let through). One reader, one writer, a `format`
(extractor/sink/formats.py).

The drift entries (`DriftRecord`) are the recorded form of a schema change with its
action, shared by the manifest and the run report; the drift check makes them.
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
            "class": self.kind, "column": self.column, "stored": self.stored,
            "live": self.live, "action": self.action, "policy_key": self.policy_key,
            "note": self.note, "parquet_type_changed": self.parquet_type_changed,
            "stored_arrow_type": self.stored_arrow_type,
            "live_arrow_type": self.live_arrow_type,
        }

    @classmethod
    def from_dict(cls, data: Any) -> DriftRecord:
        data = as_dict(data)
        action = as_str(data["action"])
        if action not in ACTIONS:
            raise ValueError(f"drift action {action!r} is not one of {', '.join(ACTIONS)}")
        return cls(
            kind=as_str(data["class"]), action=action,
            column=as_opt_str(data.get("column")), stored=as_opt_str(data.get("stored")),
            live=as_opt_str(data.get("live")), policy_key=as_opt_str(data.get("policy_key")),
            note=as_opt_str(data.get("note")),
            parquet_type_changed=as_bool(data.get("parquet_type_changed", False)),
            stored_arrow_type=as_opt_str(data.get("stored_arrow_type")),
            live_arrow_type=as_opt_str(data.get("live_arrow_type")),
        )


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
class SourceRead:
    database: str
    rows_read: int  # the count of the one consistent read
    estimated_rows: int


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "table": self.table, "date": self.date, "run_id": self.run_id,
            "engine": self.engine, "published_at": self.published_at, "rows": self.rows,
            "bytes": self.bytes,
            "source": {"database": self.source.database, "rows_read": self.source.rows_read,
                       "estimated_rows": self.source.estimated_rows},
            "files": [{"key": f.key, "rows": f.rows, "bytes": f.bytes} for f in self.files],
            "schema": [{"name": c.name, "mysql_type": c.mysql_type, "nullable": c.nullable,
                        "arrow_type": c.arrow_type} for c in self.schema],
            "primary_key": list(self.primary_key),
            "drift": [d.to_dict() for d in self.drift],
            "nulled": dict(sorted(self.nulled.items())),
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
            source = as_dict(data["source"])
            return cls(
                table=as_str(data["table"]), date=as_str(data["date"]),
                run_id=as_str(data["run_id"]), engine=as_str(data["engine"]),
                published_at=as_str(data["published_at"]), rows=as_int(data["rows"]),
                bytes=as_int(data["bytes"]),
                source=SourceRead(as_str(source["database"]), as_int(source["rows_read"]),
                                  as_int(source["estimated_rows"])),
                files=[ManifestFile(as_str(f["key"]), as_int(f["rows"]), as_int(f["bytes"]))
                       for f in map(as_dict, as_list(data["files"]))],
                schema=[ManifestColumn(as_str(c["name"]), as_str(c["mysql_type"]),
                                       as_bool(c["nullable"]), as_str(c["arrow_type"]))
                        for c in map(as_dict, as_list(data["schema"]))],
                primary_key=as_strs(data.get("primary_key", [])),
                drift=[DriftRecord.from_dict(d) for d in as_list(data.get("drift", []))],
                nulled=as_counts(data.get("nulled", {})),
            )
