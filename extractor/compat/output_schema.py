"""A table's output schema: the Parquet shape its readers expect, stored as a golden file.

    <schemas_dir>/<database>/output/<table>.json

One writer (`write_output_schema`), one reader (`load_output_schema`), a format version.
The JSON is deterministic (sorted keys, two-space indent, trailing newline), so a second
`compat inspect --save` over the same partition writes the same bytes. The folder sits
beside the stored schemas (`<table>.json`), which the drift store globs without recursing.
Each column holds its Arrow type as a tree (`type_to_json`) from which the writer rebuilds
the exact type, and the Parquet leaves (physical and logical type per leaf path) that a
reader's schema comparison sees. schemas/README.md documents the format.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pyarrow.parquet as pq

from extractor.compat.airbyte import ERAS, Era, Role, era_of, role_of
from extractor.drift.store import database_dir, schema_path, write_reviewed_file
from extractor.errors import Step, UsageError

FORMAT = 1
FOLDER = "output"


@dataclass(frozen=True)
class OutputColumn:
    name: str  # as readers see it (Airbyte's sanitized name)
    role: Role
    source: str | None  # the MySQL column it holds (data columns); None when none matched
    type: dict[str, Any]  # the Arrow type tree (type_to_json)
    nullable: bool
    parquet: list[dict[str, Any]] = field(default_factory=list)  # leaves: path, physical, ...

    @property
    def arrow_type(self) -> pa.DataType:
        return type_from_json(self.type)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "source": self.source,
            "type": self.type,
            "nullable": self.nullable,
            "parquet": self.parquet,
        }


@dataclass(frozen=True)
class OutputSchema:
    database: str
    table: str
    era: Era
    columns: list[OutputColumn]
    # Where it was found: partition date, file name, the writer's created_by.
    found: dict[str, str] = field(default_factory=dict)

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow_type, c.nullable) for c in self.columns])

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "database": self.database,
            "table": self.table,
            "era": self.era,
            "found": dict(self.found),
            "columns": [c.to_dict() for c in self.columns],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutputSchema:
        columns = [
            OutputColumn(
                str(c["name"]),
                cast(Role, c["role"]),
                c.get("source"),
                dict(c["type"]),
                bool(c["nullable"]),
                list(c.get("parquet", [])),
            )
            for c in data["columns"]
        ]
        return cls(
            str(data["database"]),
            str(data["table"]),
            cast(Era, data["era"]),
            columns,
            {str(k): str(v) for k, v in dict(data.get("found", {})).items()},
        )


def dumps(schema: OutputSchema) -> str:
    return json.dumps(schema.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def output_schema_path(schemas_dir: str | os.PathLike[str], database: str, table: str) -> Path:
    checked = schema_path(schemas_dir, database, table)  # the same table-name rule
    return database_dir(schemas_dir, database) / FOLDER / checked.name


def write_output_schema(schemas_dir: str | os.PathLike[str], schema: OutputSchema) -> bool:
    """Write one output schema; False when the file already held exactly this text."""
    path = output_schema_path(schemas_dir, schema.database, schema.table)
    return write_reviewed_file(path, dumps(schema), "output schema")


def load_output_schema(
    schemas_dir: str | os.PathLike[str], database: str, table: str
) -> OutputSchema | None:
    """The stored output schema of a table, None when it has none; a file that is not a
    valid output schema is a usage error: a compatible write never guesses."""
    path = output_schema_path(schemas_dir, database, table)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(
            f"output schema {path} cannot be read: {exc}", table=table, step=Step.COMPAT
        ) from exc
    problem = _problem(data, database, table)
    if problem is None:
        try:
            schema = OutputSchema.from_dict(data)
            schema.arrow_schema()
            return schema
        except (KeyError, TypeError, ValueError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
    raise UsageError(
        f"output schema {path} is not valid: {problem}; rewrite it with "
        f"`radar-extract compat inspect --table {table} --save`",
        table=table,
        step=Step.COMPAT,
    )


def _problem(data: Any, database: str, table: str) -> str | None:
    if not isinstance(data, dict):
        return "not a JSON object"
    if data.get("format") != FORMAT:
        return f"format {data.get('format')!r} is not {FORMAT}"
    if data.get("database") != database or data.get("table") != table:
        return f"it describes {data.get('database')!r}.{data.get('table')!r}"
    if data.get("era") not in ERAS:
        return f"era {data.get('era')!r} is not one of {', '.join(ERAS)}"
    columns = data.get("columns")
    if not isinstance(columns, list) or not all(
        isinstance(c, dict) and {"name", "role", "type", "nullable"} <= set(c) for c in columns
    ):
        return "every column needs name, role, type and nullable"
    return None


# -- Arrow types as JSON trees -------------------------------------------------------------
_SIMPLE: dict[str, pa.DataType] = {
    "boolean": pa.bool_(),
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "uint8": pa.uint8(),
    "uint16": pa.uint16(),
    "uint32": pa.uint32(),
    "uint64": pa.uint64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "string": pa.string(),
    "binary": pa.binary(),
    "date": pa.date32(),
}
_SIMPLE_NAMES = {str(t): name for name, t in _SIMPLE.items()}


def type_to_json(t: pa.DataType) -> dict[str, Any]:
    """The JSON tree of an Arrow type as read from a Parquet footer; raises for a type a
    footer cannot hold (an unknown type never passes silently)."""
    if pa.types.is_large_string(t):
        t = pa.string()
    elif pa.types.is_large_binary(t):
        t = pa.binary()
    if str(t) in _SIMPLE_NAMES and t in _SIMPLE.values():
        return {"type": _SIMPLE_NAMES[str(t)]}
    if pa.types.is_fixed_size_binary(t):
        return {"type": "fixed_binary", "width": t.byte_width}
    if pa.types.is_timestamp(t):
        return {"type": "timestamp", "unit": t.unit, "tz": t.tz}
    if pa.types.is_time(t):
        return {"type": "time", "unit": t.unit}
    if pa.types.is_decimal(t):
        return {"type": "decimal", "precision": t.precision, "scale": t.scale}
    if pa.types.is_struct(t):
        return {"type": "struct", "fields": [_field_json(t.field(i)) for i in range(t.num_fields)]}
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return {"type": "list", "item": _field_json(t.value_field)}
    if pa.types.is_map(t):
        return {"type": "map", "key": _field_json(t.key_field), "value": _field_json(t.item_field)}
    raise ValueError(f"Arrow type {t} has no output-schema form")


def canonical_schema(schema: pa.Schema) -> pa.Schema:
    """A footer's Arrow schema with every type rebuilt from its tree: comparable by text with
    the types of an output schema (a footer gives map entries the Parquet group's name)."""
    return pa.schema(
        [pa.field(f.name, type_from_json(type_to_json(f.type)), f.nullable) for f in schema]
    )


def _field_json(f: pa.Field) -> dict[str, Any]:
    return {"name": f.name, "type": type_to_json(f.type), "nullable": f.nullable}


def type_from_json(tree: dict[str, Any]) -> pa.DataType:
    kind = tree["type"]
    if kind in _SIMPLE:
        return _SIMPLE[kind]
    if kind == "fixed_binary":
        return pa.binary(int(tree["width"]))
    if kind == "timestamp":
        return pa.timestamp(tree["unit"], tz=tree.get("tz"))
    if kind == "time":
        return pa.time32(tree["unit"]) if tree["unit"] in ("s", "ms") else pa.time64(tree["unit"])
    if kind == "decimal":
        precision, scale = int(tree["precision"]), int(tree["scale"])
        return (
            pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)
        )
    if kind == "struct":
        return pa.struct([_field_from_json(f) for f in tree["fields"]])
    if kind == "list":
        return pa.list_(_field_from_json(tree["item"]))
    if kind == "map":
        key, value = _field_from_json(tree["key"]), _field_from_json(tree["value"])
        return pa.map_(key, value)
    raise ValueError(f"unknown type {kind!r}")


