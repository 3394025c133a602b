"""The TLS proxy (extractor/source/tls_proxy.py): connectorx over TLS reads exactly what it
reads over plaintext, refusals keep their meaning, and a cut is always an error.

Against the private TLS MariaDB (tls_mariadb.py) for the real thing, and against a
scripted server (fake_mysql.py) for MySQL 8's caching_sha2_password and for a clean cut at
a packet boundary, which MariaDB cannot be made to show.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pymysql
import pytest

from extractor.config import load_settings
from extractor.contract.types import plan_column
from extractor.errors import SourceError, SourceUnavailable
from extractor.run.catalog import discover
from extractor.run.pipeline import RunContext, extract_table
from extractor.source.batching import BatchPlan
from extractor.source.reader import Server as ReadServer
from extractor.source.reader import read_batches
from extractor.source.tls_proxy import TlsProxy, Upstream
from tests.conftest import NUMBERS_TO_100K, ROOT, Server, hex32
from tests.integration.fake_mysql import FakeMySQL
from tests.integration.raw_client import greeting_nonce, handshake_response, scramble
from tests.integration.test_type_matrix import _ddl
from tests.integration.tls_mariadb import TLS_ONLY_USER, TlsMariaDB
from tests.type_matrix import CASES

pytestmark = pytest.mark.integration
MATRIX_DB = "radar_tls_matrix"
BIG_DB = "radar_tls_big"
BIG_ROWS = 300_000
DAY = "2024-05-01"
PREFIX = "origin=airbyte/database=bronze_radar"


@pytest.fixture(scope="module")
def matrix_db(tls_server: TlsMariaDB) -> str:
    conn = tls_server.admin()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {MATRIX_DB} CHARACTER SET utf8mb4")
        cur.execute(f"USE {MATRIX_DB}")
        cur.execute("SET SESSION sql_mode = '', time_zone = '+00:00'")
        for case in CASES:
            for statement in _ddl(case):
                cur.execute(statement)
    conn.close()
    return MATRIX_DB


@pytest.fixture(scope="module")
def big_db(tls_server: TlsMariaDB) -> str:
    conn = tls_server.admin()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {BIG_DB}")
        cur.execute(
            f"CREATE TABLE {BIG_DB}.metrics (id INT PRIMARY KEY, v DECIMAL(14,2),"
            " note VARCHAR(64), at DATETIME)"
        )
        for block in range(BIG_ROWS // 100_000):
            cur.execute(
                f"INSERT INTO {BIG_DB}.metrics SELECT seq + {block * 100_000},"
                f" seq / 100, {hex32('seq')}, '2024-01-01' + INTERVAL seq MINUTE"
                f" FROM ({NUMBERS_TO_100K}) AS numbers"
            )
        cur.execute(f"CREATE TABLE {BIG_DB}.small (id INT PRIMARY KEY)")
        cur.execute(f"INSERT INTO {BIG_DB}.small VALUES (1), (2)")
    conn.close()
    return BIG_DB


def _upstream(
    tls_server: TlsMariaDB,
    mode: str = "verify_identity",
    ca: Path | None = None,
    port: int | None = None,
    user: str | None = None,
) -> Upstream:
    return Upstream(
        "127.0.0.1",
        port or tls_server.port,
        mode,
        str(ca or tls_server.certs.ca),
        user or tls_server.user,
        tls_server.password,
        5.0,
    )


def _client(
    proxy: TlsProxy, user: str, password: str, database: str | None = None
) -> pymysql.Connection:
    """pymysql as the proxy's client, in plaintext as connectorx is."""
    return pymysql.connect(
        host="127.0.0.1",
        port=proxy.port,
        user=user,
        password=password,
        database=database,
        ssl_disabled=True,
        connect_timeout=10,
        autocommit=True,
    )


# --------------------------------------------------------------------- values, end to end


