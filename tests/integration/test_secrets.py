"""A canary password and AWS secret key never appear in stdout, stderr, log files or reports,
whatever fails, debug logging (-v, with tracebacks) included."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import S3, Result, Server

pytestmark = pytest.mark.integration
PASSWORD = "Canary:pw/7f3a@9c%"  # characters that URL-quoting changes, so both forms are checked
AWS_SECRET = "CanaryAwsSecret0123456789abcdefXYZ"


@pytest.fixture
def user(server: Server, make_database: Callable[..., str]) -> Iterator[tuple[str, str]]:
    database = make_database(
        "CREATE TABLE ok (id INT PRIMARY KEY)",
        "INSERT INTO ok VALUES (1)",
        "CREATE TABLE hidden (id INT PRIMARY KEY)",
    )
    name = f"rs_{uuid.uuid4().hex[:8]}"
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE USER '{name}'@'%%' IDENTIFIED BY %s", (PASSWORD,))
        cur.execute(f"GRANT SELECT ON `{database}`.`ok` TO '{name}'@'%'")
        cur.execute(f"GRANT INSERT ON `{database}`.`hidden` TO '{name}'@'%'")  # read fails
    yield name, database
    with conn.cursor() as cur:
        cur.execute(f"DROP USER '{name}'@'%'")
    conn.close()


def _leaks(result: Result, *paths: Path) -> list[str]:
    from urllib.parse import quote

    texts = [result.stdout, result.stderr]
    for root in paths:
        texts += [
            p.read_text(errors="replace")
            for p in root.rglob("*")
            if p.is_file() and p.suffix in (".json", ".log", "")
        ]
    forms = {PASSWORD, quote(PASSWORD, safe=""), AWS_SECRET}
    return [form for form in forms for text in texts if form in text]


@pytest.mark.parametrize(
    "scenario", ["wrong-password", "failed-table", "unreachable", "missing-bucket", "check"]
)
def test_canaries_never_leak(
    cli: Callable[..., Result],
    server: Server,
    s3: S3,
    user: tuple[str, str],
    tmp_path: Path,
    scenario: str,
) -> None:
    name, database = user
    env = {
        "RADAR_MYSQL_HOST": server.host,
        "RADAR_MYSQL_PORT": str(server.port),
        "RADAR_MYSQL_USER": name,
        "RADAR_MYSQL_PASSWORD": PASSWORD,
        "RADAR_MYSQL_DATABASE": database,
        "RADAR_DEST": str(tmp_path / "out"),
        "RADAR_LOG_FILE": str(tmp_path / "logs" / "radar.log"),
        **s3.env,
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
    }
    (tmp_path / "logs").mkdir()
    args = ["extract", "-v", "--report", str(tmp_path / "out" / "report.json")]
    expected = {
        "wrong-password": 3,
        "failed-table": 1,
        "unreachable": 3,
        "missing-bucket": 3,
        "check": 1,
    }[scenario]
    if scenario == "wrong-password":
        env["RADAR_MYSQL_PASSWORD"] = PASSWORD + "x"
    elif scenario == "unreachable":
        env["RADAR_MYSQL_URL"] = (
            f"mysql+pymysql://{name}:{PASSWORD}@127.0.0.1:1/x".replace("%", "%25")
            .replace("/7", "%2F7")
            .replace("@9", "%409")
        )
        env.pop("RADAR_MYSQL_PORT")
        env.pop("RADAR_MYSQL_HOST")
    elif scenario == "missing-bucket":
        env["RADAR_DEST"] = "s3://radar-no-such-bucket"
    elif scenario == "check":
        args = ["check", "-v"]
    result = cli(*args, env=env)
    assert result.code == expected, result.output
    assert _leaks(result, tmp_path) == []
    if scenario == "check":  # a read-only user (SELECT, INSERT on one table): a warning
        assert "warn grants: the user can WRITE (INSERT ON" in result.stdout
        if server.flavor == "mariadb":  # its SHOW GRANTS holds the hash: masked
            assert "IDENTIFIED BY PASSWORD '***'" in result.stdout
        else:  # MySQL 8's never does
            assert "IDENTIFIED" not in result.stdout
    else:  # the failure and its traceback went to the log file too
        assert "ERROR" in (tmp_path / "logs" / "radar.log").read_text()
