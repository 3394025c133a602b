"""Summarise benchmark runs: side-by-side table, verdict lines, JSON in bench/.results/."""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

SPEED_TARGET = 0.8  # median(a) <= 0.8 x median(b)
RSS_TARGET_MB = 400.0
WIDE_RSS_TARGET_MB = 512.0  # (w): 1 MiB BLOB rows, every value intact
PEER_TARGET = 1.25  # median(fastest peer) >= 1.25 x median(a)
PEERS = ("p", "d")  # bench.py's keys of the peers (polars, dlt)


@dataclass
class Run:
    contender: str
    rep: int
    exit_code: int
    wall_s: float
    peak_rss_mb: float
    ok: bool
    error: str = ""
    warning: str = ""
    stderr_tail: str = ""
    rows_written: int | None = None
    files: list[str] = field(default_factory=list)
    cpu_s: float | None = None  # the contender's own user + system CPU
    server_cpu_s: float | None = None  # the server's (all of its clients, if others run)


def summarise(runs: list[Run]) -> dict[str, Any]:
    good = [r for r in runs if r.ok]
    if not good:
        return {"runs": len(runs), "ok": 0}
    walls = [r.wall_s for r in good]
    rss = [r.peak_rss_mb for r in good]
    out = {
        "runs": len(runs),
        "ok": len(good),
        "median_s": statistics.median(walls),
        "min_s": min(walls),
        "max_s": max(walls),
        "median_rss_mb": statistics.median(rss),
        "max_rss_mb": max(rss),
    }
    for name in ("cpu_s", "server_cpu_s"):
        values = [v for r in good if (v := getattr(r, name)) is not None]
        out[f"median_{name}"] = statistics.median(values) if values else None
    return out


def _cpu(value: float | None) -> str:
    return f"{value:>9.1f}" if value is not None else f"{'-':>9}"


def peer_lines(s: dict[str, dict[str, Any]], labels: dict[str, str], ours: str = "a") -> list[str]:
    """The fastest peer's median over radar-extract's `ours` (how much faster it is)."""
    a = s.get(ours, {})
    peers = [(s[k]["median_s"], k) for k in PEERS if s.get(k, {}).get("ok")]
    if not peers:
        return []
    best, key = min(peers)
    if not a.get("ok"):
        return [f"fastest peer {labels[key]}: {best:.2f} s; ({ours}) has no successful run"]
    ratio = best / a["median_s"]
    verdict = "PASS" if ratio >= PEER_TARGET else "FAIL"
    return [
        f"fastest peer / ({ours}) wall time >= {PEER_TARGET}:  {verdict} (ratio "
        f"{ratio:.2f}, fastest peer {labels[key]})"
    ]


def verdicts(s: dict[str, dict[str, Any]]) -> tuple[float | None, list[str]]:
    a, b = s.get("a", {}), s.get("b", {})
    ratio = a["median_s"] / b["median_s"] if a.get("ok") and b.get("ok") else None
    if ratio is None:
        speed = "n/a - (a) has no successful run" if not a.get("ok") else "n/a - (b) failed"
    else:
        speed = f"{'PASS' if ratio <= SPEED_TARGET else 'FAIL'} (ratio {ratio:.2f})"
    peaks = [x["max_rss_mb"] for k, x in s.items() if k in ("a", "a2x") and x.get("ok")]
    rss = (
        f"{'PASS' if max(peaks) <= RSS_TARGET_MB else 'FAIL'} (max {max(peaks):.0f} MB)"
        if peaks
        else "n/a - (a) has no successful run"
    )
    lines = [
        f"(a) <= {SPEED_TARGET} x (b) wall time:  {speed}",
        f"peak RSS of (a) <= {RSS_TARGET_MB:.0f} MB:  {rss}",
    ]
    streams = s.get("as", {})
    if streams.get("ok") and b.get("ok"):
        both = streams["median_s"] / b["median_s"]
        lines.append(
            f"(as) <= {SPEED_TARGET} x (b) wall time:  "
            f"{'PASS' if both <= SPEED_TARGET else 'FAIL'} (ratio {both:.2f}); peak "
            f"RSS of (as) <= {RSS_TARGET_MB:.0f} MB:  "
            f"{'PASS' if streams['max_rss_mb'] <= RSS_TARGET_MB else 'FAIL'} "
            f"(max {streams['max_rss_mb']:.0f} MB)"
        )
    w = s.get("w", {})
    if w.get("runs"):
        lines.append(
            f"peak RSS of (w) <= {WIDE_RSS_TARGET_MB:.0f} MB, values intact:  "
            + (
                f"{'PASS' if w['max_rss_mb'] <= WIDE_RSS_TARGET_MB else 'FAIL'} "
                f"(max {w['max_rss_mb']:.0f} MB)"
                if w.get("ok") == w["runs"]
                else f"FAIL ({w['runs'] - w.get('ok', 0)} of {w['runs']} runs failed)"
            )
        )
    for key, base in (("a", "a0"), ("w", "w0")):
        if s.get(key, {}).get("ok") and s.get(base, {}).get("ok"):
            now, then = s[key], s[base]
            lines.append(
                f"({key}) vs baseline ({base}): wall {now['median_s']:.2f} s vs "
                f"{then['median_s']:.2f} s, peak RSS {now['median_rss_mb']:.0f} MB vs "
                f"{then['median_rss_mb']:.0f} MB (medians)"
            )
    if s.get("a", {}).get("ok") and s.get("a2x", {}).get("ok"):
        one, two = s["a"]["median_rss_mb"], s["a2x"]["median_rss_mb"]
        lines.append(f"peak RSS of (a) at 2x rows: {two:.0f} MB vs {one:.0f} MB ({two / one:.2f}x)")
    return ratio, lines


