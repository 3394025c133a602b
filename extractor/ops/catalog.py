"""The Glue Data Catalog follows what we publish, without a crawler: `catalog sync`.

Every table with a published partition of the date (its manifest exists) gets the partition
`cog_dt_ingestion=D` on its Glue table, with the table's storage descriptor: the location is
the partition's S3 URL; SerDe, input and output formats and columns are the table's. The
partition is created, or updated when it differs (a re-extract: another run, rows, files), or
left as it is: a second sync changes nothing.

On request the Glue table follows the files: `update_columns` sets its columns to the exact
Hive types of the partition's Parquet files (extractor/ops/hive_types.py) and its partition
key to `cog_dt_ingestion string`, then gives every partition the table's columns (what a
crawler's "inherit schema from table" does); `create_tables` creates a missing Glue table so.

The Glue table of MySQL table T is `<glue_table_prefix>T` in lower case (Glue lower-cases).
A missing Glue table, or one that cannot take the partition, is one problem line (exit 1) and
the other tables still sync; a missing Glue database is GlueError (exit 1) before any table;
Glue unreachable or refusing the credentials is GlueUnavailable (exit 3), at once.
"""

from __future__ import annotations

import copy
import logging
import posixpath
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import pyarrow.parquet as pq

from extractor.config import Settings
from extractor.errors import (
    DestinationUnavailable,
    ExtractError,
    FormatError,
    GlueError,
    GlueUnavailable,
    Step,
    UsageError,
)
from extractor.ops.glue import client as glue_client
from extractor.ops.glue import error_code, translated
from extractor.ops.hive_types import hive_columns
from extractor.sink.destination import Destination
from extractor.sink.manifest import Manifest
from extractor.source.discovery import check_table_names

logger = logging.getLogger(__name__)

PARTITION_KEY = "cog_dt_ingestion"
Action = Literal["created", "updated", "unchanged"]
TableChange = Literal["created", "columns updated"]

# What a Parquet table created by a crawler declares; a created table gets the same.
PARQUET_FORMAT = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {
        "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
        "Parameters": {"serialization.format": "1"},
    },
}
# The keys of Glue's TableInput and StorageDescriptor shapes: get_table answers with more.
_TABLE_INPUT = (
    "Name",
    "Description",
    "Owner",
    "Retention",
    "StorageDescriptor",
    "PartitionKeys",
    "ViewOriginalText",
    "ViewExpandedText",
    "TableType",
    "Parameters",
    "TargetTable",
)
_SD_INPUT = (
    "Columns",
    "Location",
    "AdditionalLocations",
    "InputFormat",
    "OutputFormat",
    "Compressed",
    "NumberOfBuckets",
    "SerdeInfo",
    "BucketColumns",
    "SortColumns",
    "Parameters",
    "SkewedInfo",
    "StoredAsSubDirectories",
    "SchemaReference",
)
# Statistics of the whole table (a crawler's) that would be false on one partition.
_TABLE_STATISTICS = {
    "averageRecordSize",
    "objectCount",
    "recordCount",
    "sizeKey",
    "UPDATED_BY_CRAWLER",
}
_BATCH = 100  # BatchUpdatePartition's limit of entries per call


