"""After a run, for real: the Slack payloads a local webhook server receives, the Glue crawler
started in moto's server, and the metrics in the report and the JSON log lines.

The webhook is a plain HTTP server on 127.0.0.1 in this process; `radar-extract` runs as
a real process against the real MariaDB, and Glue is moto's server (the `s3` fixture's:
one server answers every service), reached by botocore through `AWS_ENDPOINT_URL`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from extractor.ops.validation import Validation
from tests.conftest import S3, Result, Server
from tests.webhook import HOOK_TOKEN, Webhook, message, webhook

pytestmark = pytest.mark.integration

PREFIX = "origin=airbyte/database=bronze_radar"
PASSWORD = "Canary:pw/7f3a@9c%"  # URL-quoting changes it: both forms are checked
AWS_SECRET = "CanaryAwsSecret0123456789abcdefXYZ"
SCHEMA = [
    "CREATE TABLE store (id INT PRIMARY KEY, name VARCHAR(20))",
    "INSERT INTO store VALUES (1, 'a'), (2, 'b'), (3, 'c')",
    "CREATE TABLE product (sku VARCHAR(10) PRIMARY KEY, price DECIMAL(10,2))",
    "INSERT INTO product VALUES ('A', 1.50), ('B', 2.50)",
    "CREATE TABLE empty_table (id INT PRIMARY KEY)",
]
ROWS = {"store": 3, "product": 2, "empty_table": 0}


@pytest.fixture
def slack() -> Iterator[Webhook]:
    with webhook() as hook:
        yield hook


@pytest.fixture
def radar(make_database: Callable[..., str]) -> str:
    return make_database(*SCHEMA)


@pytest.fixture
def reader(server: Server, radar: str) -> Iterator[str]:
    """A user with the canary password who may read store and empty_table but not product:
    product's SELECT fails for real (permission denied), the others publish."""
    name = f"ro_{uuid.uuid4().hex[:8]}"
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE USER '{name}'@'%%' IDENTIFIED BY %s", (PASSWORD,))
        for table in ("store", "empty_table"):
            cur.execute(f"GRANT SELECT ON `{radar}`.`{table}` TO '{name}'@'%'")
        cur.execute(f"GRANT INSERT ON `{radar}`.`product` TO '{name}'@'%'")
    yield name
    with conn.cursor() as cur:
        cur.execute(f"DROP USER '{name}'@'%'")
    conn.close()


def _env(server: Server, database: str, dest: Path | str, **extra: str) -> dict[str, str]:
    return {
        "RADAR_MYSQL_URL": server.url(database),
        "RADAR_DEST": str(dest),
        "RADAR_WORKERS": "1",
        **extra,
    }


def _failing_env(server: Server, radar: str, user: str, dest: Path, **extra: str) -> dict[str, str]:
    return {
        "RADAR_MYSQL_HOST": server.host,
        "RADAR_MYSQL_PORT": str(server.port),
        "RADAR_MYSQL_USER": user,
        "RADAR_MYSQL_PASSWORD": PASSWORD,
        "RADAR_MYSQL_DATABASE": radar,
        "RADAR_DEST": str(dest),
        "RADAR_WORKERS": "1",
        **extra,
    }


_message = message


def _leaks(*texts: str) -> list[str]:
    forms = {PASSWORD, quote(PASSWORD, safe=""), AWS_SECRET, HOOK_TOKEN}
    return sorted(form for form in forms for text in texts if form in text)


def _only_line(result: Result) -> str:
    """stderr is one line besides INFO progress (e.g. the merge of the date's reports);
    returned without its "HH:MM:SS LEVEL " prefix."""
    lines = [line for line in result.stderr.strip().splitlines() if " INFO " not in line[:15]]
    assert len(lines) == 1, result.output
    return re.sub(r"^\d\d:\d\d:\d\d [A-Z]+ ", "", lines[0])


