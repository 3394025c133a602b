"""Is the ingestion of a date sound? Check every expected table's published partition.

Expected tables: those with a stored schema (`<schemas_dir>/<database>/*.json`), or the
source's base tables with `against_source`; with neither, the tables that have a manifest for
the date (said in the notes). Per table:

- a published partition: the manifest for the date exists;
- the files: every key the manifest lists is there, nothing else is in the partition, every
  footer is readable, and footer rows equal the manifest's, per file and in total;
- the schema: column names, order and Arrow types equal the stored schema's, when one exists
  (a compatible write's: the columns its manifest says were written, extractor/compat/);
- with `against_source`: `SELECT COUNT(*)` now, against the partition's rows.

A count that differs is shown, but fails only when the partition is empty and the source is
not, or with `strict`: the source keeps changing after the extraction (each table is read at
its own moment), so a small difference is expected and not damage. An empty table at the
source with an empty partition is valid.

The result (extractor/ops/validation.py) is stored at keys.validation, the last one per date.
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import pyarrow.parquet as pq

from extractor.compat.output_schema import canonical_schema, type_from_json
from extractor.config import Settings
from extractor.contract.types import quote_identifier
from extractor.drift.store import read_schemas
from extractor.errors import FormatError, Step, UsageError
from extractor.ops.validation import TableCheck, Validation
from extractor.sink.destination import Destination
from extractor.sink.manifest import Manifest
from extractor.source.connection import control_connection, query
from extractor.source.discovery import check_table_names, list_tables

logger = logging.getLogger(__name__)


def validate(
    settings: Settings,
    day: date,
    *,
    tables: Sequence[str] = (),
    against_source: bool = False,
    strict: bool = False,
) -> Validation:
    """Validate the partitions of `day`, store the result, and return it."""
    date = day.isoformat()  # the partition's name
    if strict and not against_source:
        raise UsageError("--strict compares counts with the source: it needs --against-source")
    check_table_names(tables)
    destination = Destination(settings)
    database = settings.mysql.database
    schemas = read_schemas(settings.schemas_dir, database) or {}
    counts: dict[str, int] = {}
    result = Validation(
        date,
        database,
        destination.url(destination.root),
        "schemas",
        against_source,
        strict,
        datetime.now(UTC).isoformat(timespec="seconds"),
        selection=sorted(set(tables)) or None,
    )
    if against_source:
        source_tables = _source_tables(settings)
        unknown = sorted(set(tables) - set(source_tables))
        if unknown:
            raise UsageError(
                "not a base table of the database: " + ", ".join(repr(u) for u in unknown)
            )
        expected, result.expected_from = source_tables, "source"
    elif schemas:
        expected = sorted(schemas)
    else:
        expected, result.expected_from = _manifest_tables(destination, date), "manifests"
        result.notes.append(
            f"no stored schemas in {os.path.join(settings.schemas_dir, database)}: checking the "
            f"{len(expected)} tables with a manifest for {date}"
        )
    names = sorted(set(tables)) if tables else expected
    if not names:
        result.problems.append(
            f"no table to validate for {date} (expected from {result.expected_from})"
        )
    if against_source and names:
        counts = _source_counts(settings, names)
    for name in names:
        check = TableCheck(name)
        file_schemas = _check_partition(destination, date, check)
        stored = schemas.get(name)
        if isinstance(stored, str):  # a stored schema that cannot be read
            check.fail(stored)
        elif check.compat_columns is not None and file_schemas:  # written for Airbyte's readers
            _check_schema([canonical_schema(s) for s in file_schemas], check.compat_columns, check)
        elif stored is not None and file_schemas:
            _check_schema(
                file_schemas, [(c.name, str(c.arrow_type)) for c in stored.columns], check
            )
        if name in counts:
            _compare_count(check, counts[name], strict)
        result.tables.append(check)
    destination.write_text(destination.keys.validation(date), result.to_json())
    invalid = sorted(t.table for t in result.tables if not t.valid)
    logger.info(
        "validation of %s: %s",
        date,
        "valid" if result.valid else "invalid",
        extra={
            "fields": {
                "event": "validate",
                "date": date,
                "status": "valid" if result.valid else "invalid",
                "tables": len(result.tables),
                "invalid": len(invalid),
                "problems": len(result.all_problems()),
            }
        },
    )
    return result


def _source_tables(settings: Settings) -> list[str]:
    with control_connection(settings.mysql, step=Step.VALIDATE) as conn:
        return [t.name for t in list_tables(conn, settings.mysql.database)]


def _source_counts(settings: Settings, names: list[str]) -> dict[str, int]:
    # `names` were checked against information_schema (`_source_tables`) before reaching SQL.
    counts = {}
    with control_connection(settings.mysql, step=Step.COUNT) as conn:
        for name in names:
            rows = query(conn, f"SELECT COUNT(*) AS n FROM {quote_identifier(name)}")
            counts[name] = int(rows[0]["n"])
    return counts


def _manifest_tables(destination: Destination, date: str) -> list[str]:
    tables = []
    for directory in destination.list_dirs(destination.keys.manifests()):
        table = posixpath.basename(directory)
        if destination.exists(destination.keys.manifest(table, date)):
            tables.append(table)
    return sorted(tables)


def _check_partition(destination: Destination, date: str, check: TableCheck) -> list[Any]:
    """Manifest, keys and footers; returns the Arrow schemas of the readable files."""
    table = check.table
    schemas: list[Any] = []
    path = destination.keys.manifest(table, date)
    text = destination.read_text(path)
    present = {
        posixpath.basename(p): p
        for p in destination.list_files(destination.keys.data_dir(table, date))
    }
    if text is None:
        extra = f" ({len(present)} files without one)" if present else ""
        check.fail(f"no published partition for {date} (no manifest){extra}")
        return schemas
    check.partition = True
    try:
        manifest = Manifest.from_json(text, destination.url(path))
    except FormatError as exc:  # it names the file: "manifest <url> is not readable: ..."
        check.fail(str(exc))
        return schemas
    listed = {f.key: f.rows for f in manifest.files}
    check.manifest_rows = manifest.rows
    for change in manifest.drift:
        check.accepted_drift.append(f"{change.kind} {change.column or ''}".strip())
        if change.kind == "order_changed":
            check.accepted_columns.add("")
        elif change.column:
            check.accepted_columns.add(change.column)
            if change.kind == "column_renamed":
                check.accepted_columns.add(str(change.live))
    if manifest.compat is not None:  # types compared as trees: a footer names map entries
        try:
            check.compat_columns = [
                (c.name, str(type_from_json(c.type))) for c in manifest.compat.columns
            ]
        except (ValueError, KeyError, TypeError) as exc:
            check.fail(
                f"manifest {destination.url(path)} is not readable: a compat column's type: {exc}"
            )
            return schemas
    check.files = len(listed)
    if not listed:  # the engine writes one file even for an empty table (its schema)
        check.fail("the manifest lists no data file")
    for key in sorted(set(present) - set(listed)):
        check.fail(f"{key} is in the partition but not in the manifest")
    footer_total = 0
    for key, rows in sorted(listed.items()):
        if key not in present:
            check.fail(f"{key} is in the manifest but missing from the partition")
            continue
        read = _read_footer(destination, present[key], check)
        if read is None:
            continue
        footer, schema = read
        schemas.append(schema)
        footer_total += footer
        if footer != rows:
            check.fail(f"{key} holds {footer:,} rows but the manifest says {rows:,}")
    check.footer_rows = footer_total
    if check.valid and footer_total != check.manifest_rows:
        check.fail(
            f"the footers hold {footer_total:,} rows but the manifest says {check.manifest_rows:,}"
        )
    return schemas


def _read_footer(destination: Destination, path: str, check: TableCheck) -> tuple[int, Any] | None:
    """Rows and Arrow schema from the file's footer; None (and a problem) if it is damaged."""
    key = posixpath.basename(path)
    with destination.errors(Step.READ, path, table=check.table):
        size = destination.fs.size(path)
    try:
        with destination.fs.open(path, "rb") as handle:
            parquet = pq.ParquetFile(handle)
            return int(parquet.metadata.num_rows), parquet.schema_arrow
    except Exception as exc:  # pyarrow names a damaged footer in several ways
        detail = " ".join(str(exc).split())[:200]
        check.fail(f"{key} ({size:,} bytes) has no readable Parquet footer: {detail}")
        return None