def test_type_matrix_over_tls_equals_plaintext(
    tls_server: TlsMariaDB, matrix_db: str, tmp_path: Path
) -> None:
    """Every contract row, read by connectorx through the proxy (as a REQUIRE SSL account,
    so the server's leg is TLS) and read by connectorx in plaintext: the same Parquet."""
    runs = {
        "tls": {
            "RADAR_MYSQL_URL": tls_server.url(matrix_db, user=TLS_ONLY_USER),
            "RADAR_MYSQL_SSL_MODE": "verify_identity",
            "RADAR_MYSQL_SSL_CA": str(tls_server.certs.ca),
        },
        "plain": {"RADAR_MYSQL_URL": tls_server.url(matrix_db), "RADAR_MYSQL_SSL_MODE": "disabled"},
    }
    tables = {}
    for name, env in runs.items():
        settings = load_settings(
            env={**env, "RADAR_DEST": str(tmp_path / name), "RADAR_BATCH_ROWS": "1000"}
        )
        catalog = discover(settings)
        assert catalog.server.tls is (name == "tls")
        ctx = RunContext(settings, f"run-{name}", DAY, catalog.server)
        for case in CASES:
            result = extract_table(ctx, catalog.tasks[f"m_{case.id}"])
            assert result.status == "published", result.error
            path = (
                f"{tmp_path / name}/{PREFIX}/m_{case.id}/cog_dt_ingestion={DAY}/"
                f"file_m_{case.id}_001.parquet"
            )
            tables[(name, case.id)] = (pq.read_table(path), result.nulled)
    for case in CASES:
        assert tables[("tls", case.id)] == tables[("plain", case.id)], case.id


# -------------------------------------------------------------- the proxy, leg by leg


def test_the_servers_leg_is_tls_and_the_clients_is_not(tls_server: TlsMariaDB) -> None:
    with TlsProxy(_upstream(tls_server, user=TLS_ONLY_USER)) as proxy:
        conn = _client(proxy, TLS_ONLY_USER, tls_server.password)
        with conn.cursor() as cur:
            cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
            ((_, version),) = cur.fetchall()
            cur.execute("SELECT name FROM radar_tls.store ORDER BY id")
            names = [row[0] for row in cur.fetchall()]
        conn.close()
    assert version.startswith("TLSv1.")
    assert names == ["Farmácia Central 😀", "Drogaria Sul", "Loja 3"]
    assert proxy.failure() is None


@pytest.mark.parametrize("case", ["wrong_ca", "wrong_password", "no_tls_required", "unreachable"])
def test_refusals_reach_the_client_and_the_report(
    tls_server: TlsMariaDB, server: Server, case: str
) -> None:
    """The client gets an ERR packet with the MySQL error number (never a bare reset), and
    the proxy reports the same, so the reader can say what happened. (A wrong password
    is refused by the proxy itself: test_tls_proxy_auth.py.)"""
    if case == "no_tls_required" and server.tls:
        pytest.skip("the server under test offers TLS")
    upstream, code = {
        "wrong_ca": (_upstream(tls_server, ca=tls_server.certs.other_ca), 2026),
        "wrong_password": (_upstream(tls_server), 1045),
        "no_tls_required": (
            Upstream(server.host, server.port, "required", None, server.user, server.password, 5.0),
            2026,
        ),
        "unreachable": (_upstream(tls_server, port=1), 2003),
    }[case]
    password = "wrong" if case == "wrong_password" else tls_server.password
    started = time.monotonic()
    with TlsProxy(upstream) as proxy:
        with pytest.raises(pymysql.OperationalError) as caught:
            _client(proxy, tls_server.user, password)
        failure = proxy.failure()
    assert time.monotonic() - started < 10
    assert caught.value.args[0] == code, caught.value.args
    assert failure is not None and failure.code == code
    if case == "wrong_ca":
        assert "CERTIFICATE_VERIFY_FAILED" in failure.message


def test_preferred_without_tls_on_the_server_relays_plaintext(server: Server) -> None:
    if server.tls:
        pytest.skip("the server under test offers TLS (test_tls.py's MySQL cases)")
    with TlsProxy(
        Upstream(server.host, server.port, "preferred", None, server.user, server.password, 5.0)
    ) as proxy:
        conn = _client(proxy, server.user, server.password)
        with conn.cursor() as cur:
            cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            ((_, cipher),) = cur.fetchall()
        conn.close()
    assert cipher == ""


def test_the_gated_plaintext_relay_admits_only_a_client_that_proves_the_password(
    server: Server,
) -> None:
    """ssl_mode=disabled with a window (a gated read): the plaintext path, admission first,
    whatever the server offers; the refused stranger leaves the port to the real client."""
    with TlsProxy(
        Upstream(server.host, server.port, "disabled", None, server.user, server.password, 5.0),
        window_bytes=1 << 20,
    ) as proxy:
        with pytest.raises(pymysql.OperationalError) as caught:
            _client(proxy, server.user, server.password + "-not-it")
        conn = _client(proxy, server.user, server.password)
        with conn.cursor() as cur:
            cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            ((_, cipher),) = cur.fetchall()
        conn.close()
        refused = proxy.refused()
    assert caught.value.args[0] == 1045 and "TLS proxy" in str(caught.value), caught.value.args
    assert cipher == ""
    assert refused is not None and "a wrong password" in refused


