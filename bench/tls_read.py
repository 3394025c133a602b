"""Read throughput over TLS: connectorx through the TLS proxy vs connectorx in plaintext vs
pymysql over TLS (the former TLS reader). A benchmark, never a test.

Usage: python bench/tls_read.py [--rows N] [--reps R]

The shared MariaDB has no TLS, so this starts the tests' private TLS MariaDB
(tests/integration/tls_mariadb.py), fills `radar_bench.store_metrics` there with N rows
(bench/generate.py, default 500,000) and times the bulk read alone (rows to Arrow batches,
no Parquet), contenders interleaved in each repetition:
  (a) connectorx, ssl_mode=disabled (plaintext)
  (b) connectorx through the TLS proxy, ssl_mode=verify_identity
  (c) pymysql SSCursor over TLS, verify_identity (the reader before the proxy), 2 runs at most
It also reports the CPU time of the proxy's helper process.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from generate import ensure_table  # noqa: E402

from extractor.config import MySQLSettings, load_settings  # noqa: E402
from extractor.contract.types import ColumnPlan, Read, plan_column  # noqa: E402
from extractor.run.catalog import discover  # noqa: E402
from extractor.source.batching import BatchPlan  # noqa: E402
from extractor.source.connection import connect_kwargs  # noqa: E402
from extractor.source.reader import Server, read_batches, select_sql  # noqa: E402
from tests.integration.tls_mariadb import running_tls_mariadb  # noqa: E402

DATABASE, TABLE, BATCH = "radar_bench", "store_metrics", 50_000


def _pymysql_type(plan: ColumnPlan) -> pa.DataType:
    """The Arrow type of a pymysql value of this projection (the former TLS reader's)."""
    if plan.read is Read.TEXT:
        return pa.string()
    if plan.read is Read.UNSIGNED:
        return pa.uint64()
    if plan.read in (Read.EPOCH_MICROS, Read.DIGITS, Read.UNSCALED):
        return pa.int64()
    if pa.types.is_integer(plan.arrow_type) or pa.types.is_decimal(plan.arrow_type):
        return pa.uint64() if plan.column.unsigned else pa.int64()
    return plan.arrow_type


def read_pymysql(mysql: MySQLSettings, plans: list[ColumnPlan]) -> int:
    import pymysql
    import pymysql.cursors

    sql = select_sql(DATABASE, TABLE, plans, Server("mariadb", tls=True))
    types, names = [_pymysql_type(p) for p in plans], [p.name for p in plans]
    conn = pymysql.connect(**connect_kwargs(mysql), cursorclass=pymysql.cursors.SSCursor)
    rows = 0
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
            while chunk := cursor.fetchmany(BATCH):
                columns = zip(*chunk, strict=True)
                arrays = [pa.array(v, type=t) for v, t in zip(columns, types, strict=True)]
                rows += pa.RecordBatch.from_arrays(arrays, names=names).num_rows
    finally:
        conn.close()
    return rows


def read_connectorx(mysql: MySQLSettings, plans: list[ColumnPlan], tls: bool) -> int:
    return sum(
        b.num_rows
        for b in read_batches(
            mysql, TABLE, plans, BatchPlan(BATCH, 8), server=Server("mariadb", tls=tls)
        )
    )


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    with running_tls_mariadb() as server:
        ensure_table(server.url(DATABASE), DATABASE, TABLE, args.rows)

        def settings(mode: str) -> MySQLSettings:
            return load_settings(
                env={
                    "RADAR_MYSQL_URL": server.url(DATABASE),
                    "RADAR_MYSQL_SSL_MODE": mode,
                    "RADAR_MYSQL_SSL_CA": str(server.certs.ca),
                }
            ).mysql

        plain, tls = settings("disabled"), settings("verify_identity")
        catalog = discover(load_settings(env={"RADAR_MYSQL_URL": server.url(DATABASE)}))
        plans = [plan_column(c) for c in catalog.tasks[TABLE].columns]
        contenders: dict[str, Callable[[], int]] = {
            "connectorx, plaintext (disabled)": lambda: read_connectorx(plain, plans, False),
            "connectorx via TLS proxy (verify_identity)": lambda: read_connectorx(tls, plans, True),
            "pymysql over TLS (verify_identity)": lambda: read_pymysql(tls, plans),
        }
        times: dict[str, list[float]] = {name: [] for name in contenders}
        proxy_cpu: list[float] = []
        for rep in range(args.reps):
            for name, read in contenders.items():
                if name.startswith("pymysql") and rep >= 2:
                    continue
                cpu, started = children_cpu(), time.perf_counter()
                rows = read()
                times[name].append(time.perf_counter() - started)
                if "proxy" in name:
                    proxy_cpu.append(children_cpu() - cpu)
                assert rows == args.rows, (name, rows)
    print(f"{args.rows:,} rows of {DATABASE}.{TABLE}, read only (rows -> Arrow batches)")
    for name, runs in times.items():
        median = statistics.median(runs)
        print(
            f"  {name:44s} median {median:6.2f} s  {args.rows / median / 1000:6.0f}k rows/s"
            f"  runs {[round(t, 2) for t in runs]}"
        )
    print(f"  TLS proxy helper CPU per read: median {statistics.median(proxy_cpu):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
