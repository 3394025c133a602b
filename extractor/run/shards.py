"""Scale-out by shards: split the tables into N groups of about equal estimated bytes.

The orchestrator (one Airflow mapped task or ECS task per shard) runs the groups; this
module only decides who runs what. The plan is greedy LPT: tables largest first, each into
the group that is lightest so far. Its largest group is at most the ideal share (total / N)
plus the largest table, and the result depends only on the names and the estimates, never on
the order they came in: equal weights are ordered by name, equal loads by group number.

A plan saved for a date (`plan --save`) is what `extract --shard I/N` runs on that date, so
every shard agrees on the split even if the server's estimates move between their starts.
It is stored at keys.plan: {"format", "date", "shards", "groups": [...], "saved_at"}, one
reader and one writer (`ShardPlan`).
"""

from __future__ import annotations

import heapq
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from extractor.errors import FormatError, Step, UsageError
from extractor.sink.destination import Destination
from extractor.sink.formats import (
    as_dict,
    as_int,
    as_list,
    as_opt_str,
    as_str,
    dumps,
    loads,
    reading,
)
from extractor.source.discovery import TableInfo

logger = logging.getLogger(__name__)

MAX_SHARDS = 256
# Weight of a table whose estimates say "nothing": one InnoDB page, the size information_schema
# gives an empty InnoDB table. Without a floor, 80 tables with stale zero estimates would all
# go to the first group, and each still costs a SELECT, a file and a publish.
MIN_WEIGHT = 16 * 1024
# Bytes per row when the server knows rows but not bytes (engines that report no DATA_LENGTH).
ROW_BYTES_GUESS = 100

PLAN_FORMAT = 1
_SHARD = re.compile(r"^\s*(\d{1,3})\s*/\s*(\d{1,3})\s*$")


@dataclass(frozen=True)
class Shard:
    """Group `index` (1-based) of the plan for `count` shards: `--shard I/N`, as "I/N" in
    reports and logs. Only valid shards exist: 1 <= index <= count <= 256."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count <= MAX_SHARDS:
            raise UsageError(
                f"--shard {str(self)!r} must be I/N with 1 <= I <= N <= {MAX_SHARDS} (e.g. 2/4)"
            )

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`I/N` of `--shard I/N`, else a one-line usage error."""
        match = _SHARD.match(text)
        if match:
            return cls(int(match.group(1)), int(match.group(2)))
        raise UsageError(
            f"--shard {text[:20]!r} must be I/N with 1 <= I <= N <= {MAX_SHARDS} (e.g. 2/4)"
        )


@dataclass
class ShardGroup:
    index: int  # 1-based
    count: int
    tables: list[str] = field(default_factory=list)  # in the order they were placed: largest first
    estimated_bytes: int = 0
    estimated_rows: int = 0
    weight: int = 0  # what the balance was computed on (bytes, or the floor)

    @property
    def shard(self) -> str:
        return f"{self.index}/{self.count}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "shard": self.shard,
            "tables": list(self.tables),
            "estimated_bytes": self.estimated_bytes,
            "estimated_rows": self.estimated_rows,
        }


@dataclass
class ShardPlan:
    date: str
    shards: int
    groups: list[ShardGroup]
    saved_at: str | None = None  # when `plan --save` stored it (UTC, ISO): `extract --resume`

    def group(self, index: int) -> ShardGroup:
        return self.groups[index - 1]

    def shard_of(self) -> dict[str, str]:
        """table -> "I/N" for every planned table."""
        return {t: g.shard for g in self.groups for t in g.tables}

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": PLAN_FORMAT,
            "date": self.date,
            "shards": self.shards,
            "groups": [g.to_dict() for g in self.groups],
        }
        if self.saved_at is not None:
            data["saved_at"] = self.saved_at
        return data

    def to_json(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str, where: str) -> ShardPlan:
        """The one reader of a plan's JSON (saved, or `plan --output`); FormatError if it
        cannot be read."""
        data = loads(text, "saved plan", where, PLAN_FORMAT)
        with reading("saved plan", where):
            count = as_int(data["shards"])
            groups = []
            for i, g in enumerate(map(as_dict, as_list(data["groups"])), start=1):
                groups.append(
                    ShardGroup(
                        i,
                        count,
                        [as_str(t) for t in as_list(g["tables"])],
                        as_int(g.get("estimated_bytes", 0)),
                        as_int(g.get("estimated_rows", 0)),
                    )
                )
            if len(groups) != count:
                raise ValueError(f"{len(groups)} groups for {count} shards")
            return cls(as_str(data["date"]), count, groups, as_opt_str(data.get("saved_at")))


