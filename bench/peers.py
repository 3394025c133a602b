"""The peers a user would pick instead of radar-extract, as bench.py runs them (not a test).

Usage (in .venv-bench, never the package's .venv: `make bench-venv` builds it from
bench/requirements-peers.txt):

    peers.py polars URL TABLE DEST [--partitions N] [--partition-on COLUMN]
    peers.py dlt    URL TABLE DEST [--partitions N] [--partition-on COLUMN]

URL like mysql+pymysql://user:pass@host:3306/database. Each writes the whole table to Parquet
under DEST the way its documentation shows, with its defaults (compression included), and
N connections reading N ranges of COLUMN in parallel (connectorx's partitioning):

  polars  pl.read_database_uri(SELECT * ..., engine="connectorx", partition_on, partition_num)
          then DataFrame.write_parquet(DEST/TABLE.parquet) (polars' default: zstd)
  dlt     sql_table(backend="connectorx", backend_kwargs={partition_on, partition_num}) into
          the filesystem destination at DEST, loader_file_format="parquet"; its files are
          DEST/bench/TABLE/*.parquet (dlt's own state tables sit beside, under DEST/bench/_dlt*)

connectorx 0.4.6 has no TLS for MySQL: both read in plaintext, whatever the server offers.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from urllib.parse import urlsplit

DLT_DATASET = "bench"


def connectorx_uri(url: str) -> str:
    """mysql+pymysql://... -> mysql://... (connectorx's scheme)."""
    parts = urlsplit(url)
    return parts._replace(scheme="mysql").geturl()


def run_polars(url: str, table: str, dest: str, partitions: int, column: str) -> int:
    import polars as pl

    query = f"SELECT * FROM `{table}`"
    uri = connectorx_uri(url)
    if partitions > 1:
        df = pl.read_database_uri(
            query, uri, engine="connectorx", partition_on=column, partition_num=partitions
        )
    else:
        df = pl.read_database_uri(query, uri, engine="connectorx")
    df.write_parquet(os.path.join(dest, f"{table}.parquet"))
    return df.height


def run_dlt(url: str, table: str, dest: str, partitions: int, column: str) -> int:
    # No telemetry (this machine has no network, and a benchmark sends nothing anywhere).
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    import dlt
    from dlt.sources.sql_database import sql_table

    kwargs = {"partition_on": column, "partition_num": partitions} if partitions > 1 else {}
    resource = sql_table(credentials=url, table=table, backend="connectorx", backend_kwargs=kwargs)
    with tempfile.TemporaryDirectory(prefix="radar-bench-dlt-") as work:
        pipeline = dlt.pipeline(
            pipeline_name="radar_bench_peer",
            pipelines_dir=work,
            dataset_name=DLT_DATASET,
            destination=dlt.destinations.filesystem(bucket_url=f"file://{dest}"),
        )
        pipeline.run(resource, loader_file_format="parquet")
        counts = pipeline.last_trace.last_normalize_info.row_counts
    return int(counts.get(table, 0))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("peer", choices=("polars", "dlt"))
    p.add_argument("url")
    p.add_argument("table")
    p.add_argument("dest")
    p.add_argument("--partitions", type=int, default=2)
    p.add_argument("--partition-on", default="id")
    args = p.parse_args()
    run = run_polars if args.peer == "polars" else run_dlt
    rows = run(args.url, args.table, args.dest, args.partitions, args.partition_on)
    print(f"{args.peer}: {rows} rows -> {args.dest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
