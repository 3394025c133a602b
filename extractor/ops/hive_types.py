"""Parquet (Arrow) types -> the Hive types Glue and Athena declare columns with. One table, pure.

Rules are ordered most specific first; a type no rule covers raises GlueError: a column is
never declared with a guessed type (Athena would fail on it, or worse, read it wrongly).
Unsigned integers, TIME and decimals wider than 38 digits have no Hive type; the type
contract never writes them (extractor/contract/types.py widens or writes them as text).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.types as pat

from extractor.errors import GlueError, Step

MAX_HIVE_DECIMAL_PRECISION = 38


@dataclass(frozen=True)
class HiveRule:
    arrow: str  # for the README and the tests' ids
    matches: Callable[[pa.DataType], bool]
    hive: Callable[[pa.DataType], str]


def _named(name: str) -> Callable[[pa.DataType], str]:
    return lambda _: name


def _decimal(t: pa.DataType) -> str:
    return f"decimal({t.precision},{t.scale})"


def _struct(t: pa.DataType) -> str:
    return "struct<" + ",".join(f"{f.name}:{hive_type(f.type)}" for f in t) + ">"


RULES: tuple[HiveRule, ...] = (
    HiveRule("bool", pat.is_boolean, _named("boolean")),
    HiveRule("int8", pat.is_int8, _named("tinyint")),
    HiveRule("int16", pat.is_int16, _named("smallint")),
    HiveRule("int32", pat.is_int32, _named("int")),
    HiveRule("int64", pat.is_int64, _named("bigint")),
    HiveRule("float32", pat.is_float32, _named("float")),
    HiveRule("float64", pat.is_float64, _named("double")),
    HiveRule(
        "decimal(p,s), p <= 38",
        lambda t: pat.is_decimal(t) and t.precision <= MAX_HIVE_DECIMAL_PRECISION,
        _decimal,
    ),
    HiveRule(
        "string, large_string",
        lambda t: pat.is_string(t) or pat.is_large_string(t),
        _named("string"),
    ),
    HiveRule(
        "binary, large_binary, fixed_size_binary",
        lambda t: pat.is_binary(t) or pat.is_large_binary(t) or pat.is_fixed_size_binary(t),
        _named("binary"),
    ),
    HiveRule("date32, date64", pat.is_date, _named("date")),
    # Any unit, with or without a zone: Athena reads Parquet timestamps adjusted to UTC or not.
    HiveRule("timestamp", pat.is_timestamp, _named("timestamp")),
    HiveRule(
        "list, large_list, fixed_size_list",
        lambda t: pat.is_list(t) or pat.is_large_list(t) or pat.is_fixed_size_list(t),
        lambda t: f"array<{hive_type(t.value_type)}>",
    ),
    HiveRule("map", pat.is_map, lambda t: f"map<{hive_type(t.key_type)},{hive_type(t.item_type)}>"),
    HiveRule("struct", pat.is_struct, _struct),
    # A dictionary-encoded column is its values' type to every reader.
    HiveRule("dictionary", pat.is_dictionary, lambda t: hive_type(t.value_type)),
)


def hive_type(arrow_type: pa.DataType) -> str:
    """The Hive type of an Arrow type; GlueError if no rule covers it."""
    for rule in RULES:
        if rule.matches(arrow_type):
            return rule.hive(arrow_type)
    raise GlueError(f"Parquet type {arrow_type} has no Hive type", step=Step.CATALOG)


def hive_columns(schema: pa.Schema, table: str | None = None) -> list[tuple[str, str]]:
    """(name, Hive type) per field, names in lower case: Glue and Athena fold them so."""
    columns = []
    for field in schema:
        try:
            columns.append((field.name.lower(), hive_type(field.type)))
        except GlueError as exc:
            raise GlueError(
                f"column {field.name!r}: {exc.message}: the Glue table's columns are not changed",
                table=table,
                step=Step.CATALOG,
            ) from exc
    return columns
