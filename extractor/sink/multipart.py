"""S3 without a second copy: each file's parts go to its final key while the table is read.

A multipart upload is invisible (to ListObjectsV2, GET and HEAD) until it is completed, and
completing it makes the whole object appear at once, replacing any object of that key: the
trick of Hadoop S3A's magic committer. So a file's upload starts when the Parquet writer
opens it, parts are sent as the file grows, and the last part follows its footer; the upload
is left open. Publishing (extractor/sink/publish.py) completes them, after verify and after
journaling them; a failed table aborts them.

Parquet files only grow: the writer appends pages and writes the footer last, never seeking
back, so every byte below a file's size on disk is final and can be sent before the file is
closed. Parts are `part_bytes` long (S3: at least 5 MiB, except the last; at most 10,000),
so at most one part and the footer are left to send once the read ends.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import posixpath
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from extractor.errors import DestinationError, ExtractError, Step, VerificationError
from extractor.sink.destination import Destination
from extractor.sink.parquet import WrittenFile

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
PART_BYTES = 8 * MIB  # S3's recommended size: a short tail after the read, few requests
MAX_PARTS = 10_000  # S3's limit per upload
_POLL_S = 0.05  # how often a growing file is looked at


def part_bytes(file_max_bytes: int, row_group_bytes: int) -> int:
    """The part size for files of at most `file_max_bytes` (a file closes after the row group
    that crosses it): 8 MiB, or more if the largest file needs over 9,000 parts."""
    largest = file_max_bytes + row_group_bytes
    return max(PART_BYTES, math.ceil(largest / 9_000 / MIB) * MIB)


@dataclass(frozen=True)
class Part:
    number: int
    etag: str
    bytes: int


@dataclass(frozen=True)
class PendingUpload:
    """A multipart upload whose parts are all sent and which is not completed yet (journaled
    by extractor/sink/journal.py)."""

    key: str
    upload_id: str
    parts: tuple[Part, ...]
    bytes: int

    def composite_etag(self) -> str:
        """The ETag S3 gives the completed object: the MD5 of the parts' MD5s, and their count."""
        digests = b"".join(bytes.fromhex(p.etag.strip('"')) for p in self.parts)
        return f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(self.parts)}"


def complete(destination: Destination, upload: PendingUpload, table: str) -> None:
    """Complete `upload`; idempotent. An upload that is gone is fine if its key holds the
    object it made (a completion whose reply was lost, or a killed run's last completion)."""
    parts = [(p.number, p.etag) for p in upload.parts]
    if destination.complete_upload(upload.key, upload.upload_id, parts):
        return
    found = destination.etag(upload.key)
    if found is not None and _made_by(upload, *found):
        return
    raise VerificationError(
        f"cannot complete the upload of {destination.url(upload.key)}: it was aborted, and "
        f"the key does not hold its object",
        table=table,
        step=Step.PUBLISH,
    )


def _made_by(upload: PendingUpload, etag: str, size: int) -> bool:
    if size != upload.bytes:
        return False
    if all(len(p.etag.strip('"')) == 32 for p in upload.parts):
        return etag == upload.composite_etag()
    # SSE-KMS and SSE-C part ETags are not MD5s, so neither is the object's: the count only.
    return etag.endswith(f"-{len(upload.parts)}")


def abort_leftovers(destination: Destination, directory: str) -> int:
    """Abort every upload in progress under `directory`; the caller holds the partition's
    lock and has rolled its journal forward, so they are a killed run's. Returns how many."""
    leftovers = destination.list_uploads(directory)
    for path, upload_id, _ in leftovers:
        destination.abort_upload(path, upload_id)
    return len(leftovers)


class _File:
    """One local file being written, and what its upload knows about it."""

    def __init__(self, path: str, key: str) -> None:
        self.path, self.key = path, key
        self.final: WrittenFile | None = None
        self.closed = threading.Event()

    def finish(self, written: WrittenFile) -> None:
        self.final = written
        self.closed.set()


class MultipartUploader:
    """Uploads each file of one table to its key in `data_dir` while it is written.

    `open` and `finish` are the Parquet writer's `on_open` and `on_file` hooks (of every
    writer of the table's streams). `wait` returns the pending uploads once every file is
    closed; `abort` drops every upload this table started (a failed table leaves none
    behind). At most `files_at_once` files upload at a time (two, or one more than the
    streams, each of which keeps a file open), one request each, so a table holds at most
    that many parts in memory.
    """

    def __init__(
        self, destination: Destination, data_dir: str, part_size: int, *, files_at_once: int = 2
    ) -> None:
        self.destination, self.data_dir, self.part_size = destination, data_dir, part_size
        self._pool = ThreadPoolExecutor(
            max_workers=max(2, files_at_once), thread_name_prefix="upload"
        )
        self._files: dict[str, _File] = {}
        self._futures: list[tuple[_File, Future[PendingUpload]]] = []
        self._started: list[tuple[str, str]] = []  # (key, upload id): what `abort` aborts
        self._mutex = threading.Lock()
        self._cancelled = threading.Event()

    def open(self, path: str) -> None:
        item = _File(path, posixpath.join(self.data_dir, os.path.basename(path)))
        self._files[path] = item
        self._futures.append((item, self._pool.submit(self._upload, item)))

    def finish(self, written: WrittenFile) -> None:
        self._files[written.path].finish(written)

    def wait(self) -> list[tuple[WrittenFile, PendingUpload]]:
        done = []
        for item, future in self._futures:
            upload = future.result()
            assert item.final is not None  # the writer closed every file it opened
            done.append((item.final, upload))
        return done

    def abort(self) -> None:
        """Stop sending and abort every upload started; never raises (what cannot be aborted
        now is aborted by a later run, or by the bucket's lifecycle rule)."""
        self._cancelled.set()
        for item in self._files.values():
            item.closed.set()
        self._pool.shutdown(wait=True, cancel_futures=True)  # no part in flight after this
        with self._mutex:
            started, self._started = self._started, []
        for key, upload_id in started:
            try:
                self.destination.abort_upload(key, upload_id)
            except ExtractError as exc:
                logger.warning(
                    "could not abort the upload of %s: %s", self.destination.url(key), exc
                )

    def shutdown(self) -> None:
        self._cancelled.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _upload(self, item: _File) -> PendingUpload:
        upload_id = self.destination.create_upload(item.key)
        with self._mutex:
            self._started.append((item.key, upload_id))
        parts: list[Part] = []
        sent = 0
        with open(item.path, "rb") as handle:
            while not self._cancelled.is_set():
                final = item.final  # read before the size: then a final size is the whole file
                size = final.bytes if final is not None else os.path.getsize(item.path)
                while size - sent >= self.part_size or (final is not None and sent < size):
                    if self._cancelled.is_set():
                        break
                    if len(parts) == MAX_PARTS:
                        raise DestinationError(
                            f"{self.destination.url(item.key)} needs over {MAX_PARTS} parts "
                            f"of {self.part_size // MIB} MiB",
                            step=Step.UPLOAD,
                        )
                    data = handle.read(min(self.part_size, size - sent))
                    number = len(parts) + 1
                    etag = self.destination.upload_part(item.key, upload_id, number, data)
                    parts.append(Part(number, etag, len(data)))
                    sent += len(data)
                if final is not None:
                    return PendingUpload(item.key, upload_id, tuple(parts), sent)
                item.closed.wait(_POLL_S)
        raise DestinationError(
            f"upload of {self.destination.url(item.key)} cancelled", step=Step.UPLOAD
        )
