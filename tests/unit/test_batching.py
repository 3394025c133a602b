"""Batches sized by bytes, BLOB batches cut under 32-bit offsets, the relay's gate."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from extractor.contract.casts import convert_batch, offset_safe
from extractor.contract.types import Column, arrow_schema, plan_column
from extractor.sink.parquet import RollingParquetWriter
from extractor.source.batching import GATED_ROW_BYTES, plan_batches
from extractor.source.tls_proxy import _Window

MIB = 1024 * 1024
NARROW = [Column("id", "bigint", "bigint"), Column("name", "varchar", "varchar(50)")]
WIDE = [*NARROW, Column("content", "longblob", "longblob")]


@pytest.mark.parametrize(
    ("columns", "rows", "data", "want_rows", "gated"),
    [
        pytest.param(NARROW, 3_000_000, 30_000_000, 50_000, False, id="narrow-capped-by-rows"),
        pytest.param(NARROW, 1_000_000, 1_000_000_000, 2_097, False, id="1k-rows"),
        pytest.param(WIDE, 2_000, 2_300_000_000, 1, True, id="1MiB-rows"),
        pytest.param(WIDE, 1_000, 20_000_000, 104, True, id="20KiB-rows"),
        pytest.param(WIDE, 0, 0, 1, True, id="no-estimate-longblob"),
        pytest.param(NARROW, 0, 16_384, 10_082, False, id="no-estimate-narrow"),
    ],
)
def test_rows_per_batch_come_from_bytes(
    columns: list[Column], rows: int, data: int, want_rows: int, gated: bool
) -> None:
    plan = plan_batches(columns, rows, data, 2 * MIB, 50_000)
    assert (plan.rows, plan.gated) == (want_rows, gated)
    assert plan.gated == (plan.row_bytes >= GATED_ROW_BYTES)
    assert plan.row_group_bytes(96 * MIB) == (32 * MIB if gated else 96 * MIB)


def _blobs(sizes: list[int]) -> pa.RecordBatch:
    values = [os.urandom(s) if s >= 0 else None for s in sizes]
    return pa.record_batch(
        [pa.array(range(len(sizes)), pa.int64()), pa.array(values, pa.large_binary())],
        names=["id", "content"],
    )


def test_a_batch_past_the_offset_limit_is_cut_into_slices_that_cast_and_round_trip(
    tmp_path: Path,
) -> None:
    # The limit is lowered so that KiBs stand in for GiBs; the rule is the same.
    batch = _blobs([300, 500, -1, 200, 900, 0, 400, 2_000, 100])
    slices = offset_safe(batch, limit=1_000)
    assert sum(s.num_rows for s in slices) == batch.num_rows
    for piece in slices:
        data = sum(len(v or b"") for v in piece.column(1).to_pylist())
        assert data < 1_000 or piece.num_rows == 1  # a row past the limit stands alone
    assert [s.num_rows for s in slices] == [3, 1, 2, 1, 1, 1]
    assert offset_safe(batch) == [batch]  # far below 2 GiB: untouched
    plans = [
        plan_column(Column("id", "bigint", "bigint")),
        plan_column(Column("content", "longblob", "longblob")),
    ]
    schema = arrow_schema(plans)
    writer = RollingParquetWriter(
        str(tmp_path), "t", schema, row_group_bytes=MIB, file_max_bytes=64 * MIB, page_bytes=MIB
    )
    for piece in slices:
        converted, nulled = convert_batch(piece, plans, schema, "t")
        assert converted.schema.field("content").type == pa.binary() and not nulled
        writer.write(converted)
    (written,) = writer.close()
    assert pq.read_table(written.path).column("content").to_pylist() == batch.column(1).to_pylist()


def test_row_groups_are_cut_by_bytes_when_one_row_is_larger_than_the_target(tmp_path: Path) -> None:
    plans = [
        plan_column(Column("id", "bigint", "bigint")),
        plan_column(Column("content", "longblob", "longblob")),
    ]
    schema = arrow_schema(plans)
    writer = RollingParquetWriter(
        str(tmp_path), "t", schema, row_group_bytes=MIB, file_max_bytes=4 * MIB, page_bytes=MIB
    )
    sizes = [3 * MIB, 100, 200, 2 * MIB, 4 * MIB]
    for size in sizes:
        writer.write(convert_batch(_blobs([size]), plans, schema, "t")[0])
    files = writer.close()
    groups = [
        pq.ParquetFile(f.path).metadata.row_group(i).num_rows
        for f in files
        for i in range(pq.ParquetFile(f.path).metadata.num_row_groups)
    ]
    assert groups == [1, 3, 1]  # 3 MiB; 100 B + 200 B + 2 MiB; 4 MiB
    assert len(files) == 2  # rolled once the first file passed 4 MiB
    values = pa.concat_tables(pq.read_table(f.path) for f in files).column("content")
    assert [len(v) for v in values.to_pylist()] == sizes


def _packet(length: int) -> bytes:
    return length.to_bytes(3, "little") + b"\x00" + b"x" * length


def test_the_gate_counts_packets_across_reads_and_opens_while_the_parent_waits() -> None:
    read, write = os.pipe()
    try:
        gate = _Window(read, window_bytes=1_000)
        stream = _packet(10) + _packet(600) + _packet(700) + _packet(5)
        for at in range(0, len(stream), 7):  # headers split across reads
            gate.count(memoryview(stream[at : at + 7]))
        assert gate.packets == 4
        assert not gate.open()  # 1,331 bytes ahead, nothing taken, the parent busy
        os.write(write, (2 * 2 + 0).to_bytes(8, "little"))  # took 2 rows, busy
        gate.read()
        assert gate.taken == 2 and gate.open()  # 713 bytes ahead
        gate.count(memoryview(_packet(400)))
        assert not gate.open()
        os.write(write, (2 * 2 + 1).to_bytes(8, "little"))  # waits for more: always open
        gate.read()
        assert gate.open()
        # A row of 16 MiB or more: full packets continue it, the shorter one ends it.
        before = gate.packets
        gate.count(memoryview(b"\xff\xff\xff\x00"))
        gate._skip = 0  # its 16 MiB - 1 payload, skipped for the test
        gate.count(memoryview(_packet(3)))
        assert gate.packets == before + 1
    finally:
        os.close(write)
    gate.read()
    assert gate.wide_open  # the parent closed its end: nothing left to hold back
    os.close(read)
