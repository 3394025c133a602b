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

from dataclasses import dataclass

# connectorx's MySQL parser reads this many rows before it builds any of them
# (DB_BUFFER_SIZE in connectorx 0.4.6): the relay must let them through to make progress.
CONNECTORX_ROW_BUFFER = 32
_BYTES_PER_COLUMN = 8
# From this width on, a table reads through the relay (tls_proxy.py), which holds the server's
# bytes back while the consumer is behind: for rows this wide the Parquet writer is slower than
# the reader (it handles every byte again), and the relay's count of MySQL packets costs next
# to nothing at a few packets per read. Narrower tables keep the direct connection, as fast.
GATED_ROW_BYTES = 16 * 1024


@dataclass(frozen=True)
class BatchPlan:
    """How one table's SELECT is read."""

    rows: int  # rows per connectorx batch
    row_bytes: int  # the estimated Arrow bytes of one row
    window_bytes: int = 0  # read-ahead the relay allows, in wire bytes; 0: no relay needed
    window_rows: int = 0  # ... and at least this many packets, so that a batch can complete

    @property
    def gated(self) -> bool:
        return self.window_bytes > 0


def plan_batches(
    columns: int, estimated_rows: int, estimated_bytes: int, batch_bytes: int, max_rows: int
) -> BatchPlan:
    """Rows per batch for `batch_bytes` of data, 1..max_rows, and whether to gate the read.

    A table the server has no estimate for (TABLE_ROWS 0: new, or never analysed) counts its
    whole DATA_LENGTH as one row: small batches, never a huge one.
    """
    row_bytes = max(estimated_bytes // max(estimated_rows, 1), _BYTES_PER_COLUMN * columns, 1)
    rows = max(1, min(max_rows, batch_bytes // row_bytes))
    if row_bytes < GATED_ROW_BYTES:
        return BatchPlan(rows, row_bytes)
    # Two batches of read-ahead; in packets, connectorx's own buffer and the protocol's
    # packets before the first row (the prepared statement's and the result's column
    # definitions) on top of one batch.
    return BatchPlan(rows, row_bytes, window_bytes=2 * batch_bytes,
                     window_rows=rows + CONNECTORX_ROW_BUFFER + 2 * columns + 16)
