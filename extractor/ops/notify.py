"""The Slack message of a run: built from the run report, posted with the standard library.

Posting never raises: Slack being down must not fail a run whose data is published, so
a failure is one warning (never the webhook URL, which is a credential). Every string of
the payload goes through the log masking and the settings' secrets are taken out as
well, so neither the MySQL password nor the webhook can reach the channel.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from extractor.config import Settings
from extractor.errors import ExtractError
from extractor.masking import mask, register_secret
from extractor.ops.merge import MergedReport
from extractor.ops.validation import Validation
from extractor.run.outcome import LateFailure
from extractor.run.report import RunReport
from extractor.run.summary import drift_sentences, error_line, human_bytes
from extractor.sink.keys import Keys

logger = logging.getLogger(__name__)

MAX_FAILURES = 10  # failure lines listed; the rest become "and N more"
MAX_NOT_RUN = 20
MAX_LINE = 300  # one failure's cause; the full text is in the run report
MAX_SECTION = 2900  # Slack rejects a section over 3000 characters
TIMEOUT_S = 5.0
RETRY_WAIT_S = 1.0


def build_payload(
    report: RunReport,
    settings: Settings,
    *,
    validation: Validation | None = None,
    notes: Sequence[str] = (),
    late: LateFailure | None = None,
) -> dict[str, Any]:
    """Slack's `text` (the notification line) and `blocks` (mrkdwn) for one run or merged day;
    `late`: what failed after the run's tables were published (a failure all the same)."""
    # Registered for the log masking too, so that _escape() masks them before escaping
    # (a password with "&" would no longer match once escaped).
    register_secret(settings.slack_webhook_url.reveal())
    register_secret(settings.mysql.password.reveal())
    t = report.totals()
    # A merged report lists the runs it combines; a single run is its own id.
    run_ids = report.runs if isinstance(report, MergedReport) and report.runs else [report.run_id]
    ran = f"{t.published}/{t.tables} tables published"
    if t.skipped:
        ran += f" ({t.skipped} skipped)"
    amount = f"{t.rows:,} rows, {human_bytes(t.bytes)}"
    where = f"{report.destination.rstrip('/')}/{settings.prefix}/"
    blocks: list[dict[str, Any]] = []
    if report.ok and late is None:
        text = (
            f":white_check_mark: radar-extract {report.date}: {ran}, {amount} "
            f"in {_duration(report.seconds)}"
        )
        blocks.append(_section(f"*:white_check_mark: radar-extract {report.date}: success*"))
        blocks.append(
            {
                "type": "section",
                "fields": [
                    _mrkdwn(f"*Date*\ncog_dt_ingestion={report.date}"),
                    _mrkdwn(f"*Duration*\n{_duration(report.seconds)}"),
                    _mrkdwn(f"*Tables*\n{ran}"),
                    _mrkdwn(f"*Rows*\n{t.rows:,}"),
                    _mrkdwn(f"*Bytes*\n{human_bytes(t.bytes)}"),
                    _mrkdwn(f"*Destination*\n{_escape(where)}"),
                ],
            }
        )
    else:
        broken = ", ".join(
            ([f"{t.failed} failed"] if t.failed or late is None else [])
            + ([f"{t.not_run} not run"] if t.not_run else [])
            + ([late.what] if late is not None else [])
        )
        text = (
            f":x: radar-extract {report.date} FAILED: {broken}; {ran}, {amount} "
            f"in {_duration(report.seconds)}"
        )
        blocks.append(
            _section(
                f"*:x: radar-extract {report.date}: FAILED* ({broken})\n"
                f"{ran}, {amount} in {_duration(report.seconds)} to "
                f"{_escape(where)}"
            )
        )
        failed = sorted((r for r in report.tables if r.status == "failed"), key=lambda r: r.table)
        if failed:
            lines = [f"• {_escape(_clip(error_line(r), MAX_LINE))}" for r in failed[:MAX_FAILURES]]
            blocks.append(_section(_bounded("*Failed tables*", lines, len(failed))))
        not_run = sorted(r.table for r in report.tables if r.status == "not_run")
        if not_run:
            why = _escape(report.breaker or "the run was stopped")
            names = ", ".join(not_run[:MAX_NOT_RUN])
            more = f" and {len(not_run) - MAX_NOT_RUN} more" if len(not_run) > MAX_NOT_RUN else ""
            blocks.append(_section(f"*Not run* ({why}): {_escape(names)}{more}"))
        if late is not None:  # the tables stand: say which, and what failed after them
            blocks.append(
                _section(
                    f"*Failed at the end of the run*\n• {_escape(_clip(late.line(), MAX_LINE))}"
                )
            )
            published = sorted(r.table for r in report.tables if r.status == "published")
            names = ", ".join(published[:MAX_NOT_RUN]) or "none"
            more = (
                f" and {len(published) - MAX_NOT_RUN} more" if len(published) > MAX_NOT_RUN else ""
            )
            blocks.append(_section(f"*Published* ({len(published)}): {_escape(names)}{more}"))
    drift = drift_sentences(report.tables)
    if drift:  # the `warn` action of the drift policy: the message carries the warning
        shown = [f"• {_escape(_clip(line, MAX_LINE))}" for line in drift[:MAX_FAILURES]]
        blocks.append(_section(_bounded("*Schema drift*", shown, len(drift))))
    verdict = _validation_line(validation)
    if verdict:
        blocks.append(_section(verdict))
    for note in notes:
        blocks.append(_section(_escape(_clip(note, MAX_LINE))))
    runs = ", ".join(run_ids[:10]) + (f" and {len(run_ids) - 10} more" if len(run_ids) > 10 else "")
    context = [f"Run {runs}"]
    if settings.logs_url and not (report.ok and late is None):
        context.append(f"Logs: {settings.logs_url}")
    elif late is not None and not late.report_written:
        context.append("Run report: not written, see the job's logs")
    elif not report.ok or late is not None:
        context.append(
            "Run report: " + Keys(report.destination, settings.prefix).run_report(run_ids[-1])
        )
    blocks.append({"type": "context", "elements": [_mrkdwn(_escape(" · ".join(context)))]})
    payload: dict[str, Any] = _scrub({"text": _escape(text), "blocks": blocks})
    return payload