@pytest.mark.parametrize("script", ["native", "sha2_fast", "sha2_full", "switch_sha2_full"])
def test_caching_sha2_password_over_the_proxy(
    server_tls_context: tuple[ssl.SSLContext, Path], script: str
) -> None:
    """MySQL 8's plugin, played by a scripted server: fast auth, full auth (the proxy
    answers with the password in clear over the TLS leg, never an RSA key request), and
    the auth switch into it. pymysql as the client checks every sequence id."""
    context, ca = server_tls_context
    fake = FakeMySQL(script, "s3cret-pw", tls=context)
    try:
        with TlsProxy(
            Upstream("127.0.0.1", fake.port, "verify_identity", str(ca), "fake", "s3cret-pw", 5.0)
        ) as proxy:
            conn = _client(proxy, "fake", "s3cret-pw")
            with conn.cursor() as cur:
                cur.execute("DO 1")
            conn.close()
            assert proxy.failure() is None
    finally:
        fake.close()
    assert not fake.errors, fake.errors
    if script.endswith("full"):
        assert fake.secure_when_password_came is True
        assert b"s3cret-pw\x00" in fake.received
        assert b"\x02" not in fake.received  # no RSA public key request reached the server


def test_full_auth_with_a_wrong_password_is_access_denied(
    server_tls_context: tuple[ssl.SSLContext, Path],
) -> None:
    context, ca = server_tls_context
    fake = FakeMySQL("sha2_full", "the-real-pw", tls=context)
    try:
        with TlsProxy(
            Upstream("127.0.0.1", fake.port, "verify_ca", str(ca), "fake", "not-it", 5.0)
        ) as proxy:
            with pytest.raises(pymysql.OperationalError) as caught:
                _client(proxy, "fake", "not-it")
            failure = proxy.failure()
    finally:
        fake.close()
    assert caught.value.args[0] == 1045
    assert failure is not None and failure.code == 1045


def _read_packet(sock: socket.socket) -> bytes:
    header = b""
    while len(header) < 4:
        chunk = sock.recv(4 - len(header))
        assert chunk, "clean EOF"
        header += chunk
    size = int.from_bytes(header[:3], "little")
    payload = b""
    while len(payload) < size:
        chunk = sock.recv(size - len(payload))
        assert chunk, "clean EOF"
        payload += chunk
    return payload


def test_a_clean_cut_at_a_packet_boundary_reaches_the_client_as_a_reset(
    server_tls_context: tuple[ssl.SSLContext, Path],
) -> None:
    """The server ends its TLS leg cleanly (close_notify, FIN) right after whole packets,
    mid-result: the client must see a reset, never the end of a stream."""
    context, ca = server_tls_context
    fake = FakeMySQL("native", "pw", tls=context)
    try:
        with TlsProxy(
            Upstream("127.0.0.1", fake.port, "verify_ca", str(ca), "fake", "pw", 5.0)
        ) as proxy:
            sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
            greeting = _read_packet(sock)
            assert greeting[:1] == b"\x0a"
            answer = scramble("mysql_native_password", "pw", greeting_nonce(greeting))
            payload = handshake_response("fake", "mysql_native_password", answer)
            sock.sendall(len(payload).to_bytes(3, "little") + b"\x01" + payload)
            assert _read_packet(sock)[:1] == b"\x00"  # OK
            query = b"\x03SELECT CUT"
            sock.sendall(len(query).to_bytes(3, "little") + b"\x00" + query)
            received = 0
            with pytest.raises(ConnectionResetError):
                while True:
                    data = sock.recv(65536)
                    assert data, f"clean end of stream after {received} bytes"
                    received += len(data)
            sock.close()
            failure = proxy.failure()
    finally:
        fake.close()
    assert failure is not None and failure.code == 2013


# ------------------------------------------------------------------ faults, end to end


