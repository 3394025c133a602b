"""How many rows a read batch holds: about `batch_bytes` of Arrow data, whatever the row width.

connectorx fixes a query's batch size in rows before the first row arrives (it flushes a
batch every `batch_size` rows and has no byte limit), so the count comes from the server's
estimate of the average row: information_schema's DATA_LENGTH / TABLE_ROWS (AVG_ROW_LENGTH),
at least 8 bytes a column (connectorx widens integers, dates and offsets to 64 bits). That
is all a query can be told; the bytes actually read steer what follows it: the relay's
read-ahead window (counted in the rows' wire bytes, tls_proxy.py) and the row groups
(sink/parquet.py, by buffered bytes).

A few huge values cannot fool this far: a batch holds `rows` rows, each at most the server's
max_allowed_packet, and wide tables read through the relay, whose window holds the reader
back by the bytes it has read ahead, not by a row count alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from extractor.contract.types import Column

_BYTES_PER_COLUMN = 8
# The most one value of these types can hold (a LONGBLOB: 4 GiB), and what one row can
# carry: MySQL sends no row past max_allowed_packet (16 MiB by default on MariaDB 10.11,
# 64 MiB on MySQL 8 and RDS). Used only for a table the server has no estimate for.
_DECLARED_MAX = {
    "tinyblob": 255,
    "tinytext": 255 * 4,
    "blob": 65_535,
    "text": 65_535,
    "mediumblob": 16 * 1024**2,
    "mediumtext": 16 * 1024**2,
}
_ROW_MAX = 64 * 1024**2
_FIXED = {
    "tinyint",
    "smallint",
    "mediumint",
    "int",
    "integer",
    "bigint",
    "bit",
    "decimal",
    "numeric",
    "float",
    "double",
    "real",
    "date",
    "datetime",
    "timestamp",
    "time",
    "year",
}
_CHARS = re.compile(r"\((\d+)\)")
# From this width on, a table reads through the relay (tls_proxy.py), which holds the server's
# bytes back while the consumer is behind: for rows this wide the Parquet writer is slower than
# the reader (it handles every byte again), and the relay's count of MySQL packets costs next
# to nothing at a few packets per read. Narrower tables keep the direct connection, as fast.
GATED_ROW_BYTES = 16 * 1024
# Row groups of such rows are cut at this size at most: pyarrow's encoder holds about twice a
# row group while it writes one (measured: +180 MB for 96 MiB of 1 MiB values), on top of
# the two buffers (sink/parquet.py). 32 MiB took ~60-100 MB off the peak on 1 MiB rows.
WIDE_ROW_GROUP_BYTES = 32 * 1024**2


@dataclass(frozen=True)
class BatchPlan:
    """How one table's SELECT is read."""

    rows: int  # rows per connectorx batch
    row_bytes: int  # the estimated Arrow bytes of one row
    window_bytes: int = 0  # read-ahead the relay allows, in wire bytes; 0: no relay needed

    @property
    def gated(self) -> bool:
        return self.window_bytes > 0

    def row_group_bytes(self, configured: int) -> int:
        """The row-group size for this table: the setting, at most 32 MiB for wide rows."""
        return min(configured, WIDE_ROW_GROUP_BYTES) if self.gated else configured


def declared_row_bytes(columns: list[Column]) -> int:
    """The widest row the declared types allow, up to what MySQL sends in one row."""
    total = 0
    for c in columns:
        if c.data_type in _DECLARED_MAX:
            total += _DECLARED_MAX[c.data_type]
        elif c.data_type in ("char", "varchar", "binary", "varbinary"):
            found = _CHARS.search(c.column_type)
            length = int(found.group(1)) if found else 255
            total += length * (1 if "binary" in c.data_type else 4)  # utf8mb4: 4 bytes
        elif c.data_type in _FIXED or c.data_type in ("enum", "set"):
            total += _BYTES_PER_COLUMN
        else:  # LONGBLOB, LONGTEXT, JSON, GEOMETRY, and whatever else may be long
            total += _ROW_MAX
    return min(total, _ROW_MAX)


def plan_batches(
    columns: list[Column],
    estimated_rows: int,
    estimated_bytes: int,
    batch_bytes: int,
    max_rows: int,
) -> BatchPlan:
    """Rows per batch for `batch_bytes` of data, 1..max_rows, and whether to gate the read.

    Without an estimate (TABLE_ROWS or DATA_LENGTH 0: a new table, statistics not loaded
    yet; seen on MariaDB for a 2 GB table now and then), the widest row the declared types
    allow stands in: small batches for a table with BLOBs, never one of the whole table.
    """
    if estimated_rows > 0 and estimated_bytes > 0:
        row_bytes = estimated_bytes // estimated_rows
    else:
        row_bytes = declared_row_bytes(columns)
    row_bytes = max(row_bytes, _BYTES_PER_COLUMN * len(columns), 1)
    rows = max(1, min(max_rows, batch_bytes // row_bytes))
    if row_bytes < GATED_ROW_BYTES:
        return BatchPlan(rows, row_bytes)
    return BatchPlan(rows, row_bytes, window_bytes=2 * batch_bytes)  # two batches ahead
