"""Connections to MySQL: pymysql for control queries, connectorx for bulk reads.

Also the one place where driver errors become ours (`translate_errors`), with the
password scrubbed from any message a driver might echo.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from extractor.config import MySQLSettings
from extractor.errors import ExtractError, SourceError, SourceUnavailable, Step
from extractor.source.tls import client_context, tls_required

# MySQL/MariaDB error numbers, grouped by the reaction they need.
_TRANSIENT = {
    1040,  # too many connections
    1053,  # server shutdown in progress
    1205,  # lock wait timeout
    1213,  # deadlock
    # KILL QUERY from another session (a DBA, a long-query killer, a failover tool): the next
    # SELECT is a new statement. Not 1969/3024 (statement time limits): the reader lifts
    # both on its own statement, so if one still fires a retry would be cut the same way.
    1317,  # query execution was interrupted
    1927,  # MariaDB: connection was killed
    2003,  # can't connect
    2006,  # server has gone away
    2013,  # lost connection during query
    2055,  # lost connection at reading
}
# access denied, unknown database, TLS required by the server, TLS handshake failed
_REFUSED = {1044, 1045, 1049, 1698, 1227, 3159, 2026}
_UNREACHABLE = {2003, 2005, 2006, 2013}
CONNECT_TIMEOUT_S = 10


def connect_kwargs(mysql: MySQLSettings) -> dict[str, Any]:
    """pymysql.connect() arguments, TLS included, for the configured ssl_mode."""
    kwargs: dict[str, Any] = {
        "host": mysql.host,
        "port": mysql.port,
        "user": mysql.user,
        "password": mysql.password.reveal(),
        "database": mysql.database,
        "charset": "utf8mb4",
        "connect_timeout": CONNECT_TIMEOUT_S,
    }
    if mysql.ssl_mode == "disabled":
        kwargs["ssl_disabled"] = True
    elif tls_required(mysql.ssl_mode):
        # An explicit context makes pymysql refuse a server without TLS (error 2026).
        kwargs["ssl"] = client_context(mysql.ssl_mode, mysql.ssl_ca)
    # "preferred": pymysql's own default, TLS without certificate checks when the server
    # offers it, else plaintext (the same context as client_context("preferred")).
    return kwargs


@contextmanager
def control_connection(mysql: MySQLSettings, *, step: Step = Step.CONNECT) -> Iterator[Any]:
    """A pymysql connection for control queries (discovery, counts, checks), errors translated.

    Plain pymysql rather than SQLAlchemy: these are a handful of parameterised queries,
    and importing SQLAlchemy cost 0.2 s per process, 5% of a 3M-row table's extraction.
    """
    import pymysql

    with translate_errors(mysql, table=None, step=step):
        conn = pymysql.connect(**connect_kwargs(mysql), autocommit=True)
    try:
        with translate_errors(mysql, table=None, step=Step.DISCOVER):
            yield conn
    finally:
        conn.close()


def query(conn: Any, sql: str, params: tuple[object, ...] = ()) -> list[dict[str, Any]]:
    """Rows of a parameterised control query as dicts (never for bulk data)."""
    import pymysql.cursors

    with conn.cursor(pymysql.cursors.DictCursor) as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def connectorx_url(
    mysql: MySQLSettings, *, host: str | None = None, port: int | None = None
) -> str:
    """The bulk reader's URL; `host`/`port` point it at the TLS proxy instead (see reader.py).

    prefer_socket=false: otherwise connectorx's driver, connected to a loopback address,
    asks the server for @@socket and reconnects through that unix socket. Through the
    TLS proxy that would bypass the proxy; through a tunnel it could reach another server.
    """
    user = quote(mysql.user, safe="")
    password = quote(mysql.password.reveal(), safe="")
    where = f"{host or mysql.host}:{port or mysql.port}"
    return f"mysql://{user}:{password}@{where}/{quote(mysql.database)}?prefer_socket=false"


def session_uses_tls(conn: Any) -> bool:
    rows = query(conn, "SHOW SESSION STATUS LIKE 'Ssl_cipher'")
    return bool(rows and rows[0]["Value"])


def server_offers_tls(conn: Any) -> bool:
    rows = query(conn, "SHOW GLOBAL VARIABLES LIKE 'have_ssl'")
    if rows:
        return str(rows[0]["Value"]).upper() == "YES"
    return session_uses_tls(conn)  # MySQL 8.4 dropped have_ssl


def error_number(exc: BaseException) -> int | None:
    args = exc.args
    if args and isinstance(args[0], int):
        return args[0]
    found = re.search(r"ERROR (\d{4})", str(exc))
    return int(found.group(1)) if found else None


def scrub(text: str, mysql: MySQLSettings) -> str:
    """Remove the password (plain and URL-quoted) from a message a driver produced."""
    secret = mysql.password.reveal()
    if secret:
        for form in {secret, quote(secret, safe="")}:
            text = text.replace(form, "***")
    return re.sub(r"(mysql(?:\+pymysql)?://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)


def classify(
    exc: BaseException, mysql: MySQLSettings, *, table: str | None, step: Step
) -> ExtractError:
    """Turn a driver exception into ours: one line, no password, transient or not."""
    number = error_number(exc)
    detail = scrub(" ".join(str(a) for a in exc.args) or type(exc).__name__, mysql)
    detail = " ".join(detail.split())[:500]
    # connectorx reports a connection cut mid-stream as an I/O or codec error, or (a KILL
    # CONNECTION between two packets) as the driver's "server disconnected".
    lost = bool(
        re.search(
            r"lost connection|gone away|broken pipe|connection reset|"
            r"connection refused|unexpected eof|timed out|io error|"
            r"bytes remaining on stream|server disconnected",
            detail,
            re.I,
        )
    )
    transient = number in _TRANSIENT or lost
    where = f"MySQL {mysql.host}:{mysql.port}"
    if _tls_refused(exc, step):
        # pymysql reports a failed TLS handshake as 2003 "can't connect": a wrong CA or
        # name is a configuration problem, never worth a retry.
        return SourceUnavailable(f"{where} TLS handshake failed: {detail}", table=table, step=step)
    if number in _REFUSED:
        return SourceUnavailable(f"{where} refused: {detail}", table=table, step=step)
    if step == Step.CONNECT and (number in _UNREACHABLE or lost or number is None):
        return SourceUnavailable(
            f"{where} unreachable: {detail}", table=table, step=step, transient=True
        )
    return SourceError(f"{where}: {detail}", table=table, step=step, transient=transient)


def _tls_refused(exc: BaseException, step: Step) -> bool:
    """Whether the error is our side rejecting the server's TLS (certificate, protocol)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True
        if isinstance(cause, ssl.SSLError) and step == Step.CONNECT:
            # A cut connection (EOF) is not a refusal; a failed negotiation is.
            return not isinstance(cause, ssl.SSLEOFError | ssl.SSLZeroReturnError)
        cause = cause.__cause__ or cause.__context__
    return False


@contextmanager
def translate_errors(mysql: MySQLSettings, *, table: str | None, step: Step) -> Iterator[None]:
    """Translate driver errors at the boundary, keeping ours untouched."""
    try:
        yield
    except ExtractError:
        raise
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # connectorx panics derive from BaseException
        raise classify(exc, mysql, table=table, step=step) from exc
