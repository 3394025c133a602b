"""The worker pool: tables in spawned processes, results as they finish, progress forwarded.

Processes, not threads, because decoding and Parquet encoding are CPU-bound; spawned, not
forked, since connectorx and s3fs hold threads that a fork would copy half-alive. Each
worker sends its progress through a queue to a thread here that calls the parent's
`progress` callback, so a terminal shows every running table live.

Retries run inside the worker (`retry.run_table`), so a table keeps its slot through its
backoff waits. Tables are submitted as slots free up, never more than `workers` at once:
a table queued inside the pool would be handed to a worker the moment the previous one
returns, before the result (and the circuit breaker's verdict on it) reaches this process.
Submitting as results are counted makes "no new table starts once the breaker is open"
exact. When it opens, any future still queued is cancelled (`Future.cancel()`), the rest
are reported `not_run`, and a shared event tells the running tables not to retry.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from extractor.errors import Step
from extractor.logs import real_stderr_for_children, worker_initializer, worker_logging_config
from extractor.run.breaker import CircuitBreaker
from extractor.run.pipeline import Progress, RunContext, TableTask
from extractor.run.report import TableResult
from extractor.run.retry import run_table
from extractor.run.watchdog import start_watchdog

_queue: Any = None  # set in each worker process by _init
_stop: Any = None  # a multiprocessing Event, set by the parent when the breaker opens


def _init(log_config: dict[str, Any], queue: Any, stop: Any) -> None:
    global _queue, _stop
    worker_initializer(log_config)
    _queue = queue
    _stop = stop
    start_watchdog()  # this worker's table timeouts; booted before its first read


class _Forward:
    """Progress callback inside a worker: at most a few messages a second per table."""

    def __init__(self) -> None:
        self._last = 0.0

    def __call__(self, table: str, rows: int, estimated: int) -> None:
        now = time.monotonic()
        if now - self._last >= 0.25 and _queue is not None:
            self._last = now
            _queue.put((table, rows, estimated))


def _extract(ctx: RunContext, task: TableTask) -> TableResult:
    if _stop is not None and _stop.is_set():
        return TableResult(table=task.table, status="not_run")  # the parent fills the reason
    return run_table(ctx, task, _Forward(), stop=_stopped)


def _stopped() -> bool:
    return _stop is not None and bool(_stop.is_set())


def run_in_pool(
    ctx: RunContext,
    tasks: list[TableTask],
    workers: int,
    progress: Progress | None,
    breaker: CircuitBreaker,
) -> Iterator[TableResult]:
    """Extract `tasks` in `workers` processes, in the given order, yielding each result."""
    spawn = multiprocessing.get_context("spawn")
    queue = spawn.Queue()
    stop = spawn.Event()
    relay = threading.Thread(target=_relay, args=(queue, progress), daemon=True)
    relay.start()
    try:
        with ProcessPoolExecutor(
            workers,
            mp_context=spawn,
            initializer=_init,
            initargs=(worker_logging_config(), queue, stop),
        ) as pool:
            waiting = list(tasks)  # largest first
            running: dict[Future[TableResult], TableTask] = {}

            def submit_next() -> list[TableResult]:
                """Fill the free slots; a pool broken by a dead worker fails the rest."""
                while waiting and len(running) < workers and not breaker.open:
                    task = waiting.pop(0)
                    try:
                        running[pool.submit(_extract, ctx, task)] = task
                    except BrokenProcessPool as exc:
                        broken = [_worker_failed(t, exc) for t in [task, *waiting]]
                        waiting.clear()
                        return broken
                return []

            with real_stderr_for_children():  # the pool starts its processes in submit()
                yield from submit_next()
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    result = _outcome(future, running.pop(future))
                    if result.status == "not_run":
                        result = breaker.not_run(result.table)
                    else:
                        breaker.record(result)
                    yield result
                if breaker.open and not stop.is_set():
                    stop.set()  # running tables finish their attempt but do not retry
                    for future, task in list(running.items()):
                        if future.cancel():  # submitted, not started: it never will be
                            del running[future]
                            yield breaker.not_run(task.table)
                    for task in waiting:
                        yield breaker.not_run(task.table)
                    waiting.clear()
                yield from submit_next()
    finally:
        queue.put(None)
        relay.join(timeout=5)
        queue.close()


def _outcome(future: Future[TableResult], task: TableTask) -> TableResult:
    try:
        return future.result()
    except Exception as exc:  # the worker process died (killed, out of memory)
        return _worker_failed(task, exc)


def _worker_failed(task: TableTask, exc: Exception) -> TableResult:
    return TableResult(
        table=task.table,
        status="failed",
        error_step=Step.WORKER,
        error=f"worker process failed: {type(exc).__name__}: {exc}",
        error_type=type(exc).__name__,
    )


def _relay(queue: Any, progress: Progress | None) -> None:
    while (message := queue.get()) is not None:
        if progress is not None:
            progress(*message)
