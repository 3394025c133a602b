"""`migrate`: rewrite a table's old partitions into the exact contract, one at a time.

For each partition of the table in the date range that is not exact yet (Airbyte's, or
written by `extract --compat airbyte`), under the partition's lock: the old files are read
in batches (pyarrow, row group by row group, column chunks streamed), each column converted
back to the type contract of the table's stored schema (extractor/compat/reverse.py), the
result written by the engine's Parquet writer, and published by the same protocol as
`extract` (extractor/sink/publish.py: on S3 multipart uploads to the final keys, locally
staging; verify, journal, complete or move into place, drop the old keys, manifest last,
with `migrated` in it). A killed migrate leaves each partition old or new, and a journal the next
run (or any `extract`) rolls forward; a rerun skips what is exact, by its manifest.

Nothing here reads MySQL: the contract comes from the stored schema
(`<schemas_dir>/<database>/<table>.json`). `dry_run` reads and counts and writes nothing,
not even a lock. Once every partition of the table is exact, migrate records the switch in
the destination (extractor/compat/migration.py) and removes the table's output schema
file, which the operator commits: the next `extract` writes the table exact.
"""

from __future__ import annotations

import logging
import os
import posixpath
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pyarrow as pa

from extractor import __version__
from extractor.compat import old_partition as old_
from extractor.compat.migration import (
    ExactState,
    MigrationReport,
    PartitionResult,
    write_report,
    write_state,
)
from extractor.compat.output_schema import load_output_schema, output_schema_path
from extractor.config import Settings
from extractor.contract.types import ColumnPlan, arrow_schema, plan_column
from extractor.drift.store import load_schemas
from extractor.errors import (
    DestinationUnavailable,
    ExtractError,
    Step,
    UsageError,
    VerificationError,
)
from extractor.sink.destination import Destination
from extractor.sink.lock import TableLock
from extractor.sink.manifest import (
    Manifest,
    ManifestColumn,
    ManifestFile,
    MigratedColumn,
    MigratedFrom,
    SourceRead,
)
from extractor.sink.multipart import MultipartUploader, abort_leftovers, part_bytes
from extractor.sink.parquet import RollingParquetWriter, WrittenFile
from extractor.sink.publish import StagedFile, publish, roll_forward, verify

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """A table's exact contract, from its stored schema."""

    table: str
    plans: list[ColumnPlan]
    schema: pa.Schema
    primary_key: list[str]
    sources: dict[str, str]  # old column -> MySQL column, from the output schema if any


def migrate_tables(
    settings: Settings,
    tables: Sequence[str],
    *,
    since: date | None = None,
    until: date | None = None,
    dry_run: bool = False,
) -> list[MigrationReport]:
    """Migrate each table's partitions of `since` .. `until` (None: no bound); one report per
    table. Raises for what stops every table (no stored schema, the destination
    unreachable); a partition's failure is in its report."""
    if since is not None and until is not None and since > until:
        raise UsageError(f"--from {since} is after --to {until}")
    targets = [target(settings, t) for t in dict.fromkeys(tables)]  # every problem first
    destination = Destination(settings)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    token = uuid.uuid4().hex[:8]
    first = None if since is None else since.isoformat()
    last = None if until is None else until.isoformat()
    return [
        _Migration(settings, destination, t, stamp, token, first, last, dry_run).run()
        for t in targets
    ]


