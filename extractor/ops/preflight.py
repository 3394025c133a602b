"""`radar-extract check`: can tonight's run work? Each check says ok, warning or failure."""

from __future__ import annotations

import time
from dataclasses import dataclass

from extractor.config import Settings
from extractor.contract.types import quote_identifier
from extractor.errors import ExtractError
from extractor.sink.destination import Destination
from extractor.source.connection import control_connection, query
from extractor.source.discovery import list_tables
from extractor.source.grants import Grants, read_grants
from extractor.source.reader import Server, inspect_server, probe, reader_name


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    warning: bool = False


def run_checks(settings: Settings) -> list[Check]:
    """Run every check; raises SourceUnavailable/DestinationUnavailable (exit 3) when a
    side cannot be reached at all."""
    mysql = settings.mysql
    results: list[Check] = []
    with control_connection(mysql) as conn:
        facts = inspect_server(conn, mysql)  # the run's own decision (catalog.discover)
        results.append(Check("mysql", True, f"{mysql.describe()} (server {facts.version})"))
        results.append(_tls_check(settings, facts.session_tls, facts.offers_tls))
        tables = list_tables(conn, mysql.database)
        unreadable = []
        for table in tables:
            try:
                query(
                    conn,
                    f"SELECT * FROM {quote_identifier(mysql.database)}."
                    f"{quote_identifier(table.name)} LIMIT 0",
                )
            except Exception as exc:  # pymysql's errors: reported per table, not raised
                unreadable.append(f"{table.name} (error {exc.args[0] if exc.args else '?'})")
        results.append(
            Check(
                "tables",
                not unreadable,
                f"{len(tables)} base tables readable"
                if not unreadable
                else f"{len(unreadable)} unreadable: {', '.join(unreadable[:10])}",
            )
        )
        results.append(_grants_check(read_grants(conn, mysql.database)))
    results.append(_reader_check(settings, facts.server))
    destination = Destination(settings)
    try:
        destination.probe("check")
        results.append(
            Check(
                "destination",
                True,
                f"{destination.url(destination.root)} writable (probe written "
                f"and deleted under {destination.url(destination.keys.internal())})",
            )
        )
    except ExtractError as exc:
        if exc.exit_code != 1:
            raise
        results.append(Check("destination", False, str(exc)))
    return results


def _grants_check(grants: Grants) -> Check:
    """The documented user is read-only: any write privilege on the database is a warning."""
    shown = "; ".join(grants.lines)
    if grants.writable:
        return Check(
            "grants",
            True,
            f"the user can WRITE ({', '.join(grants.writable)}); "
            f"a read-only user is enough. Grants: {shown}",
            warning=True,
        )
    return Check("grants", True, f"read-only. Grants: {shown}")


def _tls_check(settings: Settings, tls: bool, offered: bool) -> Check:
    mode = settings.mysql.ssl_mode
    if tls:
        return Check(
            "tls",
            True,
            f"TLS in use (ssl_mode={mode}); bulk reads: connectorx through the local TLS proxy",
        )
    if mode == "disabled":
        return Check(
            "tls",
            True,
            "TLS disabled by configuration (ssl_mode=disabled); bulk reads: connectorx, plaintext",
        )
    return Check(
        "tls",
        True,
        f"server offers no TLS: ssl_mode={mode} fell back to plaintext; "
        "bulk reads: connectorx, plaintext",
        warning=True,
    )


def _reader_check(settings: Settings, server: Server) -> Check:
    """One row through the bulk reader's own path: over TLS that is the proxy, whose
    connection (TLS handshake, authentication relay) nothing else has exercised."""
    started = time.monotonic()
    try:
        probe(settings.mysql, server)
    except ExtractError as exc:
        return Check("reader", False, str(exc))
    return Check(
        "reader",
        True,
        f"{reader_name(server)} read a row ({(time.monotonic() - started) * 1000:.0f} ms)",
    )
