"""Rows of MiBs: values round-trip exactly, and batches and row groups follow bytes, not rows."""

from __future__ import annotations

import glob
import hashlib
import random
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import NUMBERS_TO_100K, Result, Server

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
PREFIX = "origin=airbyte/database=bronze_radar"
# 1-3 MiB documents, three of 6 MiB together mid-table (the average alone would put them in
# one batch), an empty one and a NULL. 6 MiB as pymysql's hex text is 12 MiB: under MariaDB's
# default max_allowed_packet of 16 MiB.
SIZES = {n: (6 * MIB if n in (10, 11, 12) else MIB + n * 97_531 % (2 * MIB)) for n in range(1, 25)}
SIZES[5] = 0


def _content(n: int) -> bytes | None:
    if n == 6:
        return None
    return random.Random(n).randbytes(SIZES[n])


def _body(n: int) -> str:
    return f"documento {n}: ação ✓ 😀 " * (n * 2_000)  # multi-byte UTF-8, up to ~1.4 MiB


@pytest.fixture
def wide_db(make_database: Callable[..., str], server: Server) -> str:
    name = make_database(
        "CREATE TABLE document (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL,"
        " content LONGBLOB NULL, body LONGTEXT NULL)",
        "CREATE TABLE store (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL)",
        f"INSERT INTO store SELECT seq, CONCAT('loja ', seq) FROM ({NUMBERS_TO_100K}) AS n"
        " WHERE seq <= 3000",
    )
    conn = server.connect(name)
    with conn.cursor() as cur:
        for n in SIZES:
            cur.execute(
                "INSERT INTO document VALUES (%s, %s, %s, %s)",
                (n, f"doc-{n}.pdf", _content(n), _body(n)),
            )
        cur.execute("ANALYZE TABLE document, store")  # the estimates batches are sized by
        cur.fetchall()
    conn.close()
    return name


def _files(root: Path, table: str) -> list[str]:
    return sorted(glob.glob(f"{root}/{PREFIX}/{table}/cog_dt_ingestion=*/*.parquet"))


def test_values_of_mibs_round_trip_exactly_in_the_contract_types(
    cli: Callable[..., Result], server: Server, wide_db: str, tmp_path: Path
) -> None:
    result = cli(
        "extract",
        "--workers",
        "1",
        env={"RADAR_MYSQL_URL": server.url(wide_db), "RADAR_DEST": str(tmp_path)},
    )
    assert result.code == 0, result.output
    files = _files(tmp_path, "document")
    table = pa.concat_tables(pq.read_table(f) for f in files).sort_by("id")
    assert table.column("id").to_pylist() == sorted(SIZES)
    got = dict(
        zip(table.column("id").to_pylist(), table.column("content").to_pylist(), strict=True)
    )
    for n in SIZES:
        want = _content(n)
        assert (got[n] is None) == (want is None), n
        if want is not None and got[n] is not None:
            assert (
                len(got[n]) == len(want)
                and hashlib.sha256(got[n]).digest() == hashlib.sha256(want).digest()
            ), n
    assert table.column("body").to_pylist() == [_body(n) for n in sorted(SIZES)]
    # The contract's types, unchanged for readers: binary / string (32-bit offsets), which
    # Parquet stores as BYTE_ARRAY, the text with the STRING logical type.
    schema = pq.read_schema(files[0])
    assert schema.field("content").type == pa.binary()
    assert schema.field("body").type == pa.string()
    parquet = pq.ParquetFile(files[0]).schema
    content, body = parquet.column(2), parquet.column(3)
    assert content.physical_type == body.physical_type == "BYTE_ARRAY"
    assert str(body.logical_type) == "String" and str(content.logical_type) == "None"


def test_batches_and_row_groups_follow_bytes_not_rows(
    cli: Callable[..., Result], server: Server, wide_db: str, tmp_path: Path
) -> None:
    # Row groups of 1 MiB hold whole read batches: one row each shows that a batch of these
    # MiB rows held one row (50,000 a batch, the old fixed count, made one row group of all).
    result = cli(
        "extract",
        "--workers",
        "1",
        env={
            "RADAR_MYSQL_URL": server.url(wide_db),
            "RADAR_DEST": str(tmp_path),
            "RADAR_BATCH_MB": "1",
            "RADAR_ROW_GROUP_MB": "1",
        },
    )
    assert result.code == 0, result.output
    groups = [
        pq.ParquetFile(f).metadata.row_group(i)
        for f in _files(tmp_path, "document")
        for i in range(pq.ParquetFile(f).metadata.num_row_groups)
    ]
    expected, held, rows = [], 0, 0  # the writer's rule: cut once 1 MiB is buffered
    for n in sorted(SIZES):
        held += len(_content(n) or b"") + len(_body(n).encode())
        rows += 1
        if held >= MIB:
            expected.append(rows)
            held = rows = 0
    assert [g.num_rows for g in groups] == expected + ([rows] if rows else [])
    assert max(expected) <= 3 and expected.count(1) >= len(SIZES) - 3
    # A row larger than the target is a row group of its own, never split nor merged.
    largest = max(g.total_byte_size for g in groups)
    assert 6 * MIB <= largest < 6 * MIB + 2 * 1024**2
    # The narrow table at the same settings: its rows are small, so batches hold thousands.
    narrow = pq.ParquetFile(_files(tmp_path, "store")[0]).metadata
    assert narrow.num_rows == 3000 and narrow.row_group(0).num_rows > 1000
