"""The publish protocol: staged files become a partition only once all are verified.

S3 replaces one object atomically, never several. So a table's files are first
written to staging outside the data location, verified (footer row counts equal the
rows read; staged sizes equal local sizes), then moved into the partition; keys of
the partition that are not in the new set are deleted; the manifest is written last.
A failure before the move leaves the published partition untouched.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq

from extractor.errors import VerificationError
from extractor.sink.destination import Destination
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
    manifest: dict[str, Any],
) -> list[str]:
    """Move the staged files into the partition, drop stale keys, write the manifest last."""
    data_dir = destination.data_dir(table, date)
    previous = destination.list_files(data_dir)
    published = []
    for item in staged:
        target = posixpath.join(data_dir, posixpath.basename(item.staged_path))
        destination.move_or_copy(item.staged_path, target)
        published.append(target)
    destination.remove([key for key in previous if key not in set(published)])
    destination.write_text(
        destination.manifest_path(table, date),
        json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n",
    )
    return published
