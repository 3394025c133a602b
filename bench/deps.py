"""Why SQLAlchemy and polars are not on the hot path: import cost per fresh process, and polars
as a reader of the benchmark table, beside radar-extract (README, "Dependencies").

    python bench/deps.py --venv DIR [--url mysql://root@127.0.0.1:3306/radar_bench]

DIR is a venv holding sqlalchemy, pymysql, polars, connectorx==0.4.6 and pyarrow (never the
package's own .venv: none of them but pymysql, connectorx and pyarrow are its dependencies);
`make bench-venv` builds one, .venv-bench.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.measure import run_measured

IMPORTS = {
    "pymysql": "import pymysql",
    "sqlalchemy + pymysql dialect + engine": "import sqlalchemy, sqlalchemy.dialects.mysql.pymysql;"
    " sqlalchemy.create_engine('mysql+pymysql://u@h/d')",
    "connectorx + pyarrow.parquet": "import connectorx, pyarrow, pyarrow.parquet",
    "polars": "import polars",
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--venv", required=True)
    ap.add_argument("--url", default="mysql://root@127.0.0.1:3306/radar_bench")
    ap.add_argument("--out", default="/tmp/radar-deps")
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    py = os.path.join(args.venv, "bin", "python")
    os.makedirs(args.out, exist_ok=True)
    walls: dict[str, list[float]] = {k: [] for k in IMPORTS}
    for _ in range(args.reps):
        for name, code in IMPORTS.items():
            walls[name].append(run_measured([py, "-c", code]).wall_s)
    for name, values in walls.items():
        print(f"import {name}: median {statistics.median(values) * 1000:.0f} ms")
    sql = "SELECT * FROM store_metrics"
    polars = (
        f"import polars as pl; df = pl.read_database_uri({sql!r}, {args.url!r}, "
        f"engine='connectorx'); df.write_parquet('{args.out}/polars.parquet')"
    )
    whole = (
        f"import connectorx as cx, pyarrow.parquet as pq; t = cx.read_sql({args.url!r}, "
        f"{sql!r}, return_type='arrow'); pq.write_table(t, '{args.out}/cx.parquet')"
    )
    radar = os.path.join(os.path.dirname(sys.executable), "radar-extract")
    env = {
        **os.environ,
        "RADAR_MYSQL_URL": args.url.replace("mysql://", "mysql+pymysql://"),
        "RADAR_DEST": f"{args.out}/radar",
    }
    contenders = {
        "polars read_database_uri + write_parquet": ([py, "-c", polars], None),
        "connectorx return_type=arrow + write_table": ([py, "-c", whole], None),
        "radar-extract extract --workers 1": (
            [radar, "extract", "--table", "store_metrics", "--workers", "1"],
            env,
        ),
    }
    runs: dict[str, list[tuple[float, int]]] = {k: [] for k in contenders}
    for _ in range(3):  # interleaved: the machine is shared
        for name, (argv, run_env) in contenders.items():
            m = run_measured(argv, env=run_env)
            if m.exit_code != 0:
                raise SystemExit(f"{name} failed with exit {m.exit_code}")
            runs[name].append((m.wall_s, m.peak_rss_kb))
    for name, values in runs.items():
        wall = statistics.median(v[0] for v in values)
        rss = statistics.median(v[1] for v in values) / 1024
        print(f"{name}: wall median {wall:.2f} s, peak RSS median {rss:.0f} MB")


if __name__ == "__main__":
    main()
