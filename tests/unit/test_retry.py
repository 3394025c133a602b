"""Retry policy, backoff schedule, circuit breaker and the new settings, without services."""

from __future__ import annotations

import json
import random
import time

import pytest

from extractor.config import MySQLSettings, load_settings
from extractor.errors import ConfigError, Step, TableTimeout
from extractor.run.breaker import CircuitBreaker
from extractor.run.report import RunReport, TableResult
from extractor.run.retry import backoff_delay, is_retryable
from extractor.run.summary import error_line, summary_lines
from extractor.run.watchdog import TableDeadline
from extractor.source.connection import classify


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    rng = random.Random(20240501)
    delays = [backoff_delay(n, 2.0, 60.0, rng) for n in range(1, 9)]
    # Pinned: a seeded schedule is reproducible (uniform over [0, min(60, 2 * 2**(n-1))]).
    assert [round(d, 6) for d in delays] == [
        1.793399,
        1.221125,
        2.847115,
        1.90362,
        19.99908,
        43.315748,
        56.373138,
        35.088983,
    ]
    expected_rng = random.Random(20240501)
    ceilings = [2, 4, 8, 16, 32, 60, 60, 60]
    assert delays == [expected_rng.uniform(0, c) for c in ceilings]


def test_backoff_spreads_over_the_whole_interval_and_respects_the_cap() -> None:
    rng = random.Random(7)
    first = [backoff_delay(1, 2.0, 60.0, rng) for _ in range(2000)]
    assert 0 <= min(first) < 0.1 and 1.9 < max(first) <= 2.0  # full jitter, not +-10%
    assert 0.9 < sum(first) / len(first) < 1.1  # mean = ceiling / 2
    late = [backoff_delay(50, 2.0, 60.0, rng) for _ in range(200)]
    assert max(late) <= 60.0
    assert max(backoff_delay(10**6, 0.01, 0.05, rng) for _ in range(100)) <= 0.05  # no overflow


def _failed(
    error: str, *, transient: bool = False, step: Step = Step.READ, kind: str = "SourceError"
) -> TableResult:
    return TableResult(
        table="t",
        status="failed",
        error=error,
        error_step=step,
        error_type=kind,
        transient=transient,
    )


CX_KILLED = (
    "MySQL 127.0.0.1:3306: cx writer failed: Source(MySQLError(MySqlError {"
    " ERROR 1317 (70100): Query execution was interrupted }))"
)
STATEMENT_TIME = "MySQL db:3306: 1969 Query execution was interrupted (max_statement_time exceeded)"


def test_the_driver_boundary_decides_what_is_transient() -> None:
    mysql = MySQLSettings()
    # KILL QUERY from another session, as connectorx and pymysql report it: transient.
    assert classify(RuntimeError(CX_KILLED), mysql, table="t", step=Step.READ).transient
    assert classify(
        RuntimeError(1317, "Query execution was interrupted"), mysql, table="t", step=Step.READ
    ).transient
    # KILL CONNECTION, as connectorx reports the cut connection: in the middle of a packet,
    # or between two (seen once in 40 kills on MariaDB).
    for cut in (
        "mysql: Error { DriverError { Could not read: CodecError { IO error: `bytes "
        "remaining on stream' } } }",
        "mysql: DriverError { Error { server disconnected } }",
    ):
        assert classify(RuntimeError(cut), mysql, table="t", step=Step.READ).transient
    # A statement time limit or a denied SELECT: permanent.
    assert not classify(RuntimeError(STATEMENT_TIME), mysql, table="t", step=Step.READ).transient
    assert not classify(
        RuntimeError(1142, "SELECT command denied"), mysql, table="t", step=Step.READ
    ).transient


def test_what_is_retried() -> None:
    assert is_retryable(_failed("MySQL h:3306: 2013 Lost connection", transient=True))
    assert is_retryable(
        _failed(
            "destination s3://b/k failed at upload: SlowDown",
            transient=True,
            step=Step.UPLOAD,
            kind="DestinationError",
        )
    )
    # Permanent: access denied, an unsupported column, a timeout.
    assert not is_retryable(_failed("MySQL h:3306: 1142 SELECT command denied"))
    assert not is_retryable(
        _failed("column 'g' has type 'x'", step=Step.PLAN, kind="UnsupportedColumn")
    )
    assert not is_retryable(
        _failed("timed out", transient=True, step=Step.TIMEOUT, kind="TableTimeout")
    )
    assert not is_retryable(TableResult(table="t", status="published"))