def _json_lines(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


# -- Slack ----------------------------------------------------------------------------------
def test_success_message_to_s3(
    cli: Callable[..., Result],
    server: Server,
    radar: str,
    s3: S3,
    slack: Webhook,
    tmp_path: Path,
) -> None:
    bucket = s3.new_bucket()
    report_file = tmp_path / "report.json"
    result = cli(
        "extract",
        "--date",
        "2024-03-01",
        "--report",
        str(report_file),
        env=_env(server, radar, f"s3://{bucket}", **s3.env, RADAR_SLACK_WEBHOOK_URL=slack.url),
    )
    assert result.code == 0, result.output
    report = json.loads(report_file.read_text())
    assert len(slack.payloads) == 1
    message = _message(slack.payloads[0])
    assert slack.payloads[0]["text"].startswith(
        ":white_check_mark: radar-extract 2024-03-01: 3/3 tables published, 5 rows, "
    )
    for expected in (
        "*Date*\ncog_dt_ingestion=2024-03-01",
        "*Tables*\n3/3 tables published",
        "*Rows*\n5",
        f"*Destination*\ns3://{bucket}/{PREFIX}/",
        f"Run {report['run_id']}",
        f"*Duration*\n{report['seconds']:.1f} s",
    ):
        assert expected in message
    assert "Slack notification sent (success)" in result.stderr
    assert _leaks(result.output, json.dumps(slack.payloads)) == []


def test_failure_message_names_the_cause_and_no_secret(
    cli: Callable[..., Result],
    server: Server,
    radar: str,
    reader: str,
    s3: S3,
    slack: Webhook,
    tmp_path: Path,
) -> None:
    report_file = tmp_path / "report.json"
    env = _failing_env(
        server,
        radar,
        reader,
        tmp_path / "out",
        **{**s3.env, "AWS_SECRET_ACCESS_KEY": AWS_SECRET},
        RADAR_SLACK_WEBHOOK_URL=slack.url,
    )
    result = cli("extract", "--date", "2024-03-01", "--report", str(report_file), "-v", env=env)
    assert result.code == 1, result.output
    report = json.loads(report_file.read_text())
    product = next(t for t in report["tables"] if t["table"] == "product")
    assert product["status"] == "failed" and "denied" in product["error"]
    (payload,) = slack.payloads
    message = _message(payload)
    assert payload["text"].startswith(
        ":x: radar-extract 2024-03-01 FAILED: 1 failed; 2/3 tables published, 3 rows,"
    )
    cause = (
        f"• product: failed at read ({product['retry_note']}): {product['error']}".replace(
            "&", "&amp;"
        )
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )
    assert cause in message
    assert f"Run {report['run_id']}" in message
    report_path = f"{tmp_path}/out/_radar_extract/runs/{report['run_id']}.json"
    assert f"Run report: {report_path}" in message
    assert _leaks(result.output, json.dumps(payload), report_file.read_text()) == []
    # The password inside the URL this time; with RADAR_LOGS_URL the message points there.
    logs = "https://eu-west-1.console.aws.amazon.com/cloudwatch/home#logsV2:radar"
    url = f"mysql+pymysql://{reader}:{quote(PASSWORD, safe='')}@{server.host}:{server.port}/{radar}"
    in_url = {k: v for k, v in env.items() if not k.startswith("RADAR_MYSQL_")}
    again = cli(
        "extract",
        "--date",
        "2024-03-01",
        "-v",
        env={**in_url, "RADAR_MYSQL_URL": url, "RADAR_LOGS_URL": logs},
    )
    assert again.code == 1, again.output
    assert f"Logs: {logs}" in _message(slack.payloads[1])
    assert "product: failed at read" in _message(slack.payloads[1])
    assert _leaks(again.output, json.dumps(slack.payloads)) == []


@pytest.mark.parametrize("outage", ["closed-port", "http-500"])
def test_slack_down_is_a_warning_and_the_run_still_succeeds(
    cli: Callable[..., Result],
    server: Server,
    radar: str,
    slack: Webhook,
    tmp_path: Path,
    outage: str,
) -> None:
    if outage == "closed-port":
        hook = f"http://127.0.0.1:1/services/T0/B0/{HOOK_TOKEN}"
        reason = "ConnectionRefusedError"
    else:
        hook = slack.url
        slack.statuses = [500, 500]
        reason = "HTTP 500: internal_error"
    result = cli(
        "extract",
        "--date",
        "2024-03-01",
        env=_env(server, radar, tmp_path, RADAR_SLACK_WEBHOOK_URL=hook),
    )
    assert result.code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "Slack" in line]
    assert (
        len(warnings) == 1
        and f" WARNING Slack notification not sent after 2 attempt(s): {reason}" in warnings[0]
    ), result.stderr
    assert "Traceback" not in result.output and _leaks(result.output) == []
    if outage == "http-500":
        assert len(slack.payloads) == 2  # one retry, no more


