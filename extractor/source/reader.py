"""Stream one table as Arrow record batches, from one SELECT (one consistent read).

The reader is connectorx (binary protocol, Arrow built in Rust). connectorx 0.4.6 has no
TLS for MySQL, so when the connection must be encrypted it connects in plaintext to a
local TLS proxy (tls_proxy.py) that encrypts the leg to the server: the same reader,
projections and values over TLS as over plaintext, at nearly the same speed (pymysql,
the earlier TLS path, was about 10 times slower).

Memory stays bounded by bytes whatever the table size and the row width: a batch holds
about `batch_bytes` (batching.py), and a wide table reads through the same proxy, as a
plaintext relay when TLS is off, whose gate holds the server back while the consumer is
behind: connectorx queues its batches without bound otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from extractor.config import MySQLSettings
from extractor.source.batching import BatchPlan
from extractor.source.connection import CONNECT_TIMEOUT_S, connectorx_url, translate_errors
from extractor.source.tls_proxy import TlsProxy, Upstream
from extractor.types import ColumnPlan, quote_identifier


@dataclass(frozen=True)
class Server:
    """What the bulk read must know about the server and the connection."""

    flavor: Literal["mariadb", "mysql"] = "mysql"
    tls: bool = False  # encrypt: connectorx reads through the TLS proxy (tls_proxy.py)


# A long read must not be cut by the server: no statement time limit, and a generous
# net_write_timeout in case the client pauses (it keeps draining; uploads run apart).
# connectorx runs no statement before the query, so the settings ride on the statement.
_MARIADB_PREFIX = "SET STATEMENT net_write_timeout=600, max_statement_time=0 FOR "
_MYSQL_HINT = "/*+ MAX_EXECUTION_TIME(0) */ "


def select_sql(
    database: str, table: str, plans: list[ColumnPlan], server: Server = Server(), tag: str = ""
) -> str:
    """The one SELECT that reads a table; `tag` (a comment) lets an operator find it.

    The same over TLS: connectorx reads through the proxy with the binary protocol.
    """
    columns = ", ".join(p.select_sql() for p in plans)
    comment = f"/* {re.sub(r'[^A-Za-z0-9_.:=-]', '_', tag)} */ " if tag else ""
    source = f"{quote_identifier(database)}.{quote_identifier(table)}"
    if server.flavor == "mariadb":
        return f"{_MARIADB_PREFIX}SELECT {comment}{columns} FROM {source}"
    return f"SELECT {_MYSQL_HINT}{comment}{columns} FROM {source}"


def reader_name(server: Server) -> str:
    """How the bulk reads run, for the run report and `check`."""
    return "connectorx via TLS proxy" if server.tls else "connectorx"


def read_batches(
    mysql: MySQLSettings,
    table: str,
    plans: list[ColumnPlan],
    batches: BatchPlan,
    *,
    server: Server,
    tag: str = "",
) -> Iterator[pa.RecordBatch]:
    """Yield the table's rows in batches, in the reader's own (pre-contract) types."""
    sql = select_sql(mysql.database, table, plans, server, tag)
    with translate_errors(mysql, table=table, step="read"):
        yield from _stream(mysql, sql, batches, tls=server.tls)


def probe(mysql: MySQLSettings, server: Server) -> None:
    """Read one row the way tables are read (for `check`); raises a translated error."""
    with translate_errors(mysql, table=None, step="read"):
        for _ in _stream(mysql, "SELECT 1 AS probe", BatchPlan(1_000, 8), tls=server.tls):
            pass


def _stream(mysql: MySQLSettings, sql: str, batches: BatchPlan, *, tls: bool
            ) -> Iterator[pa.RecordBatch]:
    import connectorx as cx

    with ExitStack() as stack:
        proxy = None
        url = connectorx_url(mysql)
        if tls or batches.gated:
            proxy = stack.enter_context(TlsProxy(
                Upstream(mysql.host, mysql.port, mysql.ssl_mode if tls else "disabled",
                         mysql.ssl_ca, mysql.password.reveal(), CONNECT_TIMEOUT_S),
                window_bytes=batches.window_bytes))
            url = connectorx_url(mysql, host="127.0.0.1", port=proxy.port)
        try:
            stream = iter(cx.read_sql(url, sql, return_type="arrow_stream",
                                      batch_size=batches.rows))
            taken = 0
            while True:
                if proxy is not None:  # a gated read: the relay forwards while we wait
                    proxy.taken(taken, waiting=True)
                batch = next(stream, None)
                if batch is None:
                    break
                taken += batch.num_rows
                if proxy is not None:
                    proxy.taken(taken, waiting=False)
                if batch.num_rows:
                    yield batch
            del stream  # its connection closes: the proxy can finish
        except (GeneratorExit, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # connectorx panics derive from BaseException
            # The proxy's own account (TLS refused, server cut, access denied) beats
            # connectorx's "connection reset" or "timed out waiting for connection".
            failure = proxy.failure() if proxy is not None else None
            if failure is not None:
                raise failure from exc
            raise
