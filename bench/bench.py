"""radar-extract benchmark (a benchmark, never a test: it always exits 0).

Contenders, interleaved round-robin in every repetition (a, b, c, a, b, c, ...):
  (a)  radar-extract extract --table store_metrics --dest <tmpdir> --workers 1
  (b)  mariadb --quick ... -e 'SELECT * FROM store_metrics' > /dev/null
  (c)  bench/plain_pymysql.py (pymysql SSCursor -> pyarrow -> SNAPPY Parquet), once by default
  (a2x) with --double: (a) on store_metrics_2x (2 x rows), to show peak RSS does not grow
  (w)  radar-extract extract --table wide_documents --workers 1: ~2 GB of 1 MiB BLOB rows and
       twenty 8 MiB values together mid-table (--skip-wide to leave out); every value of the
       Parquet output is compared with the generator's (bench/generate.py)
  (a0), (w0) with --baseline DIR: (a) and (w) run by the code in DIR (a checkout of another
       revision, e.g. main), interleaved with the rest: before and after in one run
Wall time and peak RSS (ru_maxrss via os.wait4) come from bench/measure.py, which explains why
a tiny launcher process sits between this script and each contender.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.parquet as pq
from generate import WIDE_HUGE, WIDE_ROWS, ensure_table, ensure_wide_table, verify_wide
from measure import rss_floor_kb, run_measured
from report import Run, report

from extractor.config import load_settings

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
FULL_ROWS = 3_000_000
DEFAULT_URL = "mysql+pymysql://root@127.0.0.1:3306/radar_bench"


@dataclass
class Contender:
    key: str
    label: str
    argv: list[str] | None  # None: not available; "{dest}" becomes a fresh empty temp dir
    table: str = "store_metrics"
    rows: int = FULL_ROWS
    env: dict[str, str] = field(default_factory=dict)
    parquet: bool = False  # verify the Parquet row count under {dest} after each run
    note: str = ""
    verify: Callable[[Path], str] | None = None  # checks the values: "" or what is wrong
    cwd: Path = REPO  # `python -m` imports from here first, before PYTHONPATH


def extractor_argv() -> list[str] | None:
    for bindir in (Path(sys.executable).parent, REPO / ".venv" / "bin"):
        if (bindir / "radar-extract").exists():
            return [str(bindir / "radar-extract")]
    if (REPO / "extractor" / "__main__.py").exists():
        return [sys.executable, "-m", "extractor"]
    return None


def extractor(key: str, label: str, table: str, rows: int, url: str,
              baseline: str | None = None) -> Contender:
    ext = [sys.executable, "-m", "extractor"] if baseline else extractor_argv()
    if ext is None:
        note = "not found (no .venv/bin/radar-extract, no extractor/__main__.py): skipped"
        return Contender(key, label, None, table, rows, note=note)
    argv = [*ext, "extract", "--table", table, "--dest", "{dest}", "--workers", "1"]
    env = {"RADAR_MYSQL_URL": url, **({"PYTHONPATH": baseline} if baseline else {})}
    verify = verify_wide if table == "wide_documents" else None
    return Contender(key, label, argv, table, rows, env, parquet=True, verify=verify,
                     note=f"the code in {baseline}" if baseline else "",
                     cwd=Path(baseline) if baseline else REPO)


def build_contenders(url: str, rows: int, args: argparse.Namespace) -> list[Contender]:
    u = load_settings(env={"RADAR_MYSQL_URL": url}).mysql
    cli = shutil.which("mariadb") or shutil.which("mysql") or "mariadb"
    password = [f"-p{u.password.reveal()}"] if u.password else []
    mariadb = [cli, "--quick", "-h", u.host, "-P", str(u.port),
               "-u", u.user, *password, u.database,
               "-e", "SELECT * FROM store_metrics"]
    out = [extractor("a", "(a) radar-extract", "store_metrics", rows, url),
           Contender("b", "(b) mariadb --quick", mariadb, rows=rows)]
    if not args.skip_plain:
        plain = [sys.executable, str(BENCH / "plain_pymysql.py"), url, "store_metrics",
                 "{dest}/store_metrics.parquet"]
        note = f"slow: runs only in the first {args.plain_runs} repetition(s) (--plain-runs)"
        out.append(Contender("c", "(c) plain pymysql", plain, rows=rows, parquet=True, note=note))
    if args.double:
        out.append(extractor("a2x", "(a) at 2x rows", "store_metrics_2x", 2 * rows, url))
    if not args.skip_wide:
        out.append(extractor("w", "(w) wide, 1 MiB rows", "wide_documents", WIDE_ROWS, url))
    if args.baseline:
        out.append(extractor("a0", "(a0) baseline", "store_metrics", rows, url, args.baseline))
        if not args.skip_wide:
            out.append(extractor("w0", "(w0) baseline wide", "wide_documents", WIDE_ROWS, url,
                                 args.baseline))
    return out


def shown(c: Contender, password: str | None) -> str:
    """The command as a shell line, password masked, for the output and the JSON."""
    assert c.argv is not None
    env = " ".join(f"{k}={v}" for k, v in c.env.items())
    line = f"{env} {shlex.join(c.argv)}".strip().replace("{dest}", "<tmpdir>")
    if password:
        line = line.replace(f":{password}@", ":***@").replace(f"-p{password}", "-p***")
    return line


def parquet_rows(dest: Path) -> tuple[int, list[str]]:
    files = sorted(dest.rglob("*.parquet"))
    total = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    return total, [str(f.relative_to(dest)) for f in files]


def run_once(c: Contender, rep: int) -> Run:
    assert c.argv is not None
    dest = Path(tempfile.mkdtemp(prefix=f"radar-bench-{c.key}-"))
    err = dest.with_suffix(".stderr")
    try:
        argv = [a.replace("{dest}", str(dest)) for a in c.argv]
        m = run_measured(argv, {**os.environ, **c.env}, stderr_path=str(err), cwd=str(c.cwd))
        run = Run(c.key, rep, m.exit_code, m.wall_s, m.peak_rss_kb / 1024, m.exit_code == 0)
        if m.exit_code != 0:
            last = (m.stderr_tail.strip().splitlines() or ["(no stderr)"])[-1]
            run.error, run.stderr_tail = f"exit code {m.exit_code}: {last}", m.stderr_tail
        elif c.parquet:
            run.rows_written, run.files = parquet_rows(dest)
            if run.rows_written != c.rows:
                run.ok = False
                run.error = f"Parquet holds {run.rows_written} rows, expected {c.rows}"
            first = f"origin=airbyte/database=bronze_radar/{c.table}/cog_dt_ingestion=*/" \
                f"file_{c.table}_001.parquet"
            if c.key.startswith(("a", "w")) and not list(dest.glob(first)):  # our layout
                run.warning = f"no {first}; files: {run.files}"
            if run.ok and c.verify is not None:
                wrong = c.verify(dest)
                if wrong:
                    run.ok, run.error = False, wrong
        return run
    finally:
        shutil.rmtree(dest, ignore_errors=True)
        err.unlink(missing_ok=True)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=FULL_ROWS)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--url", default=os.environ.get("RADAR_BENCH_MYSQL_URL", DEFAULT_URL))
    p.add_argument("--skip-plain", action="store_true", help="do not run contender (c)")
    p.add_argument("--plain-runs", type=int, default=1, help="repetitions that include (c)")
    p.add_argument("--double", action="store_true", help="also run (a) on 2 x rows")
    p.add_argument("--skip-wide", action="store_true", help="do not run contender (w)")
    p.add_argument("--baseline", metavar="DIR",
                   help="also run (a) and (w) with the code of this checkout (e.g. of main)")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    base = urlsplit(args.url)
    database = base.path.lstrip("/") or "radar_bench"
    if args.rows != FULL_ROWS:
        database = f"{database}_{args.rows}"
    url = base._replace(path=f"/{database}").geturl()
    ensure_table(url, database, "store_metrics", args.rows)
    if args.double:
        ensure_table(url, database, "store_metrics_2x", 2 * args.rows)
    if not args.skip_wide:
        ensure_wide_table(url, database, "wide_documents", WIDE_ROWS, WIDE_HUGE)

    contenders = build_contenders(url, args.rows, args)
    commands = {c.key: shown(c, base.password) for c in contenders if c.argv}
    notes = {c.key: c.note for c in contenders if c.note}
    print(f"database {database}: {args.rows:,} rows, {args.repeat} repetition(s)\nCommands:")
    for c in contenders:
        print(f"  {c.label}: {commands.get(c.key) or 'MISSING, ' + c.note}")
        if c.argv and c.note:
            print(f"      note: {c.note}")
    floor = rss_floor_kb() / 1024
    print(f"peak RSS floor (launcher running /bin/true): {floor:.1f} MB\n", flush=True)

    runs: list[Run] = []
    for rep in range(1, args.repeat + 1):
        for c in contenders:
            if c.argv is None or (c.key == "c" and rep > args.plain_runs):
                continue
            run = run_once(c, rep)
            runs.append(run)
            status = "ok" if run.ok else f"FAILED: {run.error}"
            print(f"[rep {rep}/{args.repeat}] {c.label:20}{run.wall_s:8.2f} s"
                  f"{run.peak_rss_mb:8.1f} MB  {status}", flush=True)
            if run.warning:
                print(f"      warning: {run.warning}")
    meta = {"database": database, "rows": args.rows, "repeat": args.repeat,
            "rss_floor_mb": floor, "commands": commands, "notes": notes}
    report(runs, {c.key: c.label for c in contenders}, meta, BENCH / ".results")
    for key, note in notes.items():
        print(f"note ({key}): {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
