"""`compat inspect`: what the readers of each table expect, from the old partitions' footers.

For each table, the newest partition under its data location that radar-extract did not
write (no manifest of ours for that date) is the reference; only the footer of its first
file is read, by two ranged reads at the end of the object, never its data. The result
names the Airbyte era and, per column, the type readers expect, the exact contract's type,
and what a compatible write does. `save` stores it as the table's output schema.
"""

from __future__ import annotations

import json
import posixpath
import struct
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from extractor.compat.airbyte import Role, sanitize
from extractor.compat.output_schema import OutputSchema, from_footer, write_output_schema
from extractor.compat.rules import route
from extractor.compat.writer import match_columns
from extractor.config import Settings
from extractor.contract.types import Column, plan_column
from extractor.errors import DestinationError, Step, UnsupportedColumn
from extractor.sink.destination import Destination

PARTITION = "cog_dt_ingestion="
_TAIL = 64 * 1024  # one read holds the footer of almost any file
_MAGIC = b"PAR1"
METADATA_WRITES: dict[Role, str] = {
    "ab_id": "a UUID v4 per row",
    "raw_id": "a UUID v4 per row",
    "emitted_at": "the run's start",
    "extracted_at": "the run's start",
    "generation_id": "a number that grows by run (the run's start, epoch seconds)",
    "additional_properties": "NULL",
    "meta": "sync_id (grows by run) and one change per value a conversion changed",
    "unknown_metadata": "NULL (an Airbyte column radar-extract does not know)",
}


@dataclass(frozen=True)
class ColumnReport:
    name: str  # as readers see it
    source: str | None  # the MySQL column
    mysql_type: str | None
    expected: str  # Arrow type the readers expect
    parquet: str  # its Parquet physical and logical types
    contract: str | None  # the exact contract's Arrow type
    write: str  # identical, lossless, lossy, unsupported, metadata, null, new
    how: str
    counted: str | None = None


@dataclass
class TableReport:
    table: str
    status: str  # "airbyte" (an old partition found) or "exact"
    era: str | None = None
    partition: str | None = None
    file: str | None = None
    created_by: str | None = None
    columns: list[ColumnReport] = field(default_factory=list)
    output: OutputSchema | None = None
    saved: bool | None = None  # with --save: whether the file changed

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("output")
        return data

    def lines(self) -> list[str]:
        if self.status == "exact":
            return [f"{self.table}: exact (no partition written by another tool)"]
        head = (
            f"{self.table}: Airbyte {self.era}, {PARTITION}{self.partition}/{self.file}"
            f" ({self.created_by or 'writer unknown'})"
        )
        if self.saved is not None:
            head += "; output schema " + ("saved" if self.saved else "unchanged")
        out = [head]
        for c in self.columns:
            mysql = f"{c.source} {c.mysql_type}" if c.source else "-"
            text = f"  {c.name}: expects {c.expected} [{c.parquet}]; MySQL {mysql}"
            if c.contract:
                text += f", contract {c.contract}"
            text += f"; {c.write}: {c.how}"
            if c.counted:
                text += f"; counted: {c.counted}"
            out.append(text)
        return out


def inspect_tables(
    settings: Settings, columns: dict[str, list[Column]], save: bool = False
) -> list[TableReport]:
    """One report per table (in the order given); with `save`, the output schemas written."""
    destination = Destination(settings)
    reports = []
    for table, live in columns.items():
        report = inspect_table(destination, settings.mysql.database, table, live)
        if save and report.output is not None:
            report.saved = write_output_schema(settings.schemas_dir, report.output)
        reports.append(report)
    return reports


