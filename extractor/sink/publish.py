"""The publish protocol: a table's files become a partition only once all are verified.

S3 replaces one object atomically, never several. So a table's files are first written
where no reader looks, verified (footer row counts equal the rows read; what was sent
equals the local files), then put into the partition; keys of the partition that are not
in the new set are deleted; the manifest is written last. A failure before that leaves the
published partition untouched.

Where the files wait: on S3, in multipart uploads to their final keys, left open
(extractor/sink/multipart.py); completing one makes its whole object appear at once, so no
second copy is written. Locally, in staging outside the data location, renamed into place.

The publish itself is journaled: before the first key changes, a journal entry names the
verified files (the open uploads with their parts, or the staged files) and the manifest;
it is the publish decision. A run killed in the middle of a publish leaves the entry (and
the uploads or the staging) behind, and the next run (`recover`) rolls that publish
forward, so a partition is never left mixed for longer than until the next run starts.
Uploads that no journal names never reached the decision: the next run of their table
aborts them (`abort_leftovers`), and every run aborts old ones (`clean_uploads`).

Every change to a partition is made under its lock (extractor/sink/lock.py): the caller
holds it, and `guard` (the lock's check) runs before each change, so a run that has lost
its lock stops before the next key it would touch. Recovery takes the lock too, and leaves
alone a journal whose partition another run holds: that run is publishing it.
"""

from __future__ import annotations

import logging
import os
import posixpath
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq

from extractor.errors import FormatError, PartitionLocked, Step, VerificationError
from extractor.sink.destination import Destination
from extractor.sink.journal import Journal
from extractor.sink.lock import TableLock
from extractor.sink.manifest import Manifest
from extractor.sink.multipart import PendingUpload, complete
from extractor.sink.parquet import WrittenFile

logger = logging.getLogger(__name__)

Guard = Callable[[], None]  # raises when the partition's lock is no longer ours


def _unguarded() -> None:
    return None


@dataclass(frozen=True)
class StagedFile:
    local: WrittenFile
    staged_path: str  # with `upload`: its final key, where the object appears on completion
    upload: PendingUpload | None = None


def verify(staged: list[StagedFile], rows_read: int, destination: Destination, table: str) -> None:
    """Every footer readable, footer rows = rows read, every staged object complete. Footers
    are read from the local files: an upload's object is invisible until published."""
    footer_rows = 0
    for item in staged:
        try:
            footer_rows += pq.ParquetFile(item.local.path).metadata.num_rows
        except Exception as exc:
            raise VerificationError(
                f"{posixpath.basename(item.local.path)} has no readable footer: {exc}",
                table=table,
                step=Step.VERIFY,
            ) from exc
        if item.upload is not None:
            if (
                item.upload.bytes != item.local.bytes
                or sum(p.bytes for p in item.upload.parts) != item.local.bytes
            ):
                raise VerificationError(
                    f"the upload of {destination.url(item.staged_path)} is incomplete",
                    table=table,
                    step=Step.VERIFY,
                )
        elif destination.size(item.staged_path) != item.local.bytes:
            raise VerificationError(
                f"staged {destination.url(item.staged_path)} is incomplete",
                table=table,
                step=Step.VERIFY,
            )
    if footer_rows != rows_read:
        raise VerificationError(
            f"read {rows_read} rows but the Parquet footers hold {footer_rows}",
            table=table,
            step=Step.VERIFY,
        )


def publish(
    destination: Destination,
    table: str,
    date: str,
    staged: list[StagedFile],
    manifest: Manifest,
    guard: Guard = _unguarded,
) -> list[str]:
    """Complete the uploads or move the staged files into the partition, drop stale keys,
    write the manifest last. The caller holds the partition's lock; `guard` raises once it
    does not."""
    moved = [s for s in staged if s.upload is None]
    entry = Journal(
        table=table,
        date=date,
        manifest=manifest,
        staged=[s.staged_path for s in moved],
        bytes=[s.local.bytes for s in moved],
        uploads=[s.upload for s in staged if s.upload is not None],
    )
    guard()
    destination.write_text(destination.keys.journal(table, date), entry.to_json())
    return _apply(destination, entry, guard)


