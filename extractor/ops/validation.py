"""The result of `validate` for a date: the model, its JSON (keys.validation), its lines.

`validate` writes it; `notify` reads it back for the Slack message, possibly from another
release, so the JSON has one writer (`to_json`), one reader (`from_json`) and a `format`
(extractor/sink/formats.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

from extractor.sink.formats import (
    as_bool,
    as_dict,
    as_int,
    as_list,
    as_str,
    as_strs,
    dumps,
    loads,
    reading,
)

FORMAT = 1
WHAT = "validation"

Expected = Literal["schemas", "source", "manifests"]
# "drift accepted": differs from the stored schema as the manifest's drift says
SchemaVerdict = Literal["match", "mismatch", "drift accepted", "not stored"]


@dataclass
class TableCheck:
    table: str
    valid: bool = True
    partition: bool = False  # a manifest exists for the date
    files: int = 0
    manifest_rows: int | None = None
    footer_rows: int | None = None
    source_rows: int | None = None
    difference: int | None = None  # source rows - partition rows
    schema: SchemaVerdict = "not stored"
    # The drift the policy let through at extraction (the manifest's): "class column" each.
    accepted_drift: list[str] = field(default_factory=list)
    # The columns that drift names (a rename's both names; "" for a change of order).
    accepted_columns: set[str] = field(default_factory=set, repr=False)  # not in the JSON
    # A compatible write (the manifest's `compat`): the (name, Arrow type) of each column it
    # wrote, the schema to compare with instead of the stored one. Not in the JSON.
    compat_columns: list[tuple[str, str]] | None = field(default=None, repr=False)
    problems: list[str] = field(default_factory=list)  # each one line, naming the table
    notes: list[str] = field(default_factory=list)

    def fail(self, text: str) -> None:
        self.valid = False
        self.problems.append(f"{self.table}: {text}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "valid": self.valid,
            "partition": self.partition,
            "files": self.files,
            "manifest_rows": self.manifest_rows,
            "footer_rows": self.footer_rows,
            "source_rows": self.source_rows,
            "difference": self.difference,
            "schema": self.schema,
            "accepted_drift": list(self.accepted_drift),
            "problems": list(self.problems),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Any) -> TableCheck:
        data = as_dict(data)
        return cls(
            table=as_str(data["table"]),
            valid=as_bool(data["valid"]),
            partition=as_bool(data.get("partition", False)),
            files=as_int(data.get("files", 0)),
            manifest_rows=_opt_int(data.get("manifest_rows")),
            footer_rows=_opt_int(data.get("footer_rows")),
            source_rows=_opt_int(data.get("source_rows")),
            difference=_opt_int(data.get("difference")),
            schema=_one_of(data.get("schema", "not stored"), SchemaVerdict),
            accepted_drift=as_strs(data.get("accepted_drift", [])),
            problems=as_strs(data.get("problems", [])),
            notes=as_strs(data.get("notes", [])),
        )


@dataclass
class Validation:
    date: str
    database: str
    destination: str
    expected_from: Expected
    against_source: bool
    strict: bool
    checked_at: str
    selection: list[str] | None = None  # --table names, or None for every expected table
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # run-level, e.g. nothing to check
    tables: list[TableCheck] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems and all(t.valid for t in self.tables)

    def all_problems(self) -> list[str]:
        return [*self.problems, *(p for t in self.tables for p in t.problems)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "date": self.date,
            "database": self.database,
            "destination": self.destination,
            "expected_from": self.expected_from,
            "against_source": self.against_source,
            "strict": self.strict,
            "checked_at": self.checked_at,
            "selection": self.selection,
            "notes": list(self.notes),
            "problems": list(self.problems),
            "tables": [t.to_dict() for t in self.tables],
            "valid": self.valid,
            "status": "valid" if self.valid else "invalid",
        }

    def to_json(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str, where: str) -> Validation:
        """The stored result; the derived `valid` and `status` are recomputed, not read."""
        data = loads(text, WHAT, where, FORMAT)
        with reading(WHAT, where):
            selection = data.get("selection")
            return cls(
                date=as_str(data["date"]),
                database=as_str(data["database"]),
                destination=as_str(data["destination"]),
                expected_from=_one_of(data["expected_from"], Expected),
                against_source=as_bool(data["against_source"]),
                strict=as_bool(data["strict"]),
                checked_at=as_str(data["checked_at"]),
                selection=None if selection is None else as_strs(selection),
                notes=as_strs(data.get("notes", [])),
                problems=as_strs(data.get("problems", [])),
                tables=[TableCheck.from_dict(t) for t in as_list(data.get("tables", []))],
            )

    def lines(self) -> list[str]:
        """The human result: one line per table, one per problem, one per note, the verdict."""
        out = [f"note {n}" for n in self.notes]
        out.extend(f"FAIL {p}" for p in self.problems)
        for t in self.tables:
            if t.valid:
                source = "" if t.source_rows is None else f", source {t.source_rows:,} rows"
                out.append(
                    f"ok   {t.table}: {t.manifest_rows or 0:,} rows in {t.files} "
                    f"files, schema {t.schema}{source}"
                )
            out.extend(f"FAIL {p}" for p in t.problems)
            out.extend(f"note {t.table}: {n}" for n in t.notes)
        bad = sum(not t.valid for t in self.tables)
        out.append(
            f"validation of cog_dt_ingestion={self.date}: {len(self.tables)} tables, "
            f"{bad} invalid: {'valid' if self.valid else 'INVALID'}"
        )
        return out


def _opt_int(value: Any) -> int | None:
    return None if value is None else as_int(value)


def _one_of(value: Any, kind: Any) -> Any:
    """`value` if it is one of the Literal `kind`'s strings."""
    allowed = get_args(kind)
    if value not in allowed:
        raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")
    return cast(str, value)