def test_a_run_stopped_before_its_report_is_still_announced(
    cli: Callable[..., Result],
    server: Server,
    radar: str,
    slack: Webhook,
    tmp_path: Path,
) -> None:
    unreachable = f"mysql+pymysql://someone:{quote(PASSWORD, safe='')}@127.0.0.1:1/{radar}"
    env = {
        "RADAR_MYSQL_URL": unreachable,
        "RADAR_DEST": str(tmp_path),
        "RADAR_SLACK_WEBHOOK_URL": slack.url,
        "RADAR_GLUE_CRAWLER": "bronze",
    }
    result = cli("extract", "--date", "2024-03-01", env=env)
    assert result.code == 3, result.output
    (payload,) = slack.payloads
    message = _message(payload)
    assert payload["text"].startswith(":x: radar-extract 2024-03-01 FAILED: ")
    assert "*:x: radar-extract 2024-03-01: FAILED* (stopped before extracting, exit 3)" in message
    assert "127.0.0.1:1" in message  # the cause, as the error line gives it
    assert "Glue crawler bronze not started: the run stopped" in message
    assert "No run report was written: see the job's logs" in message
    assert _leaks(result.output, json.dumps(payload)) == []
    # A usage error (nothing touched, a person at the keyboard) is not announced.
    typo = cli(
        "extract",
        "--table",
        "nope",
        env=_env(server, radar, tmp_path, RADAR_SLACK_WEBHOOK_URL=slack.url),
    )
    assert typo.code == 2 and len(slack.payloads) == 1


def test_a_run_that_fails_after_publishing_says_so_with_its_tables_and_its_date(
    cli: Callable[..., Result],
    server: Server,
    radar: str,
    slack: Webhook,
    tmp_path: Path,
) -> None:
    # A file where the run reports' folder must be: every table publishes, the report's
    # write fails (root ignores permissions, not a file in the way).
    out = tmp_path / "out"
    (out / "_radar_extract").mkdir(parents=True)
    (out / "_radar_extract" / "runs").write_text("in the way")
    report_file = tmp_path / "report.json"
    result = cli(
        "extract",
        "--date",
        "2024-03-01",
        "--report",
        str(report_file),
        env=_env(
            server, radar, out, RADAR_SLACK_WEBHOOK_URL=slack.url, RADAR_GLUE_CRAWLER="bronze"
        ),
    )
    assert result.code == 1, result.output  # not 3: the tables are published
    for table in ROWS:
        assert (out / PREFIX / table / "cog_dt_ingestion=2024-03-01").is_dir()
    assert "  published before it (3): empty_table, product, store" in result.stderr
    assert re.search(
        r" ERROR run \S+: run report not written: destination .*/runs/\S+\.json "
        r"is not writable: .*, after publishing 3 tables \(empty_table, product, "
        r"store\)",
        result.stderr,
    ), result.stderr
    assert json.loads(report_file.read_text())["status"] == "success"  # --report still written
    (payload,) = slack.payloads
    message = _message(payload)
    assert payload["text"].startswith(
        ":x: radar-extract 2024-03-01 FAILED: run report not written; 3/3 tables published, 5 rows,"
    )
    assert "*Published* (3): empty_table, product, store" in message
    assert "stopped before extracting" not in message
    assert "Run report: not written, see the job's logs" in message
    assert (
        "Glue crawler bronze not started: the run failed at its end (run report not "
        "written)" in message
    )


