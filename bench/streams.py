"""Threads or processes for the streams of one table: read + convert + Parquet, nothing else.

Each stream reads one primary-key range (extractor/source/ranges.py), converts its batches
and writes its own Parquet files into a temporary directory, as `extract --streams N` does,
without lock, upload or publish. `--mode threads` runs the streams as threads of this
process, `--mode processes` as spawned processes. Prints one line: mode, streams, wall
seconds, CPU seconds of this process and its children, peak RSS of this process and of its
largest child (MB).

    RADAR_MYSQL_URL=mysql+pymysql://root@127.0.0.1:3306/radar_bench \\
        .venv/bin/python bench/streams.py --table store_metrics --streams 2 --mode threads
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from extractor.config import Settings, load_settings
from extractor.contract.casts import convert_batch, offset_safe
from extractor.contract.types import arrow_schema, plan_column
from extractor.run.catalog import discover
from extractor.run.pipeline import TableTask
from extractor.sink.parquet import FileNumbers, RollingParquetWriter
from extractor.source.batching import plan_batches
from extractor.source.connection import control_connection
from extractor.source.ranges import KeyRange, key_bounds, plan_ranges, split_key
from extractor.source.reader import Server, read_batches


def stream(
    settings: Settings,
    task: TableTask,
    server: Server,
    key: str | None,
    key_range: KeyRange,
    directory: str,
    first: int,
) -> int:
    plans = [plan_column(c, task.table) for c in task.columns]
    schema = arrow_schema(plans)
    sizing = plan_batches(
        task.columns,
        task.estimated_rows,
        task.estimated_bytes,
        settings.batch_bytes,
        settings.batch_rows,
    )
    numbers = FileNumbers(first)  # per process here: the bench checks no names
    writer = RollingParquetWriter(
        directory,
        task.table,
        schema,
        row_group_bytes=settings.row_group_bytes,
        file_max_bytes=settings.file_max_bytes,
        page_bytes=settings.page_bytes,
        numbers=numbers,
    )
    rows = 0
    for raw in read_batches(
        settings.mysql, task.table, plans, sizing, server=server, key=key, key_range=key_range
    ):
        for piece in offset_safe(raw):
            batch, _ = convert_batch(piece, plans, schema, task.table)
            writer.write(batch)
            rows += batch.num_rows
    writer.close()
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", required=True)
    p.add_argument("--streams", type=int, default=2)
    p.add_argument("--mode", choices=("threads", "processes"), default="threads")
    args = p.parse_args()
    settings = load_settings()
    catalog = discover(settings)
    task = catalog.tasks[args.table]
    key = split_key(task.columns, task.primary_key).column
    ranges = [KeyRange()]
    if key is not None and args.streams > 1:
        with control_connection(settings.mysql) as conn:
            ranges = plan_ranges(
                *key_bounds(conn, settings.mysql.database, task.table, key), args.streams
            )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="radar-streams-bench-") as directory:
        pool: Executor = (
            ThreadPoolExecutor(len(ranges))
            if args.mode == "threads"
            else ProcessPoolExecutor(len(ranges), mp_context=multiprocessing.get_context("spawn"))
        )
        with pool:
            futures = [
                pool.submit(stream, settings, task, catalog.server, key, r, directory, 1 + 100 * i)
                for i, r in enumerate(ranges)
            ]
            rows = sum(f.result() for f in futures)
    wall = time.monotonic() - started
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime
    print(
        f"mode={args.mode} streams={len(ranges)} rows={rows} wall={wall:.2f} cpu={cpu:.2f} "
        f"rss_self_mb={me.ru_maxrss / 1024:.0f} rss_child_mb={children.ru_maxrss / 1024:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