def parse_shard_count(text: str | int) -> int:
    """N of `--shards N`: 1..256, else a one-line usage error."""
    value = str(text).strip()
    if not value.isdigit() or not 1 <= int(value) <= MAX_SHARDS:
        raise UsageError(f"--shards {str(text)[:20]!r} must be a number from 1 to {MAX_SHARDS}")
    return int(value)


def weight(table: TableInfo) -> int:
    """What a table costs for balancing: its estimated bytes, else rows, never below the floor."""
    if table.estimated_bytes > 0:
        return max(table.estimated_bytes, MIN_WEIGHT)
    return max(table.estimated_rows * ROW_BYTES_GUESS, MIN_WEIGHT)


def plan_shards(tables: Sequence[TableInfo], n: int) -> list[ShardGroup]:
    """N groups balanced by estimated bytes (LPT), deterministic for the same tables and
    estimates whatever their order. Groups may be empty when there are fewer tables than N."""
    if not 1 <= n <= MAX_SHARDS:
        raise UsageError(f"the number of shards must be from 1 to {MAX_SHARDS}, got {n}")
    groups = [ShardGroup(i, n) for i in range(1, n + 1)]
    lightest = [(0, i) for i in range(n)]  # (load, group number): ties go to the lower number
    for table in sorted(tables, key=lambda t: (-weight(t), t.name)):
        _, i = heapq.heappop(lightest)
        group = groups[i]
        group.tables.append(table.name)
        group.estimated_bytes += table.estimated_bytes
        group.estimated_rows += table.estimated_rows
        group.weight += weight(table)
        heapq.heappush(lightest, (group.weight, i))
    return groups


def save_plan(destination: Destination, plan: ShardPlan) -> str:
    """Store the plan of its date, stamped with the time (`extract --resume` counts the
    tables published after it as done)."""
    plan.saved_at = datetime.now(UTC).isoformat()
    path = destination.keys.plan(plan.date)
    destination.write_text(path, plan.to_json())
    return path


def load_plan(destination: Destination, date: str) -> ShardPlan | None:
    """The plan saved for `date`, or None. A damaged plan file is an error, not a silent
    re-plan: shards that disagree on the split would run some tables twice and others never."""
    path = destination.keys.plan(date)
    text = destination.read_text(path)
    if text is None:
        return None
    try:
        return ShardPlan.from_json(text, destination.url(path))
    except FormatError as exc:
        raise FormatError(f"the {exc.message}", step=Step.PLAN) from exc


@dataclass(frozen=True)
class ShardSelection:
    tables: list[str]  # to run, largest first
    gone: list[str]  # in the saved plan's group, no longer base tables of the database
    saved: bool  # from the saved plan (else planned live)
    how: str  # for the log line


def shard_tables(
    destination: Destination,
    catalog_tables: Sequence[TableInfo],
    selected: Sequence[str],
    shard: Shard,
    date: str,
) -> ShardSelection:
    """The tables shard `I/N` runs on `date`.

    `selected` (the --table/--exclude choice, largest first) is planned live unless a plan
    with N shards was saved for the date; then that plan's group I is run, still limited by
    the selection, and its tables that are no longer base tables are returned apart.
    """
    index, count = shard.index, shard.count
    saved = load_plan(destination, date)
    if saved is not None and saved.shards == count:
        planned = saved.group(index).tables
        known = {t.name for t in catalog_tables}
        # Tables of the group left out by --table/--exclude are simply not run by this shard.
        run = [name for name in selected if name in set(planned)]
        gone = sorted(t for t in planned if t not in known)
        return ShardSelection(
            run, gone, True, f"the saved plan {destination.url(destination.keys.plan(date))}"
        )
    if saved is not None:
        logger.warning(
            "the saved plan of %s has %d shards, not %d: planning live", date, saved.shards, count
        )
    wanted = set(selected)
    infos = [t for t in catalog_tables if t.name in wanted]
    group = plan_shards(infos, count)[index - 1]
    order = {name: i for i, name in enumerate(selected)}
    how = f"a live plan over {len(infos)} tables (no saved plan for {date} with {count} shards)"
    return ShardSelection(sorted(group.tables, key=order.__getitem__), [], False, how)
