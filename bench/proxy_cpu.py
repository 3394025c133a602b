"""The TLS proxy's own cost on one read of a table (not a test; bench/PROFILE.md).

    python bench/proxy_cpu.py [--url URL] [--table store_metrics] [--repeat 5]
        [--baseline DIR] [--gated] [--wrap 'perf stat -e task-clock -o /tmp/p.txt']

Each sample is a fresh process that reads the table with radar-extract's reader
(read_batches: connectorx through the proxy, batches discarded) and reports its wall time,
its own CPU (connectorx), the proxy helper's CPU (the only child: RUSAGE_CHILDREN) and the
server's. With --baseline DIR, the same read with the code of DIR (its reader and its proxy)
runs interleaved with this checkout's. --gated reads in plaintext through the gated relay
(as a wide table does) instead of over TLS. --wrap runs the helper under a profiler
(`valgrind --tool=callgrind --callgrind-out-file=...` counts its instructions).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import SERVERS, cpu_seconds, probe, settings

REPO = Path(__file__).resolve().parent.parent
FIELDS = ("wall", "client", "proxy", "server")


def _cpu(who: int) -> float:
    u = resource.getrusage(who)
    return u.ru_utime + u.ru_stime


def one(url: str, table: str, gated: bool, wrap: str) -> dict[str, float]:
    """One read in this process, with the `extractor` found on sys.path."""
    from extractor.config import load_settings
    from extractor.contract.types import plan_column
    from extractor.run.catalog import discover
    from extractor.source import tls_proxy
    from extractor.source.batching import plan_batches
    from extractor.source.reader import Server, read_batches

    if wrap:  # the helper under a profiler: prefix its argv
        real = subprocess.Popen

        def popen(argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
            if argv[1:3] == ["-m", "extractor.source.tls_proxy"]:
                argv = [*shlex.split(wrap), *argv]
            return real(argv, **kwargs)  # type: ignore[call-overload, no-any-return]

        tls_proxy.subprocess.Popen = popen  # type: ignore[misc, assignment]
    env = {"RADAR_MYSQL_URL": url, **({"RADAR_MYSQL_SSL_MODE": "disabled"} if gated else {})}
    loaded = load_settings(env=env)
    info = probe(url)
    task = discover(loaded).tasks[table]
    plans = [plan_column(c, table) for c in task.columns]
    sizing = plan_batches(
        task.columns,
        task.estimated_rows,
        task.estimated_bytes,
        loaded.batch_bytes,
        loaded.batch_rows,
    )
    if gated:  # the window of a wide table, on narrow rows: the gate's worst case
        sizing = type(sizing)(sizing.rows, sizing.row_bytes, window_bytes=2 * loaded.batch_bytes)
    server = Server(info.flavor, tls=not gated and info.tls)
    srv, own, kids = (
        cpu_seconds(info.pid),
        _cpu(resource.RUSAGE_SELF),
        _cpu(resource.RUSAGE_CHILDREN),
    )
    started = time.perf_counter()
    rows = sum(b.num_rows for b in read_batches(loaded.mysql, table, plans, sizing, server=server))
    wall = time.perf_counter() - started
    assert rows == task.estimated_rows or rows > 0
    return {
        "wall": wall,
        "client": _cpu(resource.RUSAGE_SELF) - own,
        "proxy": _cpu(resource.RUSAGE_CHILDREN) - kids,
        "server": (cpu_seconds(info.pid) or 0.0) - (srv or 0.0),
        "rows": rows,
    }


def sample(code: Path, args: argparse.Namespace) -> dict[str, float]:
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--one",
        "--url",
        args.url,
        "--table",
        args.table,
        *(["--gated"] if args.gated else []),
        *(["--wrap", args.wrap] if args.wrap else []),
    ]
    env = {**os.environ, "PYTHONPATH": str(code)}  # and cwd: the helper's `-m` finds it there
    out = subprocess.run(argv, cwd=code, env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"{code}: {out.stderr.strip()[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default=SERVERS["mysql"])
    p.add_argument("--table", default="store_metrics")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--baseline", metavar="DIR")
    p.add_argument("--gated", action="store_true")
    p.add_argument("--wrap", default="")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(args.url, args.table, args.gated, args.wrap)))
        return 0
    settings(args.url)  # fail early on a bad URL
    codes = {"this": REPO, **({"base": Path(args.baseline).resolve()} if args.baseline else {})}
    samples: dict[str, list[dict[str, float]]] = {k: [] for k in codes}
    for i in range(args.repeat):
        for key, code in codes.items():
            got = sample(code, args)
            samples[key].append(got)
            print(
                f"rep {i + 1} {key:5} " + " ".join(f"{f} {got[f]:6.2f}" for f in FIELDS), flush=True
            )
    print(
        f"\n{args.table}, {'gated plaintext' if args.gated else 'TLS'}, {args.repeat} "
        f"rep(s), medians; load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'code':6}" + "".join(f"{f:>9}" for f in FIELDS))
    for key, got in samples.items():
        print(f"{key:6}" + "".join(f"{statistics.median(g[f] for g in got):9.2f}" for f in FIELDS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
