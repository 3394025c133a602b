"""Classify the changes between a stored schema and the live one. Pure functions.

Both sides are stored schemas (`store.build_schema`), so the live database is judged
in the very form that is committed. Classes (stable ids, see `policy.CLASSES`):
table_added, table_removed, column_added, column_added_required (NOT NULL without a
default: older rows hold MySQL's implicit 0 or ''), column_removed, column_renamed (a
removal plus an addition of the same MySQL type at the same position: it only looks like
a rename), type_widened (lossless), type_changed (everything else), nullability_changed,
order_changed. A change whose Arrow/Parquet type differs says so
(`parquet_type_changed`, with both Arrow types).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from extractor.drift.store import StoredColumn, StoredSchema

# What a change of the Parquet type means for Glue and Athena, and what to do. Athena checks
# each partition's declared column types against the table's and reads a file with another
# type only for its documented compatible pairs (tinyint→smallint→int→bigint, float→double);
# anything else fails on the older partitions.
PARQUET_NOTE = (
    "older partitions keep the old Parquet type and will disagree with new ones in "
    "Glue/Athena (HIVE_PARTITION_SCHEMA_MISMATCH): update the Glue table's column type, or "
    "let the crawler update the table definition and all partitions from the table; Athena "
    "reads old files as the new type only for a wider integer or FLOAT→DOUBLE, otherwise "
    "rewrite the old partitions with the new type (re-extracting a past date would copy "
    "today's rows into it)"
)
_RETYPED = ("type_widened", "type_changed")


@dataclass(frozen=True)
class Change:
    """One difference between the stored and the live schema of a table."""

    kind: str  # the class id
    column: str | None = None
    stored: str | None = None
    live: str | None = None
    stored_arrow: str | None = None
    live_arrow: str | None = None
    note: str | None = None  # why, in a few words (a rename's guess, a type's reason)

    @property
    def parquet_type_changed(self) -> bool:
        """A column kept across the change is written with another Arrow/Parquet type."""
        return self.kind in _RETYPED and self.stored_arrow != self.live_arrow

    def describe(self) -> str:
        """`kind column: stored → live`, with the Parquet types when they change."""
        text = self.kind + (f" {self.column}" if self.column else "")
        if self.stored is not None or self.live is not None:
            text += f": {self.stored or '(none)'} → {self.live or '(none)'}"
        if self.parquet_type_changed:
            text += f" (Parquet {self.stored_arrow} → {self.live_arrow})"
        if self.note:
            text += f" ({self.note})"
        return text

    def sort_key(self) -> tuple[str, str]:
        return (self.column or "", self.kind)


def compare(stored: StoredSchema | None, live: StoredSchema | None) -> list[Change]:
    """Every change from `stored` to `live` for one table, sorted by column then class."""
    if stored is None and live is None:
        return []
    if stored is None:
        return [Change("table_added", note="no stored schema")]
    if live is None:
        return [Change("table_removed", note="stored, but no longer in the database")]
    old = {c.name: (i, c) for i, c in enumerate(stored.columns)}
    new = {c.name: (i, c) for i, c in enumerate(live.columns)}
    removed = [n for n in old if n not in new]
    added = [n for n in new if n not in old]
    changes: list[Change] = []
    renamed_from: dict[str, str] = {}  # new name -> old name
    for name in removed:
        position, column = old[name]
        twin = next(
            (
                a
                for a in added
                if new[a][0] == position
                and a not in renamed_from
                and new[a][1].mysql_type == column.mysql_type
            ),
            None,
        )
        if twin is not None:
            renamed_from[twin] = name
            changes.append(
                Change(
                    "column_renamed",
                    name,
                    name,
                    twin,
                    column.arrow_type,
                    new[twin][1].arrow_type,
                    note=f"looks like a rename: same type {column.mysql_type} at position "
                    f"{position + 1}",
                )
            )
        else:
            changes.append(
                Change("column_removed", name, _describe(column), None, column.arrow_type, None)
            )
    for name in added:
        if name in renamed_from:
            continue
        column = new[name][1]
        required = not column.nullable and not column.has_default
        changes.append(
            Change(
                "column_added_required" if required else "column_added",
                name,
                None,
                _describe(column),
                None,
                column.arrow_type,
                note="NOT NULL without a default" if required else None,
            )
        )
    for name in (n for n in old if n in new):
        changes.extend(_column_changes(name, old[name][1], new[name][1]))
    kept_old = [n for n in old if n in new]
    kept_new = [n for n in new if n in old]
    if kept_old != kept_new:
        changes.append(Change("order_changed", None, ", ".join(kept_old), ", ".join(kept_new)))
    return sorted(changes, key=Change.sort_key)


def _describe(column: StoredColumn) -> str:
    return f"{column.mysql_type}{'' if column.nullable else ' NOT NULL'}"


def _column_changes(name: str, old: StoredColumn, new: StoredColumn) -> list[Change]:
    out: list[Change] = []
    if old.mysql_type != new.mysql_type or old.arrow_type != new.arrow_type:
        widened = old.mysql_type != new.mysql_type and is_widening(old, new)
        note = None
        if old.mysql_type == new.mysql_type:  # same column, new engine type contract
            note = "the type contract now writes another Arrow type"
        out.append(
            Change(
                "type_widened" if widened else "type_changed",
                name,
                old.mysql_type,
                new.mysql_type,
                old.arrow_type,
                new.arrow_type,
                note=note,
            )
        )
    if old.nullable != new.nullable:
        label = {True: "NULL", False: "NOT NULL"}
        # The Parquet column is OPTIONAL either way: the Arrow types stay as they are.
        out.append(
            Change(
                "nullability_changed",
                name,
                label[old.nullable],
                label[new.nullable],
                new.arrow_type,
                new.arrow_type,
            )
        )
    return out


# --- lossless widening, decided on MySQL's COLUMN_TYPE text --------------------------------

_INTEGERS = ("tinyint", "smallint", "mediumint", "int", "bigint")
_INTEGER_BITS = {
    "tinyint": 8,
    "smallint": 16,
    "mediumint": 24,
    "int": 32,
    "integer": 32,
    "bigint": 64,
}
_TEXTS = ("tinytext", "text", "mediumtext", "longtext")
_BLOBS = ("tinyblob", "blob", "mediumblob", "longblob")
_LENGTHS = ("char", "varchar", "varbinary")
_FRACTIONAL = ("datetime", "timestamp", "time")
_ARGS = re.compile(r"\(([^)]*)\)")


def is_widening(old: StoredColumn, new: StoredColumn) -> bool:
    """Whether every value of the stored type is held exactly by the live type."""
    a, b = old.data_type, new.data_type
    ta, tb = old.mysql_type.lower(), new.mysql_type.lower()
    if a in _INTEGER_BITS and b in _INTEGER_BITS:
        return _integer_widens(a, _unsigned(ta), b, _unsigned(tb))
    if a in ("decimal", "numeric") and b in ("decimal", "numeric"):
        (p, s), (p2, s2) = _decimal(ta), _decimal(tb)
        sign_ok = _unsigned(tb) <= _unsigned(ta)  # unsigned -> signed is fine, not back
        return sign_ok and p2 - s2 >= p - s and s2 >= s
    if (a, b) == ("float", "double"):
        return not _ARGS.search(ta) and not _ARGS.search(tb)  # FLOAT(M,D) rounds values
    for chain in (_TEXTS, _BLOBS):
        if a in chain and b in chain:
            return chain.index(b) >= chain.index(a)
    if a == b and a in _LENGTHS:
        return _first_number(tb) >= _first_number(ta)
    if (a, b) == ("char", "varchar"):  # CHAR's trailing spaces are stripped on read anyway
        return _first_number(tb) >= _first_number(ta)
    # VARCHAR(n) holds at most 65,535 bytes, which TEXT and up hold too (TINYTEXT may not).
    if a in ("char", "varchar") and b in _TEXTS[1:]:
        return True
    if a in ("binary", "varbinary") and b in _BLOBS[1:]:
        return a == "varbinary"  # BINARY's zero padding is part of its values
    if a == b and a in _FRACTIONAL:
        return _first_number(tb) >= _first_number(ta)  # no digits means precision 0
    if a == b and a in ("enum", "set"):
        before, after = _values(old.mysql_type), _values(new.mysql_type)
        return len(after) >= len(before) and after[: len(before)] == before
    return False


def _unsigned(column_type: str) -> bool:
    return "unsigned" in column_type


def _integer_widens(a: str, a_unsigned: bool, b: str, b_unsigned: bool) -> bool:
    bits_a, bits_b = _INTEGER_BITS[a], _INTEGER_BITS[b]
    if a_unsigned == b_unsigned:
        return bits_b >= bits_a  # equal: only the display width changed
    # unsigned n bits fits a signed type of more bits; signed never fits unsigned
    return a_unsigned and bits_b > bits_a


def _decimal(column_type: str) -> tuple[int, int]:
    match = _ARGS.search(column_type)
    parts = [int(x) for x in match.group(1).split(",")] if match else []
    precision = parts[0] if parts else 10
    return precision, parts[1] if len(parts) > 1 else 0


def _first_number(column_type: str) -> int:
    match = _ARGS.search(column_type)
    return int(match.group(1).split(",")[0]) if match and match.group(1).strip().isdigit() else 0


def _values(column_type: str) -> list[str]:
    # enum('a','b''c') -> ["a", "b'c"]; quotes inside values are doubled by MySQL.
    inner = column_type[column_type.index("(") + 1 : column_type.rindex(")")]
    return [v.replace("''", "'") for v in re.findall(r"'((?:[^']|'')*)'", inner)]


def table_changes(
    stored: Mapping[str, StoredSchema] | None,
    live: Mapping[str, StoredSchema],
    names: Sequence[str],
    whole_database: bool,
) -> dict[str, list[Change]]:
    """Changes per table for the tables `names` (live ones), plus, when the whole database
    is checked, the stored tables that no longer exist. No stored schemas at all: every
    table is added."""
    stored = stored or {}
    out = {name: compare(stored.get(name), live[name]) for name in names}
    if whole_database:
        for name in stored:
            if name not in live:
                out[name] = compare(stored[name], None)
    return {name: changes for name, changes in sorted(out.items())}
