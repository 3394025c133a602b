"""The Slack payload, the metrics block and the ops settings, with no service at all."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from extractor.config import Secret, Settings, load_settings
from extractor.errors import EXIT_FAILED, ConfigError, DestinationUnavailable, Step
from extractor.ops.notify import build_payload, post
from extractor.ops.validation import TableCheck, Validation
from extractor.run.outcome import LateFailure, RunOutcome
from extractor.run.report import RunReport, TableResult
from extractor.run.summary import outcome_lines

HOOK = "https://hooks.slack.com/services/T000/B000/CanaryHookToken42"
PASSWORD = "Canary&pw<7f>"  # Slack's escaped characters: a masked secret must stay masked


def _report(*tables: TableResult, seconds: float = 754.2) -> RunReport:
    return RunReport(
        run_id="2024-03-01_20240302T020000Z_abcd1234",
        date="2024-03-01",
        database="radar",
        destination="s3://bronze",
        started_at="x",
        seconds=seconds,
        tables=list(tables),
    )


def _settings(**env: str) -> Settings:
    return load_settings(
        env={"RADAR_SLACK_WEBHOOK_URL": HOOK, "RADAR_MYSQL_PASSWORD": PASSWORD, **env}
    )


def _failed(name: str, cause: str = "SELECT command denied") -> TableResult:
    return TableResult(
        table=name,
        status="failed",
        error=cause,
        error_step=Step.READ,
        retry_note="not retried: the error is not transient",
        attempts=1,
    )


def _validation(*tables: TableCheck) -> Validation:
    return Validation(
        "2024-03-01",
        "radar",
        "s3://bronze",
        "schemas",
        against_source=False,
        strict=False,
        checked_at="2024-03-01T03:00:00+00:00",
        tables=list(tables),
    )


def _all_text(payload: dict[str, object]) -> str:
    return json.dumps(payload, ensure_ascii=False)


def test_success_message_has_date_duration_tables_rows_bytes_and_path() -> None:
    report = _report(
        TableResult("store", "published", rows=1200, bytes=3 * 1024 * 1024),
        TableResult("product", "published", rows=34),
        TableResult("old", "skipped"),
    )
    payload = build_payload(report, _settings())
    assert payload["text"] == (
        ":white_check_mark: radar-extract 2024-03-01: 2/3 tables "
        "published (1 skipped), 1,234 rows, 3.0 MB in 12 min 34 s"
    )
    fields = [f["text"] for f in payload["blocks"][1]["fields"]]
    assert fields == [
        "*Date*\ncog_dt_ingestion=2024-03-01",
        "*Duration*\n12 min 34 s",
        "*Tables*\n2/3 tables published (1 skipped)",
        "*Rows*\n1,234",
        "*Bytes*\n3.0 MB",
        "*Destination*\ns3://bronze/origin=airbyte/database=bronze_radar/",
    ]
    assert "2024-03-01_20240302T020000Z_abcd1234" in _all_text(payload)
    assert "Run report" not in _all_text(payload)  # where the logs are: failures only


def test_failure_lists_causes_not_run_run_id_and_where_the_logs_are() -> None:
    report = _report(
        TableResult("store", "published", rows=5),
        _failed("product"),
        TableResult("sales", "not_run"),
    )
    report.breaker = "3 consecutive transient failures"
    payload = build_payload(report, _settings())
    text = _all_text(payload)
    assert payload["text"].startswith(":x: radar-extract 2024-03-01 FAILED: 1 failed, 1 not run;")
    assert (
        "• product: failed at read (not retried: the error is not transient): SELECT command denied"
    ) in text
    assert "*Not run* (3 consecutive transient failures): sales" in text
    assert (
        "Run report: s3://bronze/_radar_extract/runs/2024-03-01_20240302T020000Z_abcd1234.json"
    ) in text
    with_logs = build_payload(report, _settings(RADAR_LOGS_URL="https://logs.example/radar"))
    assert "Logs: https://logs.example/radar" in _all_text(with_logs)


def test_many_failures_are_bounded_with_and_n_more() -> None:
    report = _report(*[_failed(f"t{i:02d}", "x" * 1000) for i in range(40)])
    payload = build_payload(report, _settings())
    failures = payload["blocks"][1]["text"]["text"]
    assert failures.startswith("*Failed tables*\n• t00: failed at read")
    assert failures.endswith("… and 31 more (see the run report)")  # 9 lines of 300 fit
    assert len(failures) <= 3000
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in payload["blocks"])
    assert len(json.dumps(payload)) < 8000


def test_no_secret_in_the_payload_even_when_an_error_quotes_it() -> None:
    cause = f"Access denied (using password: {PASSWORD}) posting to {HOOK}"
    payload = build_payload(_report(_failed("t", cause)), _settings())
    text = _all_text(payload)
    assert PASSWORD not in text and "CanaryHookToken42" not in text
    assert "Canary&amp;pw&lt;7f&gt;" not in text  # nor its escaped form
    assert "(using password: ***) posting to ***" in text


def test_validation_verdict_is_included() -> None:
    report = _report(TableResult("store", "published", rows=1))
    bad = _validation(TableCheck("store"))
    bad.tables[0].fail("row count 1 != 2")
    blocks = build_payload(report, _settings(), validation=bad)["blocks"]
    assert blocks[2]["text"]["text"] == "*Validation*: :x: NOT valid\n• store: row count 1 != 2"
    good = build_payload(report, _settings(), validation=_validation(TableCheck("store")))
    assert "*Validation*: :white_check_mark: valid" in _all_text(good)


def test_metrics_block() -> None:
    report = _report(
        TableResult("b", "published", rows=7, bytes=100),
        TableResult("a", "published", rows=0, bytes=50),
        _failed("c"),
        TableResult("d", "not_run"),
        TableResult("e", "skipped"),
        seconds=9.5,
    )
    assert report.to_dict()["metrics"] == {
        "duration_s": 9.5,
        "rows_per_table": {"a": 0, "b": 7},
        "bytes_transferred": 150,
        "error_rate": 0.3333,
    }
    assert _report(TableResult("e", "skipped")).to_dict()["metrics"]["error_rate"] == 0.0


def test_post_to_nowhere_returns_false_without_raising(caplog: pytest.LogCaptureFixture) -> None:
    url = "http://127.0.0.1:1/services/CanaryHookToken42"
    assert post(url, {"text": "x"}, timeout=1, attempts=1) is False
    assert "Slack notification not sent after 1 attempt(s): ConnectionRefusedError" in caplog.text
    assert "CanaryHookToken42" not in caplog.text


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.slack.com/services/x",
        "ftp://127.0.0.1/x",
        "https://",
        "hooks.slack.com/services/CanaryHookToken42",
    ],
)
def test_webhook_must_be_https_and_is_never_quoted(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={"RADAR_SLACK_WEBHOOK_URL": url})
    assert info.value.problems == [
        "slack_webhook_url must be an https:// URL (http:// only to 127.0.0.1 or localhost)"
    ]


def test_ops_settings(tmp_path: Path) -> None:
    s = load_settings(
        env={
            "RADAR_SLACK_WEBHOOK_URL": "http://127.0.0.1:8080/hook",
            "RADAR_GLUE_CRAWLER": "bronze radar-crawler",
            "RADAR_LOGS_URL": "https://console.aws.amazon.com/cloudwatch/x",
        }
    )
    assert s.slack_webhook_url == Secret("http://127.0.0.1:8080/hook")
    assert "8080/hook" not in repr(s)
    assert s.glue_crawler == "bronze radar-crawler"
    assert load_settings(env={}).slack_webhook_url.reveal() == ""
    toml = tmp_path / "radar.toml"
    toml.write_text(f'slack_webhook_url = "{HOOK}"\nglue_crawler = "bronze"\n')
    from_file = load_settings(toml, env={})
    assert from_file.slack_webhook_url.reveal() == HOOK and from_file.glue_crawler == "bronze"
    with pytest.raises(ConfigError) as info:
        load_settings(env={"RADAR_GLUE_CRAWLER": " crawler\n", "RADAR_LOGS_URL": "logs"})
    assert info.value.problems == [
        "glue_crawler ' crawler\\n' must be 1-255 characters without control characters",
        "logs_url 'logs' must be an http:// or https:// URL",
    ]


def test_a_run_that_failed_after_publishing_names_its_tables_and_what_failed() -> None:
    report = _report(
        TableResult("store", "published", rows=3), TableResult("product", "published", rows=2)
    )
    error = DestinationUnavailable(
        "destination /out/_radar_extract/runs/r.json is not writable: NotADirectoryError",
        step=Step.WRITE,
    )
    late = LateFailure("run report not written", error, report_written=False)
    outcome = RunOutcome(date(2024, 3, 1), report, late=late)
    assert (outcome.ok, outcome.exit_code, outcome.published) == (
        False,
        EXIT_FAILED,
        ["product", "store"],
    )
    assert outcome_lines(outcome)[-2:] == [
        f"  FAILED at the end of the run: run report not written: {error}",
        "  published before it (2): product, store",
    ]
    payload = build_payload(report, _settings(), late=late)
    assert payload["text"].startswith(
        ":x: radar-extract 2024-03-01 FAILED: run report not written; 2/2 tables published,"
    )
    text = _all_text(payload)
    assert "*Published* (2): product, store" in text
    assert (
        "run report not written: destination /out/_radar_extract/runs/r.json is not "
        "writable" in text
    )
    assert "Run report: not written, see the job's logs" in text
