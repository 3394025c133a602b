"""Bounded retries of one table, for transient errors only, with full-jitter backoff.

A table whose attempt fails with a transient error (see `is_retryable`) is read again
from the start: `extract_table` has already discarded that attempt's files and staging,
and each attempt is a new SELECT, so a retry never mixes rows of two reads. At most
`retry_attempts` attempts (3) run; before retry n the table waits a random time in
[0, min(cap, base * 2**(n-1))] ("full jitter"), so tables that failed together do not
come back together. Permanent errors (access denied, unknown table, TLS, configuration,
verification, an unsupported column) fail on the first attempt, and a timeout is not
retried either (see errors.TableTimeout).

The table's time limit (watchdog.TableDeadline) spans all its attempts and waits: an
operator's RADAR_TABLE_TIMEOUT_S bounds the table's wall time, not each attempt's.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable

from extractor.errors import Step
from extractor.run.pipeline import Progress, RunContext, TableTask, extract_table
from extractor.run.report import TableResult
from extractor.run.watchdog import TableDeadline

logger = logging.getLogger(__name__)


def backoff_delay(retry: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Seconds to wait before retry number `retry` (1 = the second attempt): full jitter,
    as in the AWS Architecture Blog's "Exponential Backoff And Jitter"."""
    ceiling = min(cap_s, base_s * 2.0 ** min(retry - 1, 60))
    return rng.uniform(0.0, ceiling)


def is_retryable(result: TableResult) -> bool:
    """Whether a new attempt may succeed: failed with a transient error, and not a timeout."""
    if result.status != "failed" or result.error_step == Step.TIMEOUT:
        return False
    return result.transient


def _never() -> bool:
    return False


def run_table(
    ctx: RunContext,
    task: TableTask,
    progress: Progress | None = None,
    *,
    stop: Callable[[], bool] = _never,
    rng: random.Random | None = None,
) -> TableResult:
    """Extract one table with bounded retries and its time limit; never raises.

    `stop` turns true once the circuit breaker has stopped the run: the running attempt
    finishes, but no new one starts.
    """
    settings = ctx.settings
    limit = settings.retry_attempts
    rng = rng or random.Random()
    started = time.monotonic()
    attempt = 0
    with TableDeadline(settings.mysql, task.table, settings.table_timeout_s) as deadline:
        while True:
            attempt += 1
            tag = deadline.attempt_tag(ctx.run_id, attempt)
            result = extract_table(ctx, task, progress, tag=tag, checkpoint=deadline.check)
            if result.status != "failed":
                note = None
                break
            if deadline.expired and result.error_step != Step.TIMEOUT:
                # Most likely our own KILL QUERY: report what happened, not its symptom.
                logger.debug("%s: failed after its time limit: %s", task.table, result.error)
                result = _timed_out(result, deadline)
            note = _final_note(result, attempt, limit, stop)
            if note is not None:
                break
            delay = backoff_delay(attempt, settings.retry_base_s, settings.retry_cap_s, rng)
            logger.warning(
                "%s: attempt %d of %d failed at %s (transient), retrying in %.2f s: %s",
                task.table,
                attempt,
                limit,
                result.error_step,
                delay,
                result.error,
            )
            if not deadline.wait(delay, stop):
                if deadline.expired:
                    result = _timed_out(result, deadline)
                    note = f"attempt {attempt} of {limit}; its time limit ran out before a retry"
                else:
                    note = f"attempt {attempt} of {limit}; not retried: the run was stopped"
                break
    return dataclasses.replace(
        result,
        attempts=attempt,
        retry_note=note,
        seconds=round(time.monotonic() - started, 3),
    )


def _final_note(
    result: TableResult, attempt: int, limit: int, stop: Callable[[], bool]
) -> str | None:
    """Why this failure is final (a note for the report), or None to retry it."""
    if result.error_step == Step.TIMEOUT:
        return f"attempt {attempt} of {limit}; a timeout is not retried"
    if not is_retryable(result):
        where = "" if attempt == 1 else f"attempt {attempt} of {limit}; "
        return f"{where}not retried: the error is not transient"
    if limit == 1:
        return "transient, but not retried: RADAR_RETRY_ATTEMPTS=1"
    if attempt >= limit:
        return f"retried: all {limit} attempts failed"
    if stop():
        return f"attempt {attempt} of {limit}; not retried: the run was stopped"
    return None


def _timed_out(result: TableResult, deadline: TableDeadline) -> TableResult:
    return dataclasses.replace(
        result,
        error=deadline.message(),
        error_step=Step.TIMEOUT,
        error_type="TableTimeout",
        transient=False,
    )