def inspect_table(
    destination: Destination, database: str, table: str, live: list[Column]
) -> TableReport:
    found = foreign_partition(destination, table)
    if found is None:
        return TableReport(table, "exact")
    date, path = found
    metadata = read_footer(destination, path)
    provisional = from_footer(database, table, metadata, {}, {})
    matched = match_columns(provisional, [c.name for c in live])
    output = from_footer(
        database,
        table,
        metadata,
        dict(matched),
        {
            "partition": date,
            "file": posixpath.basename(path),
            "created_by": metadata.created_by or "",
        },
    )
    report = TableReport(
        table,
        "airbyte",
        output.era,
        date,
        posixpath.basename(path),
        metadata.created_by,
        output=output,
    )
    by_name = {c.name: c for c in live}
    leaves = {c.name: c.parquet for c in output.columns}
    for column in output.columns:
        expected, parquet = str(column.arrow_type), _parquet_text(leaves[column.name])
        if column.role != "data":
            report.columns.append(
                ColumnReport(
                    column.name,
                    None,
                    None,
                    expected,
                    parquet,
                    None,
                    "metadata",
                    METADATA_WRITES[column.role],
                )
            )
            continue
        source = by_name.get(matched.get(column.name, ""))
        if source is None:
            report.columns.append(
                ColumnReport(
                    column.name,
                    None,
                    None,
                    expected,
                    parquet,
                    None,
                    "null",
                    "no such MySQL column: written NULL, if the drift policy lets column_removed "
                    "through",
                )
            )
            continue
        report.columns.append(
            _data_column(column.name, source, column.arrow_type, expected, parquet, table)
        )
    for added in [c for c in live if c.name not in matched.values()]:
        contract = _contract(added, table)
        report.columns.append(
            ColumnReport(
                sanitize(added.name),
                added.name,
                added.column_type,
                "(not in the old partition)",
                "-",
                None if contract is None else str(contract),
                "new",
                "appended after the old columns, exact, if the drift policy lets column_added "
                "through",
            )
        )
    return report


def _contract(column: Column, table: str) -> pa.DataType | None:
    try:
        return plan_column(column, table).arrow_type
    except UnsupportedColumn:
        return None


def _data_column(
    name: str, column: Column, found: pa.DataType, expected: str, parquet: str, table: str
) -> ColumnReport:
    contract = _contract(column, table)
    if contract is None:
        return ColumnReport(
            name,
            column.name,
            column.column_type,
            expected,
            parquet,
            None,
            "unsupported",
            "the type contract does not cover this column",
        )
    chosen = route(column, contract, found)
    how = chosen.how + (
        " (a type change: the drift policy decides)" if chosen.kind == "unsupported" else ""
    )
    return ColumnReport(
        name,
        column.name,
        column.column_type,
        expected,
        parquet,
        str(contract),
        chosen.kind,
        how,
        chosen.counted,
    )


def _parquet_text(leaves: list[dict[str, Any]]) -> str:
    parts = []
    for leaf in leaves:
        logical = leaf.get("logical") or {}
        text = leaf["physical"]
        if logical:
            details = [
                str(logical[k])
                for k in ("timeUnit", "isAdjustedToUTC", "precision", "scale")
                if k in logical
            ]
            text += f" {logical['Type']}" + (f"({', '.join(details)})" if details else "")
        nested = leaf["path"].split(".", 1)
        parts.append(f"{nested[1]}: {text}" if len(nested) > 1 else text)
    return "; ".join(parts)


def foreign_partition(destination: Destination, table: str) -> tuple[str, str] | None:
    """The newest partition of `table` with no manifest of ours, and its first Parquet file."""
    keys = destination.keys
    ours = set(destination.list_files(keys.manifests(table)))
    dates = sorted(
        (
            posixpath.basename(d)[len(PARTITION) :]
            for d in destination.list_dirs(keys.table_dir(table))
            if posixpath.basename(d).startswith(PARTITION)
        ),
        reverse=True,
    )
    for date in dates:
        if keys.manifest(table, date) in ours:
            continue
        files = [
            f for f in destination.list_files(keys.data_dir(table, date)) if f.endswith(".parquet")
        ]
        if files:
            return date, files[0]
    return None


def read_footer(destination: Destination, path: str) -> pq.FileMetaData:
    """The footer of one Parquet object, from ranged reads of its end (never its data)."""
    with destination.errors(Step.READ, path):
        size = int(destination.fs.size(path))
        tail = bytes(destination.fs.cat_file(path, start=max(0, size - _TAIL), end=size))
        if size < 12 or tail[-4:] != _MAGIC:
            raise DestinationError(
                f"{destination.url(path)} is not a Parquet file", step=Step.INSPECT
            )
        length = struct.unpack("<I", tail[-8:-4])[0]
        if length + 8 > len(tail):
            tail = bytes(destination.fs.cat_file(path, start=size - 8 - length, end=size))
        footer = tail[-8 - length :]
        return pq.read_metadata(pa.BufferReader(_MAGIC + footer))


def to_json(reports: list[TableReport]) -> str:
    return (
        json.dumps([r.to_dict() for r in reports], indent=2, sort_keys=True, ensure_ascii=False)
        + "\n"
    )
