"""Stream one table as Arrow record batches, from one SELECT (one consistent read), or one
primary-key range of it (source/ranges.py) when the table is read on several streams.

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

import logging
import re
from collections.abc import Generator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from extractor.config import MySQLSettings
from extractor.contract.types import ColumnPlan, Flavor, quote_identifier
from extractor.errors import Step
from extractor.source.batching import BatchPlan
from extractor.source.connection import (
    CONNECT_TIMEOUT_S,
    connectorx_url,
    query,
    server_offers_tls,
    session_uses_tls,
    translate_errors,
)
from extractor.source.ranges import KeyRange
from extractor.source.tls_proxy import TlsProxy, Upstream

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Server:
    """What the bulk read must know about the server and the connection."""

    flavor: Flavor = "mysql"
    tls: bool = False  # encrypt: connectorx reads through the TLS proxy (tls_proxy.py)


@dataclass(frozen=True)
class ServerFacts:
    """What the control connection learns about the server, and the TLS decision."""

    version: str
    session_tls: bool  # the control session is encrypted
    offers_tls: bool  # the server offers TLS (have_ssl, or the session already uses it)
    server: Server  # how the bulk reads run


def inspect_server(conn: Any, mysql: MySQLSettings) -> ServerFacts:
    """Version, flavor and TLS of the server behind `conn`: the one place the run (discovery)
    and `check` decide whether the bulk reads are encrypted."""
    version = str(query(conn, "SELECT VERSION() AS v")[0]["v"])
    session_tls = session_uses_tls(conn)
    offered = session_tls or server_offers_tls(conn)
    # The fast reader has no TLS of its own: it reads in plaintext only when the connection
    # would stay plaintext anyway (disabled by configuration, or not offered).
    tls = mysql.ssl_mode != "disabled" and offered
    flavor: Flavor = "mariadb" if "mariadb" in version.lower() else "mysql"
    return ServerFacts(version, session_tls, offered, Server(flavor, tls))


# A long read must not be cut by the server: no statement time limit, and a generous
# net_write_timeout in case the client pauses (it keeps draining; uploads run apart).
# connectorx runs no statement before the query, so the settings ride on the statement.
# MySQL: MAX_EXECUTION_TIME(0) would leave a server-wide max_execution_time in force (0 is
# no hint there); SET_VAR lifts it. net_write_timeout cannot be set by a hint on MySQL.
_MARIADB_PREFIX = "SET STATEMENT net_write_timeout=600, max_statement_time=0 FOR "
_MYSQL_HINT = "/*+ SET_VAR(max_execution_time=0) */ "


def select_sql(
    database: str,
    table: str,
    plans: list[ColumnPlan],
    server: Server = Server(),
    tag: str = "",
    *,
    key: str | None = None,
    key_range: KeyRange | None = None,
) -> str:
    """The SELECT that reads a table, or one `key_range` of it on the column `key` (a stream,
    source/ranges.py); `tag` (a comment) lets an operator, and the watchdog, find it.

    The same over TLS: connectorx reads through the proxy with the binary protocol.
    """
    columns = ", ".join(p.select_sql(server.flavor) for p in plans)
    comment = f"/* {re.sub(r'[^A-Za-z0-9_.:=-]', '_', tag)} */ " if tag else ""
    source = f"{quote_identifier(database)}.{quote_identifier(table)}"
    condition = key_range.where(key) if key is not None and key_range is not None else ""
    if condition:
        source = f"{source} WHERE {condition}"
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
    key: str | None = None,
    key_range: KeyRange | None = None,
) -> Generator[pa.RecordBatch, None, None]:
    """Yield the table's rows (those of `key_range` on `key`, if given) in batches, in the
    reader's own (pre-contract) types."""
    sql = select_sql(mysql.database, table, plans, server, tag, key=key, key_range=key_range)
    with translate_errors(mysql, table=table, step=Step.READ):
        yield from _stream(mysql, sql, batches, tls=server.tls)


def probe(mysql: MySQLSettings, server: Server) -> None:
    """Read one row the way tables are read (for `check`); raises a translated error."""
    with translate_errors(mysql, table=None, step=Step.READ):
        for _ in _stream(mysql, "SELECT 1 AS probe", BatchPlan(1_000, 8), tls=server.tls):
            pass


def _stream(
    mysql: MySQLSettings, sql: str, batches: BatchPlan, *, tls: bool
) -> Iterator[pa.RecordBatch]:
    import connectorx as cx

    with ExitStack() as stack:
        proxy = None
        url = connectorx_url(mysql)
        if tls or batches.gated:
            proxy = stack.enter_context(
                TlsProxy(
                    Upstream(
                        mysql.host,
                        mysql.port,
                        mysql.ssl_mode if tls else "disabled",
                        mysql.ssl_ca,
                        user=mysql.user,
                        password=mysql.password.reveal(),
                        connect_timeout=CONNECT_TIMEOUT_S,
                    ),
                    window_bytes=batches.window_bytes,
                )
            )
            url = connectorx_url(mysql, host="127.0.0.1", port=proxy.port)
        try:
            stream = iter(
                cx.read_sql(url, sql, return_type="arrow_stream", batch_size=batches.rows)
            )
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
            refused = proxy.refused() if proxy is not None else None
            if refused:  # another local process tried the proxy's port: worth knowing
                logger.warning("%s; the read went on", refused)
        except (GeneratorExit, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # connectorx panics derive from BaseException
            # The proxy's own account (TLS refused, server cut, access denied) beats
            # connectorx's "connection reset" or "timed out waiting for connection".
            failure = proxy.failure() if proxy is not None else None
            if failure is not None:
                raise failure from exc
            raise
