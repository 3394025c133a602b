"""One table as several primary-key ranges, each read by its own SELECT (`streams`).

A table splits only on a key whose ranges are disjoint by construction: the first column of
the primary key, when it is an integer type (a composite key splits on its leading column:
every row has exactly one value of it). Anything else (no primary key, a leading VARCHAR,
DECIMAL, date...) is read on one stream.

The boundaries come from `SELECT MIN(k), MAX(k)`, which the server answers from the index
without a scan, cut into N contiguous ranges of equal key span: `k < b1`, `b1 <= k < b2`,
..., `k >= b(N-1)`. The first range is open below and the last open above, so a row inserted
outside [min, max] while the table is read still falls in a range, and every integer falls in
exactly one. Equal key spans assume evenly spread keys (AUTO_INCREMENT ids are): a skewed key
still reads every row once, only less evenly. The boundaries are integers computed here and
rendered as integer literals: no text of a user or of the data reaches the SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from extractor.contract.types import Column, quote_identifier
from extractor.source.connection import query

# information_schema DATA_TYPEs whose values are exact integers (not BIT, YEAR or DECIMAL).
INTEGER_TYPES = frozenset({"tinyint", "smallint", "mediumint", "int", "integer", "bigint"})


@dataclass(frozen=True)
class KeyRange:
    """The rows with `low <= key < high`; None is unbounded on that side."""

    low: int | None = None
    high: int | None = None

    def where(self, key: str) -> str:
        """The SQL condition on the column `key` (a name from information_schema), or ""."""
        column = quote_identifier(key)
        parts = []
        if self.low is not None:
            parts.append(f"{column} >= {int(self.low)}")
        if self.high is not None:
            parts.append(f"{column} < {int(self.high)}")
        return " AND ".join(parts)

    def describe(self) -> str:
        low = "" if self.low is None else f"{self.low} <= "
        high = "" if self.high is None else f" < {self.high}"
        return f"{low}key{high}" if low or high else "every key"


@dataclass(frozen=True)
class SplitKey:
    """The column a table may be split on, or why it may not."""

    column: str | None
    reason: str = ""  # why not, when `column` is None


def split_key(columns: list[Column], primary_key: list[str]) -> SplitKey:
    """The leading primary-key column if it is an integer type; else why the table is not split."""
    if not primary_key:
        return SplitKey(None, "no primary key")
    lead = next((c for c in columns if c.name == primary_key[0]), None)
    if lead is None:  # discovery always has it; a hand-made task may not
        return SplitKey(None, f"primary key column {primary_key[0]!r} is not among the columns")
    if lead.data_type not in INTEGER_TYPES:
        return SplitKey(
            None, f"leading primary key column {lead.name!r} is {lead.column_type}, not an integer"
        )
    return SplitKey(lead.name)


def plan_ranges(lowest: int | None, highest: int | None, streams: int) -> list[KeyRange]:
    """At most `streams` disjoint ranges covering every integer, split evenly over
    [lowest, highest]; one unbounded range for an empty table (None) or a single key value.

    Never more ranges than key values in [lowest, highest], so no range is empty by
    construction (a sparse key can still leave one without rows).
    """
    if lowest is None or highest is None or streams <= 1 or highest <= lowest:
        return [KeyRange()]
    span = highest - lowest + 1  # Python integers: exact even for BIGINT UNSIGNED near 2^64
    count = min(streams, span)
    bounds = [lowest + span * i // count for i in range(1, count)]
    edges: list[int | None] = [None, *bounds, None]
    return [KeyRange(edges[i], edges[i + 1]) for i in range(count)]


def key_bounds(conn: Any, database: str, table: str, key: str) -> tuple[int | None, int | None]:
    """MIN and MAX of `key` (an index read: the leading column of the primary key); (None,
    None) for an empty table."""
    column = quote_identifier(key)
    source = f"{quote_identifier(database)}.{quote_identifier(table)}"
    row = query(conn, f"SELECT MIN({column}) AS lo, MAX({column}) AS hi FROM {source}")[0]
    lo, hi = row["lo"], row["hi"]
    return (None if lo is None else int(lo)), (None if hi is None else int(hi))