def _kill_while_streaming(
    tls_server: TlsMariaDB, how: str, stop: threading.Event, killed: list[int]
) -> None:
    """From a second session, KILL every SELECT of `metrics` once rows flow (every attempt,
    should the run retry)."""
    conn = tls_server.admin()
    with conn.cursor() as cur:
        while not stop.is_set():
            cur.execute(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s"
                " AND INFO LIKE '%%radar-extract%%`metrics`%%'"
                " AND INFO NOT LIKE '%%PROCESSLIST%%' AND TIME_MS > 50",
                (BIG_DB,),
            )
            for (process_id,) in cur.fetchall():
                if int(process_id) not in killed:
                    cur.execute(f"KILL {how} {int(process_id)}")
                    killed.append(int(process_id))
            time.sleep(0.01)
    conn.close()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RADAR_")}
    return subprocess.run(
        [sys.executable, "-m", "extractor", *args],
        capture_output=True,
        text=True,
        env={**base, **env},
        cwd=ROOT,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("how", ["QUERY", "CONNECTION"])
def test_a_killed_read_over_the_proxy_fails_the_table(
    tls_server: TlsMariaDB, big_db: str, tmp_path: Path, how: str
) -> None:
    env = {
        "RADAR_MYSQL_URL": tls_server.url(big_db, user=TLS_ONLY_USER),
        "RADAR_MYSQL_SSL_MODE": "verify_identity",
        "RADAR_MYSQL_SSL_CA": str(tls_server.certs.ca),
        "RADAR_DEST": str(tmp_path),
        "RADAR_WORKERS": "1",
        "RADAR_BATCH_ROWS": "5000",
        "RADAR_RETRY_ATTEMPTS": "1",
    }
    stop = threading.Event()
    killed: list[int] = []
    killer = threading.Thread(target=_kill_while_streaming, args=(tls_server, how, stop, killed))
    killer.start()
    try:
        result = _cli(env, "extract", "--date", DAY)
    finally:
        stop.set()
        killer.join()
    assert killed, "the SELECT was never seen streaming"
    assert result.returncode == 1, result.stderr
    assert "metrics: failed at read" in result.stderr
    assert "small: published 2 rows" in result.stderr  # the other table goes on
    assert "panicked" not in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / PREFIX / "metrics").exists()
    if how == "CONNECTION":  # the proxy's own account of the cut, not a bare reset
        assert "Lost connection to MySQL server during query" in result.stderr


def test_a_full_read_over_the_proxy_and_an_early_stop(tls_server: TlsMariaDB, big_db: str) -> None:
    """All rows through the proxy; and a reader abandoned after one batch leaves neither a
    helper process nor a running query behind."""
    settings = load_settings(
        env={"RADAR_MYSQL_URL": tls_server.url(big_db), "RADAR_MYSQL_SSL_MODE": "required"}
    )
    catalog = discover(settings)
    plans = [plan_column(c) for c in catalog.tasks["metrics"].columns]
    batches = read_batches(
        settings.mysql, "metrics", plans, BatchPlan(50_000, 8), server=catalog.server
    )
    assert sum(b.num_rows for b in batches) == BIG_ROWS
    batches = read_batches(
        settings.mysql,
        "metrics",
        plans,
        BatchPlan(5_000, 8),
        server=catalog.server,
        tag="early-stop",
    )
    next(batches)
    batches.close()
    conn = tls_server.admin()
    deadline = time.monotonic() + 10
    with conn.cursor() as cur:
        while True:
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST"
                " WHERE INFO LIKE '%%early-stop%%' AND INFO NOT LIKE '%%PROCESSLIST%%'"
            )
            (running,) = cur.fetchone()
            if not running or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    conn.close()
    assert running == 0


def test_wrong_ca_fails_with_exit_3_in_one_line(tls_server: TlsMariaDB, tmp_path: Path) -> None:
    # Through the CLI, the control connection meets the wrong CA first...
    result = _cli(
        {
            "RADAR_MYSQL_URL": tls_server.url(),
            "RADAR_MYSQL_SSL_MODE": "verify_ca",
            "RADAR_MYSQL_SSL_CA": str(tls_server.certs.other_ca),
            "RADAR_DEST": str(tmp_path),
        },
        "extract",
    )
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "CERTIFICATE_VERIFY_FAILED" in lines[0], result.stderr
    # ...and the bulk read itself, should the certificate change after discovery. (30 s:
    # connectorx's connection pool retries a failed connection for that long.)
    settings = load_settings(
        env={
            "RADAR_MYSQL_URL": tls_server.url(),
            "RADAR_MYSQL_SSL_MODE": "verify_ca",
            "RADAR_MYSQL_SSL_CA": str(tls_server.certs.other_ca),
        }
    )
    plans = [
        plan_column(c)
        for c in discover(load_settings(env={"RADAR_MYSQL_URL": tls_server.url()}))
        .tasks["store"]
        .columns
    ]
    with pytest.raises(SourceError) as caught:
        list(
            read_batches(
                settings.mysql,
                "store",
                plans,
                BatchPlan(1000, 8),
                server=ReadServer("mariadb", tls=True),
            )
        )
    assert isinstance(caught.value, SourceUnavailable) and caught.value.exit_code == 3
    message = str(caught.value)
    assert "\n" not in message and "refused: 2026" in message
    assert "CERTIFICATE_VERIFY_FAILED" in message
    assert tls_server.password not in message