@dataclass
class TableSync:
    table: str
    glue_table: str
    partition: Action | None = None  # None: not registered
    table_change: TableChange | None = None
    aligned: int = 0  # other partitions given the table's new columns
    problem: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class CatalogSync:
    date: str
    database: str
    tables: list[TableSync] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # run-level: nothing to register

    @property
    def ok(self) -> bool:
        return not self.problems and all(t.problem is None for t in self.tables)

    def counts(self) -> dict[str, int]:
        counts = {"created": 0, "updated": 0, "unchanged": 0, "failed": 0}
        for t in self.tables:
            counts["failed" if t.problem else t.partition or "failed"] += 1
        return counts

    def outcome(self) -> str:
        """What happened to the partitions: "3 tables, 2 created, 0 updated, ..."."""
        c = self.counts()
        return (
            f"{len(self.tables)} tables, {c['created']} created, {c['updated']} updated, "
            f"{c['unchanged']} unchanged, {c['failed']} failed"
        )

    def summary(self) -> str:
        """One line for the log, an error and the last line of `lines`."""
        return (
            f"glue catalog sync of {PARTITION_KEY}={self.date} into {self.database}: "
            f"{self.outcome()}"
        )

    def lines(self) -> list[str]:
        out = [f"note {n}" for n in self.notes]
        out.extend(f"FAIL {p}" for p in self.problems)
        for t in self.tables:
            if t.problem:
                out.append(f"FAIL {t.problem}")
            else:
                change = f"; table {t.table_change}" if t.table_change else ""
                aligned = f"; {t.aligned} other partitions given its columns" if t.aligned else ""
                out.append(
                    f"ok   {t.table} -> {self.database}.{t.glue_table}: partition "
                    f"{t.partition}{change}{aligned}"
                )
            out.extend(f"note {t.table}: {n}" for n in t.notes)
        out.append(f"{self.summary()}: {'ok' if self.ok else 'FAILED'}")
        return out


def glue_table_name(settings: Settings, table: str) -> str:
    return f"{settings.glue_table_prefix}{table}".lower()


def sync_catalog(
    settings: Settings,
    day: date,
    *,
    tables: Sequence[str] | None = None,
    update_columns: bool = False,
    create_tables: bool = False,
) -> CatalogSync:
    """Register the published partitions of `day` (every table's, or `tables`') in Glue."""
    date = day.isoformat()  # the partition's name
    database = settings.glue_database
    if not database:
        raise UsageError("no Glue database: give --database NAME or set RADAR_GLUE_DATABASE")
    if not settings.dest_is_s3:
        raise UsageError(
            f"catalog sync needs an s3:// destination, not {settings.dest!r}: "
            "Glue locations are S3 URLs"
        )
    check_table_names(tables or ())
    destination = Destination(settings)
    result = CatalogSync(date, database)
    glue = _Glue(database)
    glue.require_database()
    names = sorted(set(tables)) if tables else _manifest_tables(destination)
    for name in names:
        entry = TableSync(name, glue_table_name(settings, name))
        try:
            manifest = _manifest(destination, name, date)
            if manifest is None and not tables:
                result.notes.append(f"{name}: no published partition for {date}")
                continue
            if manifest is None:
                entry.problem = (
                    f"{name}: no published partition for {date} (no manifest): not registered"
                )
            else:
                _sync_table(glue, destination, entry, manifest, date, update_columns, create_tables)
        except (GlueUnavailable, DestinationUnavailable):
            raise  # every other table would meet it too
        except ExtractError as exc:
            entry.problem = f"{name}: {exc.message}"
        result.tables.append(entry)
        _log(result, entry)
    if not result.tables:  # a date mistyped, or synced before its run: say so, as validate does
        result.problems.append(f"no table has a published partition for {date}: nothing registered")
    logger.info(
        "%s",
        result.summary(),
        extra={
            "fields": {
                "event": "catalog_sync",
                "date": date,
                "database": database,
                "ok": result.ok,
                **result.counts(),
            }
        },
    )
    return result


