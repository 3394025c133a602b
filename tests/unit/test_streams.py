"""Streams: the split key, the boundaries, their SQL, the setting and the `auto` rule."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path

import pytest

from extractor.cli_options import STREAMS
from extractor.config import load_settings
from extractor.contract.types import Column, plan_column
from extractor.errors import ConfigError
from extractor.sink.manifest import Manifest, SourceRead, StreamRange, StreamSplit
from extractor.sink.parquet import FileNumbers
from extractor.source.ranges import KeyRange, plan_ranges, split_key
from extractor.source.reader import Server, select_sql
from extractor.streams_policy import AUTO_MIN_BYTES, auto_streams, parse_streams

U64_MAX = 2**64 - 1


def _owner(ranges: list[KeyRange], key: int) -> list[int]:
    """The indexes of the ranges that hold `key`: exactly one, always."""
    return [
        i
        for i, r in enumerate(ranges)
        if (r.low is None or key >= r.low) and (r.high is None or key < r.high)
    ]


def _check_cover(ranges: list[KeyRange], lowest: int, highest: int) -> None:
    """Contiguous, disjoint, open at both ends; every key in and around [lowest, highest]
    in exactly one range."""
    assert ranges[0].low is None and ranges[-1].high is None
    for before, after in itertools.pairwise(ranges):
        assert before.high is not None and before.high == after.low
    probes = {lowest - 1, lowest, highest, highest + 1, (lowest + highest) // 2}
    probes |= {r.low for r in ranges if r.low is not None}
    probes |= {r.low - 1 for r in ranges if r.low is not None}
    for key in probes:
        assert len(_owner(ranges, key)) == 1, key


def test_empty_table_one_row_and_a_single_value_are_one_unbounded_range() -> None:
    assert plan_ranges(None, None, 4) == [KeyRange()]  # empty: MIN and MAX are NULL
    assert plan_ranges(7, 7, 4) == [KeyRange()]  # one row, or min == max
    assert plan_ranges(1, 1_000, 1) == [KeyRange()]
    assert KeyRange().where("id") == ""


def test_even_ranges_cover_every_key() -> None:
    ranges = plan_ranges(1, 3_000_000, 3)
    assert ranges == [
        KeyRange(None, 1_000_001),
        KeyRange(1_000_001, 2_000_001),
        KeyRange(2_000_001, None),
    ]
    _check_cover(ranges, 1, 3_000_000)


def test_negative_keys() -> None:
    ranges = plan_ranges(-10, 9, 4)
    assert [r.low for r in ranges] == [None, -5, 0, 5]
    _check_cover(ranges, -10, 9)
    assert ranges[1].where("id") == "`id` >= -5 AND `id` < 0"


def test_bigint_unsigned_near_two_to_the_64() -> None:
    ranges = plan_ranges(U64_MAX - 1_000, U64_MAX, 3)
    assert len(ranges) == 3
    _check_cover(ranges, U64_MAX - 1_000, U64_MAX)
    assert all(r.low is None or U64_MAX - 1_000 < r.low <= U64_MAX for r in ranges)
    assert ranges[2].where("id") == f"`id` >= {ranges[2].low}"  # an exact integer literal
    full = plan_ranges(0, U64_MAX, 2)  # the whole BIGINT UNSIGNED span, exactly
    assert full == [KeyRange(None, 2**63), KeyRange(2**63, None)]


def test_more_streams_than_keys_gives_one_range_per_key() -> None:
    ranges = plan_ranges(5, 7, 10)
    assert ranges == [KeyRange(None, 6), KeyRange(6, 7), KeyRange(7, None)]
    _check_cover(ranges, 5, 7)
    assert plan_ranges(5, 6, 64) == [KeyRange(None, 6), KeyRange(6, None)]


def test_ranges_are_never_empty_of_keys_and_always_cover() -> None:
    for lowest, highest in [(0, 1), (1, 100), (-(2**63), 2**63 - 1), (3, 1_000_003)]:
        for n in (2, 3, 7, 64):
            ranges = plan_ranges(lowest, highest, n)
            assert len(ranges) == min(n, highest - lowest + 1)
            edges = [lowest] + [r.low for r in ranges[1:] if r.low is not None] + [highest + 1]
            assert all(a < b for a, b in itertools.pairwise(edges))
            _check_cover(ranges, lowest, highest)


def test_split_key_is_the_leading_integer_column_of_the_primary_key() -> None:
    columns = [
        Column("store_id", "int", "int"),
        Column("day", "date", "date"),
        Column("sku", "varchar", "varchar(20)"),
        Column("n", "bigint", "bigint unsigned"),
    ]
    assert split_key(columns, ["store_id", "day"]).column == "store_id"  # composite
    assert split_key(columns, ["n"]).column == "n"
    refused = split_key(columns, ["sku", "store_id"])
    assert refused.column is None and "varchar(20), not an integer" in refused.reason
    assert split_key(columns, ["day"]).column is None
    no_pk = split_key(columns, [])
    assert no_pk.column is None and no_pk.reason == "no primary key"
    for data_type in ("decimal", "bit", "year", "char", "datetime"):
        assert split_key([Column("k", data_type, data_type)], ["k"]).column is None
    for data_type in ("tinyint", "smallint", "mediumint", "int", "bigint"):
        assert split_key([Column("k", data_type, data_type)], ["k"]).column == "k"


def test_a_range_select_keeps_prefix_hint_tag_and_quotes_the_key() -> None:
    plans = [
        plan_column(Column("we`ird", "int", "int"), "t"),
        plan_column(Column("v", "varchar", "varchar(5)"), "t"),
    ]
    tag = "radar-extract run=r table=t attempt=1 q=abc stream=2:3"
    key_range = KeyRange(10, 20)
    maria = select_sql("db", "t", plans, Server("mariadb"), tag, key="we`ird", key_range=key_range)
    assert maria.startswith(
        "SET STATEMENT net_write_timeout=600, max_statement_time=0 FOR "
        "SELECT /* radar-extract_run=r_table=t_attempt=1_q=abc_stream=2:3 */"
    )
    assert maria.endswith("FROM `db`.`t` WHERE `we``ird` >= 10 AND `we``ird` < 20")
    mysql = select_sql("db", "t", plans, Server("mysql"), tag, key="we`ird", key_range=key_range)
    assert mysql.startswith("SELECT /*+ SET_VAR(max_execution_time=0) */ /* radar-extract")
    assert mysql.endswith("WHERE `we``ird` >= 10 AND `we``ird` < 20")
    whole = select_sql("db", "t", plans, Server("mysql"), tag)
    assert whole.endswith("FROM `db`.`t`")  # one stream: the SELECT of before
    assert (
        select_sql("db", "t", plans, Server("mysql"), tag, key="we`ird", key_range=KeyRange())
        == whole
    )


def test_parse_streams() -> None:
    assert parse_streams("1") == 1 and parse_streams(" AUTO ") == "auto"
    assert parse_streams(8) == 8 and parse_streams("64") == 64
    for bad in ("0", "65", "-1", "two", "", "1.5", True):
        with pytest.raises(ValueError, match="must be an integer from 1 to 64, or auto"):
            parse_streams(bad)


def test_streams_flag_is_one_line_and_exit_2() -> None:
    import click

    assert STREAMS.convert("auto", None, None) == "auto"
    with pytest.raises(click.BadParameter, match="--streams '0x' must be an integer"):
        STREAMS.convert("0x", None, None)


def test_streams_setting_file_env_flag(tmp_path: Path) -> None:
    assert load_settings(env={}).streams.streams_for("t") == 1  # the default: as before
    config = tmp_path / "radar.toml"
    config.write_text(
        '[streams]\ndefault = "auto"\n[streams.tables.big]\nstreams = 4\n', encoding="utf-8"
    )
    settings = load_settings(config, env={})
    assert (settings.streams.streams_for("big"), settings.streams.streams_for("u")) == (4, "auto")
    forced = load_settings(config, env={"RADAR_STREAMS": "2"})
    assert forced.streams.streams_for("big") == 2  # an operator's switch: every table
    flag = load_settings(config, env={"RADAR_STREAMS": "2"}, overrides={"streams": "auto"})
    assert flag.streams.streams_for("big") == "auto"
    config.write_text("streams = 3\n", encoding="utf-8")
    assert load_settings(config, env={}).streams.streams_for("t") == 3


def test_bad_streams_settings_are_reported_together(tmp_path: Path) -> None:
    config = tmp_path / "radar.toml"
    config.write_text(
        '[streams]\ndefault = 0\nextra = 1\n[streams.tables.t]\nstreams = "x"\n'
        "[streams.tables.u]\nmode = 2\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env={"RADAR_STREAMS": "many"})
    message = str(caught.value)
    for part in (
        "[streams] default 0",
        "unknown keys: extra",
        "[streams.tables.t] streams 'x'",
        "[streams.tables.u] must be streams =",
        "streams 'many' must be",
    ):
        assert part in message, part


def test_auto_splits_only_a_big_table_that_would_run_alone() -> None:
    big = 4 * AUTO_MIN_BYTES
    assert auto_streams([big], workers=2) == 2  # a run of one table
    assert auto_streams([big], workers=4) == 4
    assert auto_streams([big], workers=1) == 1  # no idle worker
    assert auto_streams([AUTO_MIN_BYTES - 1], workers=4) == 1  # too small to pay
    assert auto_streams([], workers=4) == 1
    # Two workers: the largest outlasts the rest on the other worker -> split in two.
    assert auto_streams([big, big // 4, big // 4], workers=2) == 2
    # The others keep the other worker busy for as long: no idle worker to use.
    assert auto_streams([big, big // 2, big // 2], workers=2) == 1
    # Four workers, the largest 60% of the run: ceil(0.6 * 4) = 3 streams, an even share.
    assert auto_streams([6 * big, 2 * big, big, big], workers=4) == 3


def test_file_numbers_are_shared_without_gaps_or_clashes() -> None:
    numbers = FileNumbers()
    taken: list[int] = []
    mutex = threading.Lock()

    def take() -> None:
        for _ in range(500):
            number = numbers.take()
            with mutex:
                taken.append(number)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == list(range(1, 2001))


def test_manifest_records_the_streams_only_when_there_were_several() -> None:
    split = StreamSplit("id", [StreamRange(None, 2**63, 5), StreamRange(2**63, None, 7)])
    manifest = Manifest(
        table="t",
        date="2024-05-01",
        run_id="r",
        engine="radar-extract 0",
        published_at="2024-05-01T00:00:00+00:00",
        rows=12,
        bytes=1,
        source=SourceRead("db", rows_read=12, estimated_rows=10, streams=split),
    )
    data = json.loads(manifest.to_json())
    assert data["source"]["streams"] == {
        "key": "id",
        "ranges": [
            {"low": None, "high": 2**63, "rows": 5},
            {"low": 2**63, "high": None, "rows": 7},
        ],
    }
    assert Manifest.from_json(manifest.to_json(), "m").source.streams == split
    one = Manifest(
        table="t",
        date="2024-05-01",
        run_id="r",
        engine="radar-extract 0",
        published_at="2024-05-01T00:00:00+00:00",
        rows=1,
        bytes=1,
        source=SourceRead("db", rows_read=1, estimated_rows=1),
    )
    assert "streams" not in json.loads(one.to_json())["source"]


def test_the_run_plans_auto_for_its_largest_table_only() -> None:
    from extractor.run.pipeline import TableTask
    from extractor.run.runner import plan_streams

    big, small = 4 * AUTO_MIN_BYTES, AUTO_MIN_BYTES // 8
    tasks = [
        TableTask("big", [], estimated_bytes=big),
        TableTask("a", [], estimated_bytes=small),
        TableTask("b", [], estimated_bytes=small),
    ]
    auto = load_settings(env={"RADAR_STREAMS": "auto", "RADAR_WORKERS": "2"})
    planned = {t.table: (t.streams, t.streams_asked) for t in plan_streams(auto, tasks)}
    assert planned == {"big": (2, True), "a": (1, True), "b": (1, True)}
    one = load_settings(env={"RADAR_WORKERS": "2"})
    assert {(t.streams, t.streams_asked) for t in plan_streams(one, tasks)} == {(1, False)}
    fixed = load_settings(env={"RADAR_STREAMS": "3", "RADAR_WORKERS": "1"})
    assert [t.streams for t in plan_streams(fixed, tasks)] == [3, 3, 3]  # N is N
    alone = load_settings(env={"RADAR_STREAMS": "auto", "RADAR_WORKERS": "1"})
    assert [t.streams for t in plan_streams(alone, tasks)] == [1, 1, 1]  # no idle worker
