"""Where a read's time goes: client and server CPU seconds per component (not a test).

    python bench/components.py [--servers mariadb,mysql] [--reps 3] [--columns]

Each step reads radar_bench.store_metrics (bench/generate.py) whole; steps are interleaved in
every repetition and the medians printed (bench/PROFILE.md discusses them):
  cli *          the CLI, text protocol, SELECT *                       (what `make bench` runs)
  cli proj       the CLI, text protocol, radar-extract's projected SELECT
  cx * plain     connectorx, binary protocol, SELECT * to one Arrow table, plaintext
  cx proj plain  radar-extract's reader (read_batches), projected, plaintext
  cx proj tls    the same through the TLS proxy; `helper CPU` is the proxy's process
  radar-extract  the whole `radar-extract extract` (start-up, read, convert, Parquet, publish)
  start-up       `radar-extract extract` of a 1,000-row table
On a server that offers TLS the CLI steps run twice, with and without TLS. With --columns,
each projected column alone through connectorx, beside the same column as it is (AS_IS), and
`id` alone (the scan and the protocol's per-row cost).

Server CPU is the server process's user + system time (/proc/<pid>/stat) around each step: it
counts any other client of that server too, so read it on a quiet server, or as a lower bound
of the noise. Client CPU is this process's (in-process steps) or the child's.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import ensure_table
from servers import SERVERS, ServerInfo, cli_argv, cpu_seconds, probe, settings

from extractor.config import load_settings
from extractor.contract.types import ColumnPlan, Read, plan_column
from extractor.run.catalog import discover
from extractor.source.connection import connectorx_url, control_connection, query
from extractor.source.reader import Server, read_batches, select_sql

REPO = Path(__file__).resolve().parent.parent
TABLE = "store_metrics"
Sample = tuple[float, float, float | None, float, float | None]  # wall, client, helper, srv, MB


def _children() -> float:
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def _self() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def _bytes_sent(url: str) -> float | None:
    with control_connection(settings(url)) as conn:
        rows = query(conn, "SHOW GLOBAL STATUS LIKE 'Bytes_sent'")
    return float(rows[0]["Value"]) if rows else None


def measure(
    step: Callable[[], None], info: ServerInfo, url: str, *, child: bool, helper: bool = False
) -> Sample:
    """wall, client CPU, helper-process CPU, server CPU, MB the server sent (all clients)."""
    sent, srv, own, kids = _bytes_sent(url), cpu_seconds(info.pid), _self(), _children()
    started = time.perf_counter()
    step()
    wall = time.perf_counter() - started
    own, kids = _self() - own, _children() - kids
    server = (cpu_seconds(info.pid) or 0.0) - (srv or 0.0)
    after = _bytes_sent(url)
    mb = (after - sent) / 1e6 if after is not None and sent is not None else None
    return (wall, kids if child else own, kids if helper else None, server, mb)


def _run(argv: list[str], env: dict[str, str] | None = None) -> None:
    subprocess.run(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=True,
        env={**os.environ, **(env or {})},
    )


def _cx_table(url: str, sql: str) -> None:
    import connectorx as cx

    mysql = load_settings(env={"RADAR_MYSQL_URL": url, "RADAR_MYSQL_SSL_MODE": "disabled"}).mysql
    table = cx.read_sql(connectorx_url(mysql), sql, return_type="arrow")
    assert table.num_rows > 0


def _read(url: str, plans: list[ColumnPlan], flavor: str, tls: bool) -> None:
    mode = "preferred" if tls else "disabled"
    mysql = load_settings(env={"RADAR_MYSQL_URL": url, "RADAR_MYSQL_SSL_MODE": mode}).mysql
    server = Server("mariadb" if flavor == "mariadb" else "mysql", tls=tls)
    rows = sum(b.num_rows for b in read_batches(mysql, TABLE, plans, 50_000, server=server))
    assert rows > 0


def _extract(url: str, table: str) -> None:
    dest = tempfile.mkdtemp(prefix="radar-components-")
    try:
        _run(
            [
                str(REPO / ".venv" / "bin" / "radar-extract"),
                "extract",
                "--table",
                table,
                "--dest",
                dest,
                "--workers",
                "1",
            ],
            {"RADAR_MYSQL_URL": url},
        )
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def steps(
    url: str, info: ServerInfo, columns: bool
) -> dict[str, tuple[Callable[[], None], bool, bool]]:
    """name -> (step, runs in a child process, has a helper process)."""
    catalog = discover(load_settings(env={"RADAR_MYSQL_URL": url}))
    plans = [plan_column(c) for c in catalog.tasks[TABLE].columns]
    database = settings(url).database
    flavor = Server(info.flavor)
    projected = select_sql(database, TABLE, plans, flavor)
    # The engine's own prefix: a global max_statement_time must not cut the reads.
    pre = "SET STATEMENT max_statement_time=0 FOR " if info.flavor == "mariadb" else ""
    star = f"{pre}SELECT * FROM `{database}`.`{TABLE}`"
    mysql = settings(url)
    out: dict[str, tuple[Callable[[], None], bool, bool]] = {}
    modes = [True, False] if info.tls else [False]
    for tls in modes:
        suffix = " tls" if tls else (" plain" if info.offers_tls else "")
        mode = replace(info, tls=tls)
        cli_star, cli_proj = cli_argv(mode, mysql, star)[0], cli_argv(mode, mysql, projected)[0]
        out[f"cli *{suffix}"] = (lambda a=cli_star: _run(a), True, False)
        out[f"cli proj{suffix}"] = (lambda a=cli_proj: _run(a), True, False)
    out["cx * plain"] = (lambda: _cx_table(url, star), False, False)
    out["cx proj plain"] = (lambda: _read(url, plans, info.flavor, False), False, False)
    if info.offers_tls:
        out["cx proj tls"] = (lambda: _read(url, plans, info.flavor, True), False, True)
    out["radar-extract"] = (lambda: _extract(url, TABLE), True, False)
    small = f"{database}_1000"
    base = url.rsplit("/", 1)[0]
    ensure_table(f"{base}/{small}", small, TABLE, 1000)
    out["start-up (1k rows)"] = (lambda: _extract(f"{base}/{small}", TABLE), True, False)
    if columns:
        source = f"`{database}`.`{TABLE}`"
        alone = f"{pre}SELECT id FROM {source}"
        out["col id alone"] = (lambda: _cx_table(url, alone), False, False)
        for p in plans:
            if p.read is Read.AS_IS:
                continue
            raw = f"{pre}SELECT id, `{p.name}` FROM {source}"
            proj = f"{pre}SELECT id, {p.select_sql()} FROM {source}"
            out[f"col {p.name} as is"] = (lambda q=raw: _cx_table(url, q), False, False)
            out[f"col {p.name} {p.read.name}"] = (lambda q=proj: _cx_table(url, q), False, False)
    return out


def _median(values: list[float | None]) -> str:
    got = [v for v in values if v is not None]
    return f"{statistics.median(got):9.2f}" if got else f"{'-':>9}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--servers", default="mariadb,mysql")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--columns", action="store_true")
    args = p.parse_args()
    for name in args.servers.split(","):
        url = SERVERS[name]
        info = probe(url)
        ensure_table(url, "radar_bench", TABLE, 3_000_000)
        todo = steps(url, info, args.columns)
        samples: dict[str, list[Sample]] = {k: [] for k in todo}
        for _ in range(args.reps):
            for key, (step, child, helper) in todo.items():
                samples[key].append(measure(step, info, url, child=child, helper=helper))
        print(
            f"\n{info.name} ({'offers TLS' if info.offers_tls else 'no TLS'}), "
            f"{args.reps} rep(s), medians; load average {os.getloadavg()[0]:.1f}"
        )
        print(f"{'step':26}{'wall s':>9}{'client':>9}{'helper':>9}{'server':>9}{'MB sent':>9}")
        for key, values in samples.items():
            cols = [_median([v[i] for v in values]) for i in range(5)]
            print(f"{key:26}{''.join(cols)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
