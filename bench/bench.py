"""radar-extract benchmark (a benchmark, never a test: it always exits 0).

Contenders, interleaved round-robin in every repetition (a, b, c, a, b, c, ...):
  (a)  radar-extract extract --table store_metrics --dest <tmpdir> --workers 1
  (b)  mariadb --quick ... -e 'SELECT * FROM store_metrics' > /dev/null
  (c)  bench/plain_pymysql.py (pymysql SSCursor -> pyarrow -> SNAPPY Parquet), once by default
  (as) (a) with --workers 2 --streams 2: the table as two primary-key ranges at once
       (--streams N sets N, 1 leaves it out)
  (a2x) with --double: (a) on store_metrics_2x (2 x rows), to show peak RSS does not grow
  (w)  radar-extract extract --table wide_documents --workers 1: ~2 GB of 1 MiB BLOB rows and
       twenty 8 MiB values together mid-table (--skip-wide to leave out); every value of the
       Parquet output is compared with the generator's (bench/generate.py)
  (a0), (w0) with --baseline DIR: (a) and (w) run by the code in DIR (a checkout of another
       revision, e.g. main), interleaved with the rest: before and after in one run
  (ap) with --plaintext, on a server that offers TLS: (a) with RADAR_MYSQL_SSL_MODE=disabled
  (p)  polars read_database_uri(engine="connectorx", 2 partitions) + write_parquet  } bench/
  (d)  dlt sql_table(backend="connectorx", 2 partitions) -> filesystem, Parquet     } peers.py
       (--peers; they run in .venv-bench, which `make bench-venv` builds)
(b) reads in radar-extract's TLS mode: on a server that offers TLS (MySQL here) radar-extract
encrypts through its TLS proxy, so the CLI gets --ssl-mode=REQUIRED (bench/servers.py).
`--servers mariadb,mysql` runs the whole set on each server in turn, then one table of both.
Wall time, peak RSS (ru_maxrss via os.wait4) and CPU time come from bench/measure.py, which
explains why a tiny launcher process sits between this script and each contender. The server's
CPU time (its /proc/<pid>/stat, when it runs on this machine) is read around each run.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.parquet as pq
from generate import (
    WIDE_HUGE,
    WIDE_ROWS,
    ensure_database,
    ensure_table,
    ensure_wide_table,
    verify_wide,
)
from measure import rss_floor_kb, run_measured
from report import Run, combined, report
from servers import SERVERS, ServerInfo, cli_argv, cpu_seconds, probe

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
    parquet_glob: str = "**/*.parquet"  # which files under {dest} hold the table
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


def extractor(
    key: str,
    label: str,
    table: str,
    rows: int,
    url: str,
    baseline: str | None = None,
    env: dict[str, str] | None = None,
    streams: int = 1,
) -> Contender:
    ext = [sys.executable, "-m", "extractor"] if baseline else extractor_argv()
    if ext is None:
        note = "not found (no .venv/bin/radar-extract, no extractor/__main__.py): skipped"
        return Contender(key, label, None, table, rows, note=note)
    argv = [*ext, "extract", "--table", table, "--dest", "{dest}", "--workers", str(streams)]
    if streams > 1:  # one table on `streams` primary-key ranges, one worker each
        argv += ["--streams", str(streams)]
    env = {"RADAR_MYSQL_URL": url, **({"PYTHONPATH": baseline} if baseline else {}), **(env or {})}
    verify = verify_wide if table == "wide_documents" else None
    return Contender(
        key,
        label,
        argv,
        table,
        rows,
        env,
        parquet=True,
        verify=verify,
        note=f"the code in {baseline}" if baseline else "",
        cwd=Path(baseline) if baseline else REPO,
    )


PEER_LABELS = {
    "polars": ("p", "(p) polars+connectorx", "*.parquet"),
    "dlt": ("d", "(d) dlt+connectorx", "bench/store_metrics/*.parquet"),
}


def peer(name: str, url: str, rows: int, args: argparse.Namespace, info: ServerInfo) -> Contender:
    key, label, pattern = PEER_LABELS[name]
    python = Path(args.peers_python).absolute()  # not resolve(): a venv's python is a link
    if not python.exists():
        return Contender(key, label, None, note=f"no {python} (make bench-venv): skipped")
    argv = [
        str(python),
        str(BENCH / "peers.py"),
        name,
        url,
        "store_metrics",
        "{dest}",
        "--partitions",
        str(args.partitions),
    ]
    note = f"{args.partitions} connections (connectorx partition_on=id)"
    if info.tls:
        note += "; reads in plaintext: connectorx 0.4.6 has no TLS for MySQL"
    return Contender(
        key,
        label,
        argv,
        rows=rows,
        parquet=True,
        parquet_glob=pattern,
        env={"RUNTIME__DLTHUB_TELEMETRY": "false"},
        note=note,
    )


def build_contenders(
    url: str, rows: int, args: argparse.Namespace, info: ServerInfo
) -> list[Contender]:
    u = load_settings(env={"RADAR_MYSQL_URL": url}).mysql
    cli, cli_label = cli_argv(info, u, "SELECT * FROM store_metrics")
    out = [
        extractor(
            "a", "(a) radar-extract" + (", TLS" if info.tls else ""), "store_metrics", rows, url
        ),
        Contender("b", f"(b) {cli_label}", cli, rows=rows),
    ]
    if args.plaintext and info.tls:
        out.append(
            extractor(
                "ap",
                "(ap) radar-extract plain",
                "store_metrics",
                rows,
                url,
                env={"RADAR_MYSQL_SSL_MODE": "disabled"},
            )
        )
    if not args.skip_plain:
        plain = [
            sys.executable,
            str(BENCH / "plain_pymysql.py"),
            url,
            "store_metrics",
            "{dest}/store_metrics.parquet",
        ]
        note = f"slow: runs only in the first {args.plain_runs} repetition(s) (--plain-runs)"
        out.append(Contender("c", "(c) plain pymysql", plain, rows=rows, parquet=True, note=note))
    if args.streams > 1:
        out.append(
            extractor(
                "as",
                f"(as) radar-extract, {args.streams} streams" + (", TLS" if info.tls else ""),
                "store_metrics",
                rows,
                url,
                streams=args.streams,
            )
        )
    if args.double:
        out.append(extractor("a2x", "(a) at 2x rows", "store_metrics_2x", 2 * rows, url))
    if not args.skip_wide:
        out.append(extractor("w", "(w) wide, 1 MiB rows", "wide_documents", WIDE_ROWS, url))
    if args.baseline:
        out.append(extractor("a0", "(a0) baseline", "store_metrics", rows, url, args.baseline))
        if not args.skip_wide:
            out.append(
                extractor(
                    "w0", "(w0) baseline wide", "wide_documents", WIDE_ROWS, url, args.baseline
                )
            )
    out += [peer(name, url, rows, args, info) for name in args.peers]
    return out


def shown(c: Contender, password: str | None) -> str:
    """The command as a shell line, password masked, for the output and the JSON."""
    assert c.argv is not None
    env = " ".join(f"{k}={v}" for k, v in c.env.items())
    line = f"{env} {shlex.join(c.argv)}".strip().replace("{dest}", "<tmpdir>")
    if password:
        line = line.replace(f":{password}@", ":***@").replace(f"-p{password}", "-p***")
    return line


def parquet_rows(dest: Path, pattern: str = "**/*.parquet") -> tuple[int, list[str]]:
    files = sorted(dest.glob(pattern))
    total = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    return total, [str(f.relative_to(dest)) for f in files]


def settle(server_pid: int | None, *, idle: float = 0.05, most_s: float = 20.0) -> None:
    """Wait until the server is idle (under `idle` CPU-seconds per second over 0.5 s), at
    most `most_s`: a run must not pay for the work the one before left behind."""
    deadline = time.monotonic() + most_s
    while time.monotonic() < deadline:
        before = cpu_seconds(server_pid)
        time.sleep(0.5)
        after = cpu_seconds(server_pid)
        if before is None or after is None or after - before < idle * 0.5:
            return


def run_once(c: Contender, rep: int, server_pid: int | None = None) -> Run:
    assert c.argv is not None
    dest = Path(tempfile.mkdtemp(prefix=f"radar-bench-{c.key}-"))
    err = dest.with_suffix(".stderr")
    try:
        argv = [a.replace("{dest}", str(dest)) for a in c.argv]
        server_cpu = cpu_seconds(server_pid)
        m = run_measured(argv, {**os.environ, **c.env}, stderr_path=str(err), cwd=str(c.cwd))
        run = Run(c.key, rep, m.exit_code, m.wall_s, m.peak_rss_kb / 1024, m.exit_code == 0)
        run.cpu_s = m.cpu_s
        after = cpu_seconds(server_pid)
        if server_cpu is not None and after is not None:
            run.server_cpu_s = after - server_cpu
        if m.exit_code != 0:
            last = (m.stderr_tail.strip().splitlines() or ["(no stderr)"])[-1]
            run.error, run.stderr_tail = f"exit code {m.exit_code}: {last}", m.stderr_tail
        elif c.parquet:
            run.rows_written, run.files = parquet_rows(dest, c.parquet_glob)
            if run.rows_written != c.rows:
                run.ok = False
                run.error = f"Parquet holds {run.rows_written} rows, expected {c.rows}"
            first = (
                f"origin=airbyte/database=bronze_radar/{c.table}/cog_dt_ingestion=*/"
                f"file_{c.table}_001.parquet"
            )
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
    p.add_argument(
        "--servers",
        type=_servers,
        default=None,
        help=f"run on each of these servers in turn ({', '.join(SERVERS)}), instead of --url",
    )
    p.add_argument(
        "--peers",
        type=_peers,
        default=list(PEER_LABELS),
        help=f"peers to run: a comma list of {', '.join(PEER_LABELS)}, or none",
    )
    p.add_argument(
        "--peers-python",
        default=str(REPO / ".venv-bench" / "bin" / "python"),
        help="the python of the venv holding the peers (make bench-venv)",
    )
    p.add_argument(
        "--partitions", type=int, default=2, help="parallel connections each peer reads with"
    )
    p.add_argument(
        "--plaintext",
        action="store_true",
        help="also run (a) in plaintext on a server that offers TLS (ap)",
    )
    p.add_argument("--skip-plain", action="store_true", help="do not run contender (c)")
    p.add_argument("--plain-runs", type=int, default=1, help="repetitions that include (c)")
    p.add_argument(
        "--streams",
        type=int,
        default=2,
        help="also run (a) as this many primary-key ranges at once, "
        "--workers N --streams N (as); 1: not",
    )
    p.add_argument("--double", action="store_true", help="also run (a) on 2 x rows")
    p.add_argument("--skip-wide", action="store_true", help="do not run contender (w)")
    p.add_argument(
        "--baseline",
        metavar="DIR",
        help="also run (a) and (w) with the code of this checkout (e.g. of main)",
    )
    return p.parse_args()


def _names(text: str, known: dict[str, object], what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip() and n.strip() != "none"]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(unknown)}; known: {', '.join(known)}"
        )
    return names


def _servers(text: str) -> list[str]:
    return _names(text, dict(SERVERS), "server")


def _peers(text: str) -> list[str]:
    return _names(text, dict(PEER_LABELS), "peer")


def compile_sources(*checkouts: Path) -> None:
    """Byte-compile the engine's modules, as installing its wheel does (the image's `pip
    install`): with PYTHONDONTWRITEBYTECODE set (this machine, the image) an editable install
    recompiles each of its modules in every process it starts (0.2-0.3 s here), a cost no
    deployment pays. Stale files are simply rewritten."""
    for checkout in checkouts:
        compileall.compile_dir(str(checkout / "extractor"), quiet=1, workers=0)


def main() -> int:
    args = parse_args()
    compile_sources(REPO, *([Path(args.baseline)] if args.baseline else []))
    urls = [(n, SERVERS[n]) for n in args.servers] if args.servers else [("", args.url)]
    results = []
    for _, server_url in urls:
        ensure_database(server_url, urlsplit(server_url).path.lstrip("/") or "radar_bench")
        info = probe(server_url)  # connects to that database
        labels, runs = bench_server(args, server_url, info)
        results.append((info.name, labels, runs))
    if len(results) > 1:
        combined(results)
    return 0


def bench_server(
    args: argparse.Namespace, server_url: str, info: ServerInfo
) -> tuple[dict[str, str], list[Run]]:
    """Every contender, interleaved, on one server; the labels and the runs."""
    base = urlsplit(server_url)
    database = base.path.lstrip("/") or "radar_bench"
    if args.rows != FULL_ROWS:
        database = f"{database}_{args.rows}"
    url = base._replace(path=f"/{database}").geturl()
    ensure_table(url, database, "store_metrics", args.rows)
    if args.double:
        ensure_table(url, database, "store_metrics_2x", 2 * args.rows)
    if not args.skip_wide:
        ensure_wide_table(url, database, "wide_documents", WIDE_ROWS, WIDE_HUGE)

    contenders = build_contenders(url, args.rows, args, info)
    commands = {c.key: shown(c, base.password) for c in contenders if c.argv}
    notes = {c.key: c.note for c in contenders if c.note}
    how = "offers TLS: radar-extract and (b) read over TLS" if info.tls else "plaintext"
    print(
        f"\nserver {info.name} at {base.hostname}:{base.port} ({how}), server CPU "
        f"{'from pid ' + str(info.pid) if info.pid else 'not measured (not on this machine)'}"
    )
    print(f"database {database}: {args.rows:,} rows, {args.repeat} repetition(s)\nCommands:")
    for c in contenders:
        print(f"  {c.label}: {commands.get(c.key) or 'MISSING, ' + c.note}")
        if c.argv and c.note:
            print(f"      note: {c.note}")
    floor = rss_floor_kb() / 1024
    print(f"peak RSS floor (launcher running /bin/true): {floor:.1f} MB\n", flush=True)

    runs: list[Run] = []
    for rep in range(1, args.repeat + 1):
        # Each round starts one contender later, so none always follows the same one (a
        # peer's partitioned reads can leave the server busy for a moment after it exits).
        turn = (rep - 1) % len(contenders)
        for c in contenders[turn:] + contenders[:turn]:
            if c.argv is None or (c.key == "c" and rep > args.plain_runs):
                continue
            settle(info.pid)
            run = run_once(c, rep, info.pid)
            runs.append(run)
            status = "ok" if run.ok else f"FAILED: {run.error}"
            print(
                f"[rep {rep}/{args.repeat}] {c.label:20}{run.wall_s:8.2f} s"
                f"{run.peak_rss_mb:8.1f} MB{run.cpu_s or 0:7.1f} s CPU  {status}",
                flush=True,
            )
            if run.warning:
                print(f"      warning: {run.warning}")
    meta = {
        "server": info.name,
        "server_tls": info.tls,
        "database": database,
        "rows": args.rows,
        "repeat": args.repeat,
        "rss_floor_mb": floor,
        "commands": commands,
        "notes": notes,
    }
    report(runs, {c.key: c.label for c in contenders}, meta, BENCH / ".results")
    for key, note in notes.items():
        print(f"note ({key}): {note}")
    return {c.key: c.label for c in contenders}, runs


if __name__ == "__main__":
    sys.exit(main())