def _apply(destination: Destination, entry: Journal, guard: Guard) -> list[str]:
    """Idempotent: applying an entry again after a partial apply finishes the same publish."""
    table, date = entry.table, entry.date
    data_dir = destination.keys.data_dir(table, date)
    previous = destination.list_files(data_dir)
    _hold_for_test()
    published = []
    for staged_path, size in zip(entry.staged, entry.bytes, strict=True):
        target = posixpath.join(data_dir, posixpath.basename(staged_path))
        if destination.exists(staged_path):
            guard()
            destination.move_or_copy(staged_path, target)
        elif target not in previous or destination.size(target) != size:
            # A local move already done leaves no source, only a target of the staged size.
            raise VerificationError(
                f"cannot finish the interrupted publish of {date}: "
                f"{destination.url(staged_path)} is gone",
                table=table,
                step=Step.RECOVER,
            )
        published.append(target)
    for upload in entry.uploads:
        guard()
        complete(destination, upload, table)
        published.append(upload.key)
    guard()
    destination.remove([key for key in previous if key not in set(published)])
    guard()
    destination.write_text(destination.keys.manifest(table, date), entry.manifest.to_json())
    destination.remove([destination.keys.journal(table, date)])
    return published


def _hold_for_test() -> None:
    """Test-only (tests/integration/test_lock.py, test_multipart.py), never set in
    production: with RADAR_TEST_HOLD_PUBLISH=<file>, a publish that has journaled and listed
    its partition creates `<file>.held` and waits until `<file>` exists, so that a test can
    make a second run overlap the moment where two unlocked runs would mix their files, or
    look at the bucket before the first upload is completed."""
    gate = os.environ.get("RADAR_TEST_HOLD_PUBLISH")
    if not gate:
        return
    with open(f"{gate}.held", "w", encoding="utf-8"):
        pass
    while not os.path.exists(gate):
        time.sleep(0.05)


def roll_forward(
    destination: Destination, table: str, date: str, guard: Guard = _unguarded
) -> bool:
    """Finish the publish that a journal entry of this table and date records, if any; the
    caller holds the partition's lock. True if there was one."""
    path = destination.keys.journal(table, date)
    text = destination.read_text(path)
    if text is None:
        return False
    entry = _journal(destination, path, text, table)
    _apply(destination, entry, guard)
    destination.remove_tree(destination.keys.staging(entry.manifest.run_id, entry.table))
    return True


def _journal(destination: Destination, path: str, text: str, table: str) -> Journal:
    """A journal entry to roll forward; one this release cannot read (damaged, or of a newer
    format) is never applied: FormatError at step `recover`, naming the file."""
    try:
        return Journal.from_json(text, destination.url(path))
    except FormatError as exc:
        raise FormatError(exc.message, table=table, step=Step.RECOVER) from exc


def published_since(
    destination: Destination, tables: Collection[str], date: str, since: str | None
) -> dict[str, Manifest]:
    """table -> its manifest, for the tables whose partition of `date` was published at or after
    `since` (an ISO time; None: at any time). The manifest is written last, so one that
    exists stands for a whole publish. A manifest that cannot be read counts as not
    published: the table runs again, never the reverse."""
    start = None if since is None else datetime.fromisoformat(since)
    done: dict[str, Manifest] = {}
    for table in sorted(tables):
        path = destination.keys.manifest(table, date)
        text = destination.read_text(path)
        if text is None:
            continue
        try:
            manifest = Manifest.from_json(text, destination.url(path))
            published = datetime.fromisoformat(manifest.published_at)
        except (FormatError, ValueError):
            continue  # not readable as ours: run the table again
        if start is None or published >= start:
            done[table] = manifest
    return done


