"""On how many streams each table is read: the `streams` setting and the `auto` rule. Pure.

A value is `1` (one SELECT, one consistent read: the default), `N` (2..64: N primary-key
ranges read at once, extractor/source/ranges.py), or `auto`. The file may hold
`streams = N|"auto"`, or a `[streams]` table with `default` and per-table overrides
`[streams.tables.<table>] streams = N|"auto"`. The flag `--streams` and `RADAR_STREAMS` set
every table, overrides included, as `--compat` does: what an operator types for one run.

The `auto` rule (`auto_streams`) splits only the run's largest table, only when it is big
(AUTO_MIN_BYTES of estimated data) and would otherwise be left running alone while the other
workers sit idle: when its estimated bytes exceed what the other tables give each of the
other workers (sum of the others / (workers - 1); a run of one table with `--workers` > 1
always). It then takes as many streams as bring its share down to an even share of the run,
`ceil(bytes * workers / total)`, and never more than the workers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Streams = int | Literal["auto"]
MAX_STREAMS = 64
# Below this, a table reads in seconds on one stream (the 3M-row benchmark table, 239 MiB of
# DATA_LENGTH, takes about 5 s): a split would save too little to pay for its extra
# snapshots, connections and memory.
AUTO_MIN_BYTES = 256 * 1024 * 1024
RULE = "an integer from 1 to 64, or auto"


def parse_streams(value: object, what: str = "streams") -> Streams:
    """`1`..`64` or `auto` (any case); a ValueError whose message is one line otherwise
    (this base module raises no error of ours: the callers turn it into their own)."""
    if isinstance(value, bool):  # TOML true/false are not counts
        raise ValueError(f"{what} {value!r} must be {RULE}")
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip().lower()
        if text == "auto":
            return "auto"
        try:
            number = int(text)
        except ValueError:
            raise ValueError(f"{what} {str(value)[:40]!r} must be {RULE}") from None
    if not 1 <= number <= MAX_STREAMS:
        raise ValueError(f"{what} {number} must be {RULE}")
    return number


@dataclass(frozen=True)
class StreamsPolicy:
    default: Streams = 1
    tables: Mapping[str, Streams] = field(default_factory=dict)
    forced: Streams | None = None  # flag or environment: every table

    def streams_for(self, table: str) -> Streams:
        if self.forced is not None:
            return self.forced
        return self.tables.get(table, self.default)


def validate_streams(section: object, where: str, problems: list[str]) -> StreamsPolicy:
    """The policy from the file's `streams` value (a count, auto, or a table)."""
    if not isinstance(section, Mapping):
        try:
            return StreamsPolicy(default=parse_streams(section))
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            return StreamsPolicy()
    unknown = sorted(set(section) - {"default", "tables"})
    if unknown:
        problems.append(f"{where}: [streams] has unknown keys: {', '.join(unknown)}")
    default: Streams = 1
    try:
        default = parse_streams(section.get("default", 1), "[streams] default")
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
    tables: dict[str, Streams] = {}
    raw = section.get("tables", {})
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: [streams.tables] must hold one table per database table")
        raw = {}
    for name in sorted(raw):
        override = raw[name]
        if not isinstance(override, Mapping) or set(override) != {"streams"}:
            problems.append(f"{where}: [streams.tables.{name}] must be streams = {RULE}")
            continue
        try:
            tables[name] = parse_streams(override["streams"], f"[streams.tables.{name}] streams")
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    return StreamsPolicy(default=default, tables=tables)


def auto_streams(estimated_bytes: list[int], workers: int, min_bytes: int = AUTO_MIN_BYTES) -> int:
    """Streams for the first of `estimated_bytes` (the run's tables, largest first) under
    `auto`; 1 when a split does not pay."""
    if workers <= 1 or not estimated_bytes:
        return 1
    largest, rest = estimated_bytes[0], sum(estimated_bytes[1:])
    if largest < min_bytes or largest * (workers - 1) <= rest:
        return 1
    total = largest + rest
    return max(1, min(workers, -(-largest * workers // total)))