def test_notify_command_reads_the_stored_report_and_validation(
    cli: Callable[..., Result],
    server: Server,
    radar: str,
    slack: Webhook,
    tmp_path: Path,
) -> None:
    env = _env(server, radar, tmp_path)
    assert cli("extract", "--date", "2024-03-01", env=env).code == 0
    assert slack.payloads == []  # no webhook configured for the run
    quiet = cli("notify", "--date", "2024-03-01", env=env)
    assert quiet.code == 0 and quiet.stdout == (
        "no Slack webhook configured (RADAR_SLACK_WEBHOOK_URL): nothing sent\n"
    )
    validation = tmp_path / "_radar_extract" / "validation" / "2024-03-01.json"
    validation.parent.mkdir(parents=True)
    stored = Validation(
        "2024-03-01",
        radar,
        str(tmp_path),
        "schemas",
        against_source=False,
        strict=False,
        checked_at="2024-03-01T03:00:00+00:00",
        problems=["store: row count 3 != 4"],
    )
    validation.write_text(stored.to_json())
    hooked = {**env, "RADAR_SLACK_WEBHOOK_URL": slack.url}
    sent = cli("notify", "--date", "2024-03-01", env=hooked)
    assert sent.code == 0 and sent.stdout == "Slack message of 2024-03-01 sent\n", sent.output
    message = _message(slack.payloads[0])
    assert "3/3 tables published" in message
    assert "*Validation*: :x: NOT valid\n• store: row count 3 != 4" in message
    missing = cli("notify", "--date", "2024-02-29", env=hooked)
    assert missing.code == 1
    assert _only_line(missing) == (
        f"radar-extract: error: no run report for 2024-02-29 under {tmp_path}/_radar_extract/runs: "
        "nothing to notify"
    )


def test_every_command_on_the_destination_reads_the_one_dest_flag(
    cli: Callable[..., Result],
    server: Server,
    radar: str,
    slack: Webhook,
    tmp_path: Path,
) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    env = _env(server, radar, elsewhere, RADAR_SLACK_WEBHOOK_URL=slack.url)
    dest = ("--dest", str(out))
    assert cli("plan", "--shards", "1", "--date", "2024-03-01", "--save", *dest, env=env).code == 0
    assert cli("extract", "--date", "2024-03-01", *dest, env=env).code == 0
    merged = cli("report", "merge", "--date", "2024-03-01", *dest, env=env)
    assert merged.code == 0 and "3/3 tables published" in merged.stdout, merged.output
    assert cli("validate", "--date", "2024-03-01", *dest, env=env).code == 0
    sent = cli("notify", "--date", "2024-03-01", *dest, env=env)
    assert sent.stdout == "Slack message of 2024-03-01 sent\n", sent.output
    assert {"plans", "runs", "reports", "validation"} <= {
        p.name for p in (out / "_radar_extract").iterdir()
    }
    assert not elsewhere.exists()


