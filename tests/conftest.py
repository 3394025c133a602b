"""Fixtures over real services: the MySQL-compatible server and an S3 API (moto's server).

`RADAR_TEST_MYSQL_URL` points the tests at another server (default: MariaDB at
127.0.0.1:3306 as root; `make test-mysql` points them at the MySQL of
../shared/mysql/start-mysql.sh). `Server.flavor` says which kind it is, where the two
differ. Each test module creates and drops its own uniquely named databases. The S3 API
is moto in server mode on a free port, reached over real HTTP through s3fs exactly as
production reaches AWS.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import duckdb
import pymysql
import pytest

from extractor.run.outcome import RunOutcome
from extractor.run.report import RunReport

ROOT = Path(__file__).resolve().parent.parent
SERVER_URL = os.environ.get("RADAR_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/")


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    user: str
    password: str
    flavor: Literal["mariadb", "mysql"] = "mariadb"
    tls: bool = False  # the server offers TLS (MySQL does out of the box)

    def url(self, database: str) -> str:
        auth = f"{self.user}:{self.password}" if self.password else self.user
        return f"mysql+pymysql://{auth}@{self.host}:{self.port}/{database}"

    def connect(self, database: str | None = None, **kwargs: object) -> pymysql.Connection:
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=database,
            charset="utf8mb4",
            autocommit=True,
            **kwargs,
        )


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    parts = urlsplit(SERVER_URL)
    given = Server(
        parts.hostname or "127.0.0.1",
        parts.port or 3306,
        parts.username or "root",
        parts.password or "",
    )
    try:
        conn = given.connect()  # pymysql encrypts when the server offers TLS
    except pymysql.MySQLError as exc:
        pytest.fail(f"the test MySQL server at {given.host}:{given.port} is not reachable: {exc}")
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        (version,) = cur.fetchone()
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        row = cur.fetchone()
    found = replace(
        given,
        flavor="mariadb" if "mariadb" in version.lower() else "mysql",
        tls=bool(row and row[1]),
    )
    if not found.password:
        conn.close()
        yield found
        return
    # The engine masks its password wherever it appears, so a password such as "radar"
    # (start-mysql.sh's) would mask "radar-extract" in every message the tests read: the
    # tests run as a user of their own, with every privilege and a password no text holds.
    own = replace(
        found, user=f"radar_t_{secrets.token_hex(4)}", password=f"pw{secrets.token_hex(12)}"
    )
    with conn.cursor() as cur:
        cur.execute(f"CREATE USER '{own.user}'@'%' IDENTIFIED BY '{own.password}'")
        cur.execute(f"GRANT ALL ON *.* TO '{own.user}'@'%' WITH GRANT OPTION")
    conn.close()
    try:
        yield own
    finally:
        conn = given.connect()
        with conn.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{own.user}'@'%'")
        conn.close()


def mysql_ca(server: Server) -> Path:
    """The CA of start-mysql.sh's server: RADAR_TEST_MYSQL_SSL_CA, else where the script
    keeps it (MySQL generated it; it signed the server's certificate, which names no host)."""
    given = os.environ.get("RADAR_TEST_MYSQL_SSL_CA")
    root = os.environ.get("MYSQL_ROOT_DIR") or str(Path.home() / ".cache" / "radar-mysql")
    path = Path(given or f"{root}/var/lib/mysql-{server.port}/ca.pem")
    if not path.is_file():
        pytest.skip(f"no CA of the MySQL server at {path}: set RADAR_TEST_MYSQL_SSL_CA")
    return path


def running_statements(
    cur: Any, server: Server, database: str, like: str, min_ms: int = 50
) -> list[int]:
    """Connection ids (not the caller's) running a statement in `database` whose text is
    LIKE `like`, for at least `min_ms` ms: rows are flowing by then."""
    if server.flavor == "mariadb":
        sql = (
            "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s"
            " AND ID <> CONNECTION_ID() AND INFO LIKE %s AND TIME_MS >= %s"
        )
    else:  # MySQL's PROCESSLIST counts whole seconds: performance_schema has the timer (ps)
        sql = (
            "SELECT t.PROCESSLIST_ID FROM performance_schema.threads t"
            " JOIN performance_schema.events_statements_current s USING (THREAD_ID)"
            " WHERE t.PROCESSLIST_DB = %s AND t.PROCESSLIST_ID <> CONNECTION_ID()"
            " AND t.PROCESSLIST_INFO LIKE %s AND s.END_EVENT_ID IS NULL"
            " AND s.TIMER_WAIT >= %s * 1000000000"
        )
    cur.execute(sql, (database, like, min_ms))
    return [int(row[0]) for row in cur.fetchall()]


# 1..100000 on MySQL 8 and MariaDB alike (a cross join of digits), for INSERT ... SELECT.
_DIGITS = " UNION ALL ".join(f"SELECT {d} AS d" for d in range(10))
NUMBERS_TO_100K = (
    "SELECT 1 + "
    + " + ".join(f"d{i}.d * {10**i}" for i in range(5))
    + " AS seq FROM "
    + " CROSS JOIN ".join(f"({_DIGITS}) AS d{i}" for i in range(5))
)


def hex32(expr: str) -> str:
    """32 hex digits derived from `expr`: MySQL 9 dropped MD5(), both servers have SHA2()."""
    return f"LEFT(SHA2({expr}, 256), 32)"


def numbered_rows(table: str, select: str, rows: int) -> list[str]:
    """INSERTs of `rows` rows into `table` (`select` uses `seq`, 1-based), 100k at a time."""
    return [
        f"INSERT INTO {table} SELECT {select.replace('seq', f'(seq + {start})')}"
        f" FROM ({NUMBERS_TO_100K}) AS numbers WHERE seq <= {min(100_000, rows - start)}"
        for start in range(0, rows, 100_000)
    ]


def _databases(server: Server) -> Iterator[Callable[..., str]]:
    """Create uniquely named databases from DDL/DML statements; drop them afterwards."""
    created: list[str] = []

    def make(*statements: str, sql_mode: str | None = None) -> str:
        name = f"radar_test_{uuid.uuid4().hex[:10]}"
        conn = server.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
                created.append(name)
                cur.execute(f"USE `{name}`")
                cur.execute("SET time_zone = '+00:00'")
                if sql_mode is not None:
                    cur.execute("SET SESSION sql_mode = %s", (sql_mode,))
                for statement in statements:
                    cur.execute(statement)
        finally:
            conn.close()
        return name

    yield make
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            for name in created:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()


@pytest.fixture
def make_database(server: Server) -> Iterator[Callable[..., str]]:
    """A test's own databases, dropped after the test."""
    yield from _databases(server)


@pytest.fixture(scope="module")
def make_module_database(server: Server) -> Iterator[Callable[..., str]]:
    """Databases shared by a module's tests (big tables built once), dropped after it."""
    yield from _databases(server)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class S3:
    endpoint: str
    env: dict[str, str]

    def new_bucket(self) -> str:
        import boto3

        name = f"radar-test-{uuid.uuid4().hex[:12]}"
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def s3() -> Iterator[S3]:
    """moto's S3 server on a free port, and the environment that points s3fs at it."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "RADAR_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield S3(f"http://127.0.0.1:{port}", env)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        moto.stop()


def query(sql: str) -> duckdb.DuckDBPyRelation:
    """duckdb.sql() of a SELECT: its relation (typed Optional, for statements that return none)."""
    relation = duckdb.sql(sql)
    assert relation is not None, sql
    return relation


def report_of(outcome: RunOutcome) -> RunReport:
    """The report of a run that got as far as its tables (not stopped before them)."""
    assert outcome.report is not None, outcome.stopped
    return outcome.report


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def cli() -> Callable[..., Result]:
    """Run `radar-extract` as a real process with a clean RADAR_* environment."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> Result:
        base = {k: v for k, v in os.environ.items() if not k.startswith("RADAR_")}
        base.update(env or {})
        proc = subprocess.run(
            [sys.executable, "-m", "extractor", *args],
            capture_output=True,
            text=True,
            env=base,
            timeout=timeout,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run