def _sync_table(
    glue: _Glue,
    destination: Destination,
    entry: TableSync,
    manifest: Manifest,
    date: str,
    update_columns: bool,
    create_tables: bool,
) -> None:
    name, glue_name = entry.table, entry.glue_table
    data_dir = destination.keys.data_dir(name, date)
    table_url = destination.url(destination.keys.table_dir(name)) + "/"
    table = glue.table(glue_name)
    if table is None:
        if not create_tables:
            raise GlueError(
                f"glue table {glue.database}.{glue_name} does not exist: "
                f"{PARTITION_KEY}={date} not registered (create it, or sync with "
                "--create-tables)",
                table=name,
                step=Step.CATALOG,
            )
        columns = _file_columns(destination, manifest, data_dir, name)
        glue.create_table(_new_table(glue_name, columns, table_url))
        entry.table_change = "created"
        table = glue.required_table(glue_name)
    else:
        keys = [str(k.get("Name", "")).lower() for k in table.get("PartitionKeys") or []]
        if keys != [PARTITION_KEY] and not (update_columns and not keys):
            raise GlueError(
                f"glue table {glue.database}.{glue_name} is partitioned by "
                f"{', '.join(keys) or 'nothing'}, not {PARTITION_KEY}: "
                "not registered",
                table=name,
                step=Step.CATALOG,
            )
        if "StorageDescriptor" not in table:
            raise GlueError(
                f"glue table {glue.database}.{glue_name} has no storage "
                "descriptor (a view?): not registered",
                table=name,
                step=Step.CATALOG,
            )
        location = str(table["StorageDescriptor"].get("Location", ""))
        if location.rstrip("/") != table_url.rstrip("/"):
            entry.notes.append(
                f"glue table {glue_name} is located at {location or '(none)'}, "
                f"its partitions at {table_url}"
            )
        if update_columns:
            columns = _file_columns(destination, manifest, data_dir, name)
            if _shape(table) != (_pairs(columns), [(PARTITION_KEY, "string")]):
                glue.update_table(_with_columns(table, columns))
                entry.table_change = "columns updated"
                table = glue.required_table(glue_name)
    sd = table["StorageDescriptor"]
    wanted = _partition_input(sd, date, destination.url(data_dir) + "/", manifest)
    existing = glue.partition(glue_name, date)
    if existing is None:
        glue.create_partition(glue_name, wanted)
        entry.partition = "created"
    elif _same(existing, wanted):
        entry.partition = "unchanged"
    else:
        glue.update_partition(glue_name, date, wanted)
        entry.partition = "updated"
    if update_columns:
        entry.aligned = _align_partitions(glue, glue_name, sd.get("Columns") or [])


def _manifest_tables(destination: Destination) -> list[str]:
    return sorted(
        posixpath.basename(d) for d in destination.list_dirs(destination.keys.manifests())
    )


def _manifest(destination: Destination, table: str, date: str) -> Manifest | None:
    """The manifest of the partition, or None: it is written last, so it stands for a whole
    publish. One that cannot be read (damaged, or of a newer format) is not ours to register."""
    path = destination.keys.manifest(table, date)
    text = destination.read_text(path)
    if text is None:
        return None
    try:
        return Manifest.from_json(text, destination.url(path))
    except FormatError as exc:  # it names the file: "manifest <url> is not readable: ..."
        raise ExtractError(
            f"{exc.message}: not registered", table=table, step=Step.CATALOG
        ) from exc


def _file_columns(
    destination: Destination, manifest: Manifest, data_dir: str, table: str
) -> list[dict[str, str]]:
    """The Glue columns of the partition's files: one writer wrote them all with one schema,
    so the first file's footer is enough."""
    if not manifest.files:
        raise GlueError(
            "the manifest lists no data file: no schema to declare", table=table, step=Step.CATALOG
        )
    path = posixpath.join(data_dir, manifest.files[0].key)
    with destination.errors(Step.READ, path, table=table), destination.fs.open(path, "rb") as fh:
        schema = pq.ParquetFile(fh).schema_arrow
    return [{"Name": n, "Type": t} for n, t in hive_columns(schema, table)]


def _new_table(name: str, columns: list[dict[str, str]], location: str) -> dict[str, Any]:
    return {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
        "PartitionKeys": [{"Name": PARTITION_KEY, "Type": "string"}],
        "StorageDescriptor": {
            "Columns": columns,
            "Location": location,
            "Parameters": {"classification": "parquet"},
            **copy.deepcopy(PARQUET_FORMAT),
        },
    }


