"""Contender (c): the straightforward pymysql -> pyarrow -> Parquet script.

Usage: plain_pymysql.py URL TABLE OUTFILE
  URL like mysql+pymysql://user:pass@host:3306/database

Streams the table with an unbuffered SSCursor, 10k rows per fetchmany, builds one pyarrow
array per column per chunk and appends it to a SNAPPY Parquet file. Column types are
inferred from the first chunk (DECIMAL columns use the scale from cursor.description) and
reused for every later chunk so all row groups share one schema.
"""

from __future__ import annotations

import sys
from urllib.parse import unquote, urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
import pymysql
import pymysql.cursors
from pymysql.constants import FIELD_TYPE

CHUNK_ROWS = 10_000
DECIMALS = (FIELD_TYPE.DECIMAL, FIELD_TYPE.NEWDECIMAL)


def main(url: str, table: str, outfile: str) -> int:
    parts = urlsplit(url)
    conn = pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
        database=parts.path.lstrip("/"),
        charset="utf8mb4",
        cursorclass=pymysql.cursors.SSCursor,
    )
    writer: pq.ParquetWriter | None = None
    total = 0
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT * FROM `{table}`")
            names = [d[0] for d in cur.description]
            types: list[pa.DataType | None] = [
                pa.decimal128(38, d[5]) if d[1] in DECIMALS else None for d in cur.description
            ]
            while rows := cur.fetchmany(CHUNK_ROWS):
                columns = list(zip(*rows, strict=True))
                arrays = [pa.array(col, type=t) for col, t in zip(columns, types, strict=True)]
                if writer is None:
                    types = [pa.string() if a.type == pa.null() else a.type for a in arrays]
                    arrays = [a.cast(t) for a, t in zip(arrays, types, strict=True)]
                    schema = pa.schema(list(zip(names, types, strict=True)))
                    writer = pq.ParquetWriter(outfile, schema, compression="snappy")
                writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
                total += len(rows)
    finally:
        conn.close()
        if writer is not None:
            writer.close()
    print(f"{total} rows -> {outfile}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