# -- Glue -----------------------------------------------------------------------------------
def _glue(s3: S3) -> Any:
    import boto3

    return boto3.client(
        "glue",
        endpoint_url=s3.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def crawler(s3: S3) -> str:
    name = f"radar-bronze-{uuid.uuid4().hex[:8]}"
    _glue(s3).create_crawler(
        Name=name,
        Role="arn:aws:iam::123456789012:role/glue-radar",
        DatabaseName="bronze_radar",
        Targets={"S3Targets": [{"Path": f"s3://bronze/{PREFIX}/"}]},
    )
    return name


def _glue_env(s3: S3) -> dict[str, str]:
    return {**s3.env, "AWS_ENDPOINT_URL": s3.endpoint}


def test_crawler_starts_after_a_full_success_and_a_running_one_is_a_warning(
    cli: Callable[..., Result],
    server: Server,
    radar: str,
    s3: S3,
    crawler: str,
    slack: Webhook,
    tmp_path: Path,
) -> None:
    glue = _glue(s3)
    assert glue.get_crawler(Name=crawler)["Crawler"]["State"] == "READY"
    env = _env(server, radar, tmp_path, **_glue_env(s3), RADAR_SLACK_WEBHOOK_URL=slack.url)
    result = cli("extract", "--date", "2024-03-01", "--glue-crawler", crawler, env=env)
    assert result.code == 0, result.output
    state = glue.get_crawler(Name=crawler)["Crawler"]
    assert state["State"] == "RUNNING" and state["LastCrawl"]["Status"] == "RUNNING"
    assert f"started glue crawler '{crawler}'" in result.stderr
    assert f"Glue crawler {crawler}: started" in _message(slack.payloads[0])
    again = cli("extract", "--date", "2024-03-01", env={**env, "RADAR_GLUE_CRAWLER": crawler})
    assert again.code == 0, again.output
    assert f"WARNING glue crawler '{crawler}' is already running" in again.stderr
    assert f"Glue crawler {crawler}: already running" in _message(slack.payloads[1])


def test_failed_run_never_starts_the_crawler(
    cli: Callable[..., Result],
    server: Server,
    radar: str,
    reader: str,
    s3: S3,
    crawler: str,
    tmp_path: Path,
) -> None:
    env = _failing_env(server, radar, reader, tmp_path, **_glue_env(s3))
    result = cli("extract", "--date", "2024-03-01", "--glue-crawler", crawler, env=env)
    assert result.code == 1, result.output
    assert (
        f"WARNING glue crawler '{crawler}' not started: did not publish every table "
        "(1 failed, 0 not run, 2/3 published)"
    ) in result.stderr
    state = _glue(s3).get_crawler(Name=crawler)["Crawler"]
    assert state["State"] == "READY" and "LastCrawl" not in state
    # The crawl command refuses the failed date too, in one line.
    refused = cli("crawl", "--date", "2024-03-01", "--glue-crawler", crawler, env=env)
    assert refused.code == 1
    assert _only_line(refused) == (
        f"radar-extract: error: glue crawler '{crawler}' not started: the run of 2024-03-01 "
        "did not publish every table (1 failed, 0 not run, 2/3 published)"
    )
    assert "LastCrawl" not in _glue(s3).get_crawler(Name=crawler)["Crawler"]


def test_crawl_command_after_a_success(
    cli: Callable[..., Result],
    server: Server,
    radar: str,
    s3: S3,
    crawler: str,
    tmp_path: Path,
) -> None:
    env = _env(server, radar, tmp_path, **_glue_env(s3))
    assert cli("extract", "--date", "2024-03-01", env=env).code == 0
    assert "LastCrawl" not in _glue(s3).get_crawler(Name=crawler)["Crawler"]  # not configured
    result = cli("crawl", "--date", "2024-03-01", env={**env, "RADAR_GLUE_CRAWLER": crawler})
    assert result.code == 0, result.output
    assert result.stdout == f"glue crawler '{crawler}': started\n"
    assert _glue(s3).get_crawler(Name=crawler)["Crawler"]["State"] == "RUNNING"
    nameless = cli("crawl", "--date", "2024-03-01", env=env)
    assert nameless.code == 2 and _only_line(nameless) == (
        "radar-extract: error: no crawler: give --glue-crawler NAME or set RADAR_GLUE_CRAWLER"
    )


def test_missing_crawler_and_unreachable_glue_are_one_line_each(
    cli: Callable[..., Result],
    server: Server,
    radar: str,
    s3: S3,
    tmp_path: Path,
) -> None:
    env = _env(server, radar, tmp_path, **_glue_env(s3))
    missing = cli("extract", "--date", "2024-03-01", "--glue-crawler", "no-such-crawler", env=env)
    assert missing.code == 1, missing.output
    errors = [line for line in missing.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and errors[0].endswith(
        "ERROR radar-extract: error: glue crawler 'no-such-crawler' does not exist "
        "(EntityNotFoundException)"
    ), missing.stderr
    assert "Traceback" not in missing.output
    assert (tmp_path / PREFIX / "store" / "cog_dt_ingestion=2024-03-01").is_dir()  # published
    closed = cli(
        "crawl",
        "--date",
        "2024-03-01",
        "--glue-crawler",
        "x",
        env={**env, "AWS_ENDPOINT_URL_GLUE": "http://127.0.0.1:1"},
    )
    assert closed.code == 3, closed.output
    assert _only_line(closed) == (
        "radar-extract: error: glue is unreachable, crawler 'x' was not started: Could not "
        'connect to the endpoint URL: "http://127.0.0.1:1/"'
    )


# -- Metrics --------------------------------------------------------------------------------
def test_metrics_in_the_report_and_the_json_log_lines(
    cli: Callable[..., Result],
    server: Server,
    radar: str,
    tmp_path: Path,
) -> None:
    report_file = tmp_path / "report.json"
    result = cli(
        "extract",
        "--date",
        "2024-03-01",
        "--log-json",
        "--report",
        str(report_file),
        env=_env(server, radar, tmp_path / "out"),
    )
    assert result.code == 0, result.output
    report = json.loads(report_file.read_text())
    files = {
        table: sorted((tmp_path / "out" / PREFIX / table).rglob("*.parquet")) for table in ROWS
    }
    on_disk = sum(f.stat().st_size for paths in files.values() for f in paths)
    assert report["metrics"] == {
        "duration_s": report["seconds"],
        "rows_per_table": ROWS,
        "bytes_transferred": on_disk,
        "error_rate": 0.0,
    }
    lines = _json_lines(result.stderr)
    tables = {line["table"]: line for line in lines if line.get("event") == "table"}
    assert set(tables) == set(ROWS)
    for table, line in tables.items():
        assert line["status"] == "published" and line["rows"] == ROWS[table]
        assert line["bytes"] == sum(f.stat().st_size for f in files[table])
        assert isinstance(line["seconds"], float) and line["seconds"] >= 0
    (run,) = [line for line in lines if line.get("event") == "run"]
    assert {
        k: run[k]
        for k in ("seconds", "rows", "bytes", "tables", "failed", "error_rate", "status", "run_id")
    } == {
        "seconds": report["seconds"],
        "rows": 5,
        "bytes": on_disk,
        "tables": 3,
        "failed": 0,
        "error_rate": 0.0,
        "status": "success",
        "run_id": report["run_id"],
    }


def test_error_rate_of_a_failed_run(
    cli: Callable[..., Result],
    server: Server,
    radar: str,
    reader: str,
    tmp_path: Path,
) -> None:
    report_file = tmp_path / "report.json"
    result = cli(
        "extract",
        "--date",
        "2024-03-01",
        "--log-json",
        "--report",
        str(report_file),
        env=_failing_env(server, radar, reader, tmp_path / "out"),
    )
    assert result.code == 1, result.output
    report = json.loads(report_file.read_text())
    assert report["metrics"]["error_rate"] == 0.3333  # 1 failed of 3 that ran
    assert report["metrics"]["rows_per_table"] == {"empty_table": 0, "store": 3}
    lines = _json_lines(result.stderr)
    (run,) = [line for line in lines if line.get("event") == "run"]
    assert (run["failed"], run["error_rate"], run["status"]) == (1, 0.3333, "failed")
    (failed,) = [
        line for line in lines if line.get("event") == "table" and line["status"] == "failed"
    ]
    assert (failed["table"], failed["rows"], failed["bytes"]) == ("product", 0, 0)


def test_drift_warning_reaches_the_message(
    cli: Callable[..., Result],
    server: Server,
    radar: str,
    slack: Webhook,
    tmp_path: Path,
) -> None:
    """The drift policy's `warn`: the run publishes, and Slack carries the warning."""
    env = _env(
        server,
        radar,
        tmp_path / "out",
        RADAR_SCHEMAS_DIR=str(tmp_path / "schemas"),
        RADAR_SLACK_WEBHOOK_URL=slack.url,
    )
    assert cli("schemas", "snapshot", env=env).code == 0
    conn = server.connect(radar)
    with conn.cursor() as cur:
        cur.execute("ALTER TABLE store ADD COLUMN city VARCHAR(9) NULL")
    conn.close()
    result = cli("extract", "--date", "2024-03-01", env=env)
    assert result.code == 0, result.output
    message = _message(slack.payloads[0])
    assert slack.payloads[0]["text"].startswith(":white_check_mark:")
    assert "*Schema drift*\n• warning: store: column_added city: (none) → varchar(9)" in message