def report(runs: list[Run], labels: dict[str, str], meta: dict[str, Any], out_dir: Path) -> Path:
    s = {k: summarise([r for r in runs if r.contender == k]) for k in labels}
    print(
        f"\n{'contender':24}{'runs':>6}{'median s':>10}{'min s':>9}{'max s':>9}"
        f"{'med RSS MB':>12}{'max RSS MB':>12}{'CPU s':>9}{'srv CPU':>9}"
    )
    for key, label in labels.items():
        x = s[key]
        if not x.get("ok"):
            failed = [r for r in runs if r.contender == key]
            why = (
                "not run (see notes)"
                if not failed
                else (
                    f"all runs FAILED, at median {statistics.median(r.wall_s for r in failed):.2f}"
                    f" s, {statistics.median(r.peak_rss_mb for r in failed):.0f} MB peak RSS"
                )
            )
            print(f"{label:24}{x['runs']:>6}  {why}")
            continue
        runs_col = f"{x['ok']}" if x["ok"] == x["runs"] else f"{x['ok']}/{x['runs']}"
        print(
            f"{label:24}{runs_col:>6}{x['median_s']:>10.2f}{x['min_s']:>9.2f}"
            f"{x['max_s']:>9.2f}{x['median_rss_mb']:>12.1f}{x['max_rss_mb']:>12.1f}"
            f"{_cpu(x.get('median_cpu_s'))}{_cpu(x.get('median_server_cpu_s'))}"
        )
    ratio, lines = verdicts(s)
    lines += peer_lines(s, labels)
    if "as" in labels:
        lines += peer_lines(s, labels, "as")
    print(f"\nratio median(a)/median(b): {'n/a' if ratio is None else f'{ratio:.2f}'}")
    print("\n".join(lines))
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{stamp}.json"
    doc = {
        "timestamp": stamp,
        "host": platform.node(),
        "cpus": os.cpu_count(),
        **meta,
        "summary": s,
        "ratio_a_over_b": ratio,
        "verdicts": lines,
        "runs": [asdict(r) for r in runs],
    }
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print(f"\nresults: {path}")
    return path


def combined(results: list[tuple[str, dict[str, str], list[Run]]]) -> None:
    """One table over several servers: (server name, labels, runs) each."""
    print(
        f"\n{'server':18}{'contender':24}{'median s':>10}{'med RSS MB':>12}{'CPU s':>9}"
        f"{'srv CPU':>9}{'/ (a)':>8}"
    )
    for server, labels, runs in results:
        s = {k: summarise([r for r in runs if r.contender == k]) for k in labels}
        base = s.get("a", {}).get("median_s") if s.get("a", {}).get("ok") else None
        for key, label in labels.items():
            x = s[key]
            if not x.get("ok"):
                print(f"{server:18}{label:24}  {'not run' if not x['runs'] else 'FAILED'}")
                continue
            rel = f"{x['median_s'] / base:>8.2f}" if base else f"{'-':>8}"
            print(
                f"{server:18}{label:24}{x['median_s']:>10.2f}{x['median_rss_mb']:>12.1f}"
                f"{_cpu(x.get('median_cpu_s'))}{_cpu(x.get('median_server_cpu_s'))}{rel}"
            )
