"""Connections to MySQL: SQLAlchemy/pymysql for control queries, connectorx for bulk reads.

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

import sqlalchemy as sa

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
_REFUSED = {1044, 1045, 1049, 1698, 1227, 3159}  # access denied, unknown database, needs TLS
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


def create_engine(mysql: MySQLSettings) -> sa.Engine:
    """An engine for control queries (discovery, counts, checks); never for bulk data."""
    import pymysql

    kwargs = connect_kwargs(mysql)
    return sa.create_engine(
        "mysql+pymysql://",
        creator=lambda: pymysql.connect(**kwargs),
        poolclass=sa.pool.NullPool,
    )


def connectorx_url(mysql: MySQLSettings) -> str:
    """The bulk reader's URL. connectorx 0.4.6 speaks no TLS to MySQL (see reader.py)."""
    user = quote(mysql.user, safe="")
    password = quote(mysql.password.reveal(), safe="")
    return f"mysql://{user}:{password}@{mysql.host}:{mysql.port}/{quote(mysql.database)}"


def session_uses_tls(conn: sa.Connection) -> bool:
    row = conn.exec_driver_sql("SHOW SESSION STATUS LIKE 'Ssl_cipher'").first()
    return bool(row and row[1])


def server_offers_tls(conn: sa.Connection) -> bool:
    row = conn.exec_driver_sql("SHOW GLOBAL VARIABLES LIKE 'have_ssl'").first()
    if row is not None:
        return str(row[1]).upper() == "YES"
    return session_uses_tls(conn)  # MySQL 8.4 dropped have_ssl


def error_number(exc: BaseException) -> int | None:
    args = getattr(exc, "orig", exc).args if hasattr(exc, "orig") else exc.args
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
    orig = getattr(exc, "orig", None) or exc
    detail = scrub(" ".join(str(a) for a in getattr(orig, "args", ()) or (str(orig),)), mysql)
    detail = " ".join(detail.split())[:500]
    lost = bool(re.search(r"lost connection|gone away|broken pipe|connection reset|"
                          r"connection refused|unexpected eof|timed out", detail, re.I))
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
