"""One table, end to end: read -> convert -> Parquet -> upload/stage -> verify -> publish.

A table may be read on several streams (primary-key ranges, source/ranges.py), as threads
of this process that share the lock, the uploader and the file numbers; everything after
the read (verify, manifest, publish) is the one table's, as with one stream.

Runs inside a worker process; everything it needs arrives in picklable form and
everything it returns is a `TableResult`, failures included: one failing table
never stops the others.
"""

from __future__ import annotations

import logging
import os
import posixpath
import shutil
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime

from extractor import __version__
from extractor.compat.writer import open_compat
from extractor.config import Settings
from extractor.contract.casts import convert_batch, offset_safe
from extractor.contract.types import Column, arrow_schema, plan_column
from extractor.errors import ExtractError, Step
from extractor.run.report import CompatResult, TableResult
from extractor.sink.destination import Destination
from extractor.sink.lock import TableLock
from extractor.sink.manifest import (
    DriftRecord,
    Manifest,
    ManifestColumn,
    ManifestFile,
    SourceRead,
    StreamRange,
    StreamSplit,
)
from extractor.sink.multipart import MultipartUploader, abort_leftovers, part_bytes
from extractor.sink.parquet import FileNumbers, RollingParquetWriter
from extractor.sink.publish import StagedFile, publish, roll_forward, verify
from extractor.source.batching import plan_batches
from extractor.source.connection import control_connection
from extractor.source.ranges import KeyRange, key_bounds, plan_ranges, split_key
from extractor.source.reader import Server, read_batches

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # table, rows so far, estimated rows
# A stream's row groups are cut at the table's row-group budget shared among its streams,
# but not below this: smaller row groups would cost the readers of the files more than the
# memory is worth.
MIN_STREAM_ROW_GROUP_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class TableTask:
    table: str
    columns: list[Column]
    estimated_rows: int = 0
    estimated_bytes: int = 0
    primary_key: list[str] = field(default_factory=list)
    # The changes from the stored schema that the drift policy let through (warn/evolve):
    # recorded in the manifest, so `validate` tells accepted drift from damage.
    drift: list[DriftRecord] = field(default_factory=list)
    # Streams to read it on, as the run planned them (extractor/streams_policy.py): at most
    # this many primary-key ranges at once; 1 is one SELECT, one consistent read. `asked`:
    # its setting was not 1 (N or auto), so the report says how many it got.
    streams: int = 1
    streams_asked: bool = False


@dataclass(frozen=True)
class RunContext:
    settings: Settings
    run_id: str
    date: str
    server: Server


