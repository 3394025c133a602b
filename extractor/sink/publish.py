"""The publish protocol: staged files become a partition only once all are verified.

S3 replaces one object atomically, never several. So a table's files are first
written to staging outside the data location, verified (footer row counts equal the
rows read; staged sizes equal local sizes), then moved into the partition; keys of
the partition that are not in the new set are deleted; the manifest is written last.
A failure before the move leaves the published partition untouched.

The move itself is journaled: before the first key changes, a journal entry names the
verified staged files and the manifest. A run killed in the middle of a move leaves the
entry and the staging behind, and the next run (`recover`) rolls that publish forward,
so a partition is never left mixed for longer than until the next run starts.
"""

from __future__ import annotations

import posixpath
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq

from extractor.errors import FormatError, VerificationError
from extractor.sink.destination import Destination
from extractor.sink.journal import Journal
from extractor.sink.manifest import Manifest
from extractor.sink.parquet import WrittenFile


@dataclass(frozen=True)
class StagedFile:
    local: WrittenFile
    staged_path: str


def verify(staged: list[StagedFile], rows_read: int, destination: Destination, table: str) -> None:
    """Every footer readable, footer rows = rows read, every staged object complete."""
    footer_rows = 0
    for item in staged:
        try:
            footer_rows += pq.ParquetFile(item.local.path).metadata.num_rows
        except Exception as exc:
            raise VerificationError(
                f"{posixpath.basename(item.local.path)} has no readable footer: {exc}",
                table=table, step="verify",
            ) from exc
        if destination.size(item.staged_path) != item.local.bytes:
            raise VerificationError(
                f"staged {destination.url(item.staged_path)} is incomplete",
                table=table, step="verify",
            )
    if footer_rows != rows_read:
        raise VerificationError(
            f"read {rows_read} rows but the Parquet footers hold {footer_rows}",
            table=table, step="verify",
        )


def publish(
    destination: Destination,
    table: str,
    date: str,
    staged: list[StagedFile],
    manifest: Manifest,
) -> list[str]:
    """Move the staged files into the partition, drop stale keys, write the manifest last."""
    entry = Journal(table=table, date=date, manifest=manifest,
                    staged=[s.staged_path for s in staged], bytes=[s.local.bytes for s in staged])
    destination.write_text(destination.keys.journal(table, date), entry.to_json())
    return _apply(destination, entry)


def _apply(destination: Destination, entry: Journal) -> list[str]:
    """Idempotent: applying an entry again after a partial apply finishes the same publish."""
    table, date = entry.table, entry.date
    data_dir = destination.keys.data_dir(table, date)
    previous = destination.list_files(data_dir)
    published = []
    for staged_path, size in zip(entry.staged, entry.bytes, strict=True):
        target = posixpath.join(data_dir, posixpath.basename(staged_path))
        if destination.exists(staged_path):
            destination.move_or_copy(staged_path, target)
        elif target not in previous or destination.size(target) != size:
            # A local move already done leaves no source, only a target of the staged size.
            raise VerificationError(
                f"cannot finish the interrupted publish of {date}: "
                f"{destination.url(staged_path)} is gone", table=table, step="recover")
        published.append(target)
    destination.remove([key for key in previous if key not in set(published)])
    destination.write_text(destination.keys.manifest(table, date), entry.manifest.to_json())
    destination.remove([destination.keys.journal(table, date)])
    return published


def published_since(destination: Destination, tables: Collection[str], date: str,
                    since: str | None) -> dict[str, Manifest]:
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


def recover(destination: Destination, tables: Collection[str] | None = None) -> list[str]:
    """Roll forward every publish a killed run left half-done; returns "table date" items.

    `tables` limits it to those tables: a shard must leave the others alone, since their
    entries may belong to another shard publishing at this very moment.
    """
    finished = []
    for path in destination.list_files(destination.keys.journals(), recursive=True):
        if tables is not None and destination.keys.table_of(path) not in tables:
            continue
        text = destination.read_text(path)
        if text is None:
            continue
        entry = Journal.from_json(text, destination.url(path))
        _apply(destination, entry)
        destination.remove_tree(destination.keys.staging(entry.manifest.run_id, entry.table))
        finished.append(f"{entry.table} {entry.date}")
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