def test_breaker_opens_on_consecutive_failures_of_one_kind() -> None:
    breaker = CircuitBreaker(3)
    lost = _failed("lost", transient=True)
    for result in (lost, lost, TableResult(table="ok", status="published"), lost, lost):
        breaker.record(result)
    assert not breaker.open  # a success in between restarts the count
    breaker.record(_failed("throttled", transient=True, step=Step.UPLOAD, kind="DestinationError"))
    breaker.record(lost)
    breaker.record(lost)
    assert not breaker.open  # another kind restarts it too
    breaker.record(_failed("denied"))  # permanent: not counted, restarts
    breaker.record(_failed("timed out", step=Step.TIMEOUT, kind="TableTimeout"))
    for _ in range(2):
        breaker.record(lost)
    assert not breaker.open
    breaker.record(lost)
    assert breaker.open and breaker.reason is not None
    assert "3 consecutive tables failed with transient SourceError at read" in breaker.reason
    not_run = breaker.not_run("later")
    assert not_run.status == "not_run" and not_run.error == breaker.reason
    assert not_run.attempts == 0


def test_not_run_is_never_a_success_and_the_error_line_says_if_retried() -> None:
    report = RunReport(
        run_id="r",
        date="2024-05-01",
        database="d",
        destination="x",
        started_at="s",
        breaker="circuit breaker opened after 3 ...",
    )
    report.tables = [
        TableResult(table="a", status="published", attempts=2),
        TableResult(table="b", status="not_run"),
    ]
    assert not report.ok and report.to_dict()["status"] == "failed"
    assert report.totals().not_run == 1
    assert any(
        line.startswith("  not run, circuit breaker opened") and line.endswith(": b")
        for line in summary_lines(report)
    )
    failed = _failed("lost", transient=True)
    failed.attempts, failed.retry_note = 3, "retried: all 3 attempts failed"
    assert error_line(failed) == "t: failed at read (retried: all 3 attempts failed): lost"


def test_reliability_settings_defaults_and_validation() -> None:
    s = load_settings(env={})
    assert (
        s.retry_attempts,
        s.retry_base_s,
        s.retry_cap_s,
        s.table_timeout_s,
        s.breaker_failures,
    ) == (3, 2.0, 60.0, 3600.0, 3)
    tiny = load_settings(
        env={
            "RADAR_RETRY_BASE_S": "0.01",
            "RADAR_RETRY_CAP_S": "0.05",
            "RADAR_TABLE_TIMEOUT_S": "0.3",
            "RADAR_RETRY_ATTEMPTS": "1",
            "RADAR_BREAKER_FAILURES": "5",
        }
    )
    assert (tiny.retry_base_s, tiny.retry_cap_s, tiny.table_timeout_s) == (0.01, 0.05, 0.3)
    assert (tiny.retry_attempts, tiny.breaker_failures) == (1, 5)
    with pytest.raises(ConfigError) as info:
        load_settings(
            env={
                "RADAR_RETRY_ATTEMPTS": "0",
                "RADAR_RETRY_BASE_S": "soon",
                "RADAR_TABLE_TIMEOUT_S": "nan",
                "RADAR_BREAKER_FAILURES": "-1",
                "RADAR_WORKERS": "0",
            }
        )
    problems = info.value.problems
    assert len(problems) == 5, problems  # every problem at once, with the others
    assert any("retry_base_s must be a number of seconds" in p for p in problems)
    with pytest.raises(ConfigError, match=r"retry_cap_s \(5\) must not be below retry_base_s"):
        load_settings(env={"RADAR_RETRY_BASE_S": "10", "RADAR_RETRY_CAP_S": "5"})


def test_deadline_expires_checks_and_cuts_a_wait_short() -> None:
    unreachable = MySQLSettings(host="127.0.0.1", port=1)  # the watchdog's KILL cannot connect
    with TableDeadline(unreachable, "t", 0.2) as deadline:
        assert deadline.wait(0.05, lambda: False)  # a full backoff wait
        deadline.check()
        started = time.monotonic()
        assert not deadline.wait(5, lambda: False)  # cut short by the expiry
        assert time.monotonic() - started < 1 and deadline.expired
        with pytest.raises(TableTimeout, match=r"still running after 0\.2 s"):
            deadline.check()
    with TableDeadline(unreachable, "t", 60) as deadline:
        assert not deadline.wait(5, lambda: True)  # stopped (the breaker opened)
    tag = TableDeadline(unreachable, "a b", 1).attempt_tag("run1", 2)
    assert tag.startswith("radar-extract run=run1 table=a b attempt=2 q=")


def test_s3_requests_are_retried_once_by_botocore_not_five_times() -> None:
    from extractor.sink.destination import Destination

    settings = load_settings(
        env={"RADAR_DEST": "s3://radar-unit-bucket", "RADAR_S3_ENDPOINT_URL": "http://127.0.0.1:1"}
    )
    fs = Destination(settings).fs  # no request is made until the first operation
    assert fs.config_kwargs["retries"] == {"total_max_attempts": 2, "mode": "standard"}


def test_the_report_keeps_the_steps_strings() -> None:
    report = RunReport(
        "r", "2024-05-01", "db", "/out", "now", tables=[_failed("timed out", step=Step.TIMEOUT)]
    )
    data = json.loads(report.to_json())
    assert data["tables"][0]["error_step"] == "timeout"
    again = RunReport.from_dict(data).tables[0]
    assert again.error_step is Step.TIMEOUT and not is_retryable(again)
