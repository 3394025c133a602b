"""The TLS modes through the real CLI, against a private MariaDB with TLS and against the
plain shared server (which has no TLS).

What each mode must do (see README "Configuration" and tls.py):
- preferred: TLS when the server offers it, else plaintext with a `check` warning;
- disabled: plaintext even when TLS is offered;
- required: TLS or nothing (exit 3, "refused", MySQL error 2026);
- verify_ca: the server's chain must lead to RADAR_MYSQL_SSL_CA;
- verify_identity: also, the certificate must name the host as dialled. An IP address
  must be one of the certificate's IP SANs: a certificate for "localhost" alone does not
  cover 127.0.0.1 (no reverse lookup, no CN fallback), as MySQL's own client decides.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.conftest import Result, Server
from tests.integration.tls_mariadb import TLS_ONLY_USER, TlsMariaDB

pytestmark = pytest.mark.integration
DAY = "2024-05-01"
PREFIX = "origin=airbyte/database=bronze_radar"


def _env(url: str, dest: Path, mode: str | None = None, ca: Path | None = None,
         **extra: str) -> dict[str, str]:
    env = {"RADAR_MYSQL_URL": url, "RADAR_DEST": str(dest), "RADAR_WORKERS": "1", **extra}
    if mode is not None:
        env["RADAR_MYSQL_SSL_MODE"] = mode
    if ca is not None:
        env["RADAR_MYSQL_SSL_CA"] = str(ca)
    return env


def _extract(cli: Callable[..., Result], env: dict[str, str], tmp_path: Path
             ) -> tuple[Result, dict[str, Any]]:
    report_file = tmp_path / "report.json"
    result = cli("extract", "--date", DAY, "--report", str(report_file), env=env)
    report = json.loads(report_file.read_text()) if report_file.exists() else {}
    return result, report


def _one_line_error(result: Result, *fragments: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "radar-extract: error:" in lines[0]
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _table(dest: Path, table: str = "store") -> Any:
    return pq.read_table(f"{dest}/{PREFIX}/{table}/cog_dt_ingestion={DAY}")


def test_preferred_uses_tls_when_the_server_offers_it(
    cli: Callable[..., Result], tls_server: TlsMariaDB, tmp_path: Path
) -> None:
    # REQUIRE SSL: the bulk read (connectorx, through the TLS proxy) is refused unless
    # the server sees TLS on its own connection.
    url = tls_server.url(user=TLS_ONLY_USER)
    result, report = _extract(cli, _env(url, tmp_path / "out"), tmp_path)
    assert result.code == 0, result.output
    assert report["tls"] is True
    assert report["tables"][0]["status"] == "published"
    assert _table(tmp_path / "out").num_rows == 3
    check = cli("check", env=_env(url, tmp_path / "out"))
    assert check.code == 0, check.output
    assert "ok   tls: TLS in use (ssl_mode=preferred)" in check.stdout
    assert "ok   reader: connectorx via TLS proxy read a row" in check.stdout


def test_disabled_stays_plaintext_even_when_tls_is_offered(
    cli: Callable[..., Result], tls_server: TlsMariaDB, tmp_path: Path
) -> None:
    result, report = _extract(cli, _env(tls_server.url(), tmp_path / "out", "disabled"),
                              tmp_path)
    assert result.code == 0, result.output
    assert report["tls"] is False
    check = cli("check", env=_env(tls_server.url(), tmp_path / "out", "disabled"))
    assert "ok   tls: TLS disabled by configuration" in check.stdout
    # ...and plaintext it is: the TLS-only account is refused.
    refused = cli("check", env=_env(tls_server.url(user=TLS_ONLY_USER), tmp_path / "out",
                                    "disabled"))
    assert refused.code == 3
    _one_line_error(refused, "refused", "1045")


def test_required_against_a_server_without_tls_is_refused(
    cli: Callable[..., Result], server: Server, tmp_path: Path
) -> None:
    for command in ("extract", "check"):
        result = cli(command, env=_env(server.url("mysql"), tmp_path / "out", "required"))
        assert result.code == 3, result.output
        _one_line_error(result, "refused", "2026")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.parquet"))


@pytest.mark.parametrize("mode", ["required", "verify_ca", "verify_identity"])
def test_tls_modes_read_over_tls(
    cli: Callable[..., Result], tls_server: TlsMariaDB, tmp_path: Path, mode: str
) -> None:
    url = tls_server.url(user=TLS_ONLY_USER)
    result, report = _extract(cli, _env(url, tmp_path / "out", mode, tls_server.certs.ca),
                              tmp_path)
    assert result.code == 0, result.output
    assert report["tls"] is True


def test_verify_ca_with_another_ca_is_refused(
    cli: Callable[..., Result], tls_server: TlsMariaDB, tmp_path: Path
) -> None:
    for mode in ("verify_ca", "verify_identity"):
        env = _env(tls_server.url(), tmp_path / "out", mode, tls_server.certs.other_ca)
        for command in ("extract", "check"):
            result = cli(command, env=env)
            assert result.code == 3, result.output
            _one_line_error(result, "TLS handshake failed", "CERTIFICATE_VERIFY_FAILED")
    # `required` does not check the certificate at all (as MySQL's client does).
    result, report = _extract(cli, _env(tls_server.url(), tmp_path / "out", "required",
                                        tls_server.certs.other_ca), tmp_path)
    assert result.code == 0, result.output
    assert report["tls"] is True


def test_verify_identity_checks_the_name_as_dialled(
    cli: Callable[..., Result], tls_server: TlsMariaDB, tmp_path: Path
) -> None:
    ca = tls_server.certs.ca
    with tls_server.certificate("localhost_only"):
        # Dialled as 127.0.0.1, a certificate for "localhost" alone is not the server's.
        dialled_ip = _env(tls_server.url(), tmp_path / "a", "verify_identity", ca)
        result = cli("extract", "--date", DAY, env=dialled_ip)
        assert result.code == 3, result.output
        _one_line_error(result, "TLS handshake failed", "127.0.0.1")
        # The same certificate is fine when dialled by its name...
        by_name = _env(tls_server.url(host="localhost"), tmp_path / "b", "verify_identity", ca)
        result, report = _extract(cli, by_name, tmp_path)
        assert result.code == 0, result.output
        assert report["tls"] is True
        # ...and verify_ca does not look at names.
        result, _ = _extract(cli, _env(tls_server.url(), tmp_path / "c", "verify_ca", ca),
                             tmp_path)
        assert result.code == 0, result.output
    # The default certificate also names 127.0.0.1.
    result, _ = _extract(cli, _env(tls_server.url(), tmp_path / "d", "verify_identity", ca),
                         tmp_path)
    assert result.code == 0, result.output


def test_preferred_against_a_server_without_tls_warns_and_reads_plaintext(
    cli: Callable[..., Result], server: Server, make_database: Callable[..., str],
    tmp_path: Path
) -> None:
    database = make_database("CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    result, report = _extract(cli, _env(server.url(database), tmp_path / "out"), tmp_path)
    assert result.code == 0, result.output
    assert report["tls"] is False
    check = cli("check", env=_env(server.url(database), tmp_path / "out"))
    assert check.code == 0, check.output
    warn = [line for line in check.stdout.splitlines() if line.startswith("warn tls:")]
    assert len(warn) == 1 and "fell back to plaintext" in warn[0], check.stdout


def test_values_over_tls_equal_values_over_plaintext(
    cli: Callable[..., Result], tls_server: TlsMariaDB, tmp_path: Path
) -> None:
    tables = {}
    for mode in ("verify_identity", "disabled"):
        dest = tmp_path / mode
        result, report = _extract(cli, _env(tls_server.url(), dest, mode, tls_server.certs.ca),
                                  tmp_path)
        assert result.code == 0, result.output
        assert report["tls"] is (mode != "disabled")
        tables[mode] = _table(dest)
    assert tables["verify_identity"].num_rows == 3
    assert tables["verify_identity"] == tables["disabled"]