def extract_table(
    ctx: RunContext,
    task: TableTask,
    progress: Progress | None = None,
    *,
    tag: str | None = None,
    checkpoint: Callable[[], None] | None = None,
) -> TableResult:
    """Extract and publish one table; never raises for a table-level failure.

    The timeout hook (extractor/run/retry.py): `tag` is the comment carried by the SELECT, by
    which the watchdog finds and kills this very read; `checkpoint` raises `TableTimeout`
    once the table's time is up. It is called for every batch and just before publishing,
    never during it: a publish cut halfway could leave the partition mixed.

    The table and date are locked (extractor/sink/lock.py) before the read, so a second run
    waits or fails at step `lock` without reading production for nothing, and the lock is
    released once the manifest is written, or the attempt has failed. The lock's own check
    does run during the publish: a run that has lost its lock must not touch another key.
    """
    started = time.monotonic()
    settings = ctx.settings
    table = task.table
    destination = Destination(settings)
    staging = destination.keys.staging(ctx.run_id, table)
    data_dir = destination.keys.data_dir(table, ctx.date)
    # S3: files are spooled on local disk and uploaded, as they grow, to their final keys in
    # multipart uploads that stay invisible until the publish completes them.
    spool = tempfile.mkdtemp(prefix="radar-extract-") if destination.is_s3 else staging
    uploader = (
        MultipartUploader(
            destination,
            data_dir,
            part_bytes(settings.file_max_bytes, settings.row_group_bytes),
            files_at_once=task.streams + 1,
        )
        if destination.is_s3
        else None
    )
    writers: list[RollingParquetWriter] = []
    published = False
    lock = TableLock(destination, table, ctx.date, ctx.run_id, lease_s=settings.lock_lease_s)
    logger.info(
        "%s: extracting (about %d rows)",
        table,
        task.estimated_rows,
        extra={"fields": {"event": "table_start", "run_id": ctx.run_id, "table": table}},
    )
    try:
        lock.acquire(settings.lock_wait_s, checkpoint)
        # A journal here is a dead holder's half-done publish: finish it before reading.
        if roll_forward(destination, table, ctx.date, lock.check):
            logger.warning(
                "%s: finished publishing %s, which an earlier run left half-done", table, ctx.date
            )
        if uploader is not None and (left := abort_leftovers(destination, data_dir)):
            logger.warning(
                "%s: aborted %d unpublished uploads that an earlier run left in %s",
                table,
                left,
                ctx.date,
            )
        os.makedirs(spool, exist_ok=True)
        plans = [plan_column(c, table) for c in task.columns]
        schema = arrow_schema(plans)
        sizing = plan_batches(
            task.columns,
            task.estimated_rows,
            task.estimated_bytes,
            settings.batch_bytes,
            settings.batch_rows,
        )
        logger.debug(
            "%s: %d rows per batch (about %d bytes a row)%s",
            table,
            sizing.rows,
            sizing.row_bytes,
            ", gated" if sizing.gated else "",
        )
        # The cut-over from Airbyte: a table with a stored output schema is written in it.
        compat = open_compat(settings, table, plans, ctx.run_id)
        # One stream, or N key ranges read at once, each with its own writer; the files are
        # numbered across them. Threads, not processes: faster on 2 cores, and cheaper (no
        # start-up, one copy of the imports; README "One big table on several streams").
        # Two row-group buffers per stream: the table's row-group budget is shared out.
        key, ranges = _key_ranges(ctx, task)
        numbers = FileNumbers()

        def open_writer(empty_file: bool) -> RollingParquetWriter:
            writers.append(
                RollingParquetWriter(
                    spool,
                    table,
                    compat.schema if compat else schema,
                    row_group_bytes=_stream_row_group(
                        sizing.row_group_bytes(settings.row_group_bytes), len(ranges)
                    ),
                    file_max_bytes=settings.file_max_bytes,
                    page_bytes=settings.page_bytes,
                    on_file=uploader.finish if uploader else None,
                    on_open=uploader.open if uploader else None,
                    coerce_timestamps=None if compat else "us",  # Airbyte's millis stay millis
                    numbers=numbers,
                    empty_file=empty_file,
                )
            )
            return writers[-1]

        base_tag = tag or f"radar-extract run={ctx.run_id}"
        shared = _Shared(progress, table, task.estimated_rows)

        def read_stream(index: int, writer: RollingParquetWriter) -> tuple[int, Counter[str]]:
            stream_tag = (
                base_tag if len(ranges) == 1 else f"{base_tag} stream={index + 1}:{len(ranges)}"
            )  # the watchdog's token stays in it: a timeout kills them all
            stream_rows = 0
            lost_values: Counter[str] = Counter()
            for raw in read_batches(
                settings.mysql,
                table,
                plans,
                sizing,
                server=ctx.server,
                tag=stream_tag,
                key=key,
                key_range=ranges[index],
            ):
                if shared.failed.is_set():
                    raise _Cancelled
                if checkpoint is not None:
                    checkpoint()
                lock.check()
                for piece in offset_safe(raw):
                    batch, lost = convert_batch(piece, plans, schema, table)
                    if compat is not None:
                        with shared.mutex:  # it counts what it converts
                            batch = compat.convert(batch)
                    writer.write(batch)
                    stream_rows += batch.num_rows
                    lost_values.update(lost)
                shared.read(raw.num_rows)
            writer.close()
            return stream_rows, lost_values

        if len(ranges) == 1:
            counts = [read_stream(0, open_writer(True))]
        else:
            counts = _run_streams(read_stream, [open_writer(False) for _ in ranges], shared.failed)
        rows = sum(n for n, _ in counts)
        nulled: Counter[str] = sum((c for _, c in counts), Counter())
        files = sorted((f for w in writers for f in w.files), key=lambda f: _by_number(f.path))
        if not files:  # every range was empty: the partition still gets its schema
            files = open_writer(True).close()
        staged = sorted(
            [StagedFile(local, upload.key, upload) for local, upload in uploader.wait()]
            if uploader
            else [StagedFile(f, f.path) for f in files],
            key=lambda s: _by_number(s.staged_path),
        )
        verify(staged, rows, destination, table)
        manifest = Manifest(
            table=table,
            date=ctx.date,
            run_id=ctx.run_id,
            engine=f"radar-extract {__version__}",
            published_at=datetime.now(UTC).isoformat(),  # µs: `extract --resume` compares
            rows=rows,
            bytes=sum(f.bytes for f in files),
            source=SourceRead(
                settings.mysql.database,
                rows_read=rows,
                estimated_rows=task.estimated_rows,
                streams=None
                if key is None
                else StreamSplit(
                    key,
                    [
                        StreamRange(r.low, r.high, n)
                        for r, (n, _) in zip(ranges, counts, strict=True)
                    ],
                ),
            ),
            files=[
                ManifestFile(posixpath.basename(s.staged_path), s.local.rows, s.local.bytes)
                for s in staged
            ],
            schema=[
                ManifestColumn(p.name, p.column.column_type, p.column.nullable, str(p.arrow_type))
                for p in plans
            ],
            primary_key=list(task.primary_key),
            drift=list(task.drift),
            nulled=dict(sorted(nulled.items())),
            compat=compat.manifest() if compat is not None else None,
        )
        if checkpoint is not None:
            checkpoint()
        lock.renew()  # a full lease for the publish, or the news that the lock was lost
        keys = publish(destination, table, ctx.date, staged, manifest, lock.check)
        published = True
        return TableResult(
            table=table,
            status="published",
            rows=rows,
            files=len(files),
            bytes=sum(f.bytes for f in files),
            seconds=round(time.monotonic() - started, 3),
            nulled=dict(sorted(nulled.items())),
            keys=[destination.url(k) for k in keys],
            converted=dict(sorted(compat.converted.items())) if compat else {},
            compat=CompatResult(compat.output.era, list(compat.drift)) if compat else None,
            streams=len(ranges) if task.streams > 1 or task.streams_asked else None,
        )
    except ExtractError as exc:
        logger.debug("table %s failed", table, exc_info=True)
        return _failed(table, started, exc.message, exc.step, type(exc).__name__, exc.transient)
    except Exception as exc:  # a bug of ours: report it, keep the other tables going
        logger.debug("table %s failed unexpectedly:\n%s", table, traceback.format_exc())
        detail = " ".join(str(exc).split())[:300]
        return _failed(
            table,
            started,
            f"internal error {type(exc).__name__}: {detail}",
            Step.EXTRACT,
            type(exc).__name__,
            False,
        )
    finally:
        lock.release()  # first: every change to the partition is over by now
        for writer in writers:
            writer.abort()
        journal = destination.keys.journal(table, ctx.date)
        try:
            # A journal is the publish decision: the next run finishes that publish, with
            # these uploads or this staging. Without one, they are dropped.
            if uploader is not None:
                if not published and not destination.exists(journal):
                    uploader.abort()
            elif not destination.exists(journal):
                destination.remove_tree(staging)
        except ExtractError:
            logger.warning(
                "%s: could not clean up after the attempt; its uploads or staging "
                "are left to the next run",
                table,
            )
        finally:
            if uploader is not None:
                uploader.shutdown()
        if destination.is_s3:
            shutil.rmtree(spool, ignore_errors=True)