def _check_schema(schemas: list[Any], want: list[tuple[str, str]], check: TableCheck) -> None:
    """Every readable file's schema against the stored columns (names, order, Arrow types):
    the stored schema's, or for a compatible write the columns its manifest says were written.

    A difference in a column that the drift policy let through at extraction (recorded in the
    manifest) is a note, not a failure: the run already warned of it, and the stored schema
    awaits its review (`schemas snapshot`). Any other difference is damage or a stored schema
    that no longer describes the partition.
    """
    differences: dict[str, str] = {}  # text -> the column it is about ("" for the order)
    for schema in schemas:
        have = [(f.name, str(f.type)) for f in schema]
        for column, text in _schema_differences(have, want):
            differences.setdefault(text, column)
    accepted = {t for t, column in differences.items() if column in check.accepted_columns}
    if not differences:
        check.schema = "match"
    elif accepted == set(differences):
        check.schema = "drift accepted"
    else:
        check.schema = "mismatch"
    for text in differences:
        if text in accepted:
            check.notes.append(
                f"{text} (drift accepted at extraction: {', '.join(check.accepted_drift)})"
            )
        else:
            check.fail(text)


def _schema_differences(
    have: list[tuple[str, str]], want: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """(column, one line) per difference; the column is "" for a change of order alone."""
    if have == want:
        return []
    out = []
    have_types, want_types = dict(have), dict(want)
    for name, kind in want:
        if name not in have_types:
            out.append(
                (name, f"column {name!r} ({kind}) of the stored schema is not in the partition")
            )
        elif have_types[name] != kind:
            out.append(
                (
                    name,
                    f"column {name!r} is {have_types[name]} in the partition but "
                    f"{kind} in the stored schema",
                )
            )
    out.extend(
        (name, f"column {name!r} ({kind}) is in the partition but not in the stored schema")
        for name, kind in have
        if name not in want_types
    )
    if not out:
        out.append(
            (
                "",
                f"the columns are in another order than the stored schema's: "
                f"{', '.join(n for n, _ in have)}",
            )
        )
    return out


def _compare_count(check: TableCheck, source_rows: int, strict: bool) -> None:
    check.source_rows = source_rows
    if not check.partition or check.manifest_rows is None:
        return
    rows = check.manifest_rows
    check.difference = source_rows - rows
    if check.difference == 0:
        return
    text = (
        f"the source has {source_rows:,} rows, the partition {rows:,} "
        f"(difference {check.difference:+,})"
    )
    if rows == 0 and source_rows > 0:
        check.fail(f"{text}: the partition is empty but the source is not")
    elif strict:
        check.fail(text)
    else:
        check.notes.append(
            f"{text}; the source may have changed since the extraction (fails with --strict)"
        )
