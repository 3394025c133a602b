"""Fixtures over real services: the MySQL-compatible server and an S3 API (moto's server).

`RADAR_TEST_MYSQL_URL` points the tests at another server (default: MariaDB at
127.0.0.1:3306 as root). Each test module creates and drops its own uniquely named
databases. The S3 API is moto in server mode on a free port, reached over real HTTP
through s3fs exactly as production reaches AWS.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pymysql
import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVER_URL = os.environ.get("RADAR_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/")


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    user: str
    password: str

    def url(self, database: str) -> str:
        auth = f"{self.user}:{self.password}" if self.password else self.user
        return f"mysql+pymysql://{auth}@{self.host}:{self.port}/{database}"

    def connect(self, database: str | None = None, **kwargs: object) -> pymysql.Connection:
        return pymysql.connect(host=self.host, port=self.port, user=self.user,
                               password=self.password, database=database, charset="utf8mb4",
                               autocommit=True, **kwargs)


@pytest.fixture(scope="session")
def server() -> Server:
    parts = urlsplit(SERVER_URL)
    found = Server(parts.hostname or "127.0.0.1", parts.port or 3306, parts.username or "root",
                   parts.password or "")
    try:
        found.connect().close()
    except pymysql.MySQLError as exc:
        pytest.fail(f"the test MySQL server at {found.host}:{found.port} is not reachable: {exc}")
    return found


# 1..100000 on MySQL 8 and MariaDB alike (a cross join of digits), for INSERT ... SELECT.
_DIGITS = " UNION ALL ".join(f"SELECT {d} AS d" for d in range(10))
NUMBERS_TO_100K = "SELECT 1 + " + " + ".join(
    f"d{i}.d * {10 ** i}" for i in range(5)) + " AS seq FROM " + " CROSS JOIN ".join(
    f"({_DIGITS}) AS d{i}" for i in range(5))


def hex32(expr: str) -> str:
    """32 hex digits derived from `expr`: MySQL 9 dropped MD5(), both servers have SHA2()."""
    return f"LEFT(SHA2({expr}, 256), 32)"


def numbered_rows(table: str, select: str, rows: int) -> list[str]:
    """INSERTs of `rows` rows into `table` (`select` uses `seq`, 1-based), 100k at a time."""
    return [f"INSERT INTO {table} SELECT {select.replace('seq', f'(seq + {start})')}"
            f" FROM ({NUMBERS_TO_100K}) AS numbers WHERE seq <= {min(100_000, rows - start)}"
            for start in range(0, rows, 100_000)]


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
        client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
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
            [sys.executable, "-m", "extractor", *args], capture_output=True, text=True,
            env=base, timeout=timeout, cwd=ROOT, stdin=subprocess.DEVNULL,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run
