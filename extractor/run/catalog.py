"""What a run reads: the base tables, their columns and keys, and how to read them.

Everything comes from information_schema (names that go into SQL are never typed by a
user); the TLS decision is made here once and carried by `Catalog.server`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from extractor.config import Settings
from extractor.errors import UsageError
from extractor.run.pipeline import TableTask
from extractor.source.connection import (
    control_connection,
    query,
    server_offers_tls,
    session_uses_tls,
)
from extractor.source.discovery import TableInfo, list_tables, primary_keys, table_columns
from extractor.source.reader import Server

_TABLE_NAME = re.compile(r"^[^\x00/\\]{1,64}$")


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
        version = str(query(conn, "SELECT VERSION() AS v")[0]["v"])
        tls_now = session_uses_tls(conn)
        offered = tls_now or server_offers_tls(conn)
        tables = list_tables(conn, mysql.database)
        columns = table_columns(conn, mysql.database)
        keys = primary_keys(conn, mysql.database)
    tasks = {
        t.name: TableTask(t.name, columns.get(t.name, []), t.estimated_rows, t.estimated_bytes,
                          keys.get(t.name, []))
        for t in tables
    }
    # The fast reader has no TLS: it may only be used when the connection stays plaintext.
    tls = mysql.ssl_mode != "disabled" and offered
    flavor: Literal["mariadb", "mysql"] = "mariadb" if "mariadb" in version.lower() else "mysql"
    return Catalog(tables, tasks, Server(flavor, tls))


def select_tables(catalog: Catalog, include: Sequence[str], exclude: Sequence[str]) -> list[str]:
    """The tables to run, largest first. Unknown names are a usage error, before any read."""
    for name in [*include, *exclude]:
        if not _TABLE_NAME.match(name):
            raise UsageError(f"table name {name[:80]!r} is not valid")
    known = {t.name for t in catalog.tables}
    unknown = sorted({*include, *exclude} - known)
    if unknown:
        raise UsageError(
            f"not a base table of the database: {', '.join(repr(u) for u in unknown)}"
        )
    chosen = set(include) if include else known
    chosen -= set(exclude)
    by_size = sorted(catalog.tables, key=lambda t: (-t.estimated_bytes, -t.estimated_rows, t.name))
    return [t.name for t in by_size if t.name in chosen]
