"""The speed and memory of `migrate` over one big partition, on bench/generate.py's table.

An empty Airbyte partition of the table's Airbyte shape (bench/compat.py's, legacy or 1.x)
seeds a scratch destination; `compat inspect --save` stores its output schema, `schemas
snapshot` the stored schema, and `extract --compat airbyte` writes the whole table (3M rows
by default) as one Airbyte-shaped partition with the compatible writer. That partition is
then migrated back to the exact contract, restored from a copy before each repeat; wall,
CPU and peak RSS are those of the migrate process alone (wait4). Not a test.

    .venv/bin/python bench/migrate.py [--era legacy|1.x] [--repeat 3] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pymysql
from compat import PREFIX, airbyte_schema  # bench/ is on sys.path when run as a script

TABLE = "store_metrics"
OLD, DAY = "2024-01-01", "2024-02-01"


def run_json(env: dict[str, str], *args: str) -> Any:
    """The JSON that one radar-extract command prints."""
    out = subprocess.run(
        [sys.executable, "-m", "extractor", *args], env=env, capture_output=True, text=True
    )
    return json.loads(out.stdout)


def run(env: dict[str, str], *args: str) -> tuple[float, float, int]:
    """Wall and CPU seconds and peak RSS (bytes) of one radar-extract process."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "extractor", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(
            f"radar-extract {' '.join(args)} failed: "
            f"{proc.stderr.read().decode() if proc.stderr else ''}"
        )
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


def rows_in(url: str) -> int:
    rest = url.split("://", 1)[1]
    auth, where = rest.rsplit("@", 1)
    host_port, database = where.split("/", 1)
    host, _, port = host_port.partition(":")
    user, _, password = auth.partition(":")
    conn = pymysql.connect(
        host=host, port=int(port or 3306), user=user, password=password, database=database
    )
    with conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM `{TABLE}`")
        (count,) = cur.fetchone()
    conn.close()
    return int(count)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--era", choices=["legacy", "1.x"], default="legacy")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dry-run", action="store_true", help="also time --dry-run")
    parser.add_argument(
        "--url",
        default=os.environ.get(
            "RADAR_BENCH_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/radar_bench"
        ),
    )
    args = parser.parse_args()
    rows = rows_in(args.url)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        dest, schemas, pristine = root / "dest", root / "schemas", root / "pristine"
        env = {k: v for k, v in os.environ.items() if not k.startswith("RADAR_")}
        env.update(
            {
                "RADAR_MYSQL_URL": args.url,
                "RADAR_DEST": str(dest),
                "RADAR_SCHEMAS_DIR": str(schemas),
                "RADAR_WORKERS": "1",
            }
        )
        seed = dest / PREFIX / TABLE / f"cog_dt_ingestion={OLD}"
        seed.mkdir(parents=True)
        pq.write_table(airbyte_schema(args.era).empty_table(), seed / f"file_{TABLE}_001.parquet")
        run(env, "compat", "inspect", "--save", "--table", TABLE)
        run(env, "schemas", "snapshot", "--table", TABLE)
        wall, cpu, rss = run(env, "extract", "--table", TABLE, "--date", DAY, "--compat", "airbyte")
        folder = dest / PREFIX / TABLE / f"cog_dt_ingestion={DAY}"
        size = sum(f.stat().st_size for f in folder.iterdir())
        print(
            f"compatible partition ({args.era}): {rows:,} rows, {size / 1e6:.1f} MB, "
            f"written in {wall:.1f} s",
            flush=True,
        )
        shutil.copytree(dest, pristine)
        migrate = ["migrate", "--table", TABLE, "--from", DAY, "--to", DAY]
        results: dict[str, list[tuple[float, float, int]]] = {}
        for rep in range(args.repeat):
            modes = ["migrate", "dry-run"] if args.dry_run else ["migrate"]
            for mode in modes:
                shutil.rmtree(dest)
                shutil.copytree(pristine, dest)
                measured = run(env, *migrate, *(["--dry-run"] if mode == "dry-run" else []))
                results.setdefault(mode, []).append(measured)
                wall, cpu, rss = measured
                print(
                    f"run {rep + 1} {mode:>8}: {wall:6.2f} s wall, {cpu:6.2f} s CPU, "
                    f"{rows / wall:,.0f} rows/s, peak RSS {rss / 1e6:.0f} MB",
                    flush=True,
                )
        print(f"\nmedians over {args.repeat} runs, {rows:,} rows ({args.era}):")
        check = run_json(env, *migrate, "--dry-run", "--json")  # after the last run
        [partition] = check[0]["partitions"]
        written = sum(pq.ParquetFile(f).metadata.num_rows for f in folder.glob("*.parquet"))
        print(
            f"check: the partition is now {partition['status']} ({partition['reason']}), "
            f"its files hold {written:,} rows of {rows:,}"
        )
        for mode, runs in results.items():
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            rss = statistics.median(r[2] for r in runs)
            print(
                f"  {mode:>8}: {wall:6.2f} s wall, {cpu:6.2f} s CPU, {rows / wall:,.0f} rows/s,"
                f" peak RSS {rss / 1e6:.0f} MB"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
