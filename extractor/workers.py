"""The worker pool: tables in spawned processes, results as they finish, progress forwarded.

Processes, not threads, because decoding and Parquet encoding are CPU-bound; spawned, not
forked, since connectorx and s3fs hold threads that a fork would copy half-alive. Each
worker sends its progress through a queue to a thread here that calls the parent's
`progress` callback, so a terminal shows every running table live.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from extractor.logs import real_stderr_for_children, worker_initializer, worker_logging_config
from extractor.pipeline import Progress, RunContext, TableTask, extract_table
from extractor.report import TableResult

_queue: Any = None  # set in each worker process by _init


def _init(log_config: dict[str, Any], queue: Any) -> None:
    global _queue
    worker_initializer(log_config)
    _queue = queue


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
    return extract_table(ctx, task, _Forward())


def run_in_pool(
    ctx: RunContext, tasks: list[TableTask], workers: int, progress: Progress | None
) -> Iterator[TableResult]:
    """Extract `tasks` in `workers` processes, in the given order, yielding each result."""
    spawn = multiprocessing.get_context("spawn")
    queue = spawn.Queue()
    relay = threading.Thread(target=_relay, args=(queue, progress), daemon=True)
    relay.start()
    try:
        with ProcessPoolExecutor(workers, mp_context=spawn, initializer=_init,
                                 initargs=(worker_logging_config(), queue)) as pool:
            with real_stderr_for_children():  # the pool starts its processes in submit()
                futures = {pool.submit(_extract, ctx, task): task for task in tasks}
            for future in as_completed(futures):
                task = futures[future]
                try:
                    yield future.result()
                except Exception as exc:  # the worker process died (killed, out of memory)
                    yield TableResult(
                        table=task.table, status="failed", error_step="worker",
                        error=f"worker process failed: {type(exc).__name__}: {exc}",
                        error_type=type(exc).__name__,
                    )
    finally:
        queue.put(None)
        relay.join(timeout=5)
        queue.close()


def _relay(queue: Any, progress: Progress | None) -> None:
    while (message := queue.get()) is not None:
        if progress is not None:
            progress(*message)
