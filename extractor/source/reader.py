"""Stream one table as Arrow record batches, from one SELECT (one consistent read).

Two readers yield the same projected columns, so the same casts apply to both:
- connectorx (binary protocol, Arrow built in Rust): the fast path, plaintext only,
  since connectorx 0.4.6 has no TLS for MySQL;
- pymysql's unbuffered cursor: the path whenever the connection must be encrypted.
Memory stays bounded by the batch size whatever the table size.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from extractor.config import MySQLSettings
from extractor.source.connection import connect_kwargs, connectorx_url, translate_errors
from extractor.types import ColumnPlan, Read, quote_identifier


@dataclass(frozen=True)
class Server:
    """What the bulk read must know about the server and the connection."""

    flavor: Literal["mariadb", "mysql"] = "mysql"
    tls: bool = False  # the connection must be encrypted


# A long read must not be cut by the server: no statement time limit, and a generous
# net_write_timeout in case the client pauses (it keeps draining; uploads run apart).
# connectorx runs no statement before the query, so the settings ride on the statement.
_MARIADB_PREFIX = "SET STATEMENT net_write_timeout=600, max_statement_time=0 FOR "
_MYSQL_HINT = "/*+ MAX_EXECUTION_TIME(0) */ "


def select_sql(
    database: str, table: str, plans: list[ColumnPlan], server: Server = Server(), tag: str = ""
) -> str:
    """The one SELECT that reads a table; `tag` (a comment) lets an operator find it."""
    columns = ", ".join(_select(p, text_protocol=server.tls) for p in plans)
    comment = f"/* {re.sub(r'[^A-Za-z0-9_.:=-]', '_', tag)} */ " if tag else ""
    source = f"{quote_identifier(database)}.{quote_identifier(table)}"
    if server.flavor == "mariadb":
        return f"{_MARIADB_PREFIX}SELECT {comment}{columns} FROM {source}"
    return f"SELECT {_MYSQL_HINT}{comment}{columns} FROM {source}"


def _select(plan: ColumnPlan, text_protocol: bool) -> str:
    if text_protocol and plan.column.data_type == "float":
        # The text protocol prints FLOAT with 6 significant digits; as DOUBLE (exact for
        # every float) it prints all the digits needed to round-trip.
        col = quote_identifier(plan.name)
        return f"{col} + 0E0 AS {col}"
    return plan.select_sql()


def read_batches(
    mysql: MySQLSettings,
    table: str,
    plans: list[ColumnPlan],
    batch_rows: int,
    *,
    server: Server,
    tag: str = "",
) -> Iterator[pa.RecordBatch]:
    """Yield the table's rows in batches, in the reader's own (pre-contract) types."""
    sql = select_sql(mysql.database, table, plans, server, tag)
    if server.tls:
        yield from _read_pymysql(mysql, table, plans, sql, batch_rows)
    else:
        yield from _read_connectorx(mysql, table, sql, batch_rows)


def _read_connectorx(
    mysql: MySQLSettings, table: str, sql: str, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    import connectorx as cx

    with translate_errors(mysql, table=table, step="read"):
        stream = cx.read_sql(
            connectorx_url(mysql), sql, return_type="arrow_stream", batch_size=batch_rows
        )
        for batch in stream:
            if batch.num_rows:
                yield batch


def _pymysql_type(plan: ColumnPlan) -> pa.DataType:
    """The Arrow type a pymysql value of this projection is read as."""
    if plan.read is Read.TEXT:
        return pa.string()
    if plan.read is Read.UNSIGNED:
        return pa.uint64()
    if plan.read in (Read.EPOCH_MICROS, Read.DIGITS, Read.UNSCALED):
        return pa.int64()
    target = plan.arrow_type
    if pa.types.is_integer(target) or pa.types.is_decimal(target):
        return pa.uint64() if plan.column.unsigned else pa.int64()
    return target


def _read_pymysql(
    mysql: MySQLSettings, table: str, plans: list[ColumnPlan], sql: str, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    import pymysql
    import pymysql.cursors

    types = [_pymysql_type(p) for p in plans]
    names = [p.name for p in plans]
    with translate_errors(mysql, table=table, step="read"):
        conn = pymysql.connect(**connect_kwargs(mysql), cursorclass=pymysql.cursors.SSCursor)
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql)
                while rows := cursor.fetchmany(batch_rows):
                    columns = zip(*rows, strict=True)
                    arrays = [pa.array(v, type=t) for v, t in zip(columns, types, strict=True)]
                    yield pa.RecordBatch.from_arrays(arrays, names=names)
        finally:
            conn.close()
