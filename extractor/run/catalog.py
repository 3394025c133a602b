"""What a run reads: the base tables, their columns and keys, and how to read them.

Everything comes from information_schema (names that go into SQL are never typed by a
user); the TLS decision (`source.reader.inspect_server`) is carried by `Catalog.server`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from extractor.config import Settings
from extractor.errors import UsageError
from extractor.run.pipeline import TableTask
from extractor.source.connection import control_connection
from extractor.source.discovery import (
    TableInfo,
    check_table_names,
    list_tables,
    primary_keys,
    table_columns,
)
from extractor.source.reader import Server, inspect_server


@dataclass(frozen=True)
class Catalog:
    """What discovery found, and whether the bulk reads must be encrypted."""

    tables: list[TableInfo]
    tasks: dict[str, TableTask]
    server: Server


def discover(settings: Settings) -> Catalog:
    """Tables, columns and keys from information_schema, and the TLS decision."""
    mysql = settings.mysql
    with control_connection(mysql) as conn:
        facts = inspect_server(conn, mysql)
        tables = list_tables(conn, mysql.database)
        columns = table_columns(conn, mysql.database)
        keys = primary_keys(conn, mysql.database)
    tasks = {
        t.name: TableTask(
            t.name,
            columns.get(t.name, []),
            t.estimated_rows,
            t.estimated_bytes,
            keys.get(t.name, []),
        )
        for t in tables
    }
    return Catalog(tables, tasks, facts.server)


def select_tables(catalog: Catalog, include: Sequence[str], exclude: Sequence[str]) -> list[str]:
    """The tables to run, largest first. Unknown names are a usage error, before any read."""
    check_table_names([*include, *exclude])
    known = {t.name for t in catalog.tables}
    unknown = sorted({*include, *exclude} - known)
    if unknown:
        raise UsageError(f"not a base table of the database: {', '.join(repr(u) for u in unknown)}")
    chosen = set(include) if include else known
    chosen -= set(exclude)
    by_size = sorted(catalog.tables, key=lambda t: (-t.estimated_bytes, -t.estimated_rows, t.name))
    return [t.name for t in by_size if t.name in chosen]
