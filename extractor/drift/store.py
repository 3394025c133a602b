"""Stored schemas: golden files in `<schemas_dir>/<database>/<table>.json`, reviewed like code.

A stored schema is built from the discovered columns and primary key, so the live database
is described in exactly the same form before the two are compared. The serialisation is
deterministic (sorted keys, columns in ordinal order, two-space indent, trailing newline):
two snapshots of an unchanged database are byte-identical, and a review diff shows only
what changed. `StoredSchema` is its one reader and writer, with a `format`
(extractor/sink/formats.py); the golden file tests/golden/stored_schema.json holds it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extractor.contract.types import Column, plan_column
from extractor.errors import ExtractError, FormatError, UnsupportedColumn, UsageError
from extractor.sink.formats import (
    as_bool,
    as_dict,
    as_list,
    as_opt_str,
    as_str,
    as_strs,
    dumps,
    loads,
    reading,
)

FORMAT = 1
WHAT = "stored schema"


@dataclass(frozen=True)
class StoredColumn:
    name: str
    data_type: str  # information_schema DATA_TYPE, e.g. "decimal"
    mysql_type: str  # COLUMN_TYPE, e.g. "decimal(10,2) unsigned"
    nullable: bool
    arrow_type: str | None  # None: a type outside the contract (the table fails at `plan`)
    # Whether older rows get a value when the column is added: tells "added NOT NULL
    # without default" apart. Files written before the drift check lack it: True.
    has_default: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "data_type": self.data_type,
            "mysql_type": self.mysql_type,
            "nullable": self.nullable,
            "arrow_type": self.arrow_type,
            "has_default": self.has_default,
        }

    @classmethod
    def from_dict(cls, data: Any) -> StoredColumn:
        data = as_dict(data)
        return cls(
            as_str(data["name"]),
            as_str(data["data_type"]),
            as_str(data["mysql_type"]),
            as_bool(data["nullable"]),
            as_opt_str(data["arrow_type"]),
            as_bool(data.get("has_default", True)),
        )


@dataclass(frozen=True)
class StoredSchema:
    """One table as stored (and as the live database is described before comparing)."""

    database: str
    table: str
    columns: list[StoredColumn] = field(default_factory=list)  # in ordinal order
    primary_key: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "database": self.database,
            "table": self.table,
            "columns": [c.to_dict() for c in self.columns],
            "primary_key": list(self.primary_key),
        }

    def to_json(self) -> str:
        """The one serialisation of a stored schema (the contract's format)."""
        return dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str, where: str) -> StoredSchema:
        data = loads(text, WHAT, where, FORMAT)
        with reading(WHAT, where):
            return cls(
                as_str(data["database"]),
                as_str(data["table"]),
                [StoredColumn.from_dict(c) for c in as_list(data["columns"])],
                as_strs(data["primary_key"]),
            )


def build_schema(
    database: str, table: str, columns: Iterable[Column], primary_key: Iterable[str]
) -> StoredSchema:
    """The stored form of one table, from what discovery found."""
    return StoredSchema(database, table, [_column(c, table) for c in columns], list(primary_key))


def _column(column: Column, table: str) -> StoredColumn:
    try:
        arrow: str | None = str(plan_column(column, table).arrow_type)
    except UnsupportedColumn:  # the table fails at `plan` anyway; its schema is still stored
        arrow = None
    return StoredColumn(
        column.name,
        column.data_type,
        column.column_type,
        column.nullable,
        arrow,
        column.has_default,
    )


def database_dir(schemas_dir: str | os.PathLike[str], database: str) -> Path:
    return Path(schemas_dir) / database


def schema_path(schemas_dir: str | os.PathLike[str], database: str, table: str) -> Path:
    # Table names come from information_schema; these could still escape the folder.
    if table in (".", "..") or any(c in table for c in "/\\\x00"):
        raise UsageError(f"table name {table!r} cannot be stored as a file name")
    return database_dir(schemas_dir, database) / f"{table}.json"


def load_schemas(
    schemas_dir: str | os.PathLike[str], database: str
) -> dict[str, StoredSchema] | None:
    """Every stored schema of `database` by table name; None when its folder does not exist.

    A file that is not a stored schema of this table is a usage error (exit 2): the
    check must never run against a half-read reference.
    """
    found = read_schemas(schemas_dir, database)
    if found is None:
        return None
    for table, schema in found.items():
        if isinstance(schema, str):
            raise UsageError(
                f"{schema}; rewrite it with `radar-extract schemas snapshot --table {table}`"
            )
    return {table: schema for table, schema in found.items() if not isinstance(schema, str)}


def read_schemas(
    schemas_dir: str | os.PathLike[str], database: str
) -> dict[str, StoredSchema | str] | None:
    """Every stored schema of `database`, or for a file that is not one, the one-line
    reason; None when the database's folder does not exist."""
    folder = database_dir(schemas_dir, database)
    if not folder.is_dir():
        return None
    return {path.stem: _load(path, database, path.stem) for path in sorted(folder.glob("*.json"))}


def _load(path: Path, database: str, table: str) -> StoredSchema | str:
    """The stored schema in `path`, or the one-line reason it is not one of this table."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return f"stored schema {path} cannot be read: {exc}"
    try:
        schema = StoredSchema.from_json(text, str(path))
    except FormatError as exc:
        return exc.message
    if (schema.database, schema.table) != (database, table):
        return (
            f"stored schema {path} is not valid: it describes {schema.database!r}.{schema.table!r}"
        )
    return schema


def write_schema(schemas_dir: str | os.PathLike[str], schema: StoredSchema) -> bool:
    """Write one stored schema; False when the file already held exactly this text."""
    path = schema_path(schemas_dir, schema.database, schema.table)
    return write_reviewed_file(path, schema.to_json(), "stored schema")


def write_reviewed_file(path: Path, text: str, what: str) -> bool:
    """Write a file of the schemas folder (reviewed like code); False when it already held
    exactly this text, so an unchanged snapshot leaves the repository's diff empty."""
    try:
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8", newline="\n")
        os.replace(tmp, path)  # a reader never sees half a file
    except (OSError, UnicodeDecodeError) as exc:
        raise ExtractError(f"cannot write the {what} {path}: {exc}") from exc
    return True


def remove_schema(schemas_dir: str | os.PathLike[str], database: str, table: str) -> None:
    schema_path(schemas_dir, database, table).unlink(missing_ok=True)