def _with_columns(table: dict[str, Any], columns: list[dict[str, str]]) -> dict[str, Any]:
    """The table as a TableInput, with these columns (comments kept by name) and our key."""
    data = {k: copy.deepcopy(table[k]) for k in _TABLE_INPUT if k in table}
    sd = {k: v for k, v in data["StorageDescriptor"].items() if k in _SD_INPUT}
    comments = {
        str(c["Name"]).lower(): c["Comment"] for c in sd.get("Columns") or [] if c.get("Comment")
    }
    sd["Columns"] = [
        {**c, "Comment": comments[c["Name"]]} if c["Name"] in comments else c for c in columns
    ]
    data["StorageDescriptor"] = sd
    data["PartitionKeys"] = [{"Name": PARTITION_KEY, "Type": "string"}]
    return data


def _partition_input(
    table_sd: dict[str, Any], date: str, location: str, manifest: Manifest
) -> dict[str, Any]:
    sd = {k: copy.deepcopy(v) for k, v in table_sd.items() if k in _SD_INPUT}
    sd["Location"] = location
    parameters = {
        k: v for k, v in (sd.get("Parameters") or {}).items() if k not in _TABLE_STATISTICS
    }
    sd["Parameters"] = {
        **parameters,
        "recordCount": str(manifest.rows),
        "objectCount": str(len(manifest.files)),
        "sizeKey": str(manifest.bytes),
    }
    # Which publish the partition describes: a re-extract changes it, so the sync updates.
    return {
        "Values": [date],
        "StorageDescriptor": sd,
        "Parameters": {
            "radar_extract.run_id": manifest.run_id,
            "radar_extract.published_at": manifest.published_at,
        },
    }


