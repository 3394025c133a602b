"""Stored schemas: golden files in `<schemas_dir>/<database>/<table>.json`, reviewed like code.

A stored schema is built from the discovered columns and primary key, so the live database
is described in exactly the same form before the two are compared. The serialisation is
deterministic (sorted keys, columns in ordinal order, two-space indent, trailing newline):
two snapshots of an unchanged database are byte-identical, and a review diff shows only
what changed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from extractor.contract.types import Column, plan_column
from extractor.errors import ExtractError, UnsupportedColumn, UsageError

FORMAT = 1
_COLUMN_KEYS = {"name", "data_type", "mysql_type", "nullable", "arrow_type"}

Schema = dict[str, Any]


def build_schema(database: str, table: str, columns: Iterable[Column],
                 primary_key: Iterable[str]) -> Schema:
    """The stored form of one table, from what discovery found."""
    return {
        "format": FORMAT,
        "database": database,
        "table": table,
        "columns": [_column(c, table) for c in columns],
        "primary_key": list(primary_key),
    }


def _column(column: Column, table: str) -> dict[str, Any]:
    try:
        arrow: str | None = str(plan_column(column, table).arrow_type)
    except UnsupportedColumn:  # the table fails at `plan` anyway; its schema is still stored
        arrow = None
    return {
        "name": column.name,
        "data_type": column.data_type,
        "mysql_type": column.column_type,
        "nullable": column.nullable,
        "arrow_type": arrow,
        # Added by the drift check: tells "added NOT NULL without default" apart.
        "has_default": column.has_default,
    }


def dumps(schema: Mapping[str, Any]) -> str:
    """The one serialisation of a stored schema (the contract's format)."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def database_dir(schemas_dir: str | os.PathLike[str], database: str) -> Path:
    return Path(schemas_dir) / database


def schema_path(schemas_dir: str | os.PathLike[str], database: str, table: str) -> Path:
    # Table names come from information_schema; these could still escape the folder.
    if table in (".", "..") or any(c in table for c in "/\\\x00"):
        raise UsageError(f"table name {table!r} cannot be stored as a file name")
    return database_dir(schemas_dir, database) / f"{table}.json"


def load_schemas(schemas_dir: str | os.PathLike[str], database: str) -> dict[str, Schema] | None:
    """Every stored schema of `database` by table name; None when its folder does not exist.

    A file that is not a stored schema of this table is a usage error (exit 2): the
    check must never run against a half-read reference.
    """
    found = read_schemas(schemas_dir, database)
    if found is None:
        return None
    for table, schema in found.items():
        if isinstance(schema, str):
            raise UsageError(f"{schema}; rewrite it with `radar-extract schemas snapshot "
                             f"--table {table}`")
    return {table: schema for table, schema in found.items() if not isinstance(schema, str)}


def read_schemas(schemas_dir: str | os.PathLike[str],
                 database: str) -> dict[str, Schema | str] | None:
    """Every stored schema of `database`, or for a file that is not one, the one-line
    reason; None when the database's folder does not exist."""
    folder = database_dir(schemas_dir, database)
    if not folder.is_dir():
        return None
    return {path.stem: _load(path, database, path.stem)
            for path in sorted(folder.glob("*.json"))}


def _load(path: Path, database: str, table: str) -> Schema | str:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"stored schema {path} cannot be read: {exc}"
    problem = _problem(data, database, table)
    if problem:
        return f"stored schema {path} is not valid: {problem}"
    return dict(data)


def _problem(data: Any, database: str, table: str) -> str | None:
    if not isinstance(data, dict):
        return "not a JSON object"
    if data.get("format") != FORMAT:
        return f"format {data.get('format')!r} is not {FORMAT}"
    if data.get("table") != table or data.get("database") != database:
        return f"it describes {data.get('database')!r}.{data.get('table')!r}"
    columns = data.get("columns")
    if not isinstance(columns, list) or not all(
            isinstance(c, dict) and set(c) >= _COLUMN_KEYS for c in columns):
        return f"every column needs {', '.join(sorted(_COLUMN_KEYS))}"
    if not isinstance(data.get("primary_key"), list):
        return "primary_key must be a list"
    return None


def write_schema(schemas_dir: str | os.PathLike[str], schema: Schema) -> bool:
    """Write one stored schema; False when the file already held exactly this text."""
    path = schema_path(schemas_dir, schema["database"], schema["table"])
    return write_reviewed_file(path, dumps(schema), "stored schema")


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
