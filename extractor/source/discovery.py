"""What the database holds, from information_schema only: tables, estimates, columns, keys.

Every name the engine later puts into SQL comes from here, never from user text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from extractor.contract.types import Column
from extractor.errors import UsageError
from extractor.source.connection import query

# A name a person typed (--table, --exclude) before it is looked up: what MySQL allows
# (1 to 64 characters) and what can be a segment of a key (no NUL, no slash).
_TABLE_NAME = re.compile(r"^[^\x00/\\]{1,64}$")


@dataclass(frozen=True)
class TableInfo:
    name: str
    estimated_rows: int
    estimated_bytes: int


def check_table_names(names: Iterable[str]) -> None:
    """A usage error for the first name that cannot be a table's, before any lookup."""
    for name in names:
        if not _TABLE_NAME.match(name):
            raise UsageError(f"table name {name[:80]!r} is not valid")


_TABLES = (
    "SELECT TABLE_NAME AS name, COALESCE(TABLE_ROWS, 0) AS est_rows,"
    " COALESCE(DATA_LENGTH, 0) AS est_bytes"
    " FROM information_schema.TABLES"
    " WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE'"
    " ORDER BY TABLE_NAME"
)

_COLUMNS = (
    "SELECT TABLE_NAME AS tbl, COLUMN_NAME AS name, LOWER(DATA_TYPE) AS data_type,"
    " COLUMN_TYPE AS column_type, IS_NULLABLE AS nullable,"
    " NUMERIC_PRECISION AS num_precision, NUMERIC_SCALE AS num_scale,"
    " DATETIME_PRECISION AS dt_precision,"
    " COLUMN_DEFAULT IS NOT NULL AS has_default, LOWER(EXTRA) AS extra"
    " FROM information_schema.COLUMNS"
    " WHERE TABLE_SCHEMA = %s"
    " ORDER BY TABLE_NAME, ORDINAL_POSITION"
)

_PRIMARY_KEYS = (
    "SELECT TABLE_NAME AS tbl, COLUMN_NAME AS name FROM information_schema.KEY_COLUMN_USAGE"
    " WHERE TABLE_SCHEMA = %s AND CONSTRAINT_NAME = 'PRIMARY'"
    " ORDER BY TABLE_NAME, ORDINAL_POSITION"
)


def _text(value: object) -> str:
    # MySQL 8 returns some information_schema columns as bytes.
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def list_tables(conn: Any, database: str) -> list[TableInfo]:
    """Base tables of `database` (views excluded) with the server's size estimates."""
    rows = query(conn, _TABLES, (database,))
    return [
        TableInfo(_text(r["name"]), int(r["est_rows"]), int(r["est_bytes"])) for r in rows
    ]


def table_columns(conn: Any, database: str) -> dict[str, list[Column]]:
    """Columns of every table in `database`, in ordinal order."""
    out: dict[str, list[Column]] = {}
    for r in query(conn, _COLUMNS, (database,)):
        out.setdefault(_text(r["tbl"]), []).append(
            Column(
                name=_text(r["name"]),
                data_type=_text(r["data_type"]),
                column_type=_text(r["column_type"]),
                nullable=_text(r["nullable"]) == "YES",
                precision=None if r["num_precision"] is None else int(r["num_precision"]),
                scale=None if r["num_scale"] is None else int(r["num_scale"]),
                datetime_precision=None if r["dt_precision"] is None else int(r["dt_precision"]),
                has_default=_has_default(r),
            )
        )
    return out


def _has_default(r: dict[str, Any]) -> bool:
    # A nullable column defaults to NULL (MariaDB says 'NULL', MySQL 8 says nothing);
    # AUTO_INCREMENT and generated columns get a value without a DEFAULT clause.
    extra = _text(r["extra"] or "")
    return (_text(r["nullable"]) == "YES" or bool(r["has_default"])
            or "auto_increment" in extra or "generated" in extra)


def primary_keys(conn: Any, database: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in query(conn, _PRIMARY_KEYS, (database,)):
        out.setdefault(_text(r["tbl"]), []).append(_text(r["name"]))
    return out