def _field_from_json(tree: dict[str, Any]) -> pa.Field:
    return pa.field(str(tree["name"]), type_from_json(tree["type"]), bool(tree["nullable"]))


# -- from a footer -------------------------------------------------------------------------
def parquet_leaves(schema: pq.ParquetSchema) -> dict[str, list[dict[str, Any]]]:
    """Every leaf of a Parquet schema by its top-level column: path, physical, logical and
    converted type (and the width of a fixed-length one), as a reader compares them."""
    out: dict[str, list[dict[str, Any]]] = {}
    for i in range(len(schema)):
        column = schema.column(i)
        logical = json.loads(column.logical_type.to_json())
        leaf: dict[str, Any] = {
            "path": column.path,
            "physical": column.physical_type,
            "logical": None if logical.get("Type") == "None" else logical,
            "converted": column.converted_type,
        }
        if column.physical_type == "FIXED_LEN_BYTE_ARRAY":
            leaf["length"] = column.length
        out.setdefault(column.path.split(".", 1)[0], []).append(leaf)
    return out


def from_footer(
    database: str,
    table: str,
    metadata: pq.FileMetaData,
    names: dict[str, str | None],
    found: dict[str, str],
) -> OutputSchema:
    """The output schema of one footer; `names` maps each top-level name to its MySQL column."""
    arrow = metadata.schema.to_arrow_schema()
    leaves = parquet_leaves(metadata.schema)
    columns = [
        OutputColumn(
            f.name,
            role_of(f.name),
            names.get(f.name),
            type_to_json(f.type),
            f.nullable,
            leaves.get(f.name, []),
        )
        for f in arrow
    ]
    return OutputSchema(database, table, era_of(arrow.names), columns, found)