def recover(
    destination: Destination, tables: Collection[str] | None = None, *, run_id: str = "recover"
) -> list[str]:
    """Roll forward every publish a killed run left half-done; returns "table date" items.

    `tables` limits it to those tables: a shard must leave the others alone, since their
    entries may belong to another shard publishing at this very moment. Each entry is
    rolled forward under its partition's lock, taken as `run_id`; an entry whose partition
    another run holds is left to that run, which is publishing it (or, if it dies, to the
    run after the lease).
    """
    finished = []
    for path in destination.list_files(destination.keys.journals(), recursive=True):
        if tables is not None and destination.keys.table_of(path) not in tables:
            continue
        text = destination.read_text(path)
        if text is None:
            continue
        entry = _journal(destination, path, text, destination.keys.table_of(path))
        table, date = entry.table, entry.date
        lock = TableLock(
            destination, table, date, run_id, lease_s=destination.settings.lock_lease_s
        )
        try:
            lock.acquire(0)
        except PartitionLocked:
            who = lock.blocker.describe() if lock.blocker else "another run"
            logger.warning(
                "%s: the half-done publish of cog_dt_ingestion=%s is left to %s, "
                "which holds its lock",
                table,
                date,
                who,
            )
            continue
        try:
            if roll_forward(destination, table, date, lock.check):
                finished.append(f"{table} {date}")
        finally:
            lock.release()
    return finished


def clean_orphans(destination: Destination, *, older_than_hours: float = 24) -> list[str]:
    """Remove staging left by runs that died over `older_than_hours` ago (and were not
    journaled): younger ones may belong to a run still going, such as another shard."""
    journaled = {posixpath.dirname(p) for p in _journaled_staging(destination)}
    cutoff = datetime.now(UTC) - timedelta(hours=older_than_hours)
    removed = []
    for run_dir in destination.list_dirs(destination.keys.staging_root()):
        started = _run_started(posixpath.basename(run_dir))
        if started is not None and started < cutoff and run_dir not in journaled:
            destination.remove_tree(run_dir)
            removed.append(run_dir)
    return removed


def clean_uploads(
    destination: Destination,
    tables: Collection[str] | None = None,
    *,
    run_id: str = "clean",
    older_than_hours: float = 1,
) -> list[str]:
    """Abort the multipart uploads that dead runs left in the data locations without
    journaling them (they never reached the publish decision); returns their keys.

    Only uploads started over `older_than_hours` ago (a margin for clocks: the lock is what
    protects a live run), of `tables` (None: all), in a partition whose lock this run can
    take: a run that holds it may be uploading now. The next run of the same table and date
    aborts its partition's leftovers at once (`abort_leftovers`); this sweep reaches the
    partitions that no later run writes again.
    """
    if not destination.is_s3:
        return []
    found: dict[tuple[str, str], list[tuple[str, str]]] = {}
    cutoff = datetime.now(UTC) - timedelta(hours=older_than_hours)
    for path, upload_id, initiated in destination.list_uploads(destination.keys.data_root()):
        where = destination.keys.partition_of(path)
        if where is None or initiated >= cutoff or (tables is not None and where[0] not in tables):
            continue
        found.setdefault(where, []).append((path, upload_id))
    aborted = []
    for (table, date), uploads in sorted(found.items()):
        lock = TableLock(
            destination, table, date, run_id, lease_s=destination.settings.lock_lease_s
        )
        try:
            lock.acquire(0)
        except PartitionLocked:
            continue  # its holder may be uploading them; the lock's next holder aborts them
        try:
            # Read under the lock: a journal written since the listing is a publish decision.
            path = destination.keys.journal(table, date)
            text = destination.read_text(path)
            keep = (
                {u.upload_id for u in _journal(destination, path, text, table).uploads}
                if text
                else set()
            )
            for key, upload_id in uploads:
                if upload_id not in keep:
                    destination.abort_upload(key, upload_id)
                    aborted.append(key)
        finally:
            lock.release()
    return aborted


def _journaled_staging(destination: Destination) -> list[str]:
    staged: list[str] = []
    for path in destination.list_files(destination.keys.journals(), recursive=True):
        text = destination.read_text(path)
        if text:
            entry = Journal.from_json(text, destination.url(path))
            staged.extend(posixpath.dirname(p) for p in entry.staged)
    return staged


def _run_started(run_id: str) -> datetime | None:
    """Run ids are `<date>_<YYYYmmddTHHMMSSZ>_<hex>`."""
    parts = run_id.split("_")
    try:
        return datetime.strptime(parts[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except (IndexError, ValueError):
        return None
