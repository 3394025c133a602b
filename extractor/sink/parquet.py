"""Parquet files with the documented settings, row groups sized by bytes, files rolled by size.

pyarrow cannot append to an open row group: each `write_table` call closes one. So
batches are buffered until they hold `row_group_bytes` of Arrow data and then written
as one row group. The encoding runs on a writer thread (pyarrow releases the GIL) while
the next row group is read, so the reader never pauses: connectorx keeps reading ahead
into memory, without bound, while its consumer pauses (measured: +250 MB during a 3 s
pause), so a pause-free consumer is what bounds memory (tables of wide rows read through a
gated relay instead: source/batching.py). At most one row group is in flight: two buffers
at most.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# The documented layout: SNAPPY, 1 MiB data pages, dictionary encoding, INT64 microsecond
# timestamps (never INT96 or nanoseconds, which Athena and Glue misread).
PARQUET_OPTIONS: dict[str, object] = {
    "compression": "snappy",
    "write_statistics": True,
    "version": "2.6",
    "coerce_timestamps": "us",
    "allow_truncated_timestamps": False,
    "use_deprecated_int96_timestamps": False,
}


# The sample the dictionary rule is judged on: the first rows, as many as a read batch held
# when the rule was measured, whatever the batch size now (batches are sized by bytes).
DICTIONARY_SAMPLE_ROWS = 50_000


def dictionary_columns(sample: pa.RecordBatch | pa.Table) -> list[str]:
    """Columns worth dictionary encoding, judged on the first rows (DICTIONARY_SAMPLE_ROWS).

    Dictionary encoding is on, as documented, for every column where it pays. A column whose
    first batch is over half distinct values (ids, amounts, timestamps) would only fill a
    dictionary page and fall back to PLAIN, as parquet-mr does after 1 MB: skipping the
    attempt saved 30% of the encoding CPU on the benchmark table, at the same file size.
    """
    chosen = []
    for field, column in zip(sample.schema, sample.columns, strict=True):
        if pa.types.is_nested(field.type):  # compat's structs; count_distinct has no kernel
            continue
        present = len(column) - column.null_count
        if present == 0 or pc.count_distinct(column).as_py() <= present // 2:
            chosen.append(field.name)
    return chosen


@dataclass(frozen=True)
class WrittenFile:
    path: str
    rows: int
    bytes: int


def file_name(table: str, number: int) -> str:
    return f"file_{table}_{number:03d}.parquet"


class FileNumbers:
    """The next file number of a table, shared by the writers of its streams: a number is
    taken when a file opens (on S3 its upload targets its final key from then on), so the
    streams' files are numbered 001, 002, ... without a gap or a clash."""

    def __init__(self, first: int = 1) -> None:
        self._next = first
        self._mutex = threading.Lock()

    def take(self) -> int:
        with self._mutex:
            number, self._next = self._next, self._next + 1
            return number


class RollingParquetWriter:
    """Writes `file_<table>_001.parquet`, `_002`, ... into a local directory.

    `on_file` is called with each finished file, so it can be uploaded while the
    next one is written; `on_open` with the path of each file as it is created, so its
    bytes can be uploaded as they are written. `numbers`, shared by the writers of one
    table's streams, numbers the files across them (one writer alone counts its own).
    """

    def __init__(
        self,
        directory: str,
        table: str,
        schema: pa.Schema,
        *,
        row_group_bytes: int,
        file_max_bytes: int,
        page_bytes: int,
        on_file: Callable[[WrittenFile], None] | None = None,
        coerce_timestamps: str | None = "us",
        on_open: Callable[[str], None] | None = None,
        numbers: FileNumbers | None = None,
        empty_file: bool = True,
    ) -> None:
        self.directory = directory
        self.table = table
        self.schema = schema
        self.row_group_bytes = row_group_bytes
        self.file_max_bytes = file_max_bytes
        self.page_bytes = page_bytes
        self.on_file = on_file
        self.on_open = on_open
        self.numbers = numbers or FileNumbers()
        # False for all but one stream of a table: the partition needs one file holding the
        # schema when it has no rows, not one per stream.
        self.empty_file = empty_file
        # None keeps each timestamp's own unit: a compatible write repeats Airbyte's millis.
        self._options = {**PARQUET_OPTIONS, "coerce_timestamps": coerce_timestamps}
        self.files: list[WrittenFile] = []
        self._buffer: list[pa.RecordBatch] = []
        self._buffered_bytes = 0
        self._buffered_rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._sink: pa.NativeFile | None = None
        self._path = ""
        self._rows_in_file = 0
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet")
        self._in_flight: Future[None] | None = None
        self._dictionary: list[str] | None = None

    def write(self, batch: pa.RecordBatch) -> None:
        self._buffer.append(batch)
        self._buffered_bytes += batch.nbytes
        self._buffered_rows += batch.num_rows
        if self._dictionary is None and self._buffered_rows >= DICTIONARY_SAMPLE_ROWS:
            self._judge_dictionary()
        if self._buffered_bytes >= self.row_group_bytes:
            self._hand_off()

    def close(self) -> list[WrittenFile]:
        """Finish the last file; an empty table still gets one file holding its schema
        (unless `empty_file` is off)."""
        if self._buffer or (self.empty_file and not self.files and self._in_flight is None):
            self._hand_off()
        self._wait()
        self._encoder.shutdown()
        self._close_file()
        return self.files

    def abort(self) -> None:
        """Stop after a failure: wait for the encoder, close handles, keep no promises."""
        with contextlib.suppress(Exception):  # the table failed; its files are discarded
            self._wait()
        self._encoder.shutdown()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    def _judge_dictionary(self) -> None:
        table = pa.Table.from_batches(self._buffer, schema=self.schema)
        self._dictionary = dictionary_columns(table.slice(0, DICTIONARY_SAMPLE_ROWS))

    def _hand_off(self) -> None:
        if self._dictionary is None and self._buffer:
            self._judge_dictionary()
        table = pa.Table.from_batches(self._buffer, schema=self.schema)
        self._buffer = []
        self._buffered_bytes = 0
        self._buffered_rows = 0
        self._wait()
        self._in_flight = self._encoder.submit(self._write_row_group, table)

    def _wait(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            in_flight.result()

    def _write_row_group(self, table: pa.Table) -> None:
        if self._writer is None:
            self._open_file()
        assert self._writer is not None
        if table.num_rows:
            self._writer.write_table(table, row_group_size=table.num_rows)
        self._rows_in_file += table.num_rows
        assert self._sink is not None
        if self._sink.tell() >= self.file_max_bytes:
            self._close_file()

    def _open_file(self) -> None:
        self._path = os.path.join(self.directory, file_name(self.table, self.numbers.take()))
        self._rows_in_file = 0
        self._sink = pa.OSFile(self._path, "wb")
        self._writer = pq.ParquetWriter(
            self._sink,
            self.schema,
            data_page_size=self.page_bytes,
            use_dictionary=self._dictionary if self._dictionary is not None else True,
            **self._options,
        )
        if self.on_open is not None:
            self.on_open(self._path)

    def _close_file(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        if self._sink is not None:
            self._sink.close()
            self._sink = None
        done = WrittenFile(self._path, self._rows_in_file, os.path.getsize(self._path))
        self.files.append(done)
        if self.on_file is not None:
            self.on_file(done)
