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
from extractor.errors import ExtractError, SourceError, SourceUnavailable

# MySQL/MariaDB error numbers, grouped by the reaction they need.
_TRANSIENT = {
    1040,  # too many connections
    1053,  # server shutdown in progress
    1205,  # lock wait timeout
    1213,  # deadlock
    1927,  # MariaDB: connection was killed
    2003,  # can't connect
    2006,  # server has gone away
    2013,  # lost connection during query
    2055,  # lost connection at reading
}
# access denied, unknown database, TLS required by the server, TLS handshake failed
_REFUSED = {1044, 1045, 1049, 1698, 1227, 3159, 2026}
_UNREACHABLE = {2003, 2005, 2006, 2013}
_CONNECT_TIMEOUT_S = 10


def connect_kwargs(mysql: MySQLSettings) -> dict[str, Any]:
    """pymysql.connect() arguments, TLS included, for the configured ssl_mode."""
    kwargs: dict[str, Any] = {
        "host": mysql.host,
        "port": mysql.port,
        "user": mysql.user,
        "password": mysql.password.reveal(),
        "database": mysql.database,
        "charset": "utf8mb4",
        "connect_timeout": _CONNECT_TIMEOUT_S,
    }
    mode = mysql.ssl_mode
    if mode == "disabled":
        kwargs["ssl_disabled"] = True
    elif mode == "required":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        kwargs["ssl"] = context  # an explicit context makes pymysql refuse plaintext
    elif mode in ("verify_ca", "verify_identity"):
        context = ssl.create_default_context(cafile=mysql.ssl_ca)
        context.check_hostname = mode == "verify_identity"
        context.verify_mode = ssl.CERT_REQUIRED
        kwargs["ssl"] = context
    # "preferred": pymysql's own default, TLS when the server offers it, else plaintext.
    return kwargs


@contextmanager
def control_connection(mysql: MySQLSettings, *, step: str = "connect") -> Iterator[Any]:
    """A pymysql connection for control queries (discovery, counts, checks), errors translated.

    Plain pymysql rather than SQLAlchemy: these are a handful of parameterised queries,
    and importing SQLAlchemy cost 0.2 s per process, 5% of a 3M-row table's extraction.
    """
    import pymysql

    with translate_errors(mysql, table=None, step=step):
        conn = pymysql.connect(**connect_kwargs(mysql), autocommit=True)
    try:
        with translate_errors(mysql, table=None, step="discover"):
            yield conn
    finally:
        conn.close()


def query(conn: Any, sql: str, params: tuple[object, ...] = ()) -> list[dict[str, Any]]:
    """Rows of a parameterised control query as dicts (never for bulk data)."""
    import pymysql.cursors

    with conn.cursor(pymysql.cursors.DictCursor) as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def connectorx_url(mysql: MySQLSettings) -> str:
    """The bulk reader's URL. connectorx 0.4.6 speaks no TLS to MySQL (see reader.py)."""
    user = quote(mysql.user, safe="")
    password = quote(mysql.password.reveal(), safe="")
    return f"mysql://{user}:{password}@{mysql.host}:{mysql.port}/{quote(mysql.database)}"


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
    exc: BaseException, mysql: MySQLSettings, *, table: str | None, step: str
) -> ExtractError:
    """Turn a driver exception into ours: one line, no password, transient or not."""
    number = error_number(exc)
    detail = scrub(" ".join(str(a) for a in exc.args) or type(exc).__name__, mysql)
    detail = " ".join(detail.split())[:500]
    # connectorx reports a connection cut mid-stream as an I/O or codec error.
    lost = bool(re.search(r"lost connection|gone away|broken pipe|connection reset|"
                          r"connection refused|unexpected eof|timed out|io error|"
                          r"bytes remaining on stream", detail, re.I))
    transient = number in _TRANSIENT or lost
    where = f"MySQL {mysql.host}:{mysql.port}"
    if number in _REFUSED:
        return SourceUnavailable(f"{where} refused: {detail}", table=table, step=step)
    if step == "connect" and (number in _UNREACHABLE or lost or number is None):
        return SourceUnavailable(f"{where} unreachable: {detail}", table=table, step=step,
                                 transient=True)
    return SourceError(f"{where}: {detail}", table=table, step=step, transient=transient)


@contextmanager
def translate_errors(mysql: MySQLSettings, *, table: str | None, step: str) -> Iterator[None]:
    """Translate driver errors at the boundary, keeping ours untouched."""
    try:
        yield
    except ExtractError:
        raise
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # connectorx panics derive from BaseException
        raise classify(exc, mysql, table=table, step=step) from exc