def _same(existing: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether the partition already says what we would write (Glue may answer with more)."""
    sd = existing.get("StorageDescriptor") or {}
    return (
        existing.get("Values") == wanted["Values"]
        and _plain(existing.get("Parameters")) == _plain(wanted["Parameters"])
        and all(_plain(sd.get(k)) == _plain(v) for k, v in wanted["StorageDescriptor"].items())
    )


def _plain(value: Any) -> Any:
    """Empty values dropped, recursively: Glue may omit what was sent empty, or the reverse."""
    if isinstance(value, dict):
        items = {k: _plain(v) for k, v in value.items()}
        return {k: v for k, v in items.items() if v is not None} or None
    if isinstance(value, list):
        return [_plain(v) for v in value] or None
    return value


def _pairs(columns: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(name, type) as Hive compares them: case and blanks do not count."""
    return [
        (str(c.get("Name", "")).lower(), re.sub(r"\s+", "", str(c.get("Type", ""))).lower())
        for c in columns
    ]


def _shape(table: dict[str, Any]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    columns = (table.get("StorageDescriptor") or {}).get("Columns") or []
    return _pairs(columns), _pairs(table.get("PartitionKeys") or [])


def _align_partitions(glue: _Glue, glue_table: str, columns: list[dict[str, Any]]) -> int:
    """Give every partition whose columns differ the table's; returns how many changed."""
    entries = []
    for partition in glue.partitions(glue_table):
        sd = partition.get("StorageDescriptor") or {}
        if _pairs(sd.get("Columns") or []) == _pairs(columns):
            continue
        wanted: dict[str, Any] = {
            k: copy.deepcopy(partition[k]) for k in ("Values", "Parameters") if k in partition
        }
        wanted["StorageDescriptor"] = {
            **{k: v for k, v in sd.items() if k in _SD_INPUT},
            "Columns": copy.deepcopy(columns),
        }
        entries.append({"PartitionValueList": partition["Values"], "PartitionInput": wanted})
    for start in range(0, len(entries), _BATCH):
        glue.batch_update_partitions(glue_table, entries[start : start + _BATCH])
    return len(entries)


def _log(result: CatalogSync, entry: TableSync) -> None:
    """A problem is not logged here: its line is the command's output, or the error of
    `extract --catalog-sync`, so it is said once."""
    fields = {
        "event": "glue_partition",
        "table": entry.table,
        "glue_table": entry.glue_table,
        "date": result.date,
        "partition": entry.partition,
        "table_change": entry.table_change,
        "aligned": entry.aligned,
    }
    if not entry.problem:
        logger.info(
            "%s: partition %s=%s %s in %s.%s",
            entry.table,
            PARTITION_KEY,
            result.date,
            entry.partition,
            result.database,
            entry.glue_table,
            extra={"fields": fields},
        )


class _Glue:
    """The Glue calls of a sync, each translated into our errors at this boundary."""

    def __init__(self, database: str) -> None:
        self.database = database
        with translated("create a client"):
            self._client = glue_client()

    def _call(
        self, operation: str, what: str, *, missing_ok: bool = False, **kwargs: Any
    ) -> dict[str, Any] | None:
        import botocore.exceptions as bx

        with translated(what):
            try:
                response: dict[str, Any] = getattr(self._client, operation)(**kwargs)
                return response
            except bx.ClientError as exc:
                if missing_ok and error_code(exc) == "EntityNotFoundException":
                    return None
                raise

    def require_database(self) -> None:
        what = f"read database {self.database!r}"
        if self._call("get_database", what, missing_ok=True, Name=self.database) is None:
            raise GlueError(
                f"glue database {self.database!r} does not exist (EntityNotFoundException)",
                step=Step.GLUE,
            )

    def table(self, name: str) -> dict[str, Any] | None:
        found = self._call(
            "get_table",
            f"read table {self.database}.{name}",
            missing_ok=True,
            DatabaseName=self.database,
            Name=name,
        )
        return None if found is None else dict(found["Table"])

    def required_table(self, name: str) -> dict[str, Any]:
        table = self.table(name)
        if table is None:  # just created or updated: only a concurrent delete gets here
            raise GlueError(f"glue table {self.database}.{name} disappeared", step=Step.GLUE)
        return table

    def create_table(self, table_input: dict[str, Any]) -> None:
        self._call(
            "create_table",
            f"create table {self.database}.{table_input['Name']}",
            DatabaseName=self.database,
            TableInput=table_input,
        )

    def update_table(self, table_input: dict[str, Any]) -> None:
        self._call(
            "update_table",
            f"update table {self.database}.{table_input['Name']}",
            DatabaseName=self.database,
            TableInput=table_input,
        )

    def partition(self, table: str, date: str) -> dict[str, Any] | None:
        found = self._call(
            "get_partition",
            self._what("read", table, date),
            missing_ok=True,
            DatabaseName=self.database,
            TableName=table,
            PartitionValues=[date],
        )
        return None if found is None else dict(found["Partition"])

    def create_partition(self, table: str, partition: dict[str, Any]) -> None:
        self._call(
            "create_partition",
            self._what("create", table, partition["Values"][0]),
            DatabaseName=self.database,
            TableName=table,
            PartitionInput=partition,
        )

    def update_partition(self, table: str, date: str, partition: dict[str, Any]) -> None:
        self._call(
            "update_partition",
            self._what("update", table, date),
            DatabaseName=self.database,
            TableName=table,
            PartitionValueList=[date],
            PartitionInput=partition,
        )

    def partitions(self, table: str) -> Iterator[dict[str, Any]]:
        with translated(f"list the partitions of {self.database}.{table}"):
            pages = self._client.get_paginator("get_partitions").paginate(
                DatabaseName=self.database, TableName=table
            )
            for page in pages:
                yield from page.get("Partitions", [])

    def batch_update_partitions(self, table: str, entries: list[dict[str, Any]]) -> None:
        what = f"update {len(entries)} partitions of {self.database}.{table}"
        response = (
            self._call(
                "batch_update_partition",
                what,
                DatabaseName=self.database,
                TableName=table,
                Entries=entries,
            )
            or {}
        )
        errors = response.get("Errors") or []
        if errors:
            first = errors[0]
            detail = first.get("ErrorDetail", {})
            raise GlueError(
                f"glue could not {what}: {len(errors)} failed, the first "
                f"({'/'.join(first.get('PartitionValueList', []))}) with "
                f"{detail.get('ErrorCode', '?')}: {detail.get('ErrorMessage', '')}",
                step=Step.GLUE,
            )

    def _what(self, verb: str, table: str, date: str) -> str:
        return f"{verb} partition {PARTITION_KEY}={date} of {self.database}.{table}"
