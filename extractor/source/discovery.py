"""What the database holds, from information_schema only: tables, estimates, columns, keys.

Every name the engine later puts into SQL comes from here, never from user text.
Column types are described in one form whatever the server (`neutral_type`: MySQL 8's),
so that a stored schema snapshotted on MariaDB matches the same DDL on MySQL.
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


# MariaDB's JSON is a LONGTEXT with this CHECK, named after the column.
_MARIADB_JSON = (
    "SELECT TABLE_NAME AS tbl, CONSTRAINT_NAME AS name, CHECK_CLAUSE AS clause"
    " FROM information_schema.CHECK_CONSTRAINTS"
    " WHERE CONSTRAINT_SCHEMA = %s AND LEVEL = 'Column' AND CHECK_CLAUSE LIKE 'json_valid(%%'"
)
_INTEGER_WIDTH = re.compile(r"^(tinyint|smallint|mediumint|int|bigint)\(\d+\)")


def neutral_type(data_type: str, column_type: str) -> tuple[str, str]:
    """(DATA_TYPE, COLUMN_TYPE) as MySQL 8 states them: no integer display width (but
    for a signed TINYINT(1) and ZEROFILL, which MySQL keeps), YEAR without its (4),
    GEOMCOLLECTION. MariaDB says int(11), year(4), geometrycollection."""
    if (
        _INTEGER_WIDTH.match(column_type)
        and column_type != "tinyint(1)"
        and "zerofill" not in column_type
    ):
        column_type = _INTEGER_WIDTH.sub(r"\1", column_type)
    if column_type == "year(4)":
        column_type = "year"
    if data_type == "geometrycollection":
        data_type = column_type = "geomcollection"
    return data_type, column_type


def _text(value: object) -> str:
    # MySQL 8 returns some information_schema columns as bytes.
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def list_tables(conn: Any, database: str) -> list[TableInfo]:
    """Base tables of `database` (views excluded) with the server's size estimates."""
    rows = query(conn, _TABLES, (database,))
    return [TableInfo(_text(r["name"]), int(r["est_rows"]), int(r["est_bytes"])) for r in rows]


def table_columns(conn: Any, database: str) -> dict[str, list[Column]]:
    """Columns of every table in `database`, in ordinal order, types in the neutral form."""
    json_columns = _mariadb_json_columns(conn, database)
    out: dict[str, list[Column]] = {}
    for r in query(conn, _COLUMNS, (database,)):
        table, name = _text(r["tbl"]), _text(r["name"])
        data_type, column_type = neutral_type(_text(r["data_type"]), _text(r["column_type"]))
        if data_type == "longtext" and (table, name) in json_columns:
            data_type = column_type = "json"
        out.setdefault(table, []).append(
            Column(
                name=name,
                data_type=data_type,
                column_type=column_type,
                nullable=_text(r["nullable"]) == "YES",
                precision=None if r["num_precision"] is None else int(r["num_precision"]),
                scale=None if r["num_scale"] is None else int(r["num_scale"]),
                datetime_precision=None if r["dt_precision"] is None else int(r["dt_precision"]),
                has_default=_has_default(r),
            )
        )
    return out


def _mariadb_json_columns(conn: Any, database: str) -> set[tuple[str, str]]:
    """(table, column) of MariaDB's JSON columns; none on MySQL, whose JSON is a type."""
    if "mariadb" not in _text(query(conn, "SELECT VERSION() AS v")[0]["v"]).lower():
        return set()
    return {
        (_text(r["tbl"]), _text(r["name"]))
        for r in query(conn, _MARIADB_JSON, (database,))
        if _text(r["clause"]) == f"json_valid(`{_text(r['name'])}`)"
    }


def _has_default(r: dict[str, Any]) -> bool:
    # A nullable column defaults to NULL (MariaDB says 'NULL', MySQL 8 says nothing);
    # AUTO_INCREMENT and generated columns get a value without a DEFAULT clause.
    extra = _text(r["extra"] or "")
    return (
        _text(r["nullable"]) == "YES"
        or bool(r["has_default"])
        or "auto_increment" in extra
        or "generated" in extra
    )


def primary_keys(conn: Any, database: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in query(conn, _PRIMARY_KEYS, (database,)):
        out.setdefault(_text(r["tbl"]), []).append(_text(r["name"]))
    return out