class _Cancelled(Exception):
    """A stream stopped because another stream of its table failed."""


class _Shared:
    """What the streams of one table share: the failure flag, the progress count, a mutex."""

    def __init__(self, progress: Progress | None, table: str, estimated: int) -> None:
        self.failed = threading.Event()
        self.mutex = threading.Lock()
        self._progress, self._table, self._estimated = progress, table, estimated
        self._rows = 0

    def read(self, rows: int) -> None:
        if self._progress is not None:
            with self.mutex:
                self._rows += rows
                self._progress(self._table, self._rows, self._estimated)


def _key_ranges(ctx: RunContext, task: TableTask) -> tuple[str | None, list[KeyRange]]:
    """The split key and its ranges for the table's streams; (None, one unbounded range)
    for one stream, whether asked for or because the table cannot be split."""
    if task.streams <= 1:
        return None, [KeyRange()]
    found = split_key(task.columns, task.primary_key)
    if found.column is None:
        logger.debug("%s: read on one stream, not %d: %s", task.table, task.streams, found.reason)
        return None, [KeyRange()]
    mysql = ctx.settings.mysql
    with control_connection(mysql) as conn:
        lowest, highest = key_bounds(conn, mysql.database, task.table, found.column)
    ranges = plan_ranges(lowest, highest, task.streams)
    if len(ranges) == 1:
        logger.debug(
            "%s: read on one stream, not %d: %s",
            task.table,
            task.streams,
            "empty" if lowest is None else f"one value of {found.column}",
        )
        return None, ranges
    logger.info(
        "%s: read on %d streams by %s: %s",
        task.table,
        len(ranges),
        found.column,
        ", ".join(r.describe() for r in ranges),
    )
    return found.column, ranges


def _run_streams(
    read: Callable[[int, RollingParquetWriter], tuple[int, Counter[str]]],
    writers: Sequence[RollingParquetWriter],
    failed: threading.Event,
) -> list[tuple[int, Counter[str]]]:
    """Run every stream in its own thread; the first failure stops the others at their next
    batch and is raised once they have all stopped (nothing is left running)."""
    with ThreadPoolExecutor(len(writers), thread_name_prefix="stream") as pool:
        futures: list[Future[tuple[int, Counter[str]]]] = [
            pool.submit(read, i, w) for i, w in enumerate(writers)
        ]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.exception() is not None for f in done):
            failed.set()
        wait(futures)
    errors = [
        e for f in futures if (e := f.exception()) is not None and not isinstance(e, _Cancelled)
    ]
    if errors:
        raise errors[0]
    return [f.result() for f in futures]


def _stream_row_group(table_bytes: int, streams: int) -> int:
    """A stream's row-group size: the table's, shared among its streams, but not below
    MIN_STREAM_ROW_GROUP_BYTES (nor above the table's own)."""
    return max(table_bytes // streams, min(table_bytes, MIN_STREAM_ROW_GROUP_BYTES))


def _by_number(path: str) -> tuple[int, str]:
    """Files in number order: file_t_999 before file_t_1000."""
    name = posixpath.basename(path)
    return len(name), name


def _failed(
    table: str, started: float, error: str, step: Step | None, kind: str, transient: bool
) -> TableResult:
    """A failed table publishes nothing, so its rows, files and bytes are zero."""
    return TableResult(
        table=table,
        status="failed",
        seconds=round(time.monotonic() - started, 3),
        error=error,
        error_step=step,
        error_type=kind,
        transient=transient,
    )