def target(settings: Settings, table: str) -> Target:
    database = settings.mysql.database
    stored = (load_schemas(settings.schemas_dir, database) or {}).get(table)
    if stored is None:
        raise UsageError(
            f"no stored schema for {table!r} in "
            f"{os.path.join(settings.schemas_dir, database)}: the contract a "
            f"migrate writes is the stored one; store it with `radar-extract "
            f"schemas snapshot --table {table}`, review and commit it",
            table=table,
        )
    plans = []
    for column, entry in zip(old_.stored_columns(stored), stored.columns, strict=True):
        plan = plan_column(column, table)
        if str(plan.arrow_type) != entry.arrow_type:
            raise UsageError(
                f"the stored schema of {table} gives {column.name} the type "
                f"{entry.arrow_type}, the type contract now writes "
                f"{plan.arrow_type}: refresh it with `radar-extract schemas "
                f"snapshot --table {table}`",
                table=table,
            )
        plans.append(plan)
    output = load_output_schema(settings.schemas_dir, database, table)
    sources = {c.name: c.source for c in output.columns if c.source} if output else {}
    return Target(
        table,
        plans,
        arrow_schema(plans),
        list(stored.primary_key),
        {k: v for k, v in sources.items() if v is not None},
    )


class _Migration:
    def __init__(
        self,
        settings: Settings,
        destination: Destination,
        target: Target,
        stamp: str,
        token: str,
        since: str | None,
        until: str | None,
        dry_run: bool,
    ) -> None:
        self.settings, self.destination, self.target = settings, destination, target
        self.stamp, self.token, self.dry_run = stamp, token, dry_run
        self.since, self.until = since, until
        self.report = MigrationReport(
            f"migrate_{stamp}_{token}",
            target.table,
            settings.mysql.database,
            destination.url(destination.root),
            datetime.now(UTC).isoformat(timespec="seconds"),
            dry_run,
            since,
            until,
        )

    def run(self) -> MigrationReport:
        started = time.monotonic()
        table = self.target.table
        for day in old_.partition_dates(self.destination, table, self.since, self.until):
            result = self.partition(day)
            self.report.partitions.append(result)
            logger.info(
                "%s: cog_dt_ingestion=%s %s",
                table,
                day,
                result.status,
                extra={
                    "fields": {
                        "event": "migrate_partition",
                        "table": table,
                        "date": day,
                        "status": result.status,
                        "rows": result.rows,
                        "seconds": result.seconds,
                    }
                },
            )
        if not self.report.partitions:
            self.report.notes.append("no partition in the range")
        if not self.dry_run and self.report.ok:
            self.switch()
        self.report.seconds = round(time.monotonic() - started, 3)
        self.report.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
        if not self.dry_run:
            write_report(self.destination, self.report)
        return self.report

    # -- one partition -----------------------------------------------------------------------
    def partition(self, date: str) -> PartitionResult:
        started = time.monotonic()
        run_id = f"{date}_{self.stamp}_{self.token}"
        lock = (
            None
            if self.dry_run
            else TableLock(
                self.destination,
                self.target.table,
                date,
                run_id,
                lease_s=self.settings.lock_lease_s,
            )
        )
        table = self.target.table
        try:
            # An exact partition with no publish left half-done is skipped without its lock.
            early = old_.classify(self.destination, table, date)
            if early.written_by in ("radar-extract", "none") and not self.destination.exists(
                self.destination.keys.journal(table, date)
            ):
                return _skipped(early, time.monotonic() - started)
            if lock is not None:
                lock.acquire(self.settings.lock_wait_s)
                if roll_forward(self.destination, self.target.table, date, lock.check):
                    logger.warning(
                        "%s: finished publishing %s, which an earlier run left half-done",
                        self.target.table,
                        date,
                    )
            result = self.rewrite(date, run_id, lock)
        except DestinationUnavailable:
            raise
        except ExtractError as exc:
            result = PartitionResult(
                date, "failed", error=exc.message, error_step=exc.step or Step.MIGRATE
            )
        except (pa.ArrowException, ValueError, OSError) as exc:  # a value we cannot convert
            detail = " ".join(str(exc).split())[:300]
            result = PartitionResult(
                date, "failed", error=f"{type(exc).__name__}: {detail}", error_step=Step.CONVERT
            )
        finally:
            if lock is not None:
                lock.release()
        result.seconds = round(time.monotonic() - started, 3)
        return result

    def rewrite(self, date: str, run_id: str, lock: TableLock | None) -> PartitionResult:
        table, destination = self.target.table, self.destination
        old = old_.classify(destination, table, date)
        if old.written_by in ("radar-extract", "none"):
            return _skipped(old, 0.0)
        first, _ = old_.footer(destination, old.files[0])
        plan = old_.plan_partition(old, first, self.target.plans, self.target.sources, table)
        result = PartitionResult(
            date,
            "would_migrate" if self.dry_run else "migrated",
            old.written_by,
            plan.era,
            old_files=len(old.files),
            dropped=plan.dropped,
        )
        if lock is None:  # a dry run: read and count, write nothing
            rows = sum(
                old_.convert(plan, raw, self.target.schema).num_rows
                for raw in self._batches(old, plan, first)
            )
            result.rows, result.columns = rows, old_.results(plan)
            self._check_rows(old, rows, date)
            return result
        settings = self.settings
        staging = destination.keys.staging(run_id, table)
        data_dir = destination.keys.data_dir(table, date)
        # S3 as extract does it (extractor/run/pipeline.py): each file spooled on local disk
        # and uploaded as it grows to its final key, invisible until the publish completes it.
        spool = tempfile.mkdtemp(prefix="radar-migrate-") if destination.is_s3 else staging
        uploader = (
            MultipartUploader(
                destination, data_dir, part_bytes(settings.file_max_bytes, settings.row_group_bytes)
            )
            if destination.is_s3
            else None
        )
        writer: RollingParquetWriter | None = None
        published = False
        try:
            if uploader is not None and (left := abort_leftovers(destination, data_dir)):
                logger.warning(
                    "%s: aborted %d unpublished uploads that an earlier run left in %s",
                    table,
                    left,
                    date,
                )
            os.makedirs(spool, exist_ok=True)
            writer = RollingParquetWriter(
                spool,
                table,
                self.target.schema,
                row_group_bytes=settings.row_group_bytes,
                file_max_bytes=settings.file_max_bytes,
                page_bytes=settings.page_bytes,
                on_file=uploader.finish if uploader else None,
                on_open=uploader.open if uploader else None,
            )
            rows = 0
            for raw in self._batches(old, plan, first):
                lock.check()
                batch = old_.convert(plan, raw, self.target.schema)
                rows += batch.num_rows
                writer.write(batch)
            result.rows, result.columns = rows, old_.results(plan)
            self._check_rows(old, rows, date)
            files = writer.close()
            staged = (
                [StagedFile(local, upload.key, upload) for local, upload in uploader.wait()]
                if uploader
                else [StagedFile(f, f.path) for f in files]
            )
            verify(staged, rows, destination, table)
            manifest = self._manifest(date, run_id, rows, files, staged, old, result)
            lock.renew()  # a full lease for the publish, or the news that the lock was lost
            publish(destination, table, date, staged, manifest, lock.check)
            published = True
            result.files, result.bytes = len(files), sum(f.bytes for f in files)
            return result
        finally:
            if writer is not None:
                writer.abort()
            try:
                # A journal is the publish decision: the next run finishes that publish, with
                # these uploads or this staging. Without one, they are dropped.
                journaled = destination.exists(destination.keys.journal(table, date))
                if uploader is not None:
                    if not published and not journaled:
                        uploader.abort()
                elif not journaled:
                    destination.remove_tree(staging)
            except ExtractError:
                logger.warning(
                    "%s: could not clean up after cog_dt_ingestion=%s; its uploads "
                    "or staging are left to the next run",
                    table,
                    date,
                )
            finally:
                if uploader is not None:
                    uploader.shutdown()
            if destination.is_s3:
                shutil.rmtree(spool, ignore_errors=True)

    def _batches(
        self, old: old_.OldPartition, plan: old_.PartitionPlan, first: pa.Schema
    ) -> Iterator[pa.RecordBatch]:
        return old_.batches(
            self.destination,
            old,
            plan.read_columns,
            self.settings.batch_rows,
            self.settings.batch_bytes,
            first,
            self.target.table,
        )

    def _check_rows(self, old: old_.OldPartition, rows: int, date: str) -> None:
        footers = sum(old_.footer(self.destination, f)[1] for f in old.files)
        listed = footers if old.manifest is None else old.manifest.rows
        if rows != footers or rows != listed:
            raise VerificationError(
                f"cog_dt_ingestion={date}: read {rows:,} rows, the old "
                f"footers hold {footers:,}, its manifest says {listed:,}",
                table=self.target.table,
                step=Step.VERIFY,
            )

    def _manifest(
        self,
        date: str,
        run_id: str,
        rows: int,
        files: list[WrittenFile],
        staged: list[StagedFile],
        old: old_.OldPartition,
        result: PartitionResult,
    ) -> Manifest:
        plans = self.target.plans
        return Manifest(
            table=self.target.table,
            date=date,
            run_id=run_id,
            engine=f"radar-extract {__version__}",
            published_at=datetime.now(UTC).isoformat(),
            rows=rows,
            bytes=sum(f.bytes for f in files),
            # The rows come from the old partition, not from MySQL.
            source=SourceRead(self.settings.mysql.database, rows_read=rows, estimated_rows=rows),
            files=[
                ManifestFile(posixpath.basename(s.staged_path), s.local.rows, s.local.bytes)
                for s in staged
            ],
            schema=[
                ManifestColumn(p.name, p.column.column_type, p.column.nullable, str(p.arrow_type))
                for p in plans
            ],
            primary_key=list(self.target.primary_key),
            nulled={c.name: c.counts.nulled for c in result.columns if c.counts.nulled},
            migrated=MigratedFrom(
                migration_id=self.report.migration_id,
                written_by=old.written_by,
                era=result.era,
                old_run_id=None if old.manifest is None else old.manifest.run_id,
                old_files=[posixpath.basename(f) for f in old.files],
                dropped=list(result.dropped),
                columns={
                    c.name: MigratedColumn(
                        c.conversion, c.counts.exact, c.old, c.old_type, c.counts.classes()
                    )
                    for c in result.columns
                },
            ),
        )

    # -- the switch --------------------------------------------------------------------------
    def switch(self) -> None:
        """Once no partition of the table is of another shape: record it, remove the output
        schema (the operator commits that), and say so."""
        table = self.target.table
        left = [
            d
            for d in old_.partition_dates(self.destination, table)
            if old_.classify(self.destination, table, d).written_by in ("airbyte", "compat")
        ]
        path = output_schema_path(self.settings.schemas_dir, self.settings.mysql.database, table)
        if not old_.partition_dates(self.destination, table):
            # A mistyped destination must not look like a history that is all exact.
            self.report.notes.append(
                f"no partition of {table} at all in {self.report.destination}: nothing switched"
            )
            return
        if left:
            self.report.notes.append(
                f"{len(left)} partitions outside the range are not exact yet ({left[0]} .. "
                f"{left[-1]}): the table keeps its output schema until they are migrated"
            )
            self.report.output_schema = "kept" if path.is_file() else None
            return
        write_state(
            self.destination,
            ExactState(
                table,
                datetime.now(UTC).isoformat(timespec="seconds"),
                self.report.migration_id,
                len(old_.partition_dates(self.destination, table)),
            ),
        )
        self.report.exact = True
        if path.is_file():
            path.unlink()
            self.report.output_schema = f"removed {path}"
            self.report.notes.append(
                f"every partition is exact: removed {path}; commit its "
                "deletion (the next extract writes the table exact)"
            )
        else:
            self.report.notes.append("every partition is exact")


def _skipped(old: old_.OldPartition, seconds: float) -> PartitionResult:
    run = "?" if old.manifest is None else old.manifest.run_id
    reason = (
        f"exact already (manifest of run {run})"
        if old.written_by == "radar-extract"
        else "no data file"
    )
    return PartitionResult(
        old.date, "skipped", old.written_by, reason=reason, seconds=round(seconds, 3)
    )
