"""Shard planning, `--shard`/`--shards` parsing, reports read back, and the merge rule: no
services needed (a local destination in a temporary directory at most)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from extractor.cli import main
from extractor.config import load_settings
from extractor.errors import ExtractError, Step, UsageError
from extractor.ops.merge import MergedReport, combine, summary_lines
from extractor.run.report import RunReport, TableResult
from extractor.run.shards import (
    MIN_WEIGHT,
    Shard,
    ShardPlan,
    load_plan,
    parse_shard_count,
    plan_shards,
    save_plan,
    weight,
)
from extractor.sink.destination import Destination
from extractor.sink.journal import Journal
from extractor.sink.publish import recover
from extractor.source.discovery import TableInfo
from tests.unit.samples import manifest

MB = 1024 * 1024


def _tables(seed: int, count: int = 86) -> list[TableInfo]:
    """A Radar-like spread: a few big tables, many small ones, some with zero estimates."""
    rng = random.Random(seed)
    tables = []
    for i in range(count):
        size = rng.choice([0, 0, 16384, rng.randint(1, 50) * MB, rng.randint(100, 3000) * MB])
        tables.append(TableInfo(f"t{i:03d}", size // 120, size))
    return tables


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 16])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_plan_is_balanced_within_the_largest_table_of_the_ideal(seed: int, n: int) -> None:
    tables = _tables(seed)
    groups = plan_shards(tables, n)
    assert [g.shard for g in groups] == [f"{i}/{n}" for i in range(1, n + 1)]
    planned = [t for g in groups for t in g.tables]
    assert sorted(planned) == sorted(t.name for t in tables)  # each table exactly once
    ideal = sum(weight(t) for t in tables) / n
    largest = max(weight(t) for t in tables)
    assert max(g.weight for g in groups) <= ideal + largest
    by_name = {t.name: t for t in tables}
    for g in groups:
        assert g.estimated_bytes == sum(by_name[t].estimated_bytes for t in g.tables)
        assert g.estimated_rows == sum(by_name[t].estimated_rows for t in g.tables)
        sizes = [weight(by_name[t]) for t in g.tables]
        assert sizes == sorted(sizes, reverse=True)  # largest first, the order they run in


def test_plan_is_deterministic_whatever_the_input_order() -> None:
    tables = _tables(7)
    first = [g.to_dict() for g in plan_shards(tables, 4)]
    for seed in range(5):
        shuffled = list(tables)
        random.Random(seed).shuffle(shuffled)
        assert [g.to_dict() for g in plan_shards(shuffled, 4)] == first


def test_tables_without_estimates_still_spread_over_the_groups() -> None:
    tables = [TableInfo(f"empty_{i:02d}", 0, 0) for i in range(80)]
    groups = plan_shards(tables, 4)
    assert [len(g.tables) for g in groups] == [20, 20, 20, 20]
    assert weight(TableInfo("x", 0, 0)) == MIN_WEIGHT
    assert weight(TableInfo("x", 10_000, 0)) > MIN_WEIGHT  # rows count when bytes are unknown
    # Equal weights: by name, round robin over the groups.
    assert groups[0].tables[:2] == ["empty_00", "empty_04"]


def test_more_shards_than_tables_leaves_groups_empty() -> None:
    groups = plan_shards([TableInfo("a", 1, 100), TableInfo("b", 1, 100)], 3)
    assert [g.tables for g in groups] == [["a"], ["b"], []]


def test_largest_first_into_the_lightest_group() -> None:
    sizes = {"a": 70, "b": 60, "c": 50, "d": 40, "e": 30, "f": 20}
    groups = plan_shards([TableInfo(n, 0, s * MB) for n, s in sizes.items()], 2)
    # LPT: a->1, b->2, c->2 (60 < 70), d->1, e->2? loads 110/110 -> e->1, f->2
    assert [g.tables for g in groups] == [["a", "d", "e"], ["b", "c", "f"]]


@pytest.mark.parametrize(
    "text", ["0/2", "3/2", "1/0", "1/257", "a/b", "1", "1/2/3", "", "-1/2", "1 / 2x"]
)
def test_bad_shard_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="must be I/N"):
        Shard.parse(text)


def test_good_shards_parse() -> None:
    assert Shard.parse("1/1") == Shard(1, 1)
    assert Shard.parse(" 4/256 ") == Shard(4, 256) and str(Shard(4, 256)) == "4/256"
    assert parse_shard_count("8") == 8
    for bad in ("0", "257", "x", "-1", "2.5"):
        with pytest.raises(UsageError, match="from 1 to 256"):
            parse_shard_count(bad)


@pytest.mark.parametrize(
    "args",
    [
        ["extract", "--shard", "3/2"],
        ["plan", "--shards", "0"],
        ["plan", "--shards", "many"],
        ["extract", "--shard", "1/2", "--date", "2024-02-30"],
    ],
    ids=["shard-past-n", "zero-shards", "not-a-number", "bad-date"],
)
def test_cli_rejects_bad_shards_before_any_io(args: list[str]) -> None:
    # Port 1 refuses connections: the usage error must come before any connection attempt.
    result = CliRunner().invoke(main, args, env={"RADAR_MYSQL_PORT": "1"})
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("radar-extract: error: ")


def test_plan_saved_and_loaded_through_the_destination(tmp_path: Path) -> None:
    dest = Destination(load_settings(env={"RADAR_DEST": str(tmp_path)}))
    assert load_plan(dest, "2024-05-01") is None
    plan = ShardPlan("2024-05-01", 3, plan_shards(_tables(3, 10), 3))
    path = save_plan(dest, plan)
    assert path == f"{tmp_path}/_radar_extract/plans/2024-05-01.json"
    data = json.loads(Path(path).read_text())
    assert sorted(data) == ["date", "format", "groups", "saved_at", "shards"]
    assert (
        data["saved_at"] == plan.saved_at
        and plan.saved_at is not None
        and plan.saved_at.endswith("+00:00")
    )
    assert sorted(data["groups"][0]) == ["estimated_bytes", "estimated_rows", "shard", "tables"]
    loaded = load_plan(dest, "2024-05-01")
    assert loaded is not None and loaded.to_dict() == plan.to_dict()
    Path(path).write_text("{not json")
    with pytest.raises(ExtractError, match=r"saved plan .* is not readable"):
        load_plan(dest, "2024-05-01")


def _report(
    run_id: str,
    started: str,
    finished: str,
    *results: TableResult,
    shard: str | None = None,
    seconds: float = 1.0,
) -> RunReport:
    return RunReport(
        run_id=run_id,
        date="2024-05-01",
        database="radar",
        destination="/d",
        started_at=started,
        finished_at=finished,
        seconds=seconds,
        tables=list(results),
        shard=shard,
    )


def test_run_report_round_trips_through_json() -> None:
    report = _report(
        "2024-05-01_a",
        "2024-05-01T02:00:00+00:00",
        "2024-05-01T02:01:00+00:00",
        TableResult(
            "product",
            "failed",
            error="boom",
            error_step=Step.READ,
            error_type="SourceError",
            transient=True,
            attempts=3,
        ),
        TableResult(
            "store",
            "published",
            rows=3,
            files=1,
            bytes=10,
            nulled={"opened": 1},
            keys=["k"],
            attempts=1,
        ),
        shard="1/2",
    )  # tables by name, as to_dict() writes them
    data = json.loads(report.to_json())
    data["some_future_key"] = {"x": 1}
    data["tables"][0]["another_future_key"] = []
    again = RunReport.from_dict(data)
    assert again == report and again.to_json() == report.to_json()
    assert data["shard"] == "1/2"


def test_merge_takes_the_latest_result_and_never_a_skip_over_a_publish() -> None:
    first = _report(
        "2024-05-01_1",
        "2024-05-01T02:00:00+00:00",
        "2024-05-01T02:10:00+00:00",
        TableResult("a", "published", rows=5, files=1, bytes=50),
        TableResult("b", "failed", error="lost connection", error_step=Step.READ),
        shard="1/2",
        seconds=600,
    )
    second = _report(
        "2024-05-01_2",
        "2024-05-01T02:00:05+00:00",
        "2024-05-01T02:20:00+00:00",
        TableResult("c", "published", rows=7, files=2, bytes=70),
        TableResult("a", "skipped"),
        shard="2/2",
        seconds=1195,
    )
    rerun = _report(
        "2024-05-01_3",
        "2024-05-01T04:00:00+00:00",
        "2024-05-01T04:01:00+00:00",
        TableResult("b", "published", rows=1, files=1, bytes=9),
        seconds=60,
    )
    merged = combine([first, second, rerun], "2024-05-01", "/d")
    assert isinstance(merged, MergedReport)
    assert {t.table: t.status for t in merged.tables} == {
        "a": "published",
        "b": "published",
        "c": "published",
    }
    assert merged.ok and merged.runs == ["2024-05-01_1", "2024-05-01_2", "2024-05-01_3"]
    assert merged.shards == ["1/2", "2/2"]
    assert merged.totals().rows == 5 + 7 + 1
    assert merged.seconds == 2 * 3600 + 60  # wall span: first start to last finish
    again = MergedReport.from_dict(json.loads(merged.to_json()))
    assert again == merged
    lines = summary_lines(merged)
    assert lines[0].startswith("date 2024-05-01 (3 runs merged, shards 1/2, 2/2): 3/3 tables")


def test_a_shard_recovers_only_its_own_tables(tmp_path: Path) -> None:
    dest = Destination(load_settings(env={"RADAR_DEST": str(tmp_path)}))
    entry = dest.keys.journal("other", "2024-05-01")
    dest.write_text(entry, Journal("other", "2024-05-01", manifest("r", 0, "other")).to_json())
    assert recover(dest, {"store"}) == []  # another shard's publish may be under way
    assert Path(entry).exists()
    assert recover(dest) == ["other 2024-05-01"]
    assert not Path(entry).exists()