def send(
    settings: Settings,
    report: RunReport,
    *,
    validation: Validation | None = None,
    notes: Sequence[str] = (),
    late: LateFailure | None = None,
) -> bool:
    """Post the run's message when a webhook is configured. True if Slack accepted it."""
    if not settings.slack_webhook_url:
        return False
    try:
        payload = build_payload(report, settings, validation=validation, notes=notes, late=late)
    except Exception as exc:  # e.g. an odd stored report: the run's result must still stand
        logger.warning(
            "Slack notification not sent: the message could not be built (%s)",
            type(exc).__name__,
            extra={"fields": {"event": "slack", "sent": False}},
        )
        return False
    sent = post(settings.slack_webhook_url.reveal(), payload)
    if sent:
        logger.info(
            "Slack notification sent (%s)",
            "success" if report.ok and late is None else "failure",
            extra={"fields": {"event": "slack", "sent": True, "date": report.date}},
        )
    return sent


def send_stopped(
    settings: Settings, day: date, error: ExtractError, *, notes: Sequence[str] = ()
) -> bool:
    """Post that the run of `day` stopped before any report (exit 3, say). Never raises."""
    if not settings.slack_webhook_url:
        return False
    register_secret(settings.slack_webhook_url.reveal())
    register_secret(settings.mysql.password.reveal())
    cause = _clip(str(error), MAX_LINE)
    logs = (
        f"Logs: {settings.logs_url}"
        if settings.logs_url
        else "No run report was written: see the job's logs"
    )
    blocks = [
        _section(
            f"*:x: radar-extract {day}: FAILED* (stopped before extracting, "
            f"exit {error.exit_code})\n{_escape(cause)}"
        ),
        *[_section(_escape(_clip(note, MAX_LINE))) for note in notes],
        {"type": "context", "elements": [_mrkdwn(_escape(logs))]},
    ]
    text = f":x: radar-extract {day} FAILED: {cause}"
    sent = post(
        settings.slack_webhook_url.reveal(), _scrub({"text": _escape(text), "blocks": blocks})
    )
    if sent:
        logger.info(
            "Slack notification sent (stopped run)",
            extra={"fields": {"event": "slack", "sent": True, "date": day.isoformat()}},
        )
    return sent


def post(
    url: str, payload: Mapping[str, Any], *, timeout: float = TIMEOUT_S, attempts: int = 2
) -> bool:
    """POST the payload as JSON; one retry for a network error, 429 or 5xx. Never raises."""
    body = json.dumps(payload).encode("utf-8")
    reason = "not attempted"
    attempt = 0
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read(1024)
            return True
        except urllib.error.HTTPError as exc:
            # Slack names the problem in the body: invalid_token, no_service, channel_not_found.
            answer = _clip(" ".join(exc.read(200).decode("utf-8", "replace").split()), 100)
            reason = f"HTTP {exc.code}" + (f": {answer}" if answer else "")
            retry = exc.code == 429 or exc.code >= 500
        except urllib.error.URLError as exc:  # str(exc.reason) names no URL
            reason = f"{type(exc.reason).__name__}: {exc.reason}"
            retry = True
        except (TimeoutError, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            retry = True
        except Exception as exc:  # a bad URL or a bug: still never fail the run
            reason = type(exc).__name__
            retry = False
        if not retry or attempt == attempts:
            break
        time.sleep(RETRY_WAIT_S)
    logger.warning(
        "Slack notification not sent after %d attempt(s): %s; the run's result stands",
        attempt,
        mask(reason).replace(url, "***"),
        extra={"fields": {"event": "slack", "sent": False}},
    )
    return False


def _validation_line(validation: Validation | None) -> str | None:
    """The stored validation's verdict (`radar-extract validate`), in one line."""
    if validation is None:
        return None
    if validation.valid:
        return "*Validation*: :white_check_mark: valid"
    problems = validation.all_problems()  # each one line, naming its table
    lines = [f"• {_escape(_clip(p, MAX_LINE))}" for p in problems[:5]]
    return _bounded("*Validation*: :x: NOT valid", lines, len(problems), shown=5)


def _bounded(title: str, lines: list[str], total: int, shown: int = MAX_FAILURES) -> str:
    """Title and lines within Slack's section limit; what does not fit is "and N more"."""
    kept: list[str] = []
    size = len(title) + 40
    for line in lines:
        if size + len(line) + 1 > MAX_SECTION:
            break
        kept.append(line)
        size += len(line) + 1
    hidden = total - len(kept)
    if hidden > 0:
        kept.append(f"… and {hidden} more (see the run report)")
    return "\n".join([title, *kept])


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text[:MAX_SECTION])}


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _escape(text: str) -> str:
    """Slack's three control characters in mrkdwn, after masking the secrets."""
    return mask(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    """Masked first: a cut must never leave half a secret."""
    text = mask(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _scrub(value: Any) -> Any:
    """Every string of the payload masked once more, whatever built it."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value
