"""The cost of `extract --compat airbyte` against the exact write, on bench/generate.py's table.

An empty Airbyte partition with the table's Airbyte shape (legacy era: member0/member1 unions,
decimals as double, TINYINT(1) as boolean; or the 1.x era with `_airbyte_meta`) is put in a
scratch destination, `compat inspect --save` stores its output schema, and then exact and
compatible extractions of the same date run interleaved (the machine is shared: medians of
side-by-side runs). Not a test.

    .venv/bin/python bench/compat.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from generate import ensure_table  # bench/ is on sys.path when run as a script

PREFIX = "origin=airbyte/database=bronze_radar"
TS = pa.struct([("member0", pa.timestamp("us", tz="UTC")), ("member1", pa.string())])
DAY = pa.struct([("member0", pa.date32()), ("member1", pa.string())])
CHANGE = pa.struct(
    [
        pa.field("field", pa.string(), False),
        pa.field("change", pa.string(), False),
        pa.field("reason", pa.string(), False),
    ]
)
META = pa.struct(
    [
        pa.field("sync_id", pa.int64(), False),
        pa.field("changes", pa.list_(pa.field("element", CHANGE, False)), False),
    ]
)
DATA = [
    ("id", pa.int64()),
    ("store_id", pa.int64()),
    ("metric_id", pa.int64()),
    ("ref_date", DAY),
    ("value", pa.float64()),
    ("target", pa.float64()),
    ("quantity", pa.int64()),
    ("pct", pa.float64()),
    ("is_active", pa.bool_()),
    ("code", pa.string()),
    ("status", pa.string()),
    ("note", pa.string()),
    ("created_at", TS),
    ("updated_at", TS),
    ("score", pa.float64()),
]


def airbyte_schema(era: str) -> pa.Schema:
    if era == "legacy":
        return pa.schema(
            [
                pa.field("_airbyte_ab_id", pa.string(), False),
                pa.field("_airbyte_emitted_at", pa.timestamp("ms", tz="UTC"), False),
                *DATA,
                ("_airbyte_additional_properties", pa.map_(pa.string(), pa.string())),
            ]
        )
    plain = {
        "ref_date": pa.date32(),
        "created_at": pa.timestamp("us", tz="UTC"),
        "updated_at": pa.timestamp("us", tz="UTC"),
    }
    return pa.schema(
        [
            pa.field("_airbyte_raw_id", pa.string(), False),
            pa.field("_airbyte_extracted_at", pa.int64(), False),
            pa.field("_airbyte_meta", META, False),
            pa.field("_airbyte_generation_id", pa.int64(), False),
            *[(n, plain.get(n, t)) for n, t in DATA],
        ]
    )


def run(env: dict[str, str], *args: str) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, children) of one radar-extract command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "extractor", *args], env=env, check=True, capture_output=True
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--url",
        default=os.environ.get(
            "RADAR_BENCH_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/radar_bench_compat"
        ),
    )
    args = parser.parse_args()
    database = args.url.rsplit("/", 1)[1]
    ensure_table(args.url.rsplit("/", 1)[0] + "/", database, "store_metrics", args.rows)
    results: dict[str, list[tuple[float, float, int]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        modes = ["exact", "legacy", "1.x"]
        envs = {}
        for mode in modes:
            dest, schemas = root / mode / "dest", root / mode / "schemas"
            env = {k: v for k, v in os.environ.items() if not k.startswith("RADAR_")}
            env.update(
                {
                    "RADAR_MYSQL_URL": args.url,
                    "RADAR_DEST": str(dest),
                    "RADAR_SCHEMAS_DIR": str(schemas),
                    "RADAR_WORKERS": "1",
                }
            )
            if mode != "exact":
                folder = dest / PREFIX / "store_metrics" / "cog_dt_ingestion=2024-01-01"
                folder.mkdir(parents=True)
                pq.write_table(
                    airbyte_schema(mode).empty_table(), folder / "file_store_metrics_001.parquet"
                )
                run(env, "compat", "inspect", "--save", "--table", "store_metrics")
                env["RADAR_COMPAT"] = "airbyte"
            envs[mode] = env
        for rep in range(args.repeat):
            for mode in modes:  # interleaved: the machine's load hits all modes alike
                wall, cpu = run(
                    envs[mode],
                    "extract",
                    "--table",
                    "store_metrics",
                    "--date",
                    f"2024-02-{rep + 1:02d}",
                )
                folder = (
                    root
                    / mode
                    / "dest"
                    / PREFIX
                    / "store_metrics"
                    / f"cog_dt_ingestion=2024-02-{rep + 1:02d}"
                )
                size = sum(f.stat().st_size for f in folder.iterdir())
                results.setdefault(mode, []).append((wall, cpu, size))
                print(
                    f"run {rep + 1} {mode:>6}: {wall:6.2f} s wall, {cpu:6.2f} s CPU, "
                    f"{size / 1e6:6.1f} MB",
                    flush=True,
                )
    exact_wall = statistics.median(r[0] for r in results["exact"])
    exact_cpu = statistics.median(r[1] for r in results["exact"])
    print(f"\nmedians over {args.repeat} interleaved runs, {args.rows:,} rows:")
    for mode, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        size = statistics.median(r[2] for r in runs)
        print(
            f"  {mode:>6}: {wall:6.2f} s wall ({wall / exact_wall:4.2f}x), {cpu:6.2f} s CPU "
            f"({cpu / exact_cpu:4.2f}x), {size / 1e6:6.1f} MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
