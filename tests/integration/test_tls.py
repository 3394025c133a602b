"""The TLS modes through the real CLI, against a private MariaDB with TLS, against the
shared MariaDB (which has no TLS) and, when the server under test is MySQL (`make
test-mysql`), against MySQL as it ships: TLS on with certificates it generated itself
(which name no host), caching_sha2_password.

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
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pymysql
import pytest

from extractor.config import load_settings
from extractor.contract.types import plan_column
from extractor.errors import SourceUnavailable
from extractor.run.catalog import discover
from extractor.source.batching import BatchPlan
from extractor.source.reader import Server as ReadServer
from extractor.source.reader import read_batches
from tests.conftest import Result, Server, mysql_ca
from tests.integration.raw_client import RawClient, greeting_nonce, handshake_response, scramble
from tests.integration.tls_mariadb import (
    _SMALL_TABLE,
    TLS_ONLY_USER,
    TlsMariaDB,
    make_certificates,
)

pytestmark = pytest.mark.integration
DAY = "2024-05-01"
PREFIX = "origin=airbyte/database=bronze_radar"


def _env(
    url: str, dest: Path, mode: str | None = None, ca: Path | None = None, **extra: str
) -> dict[str, str]:
    env = {"RADAR_MYSQL_URL": url, "RADAR_DEST": str(dest), "RADAR_WORKERS": "1", **extra}
    if mode is not None:
        env["RADAR_MYSQL_SSL_MODE"] = mode
    if ca is not None:
        env["RADAR_MYSQL_SSL_CA"] = str(ca)
    return env


def _extract(
    cli: Callable[..., Result], env: dict[str, str], tmp_path: Path
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
    result, report = _extract(cli, _env(tls_server.url(), tmp_path / "out", "disabled"), tmp_path)
    assert result.code == 0, result.output
    assert report["tls"] is False
    check = cli("check", env=_env(tls_server.url(), tmp_path / "out", "disabled"))
    assert "ok   tls: TLS disabled by configuration" in check.stdout
    # ...and plaintext it is: the TLS-only account is refused.
    refused = cli(
        "check", env=_env(tls_server.url(user=TLS_ONLY_USER), tmp_path / "out", "disabled")
    )
    assert refused.code == 3
    _one_line_error(refused, "refused", "1045")


def test_required_against_a_server_without_tls_is_refused(
    cli: Callable[..., Result], server: Server, tmp_path: Path
) -> None:
    if server.tls:
        pytest.skip("the server under test offers TLS (the MySQL cases below cover it)")
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
    result, report = _extract(cli, _env(url, tmp_path / "out", mode, tls_server.certs.ca), tmp_path)
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
    result, report = _extract(
        cli,
        _env(tls_server.url(), tmp_path / "out", "required", tls_server.certs.other_ca),
        tmp_path,
    )
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
        result, _ = _extract(cli, _env(tls_server.url(), tmp_path / "c", "verify_ca", ca), tmp_path)
        assert result.code == 0, result.output
    # The default certificate also names 127.0.0.1.
    result, _ = _extract(
        cli, _env(tls_server.url(), tmp_path / "d", "verify_identity", ca), tmp_path
    )
    assert result.code == 0, result.output


def test_preferred_against_a_server_without_tls_warns_and_reads_plaintext(
    cli: Callable[..., Result], server: Server, make_database: Callable[..., str], tmp_path: Path
) -> None:
    if server.tls:
        pytest.skip("the server under test offers TLS (the MySQL cases below cover it)")
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
        result, report = _extract(
            cli, _env(tls_server.url(), dest, mode, tls_server.certs.ca), tmp_path
        )
        assert result.code == 0, result.output
        assert report["tls"] is (mode != "disabled")
        tables[mode] = _table(dest)
    assert tables["verify_identity"].num_rows == 3
    assert tables["verify_identity"] == tables["disabled"]


# ------------------------------------------------------------- MySQL as it ships


@dataclass(frozen=True)
class MySQLTls:
    server: Server
    database: str
    ca: Path  # MySQL's own CA
    other_ca: Path  # an unrelated one
    tls_user: str  # REQUIRE SSL: a read that works with it proves the server's leg is TLS
    password: str

    def url(
        self, user: str | None = None, *, host: str | None = None, password: str | None = None
    ) -> str:
        """The server fixture's user by default, else `user` (the TLS-only user's password
        unless `password` is given)."""
        if user is None:
            user, password = self.server.user, self.server.password
        return (
            f"mysql+pymysql://{user}:{password or self.password}@"
            f"{host or self.server.host}:{self.server.port}/{self.database}"
        )

    def connect(self) -> pymysql.Connection:
        return self.server.connect(self.database)


@pytest.fixture(scope="module")
def mysql_tls(
    server: Server,
    make_module_database: Callable[..., str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[MySQLTls]:
    if server.flavor != "mysql":
        pytest.skip(
            "MySQL's own TLS and caching_sha2_password: run against MySQL (make test-mysql)"
        )
    ca = mysql_ca(server)
    database = make_module_database(*_SMALL_TABLE, sql_mode="")  # a zero date in it
    found = MySQLTls(
        server,
        database,
        ca,
        make_certificates(tmp_path_factory.mktemp("pki")).other_ca,
        f"rt_{uuid.uuid4().hex[:8]}",
        f"Pw-tls-{uuid.uuid4().hex[:8]}",
    )
    conn = found.connect()
    with conn.cursor() as cur:
        cur.execute(
            f"CREATE USER '{found.tls_user}'@'%' IDENTIFIED BY '{found.password}' REQUIRE SSL"
        )
        cur.execute(f"GRANT SELECT ON `{database}`.* TO '{found.tls_user}'@'%'")
    try:
        yield found
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{found.tls_user}'@'%'")
        conn.close()


def test_mysql_preferred_encrypts_the_bulk_read_too(
    cli: Callable[..., Result], mysql_tls: MySQLTls, tmp_path: Path
) -> None:
    """The default mode against RDS-like MySQL: TLS for the control connection and, through
    the TLS proxy, for connectorx (the REQUIRE SSL account would be refused otherwise)."""
    url = mysql_tls.url(mysql_tls.tls_user)
    result, report = _extract(cli, _env(url, tmp_path / "out"), tmp_path)
    assert result.code == 0, result.output
    assert report["tls"] is True
    assert report["tables"][0]["status"] == "published"
    assert _table(tmp_path / "out").column("name").to_pylist() == [
        "Farmácia Central 😀",
        "Drogaria Sul",
        "Loja 3",
    ]
    check = cli("check", env=_env(url, tmp_path / "out"))
    assert check.code == 0, check.output
    assert "ok   tls: TLS in use (ssl_mode=preferred)" in check.stdout
    assert "ok   reader: connectorx via TLS proxy read a row" in check.stdout


@pytest.mark.parametrize("mode", ["required", "verify_ca"])
def test_mysql_tls_modes_read_over_tls(
    cli: Callable[..., Result], mysql_tls: MySQLTls, tmp_path: Path, mode: str
) -> None:
    url = mysql_tls.url(mysql_tls.tls_user)
    result, report = _extract(cli, _env(url, tmp_path / "out", mode, mysql_tls.ca), tmp_path)
    assert result.code == 0, result.output
    assert report["tls"] is True
    assert _table(tmp_path / "out").num_rows == 3


def test_mysql_verify_identity_refuses_a_certificate_that_names_no_host(
    cli: Callable[..., Result], mysql_tls: MySQLTls, tmp_path: Path
) -> None:
    """MySQL's generated certificate is signed by its CA but names neither 127.0.0.1 nor
    localhost: verify_ca accepts it (above), verify_identity must not."""
    for host in ("127.0.0.1", "localhost"):
        env = _env(mysql_tls.url(host=host), tmp_path / "out", "verify_identity", mysql_tls.ca)
        for command in ("extract", "check"):
            result = cli(command, env=env)
            assert result.code == 3, result.output
            _one_line_error(
                result,
                "TLS handshake failed",
                "CERTIFICATE_VERIFY_FAILED",
                f"not valid for '{host}'",
            )
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.parquet"))


def test_mysql_verify_ca_with_another_ca_is_refused(
    cli: Callable[..., Result], mysql_tls: MySQLTls, tmp_path: Path
) -> None:
    env = _env(mysql_tls.url(), tmp_path / "out", "verify_ca", mysql_tls.other_ca)
    for command in ("extract", "check"):
        result = cli(command, env=env)
        assert result.code == 3, result.output
        _one_line_error(result, "TLS handshake failed", "CERTIFICATE_VERIFY_FAILED")


def test_mysql_disabled_stays_plaintext(
    cli: Callable[..., Result], mysql_tls: MySQLTls, tmp_path: Path
) -> None:
    result, report = _extract(cli, _env(mysql_tls.url(), tmp_path / "out", "disabled"), tmp_path)
    assert result.code == 0, result.output
    assert report["tls"] is False
    refused = cli(
        "check", env=_env(mysql_tls.url(mysql_tls.tls_user), tmp_path / "out", "disabled")
    )
    assert refused.code == 3
    _one_line_error(refused, "refused", "1045")


def _cache_is_warm(mysql_tls: MySQLTls, user: str, password: str) -> bool:
    """Whether MySQL holds `user`'s password in caching_sha2_password's cache: it answers
    a scramble with fast auth (0x01 0x03), else asks for full (0x01 0x04). The probe hangs
    up then, which leaves the cache as it was."""
    client = RawClient(mysql_tls.server.port, mysql_tls.server.host)
    nonce = greeting_nonce(client.read())
    plugin = "caching_sha2_password"
    client.send(handshake_response(user, plugin, scramble(plugin, password, nonce)))
    answer = client.read()
    client.close()
    assert answer in (b"\x01\x03", b"\x01\x04"), answer
    return answer == b"\x01\x03"


def test_mysql_caching_sha2_full_and_fast_authentication_through_the_proxy(
    mysql_tls: MySQLTls,
) -> None:
    """connectorx through the TLS proxy as a user MySQL has not cached (a new one, and
    again after FLUSH PRIVILEGES: full authentication, the password over the TLS leg) and
    as one it has (fast). No control connection comes first, so the proxy's is the one
    that authenticates. (Strangers at the proxy's port: test_tls_proxy_auth.py.)"""
    user, password = f"rs2_{uuid.uuid4().hex[:8]}", f"Pw-sha2-{uuid.uuid4().hex[:8]}"
    conn = mysql_tls.connect()
    with conn.cursor() as cur:
        cur.execute(
            f"CREATE USER '{user}'@'%' IDENTIFIED WITH caching_sha2_password BY '{password}'"
        )
        cur.execute(f"GRANT SELECT ON `{mysql_tls.database}`.* TO '{user}'@'%'")
    plans = [
        plan_column(c)
        for c in discover(load_settings(env={"RADAR_MYSQL_URL": mysql_tls.url()}))
        .tasks["store"]
        .columns
    ]
    mysql = load_settings(
        env={
            "RADAR_MYSQL_URL": mysql_tls.url(user, password=password),
            "RADAR_MYSQL_SSL_MODE": "verify_ca",
            "RADAR_MYSQL_SSL_CA": str(mysql_tls.ca),
        }
    ).mysql

    def names() -> list[str]:
        batches = read_batches(
            mysql, "store", plans, BatchPlan(1000, 8), server=ReadServer("mysql", tls=True)
        )
        return [str(n) for n in pa.Table.from_batches(list(batches)).column("name").to_pylist()]

    expected = ["Farmácia Central 😀", "Drogaria Sul", "Loja 3"]
    try:
        assert not _cache_is_warm(mysql_tls, user, password)
        assert names() == expected  # full: a user created a moment ago
        assert _cache_is_warm(mysql_tls, user, password)  # the exchange succeeded
        assert names() == expected  # fast
        with conn.cursor() as cur:
            cur.execute("FLUSH PRIVILEGES")
        assert not _cache_is_warm(mysql_tls, user, password)
        assert names() == expected  # full again
        assert _cache_is_warm(mysql_tls, user, password)
        # A wrong password: refused, with MySQL's own account of it, never the password.
        wrong = load_settings(
            env={
                "RADAR_MYSQL_URL": mysql_tls.url(user, password="Not-the-pw-1"),
                "RADAR_MYSQL_SSL_MODE": "required",
            }
        ).mysql
        with pytest.raises(SourceUnavailable) as caught:
            list(
                read_batches(
                    wrong, "store", plans, BatchPlan(1000, 8), server=ReadServer("mysql", tls=True)
                )
            )
        assert "refused" in str(caught.value) and "1045" in str(caught.value)
        assert "Not-the-pw-1" not in str(caught.value) and "\n" not in str(caught.value)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        conn.close()
