"""The type contract: MySQL column -> (SQL projection, Arrow type, conversion). One table, pure.

Each rule says how a column is selected (`Read`), what Arrow/Parquet type the
engine writes, and how the bulk reader's output becomes that type (`Convert`).
Rules are ordered most specific first; a type no rule covers raises
`UnsupportedColumn`, it never passes through silently.

Why the projections: connectorx (the bulk reader) panics on zero dates, on TIME
beyond 24 h, on DECIMAL wider than its 28 digits, and on GEOMETRY; it returns
every DECIMAL as decimal(38,10) and TIMESTAMP in the session's time zone. So each
such column travels as an integer where one holds it exactly (cheaper to send,
decode and convert than text, measured), else as MySQL's own text:
DECIMAL(p ≤ 18) as the unscaled integer, DATE and DATETIME(0) as the digits
YYYYMMDD[hhmmss] (a zero or invalid date keeps its digits, so nothing is coerced
on the server), TIMESTAMP as the exact UTC epoch in microseconds, BIT as an
unsigned integer; wider DECIMAL, DATETIME(n > 0) and TIME as text; GEOMETRY as WKB,
longitude first on either server (`Flavor`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from extractor.errors import Step, UnsupportedColumn

Flavor = Literal["mariadb", "mysql"]


@dataclass(frozen=True)
class Column:
    """One column as information_schema.COLUMNS describes it."""

    name: str
    data_type: str  # DATA_TYPE, lower case: "int", "decimal", "datetime", ...
    column_type: str  # COLUMN_TYPE: "int(10) unsigned", "tinyint(1)", "enum('a','b')"
    nullable: bool = True
    precision: int | None = None  # NUMERIC_PRECISION (digits, or bits for BIT)
    scale: int | None = None  # NUMERIC_SCALE
    datetime_precision: int | None = None
    # Whether rows that existed before the column was added got a real value: a DEFAULT,
    # AUTO_INCREMENT, a generated column, or NULL (nullable). Only drift checks read it.
    has_default: bool = True

    @property
    def unsigned(self) -> bool:
        return "unsigned" in self.column_type.lower()


class Read(enum.Enum):
    """How a column is selected; `{col}` is the quoted identifier."""

    AS_IS = "{col}"
    TEXT = "CAST({col} AS CHAR)"
    # Exact: p ≤ 18 digits times 10^s is an integer below 2^63.
    UNSCALED = "CAST({col} * {factor} AS SIGNED)"
    # A temporal in numeric context: YYYYMMDD or YYYYMMDDhhmmss, zero dates as 0.
    DIGITS = "{col} + 0"
    UNSIGNED = "CAST({col} AS UNSIGNED)"
    # UNIX_TIMESTAMP of a TIMESTAMP column returns the stored UTC value, whatever the
    # session time zone; 0 means the zero timestamp.
    EPOCH_MICROS = "CAST(UNIX_TIMESTAMP({col}) * 1000000 AS SIGNED)"
    WKB = "ST_AsBinary({col})"


# MySQL 8+ writes a geographic SRID's WKB (4326, say) in the SRID's axis order, latitude
# first; MariaDB always puts x = longitude first and knows no such argument. Longitude
# first on both, so readers get the same bytes whatever the server (SRID 0 is unchanged).
_MYSQL_READS = {Read.WKB: "ST_AsBinary({col}, 'axis-order=long-lat')"}


class Convert(enum.Enum):
    """How the bulk reader's array becomes the contract's Arrow type (see casts.py)."""

    CAST = "cast"  # safe Arrow cast: raises on any overflow or lost digit
    UNSCALED_DECIMAL = "unscaled_decimal"  # int64 v -> decimal v / 10^s, zero-copy
    DATE_DIGITS = "date_digits"  # YYYYMMDD; zero/invalid -> NULL, counted
    DATETIME_DIGITS = "datetime_digits"  # YYYYMMDDhhmmss; zero/invalid -> NULL, counted
    DATETIME_TEXT = "datetime_text"  # 'YYYY-MM-DD hh:mm:ss[.ffffff]'; zero/invalid -> NULL, counted
    EPOCH_MICROS_UTC = "epoch_micros_utc"  # int64 microseconds; 0 (zero timestamp) -> NULL, counted


@dataclass(frozen=True)
class ColumnPlan:
    """What the engine does with one column."""

    column: Column
    read: Read
    arrow_type: pa.DataType
    convert: Convert

    @property
    def name(self) -> str:
        return self.column.name

    def select_sql(self, flavor: Flavor) -> str:
        col = quote_identifier(self.column.name)
        factor = 10 ** (self.column.scale or 0)
        read = (
            _MYSQL_READS.get(self.read, self.read.value) if flavor == "mysql" else self.read.value
        )
        return f"{read.format(col=col, factor=factor)} AS {col}"


@dataclass(frozen=True)
class Rule:
    mysql: str  # for the README's contract table
    matches: Callable[[Column], bool]
    read: Read
    arrow: Callable[[Column], pa.DataType]
    convert: Convert = Convert.CAST


_SIGNED = {
    "tinyint": pa.int8(),
    "smallint": pa.int16(),
    "mediumint": pa.int32(),
    "int": pa.int32(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
}
# Unsigned widens to the next signed type holding its range: Athena, Glue and Trino
# misread Parquet's unsigned annotations.
_UNSIGNED = {
    "tinyint": pa.int16(),
    "smallint": pa.int32(),
    "mediumint": pa.int32(),
    "int": pa.int64(),
    "integer": pa.int64(),
    "bigint": pa.decimal128(20, 0),
}
_STRINGS = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"}
_BINARIES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}
_GEOMETRIES = {
    "geometry",
    "point",
    "linestring",
    "polygon",
    "multipoint",
    "multilinestring",
    "multipolygon",
    "geometrycollection",
    "geomcollection",
}
# MariaDB's own types, read as their canonical text.
_TEXTUAL = {"json", "inet4", "inet6", "uuid"}
MAX_DECIMAL128_PRECISION = 38


def _is(*names: str) -> Callable[[Column], bool]:
    return lambda c: c.data_type in names


def _bits(c: Column) -> int:
    return c.precision or 1


RULES: tuple[Rule, ...] = (
    Rule(
        "TINYINT … BIGINT (signed)",
        lambda c: c.data_type in _SIGNED and not c.unsigned,
        Read.AS_IS,
        lambda c: _SIGNED[c.data_type],
    ),
    Rule(
        "TINYINT … BIGINT UNSIGNED",
        lambda c: c.data_type in _UNSIGNED and c.unsigned,
        Read.AS_IS,
        lambda c: _UNSIGNED[c.data_type],
    ),
    Rule(
        "BIT(1)",
        lambda c: c.data_type == "bit" and _bits(c) == 1,
        Read.UNSIGNED,
        lambda c: pa.bool_(),
    ),
    Rule(
        "BIT(2..63)",
        lambda c: c.data_type == "bit" and _bits(c) <= 63,
        Read.UNSIGNED,
        lambda c: pa.int64(),
    ),
    Rule("BIT(64)", _is("bit"), Read.UNSIGNED, lambda c: pa.decimal128(20, 0)),
    Rule(
        "DECIMAL(p,s), p ≤ 18",
        lambda c: c.data_type in ("decimal", "numeric") and (c.precision or 10) <= 18,
        Read.UNSCALED,
        lambda c: pa.decimal128(c.precision or 10, c.scale or 0),
        Convert.UNSCALED_DECIMAL,
    ),
    Rule(
        "DECIMAL(p,s), 18 < p ≤ 38",
        lambda c: (
            c.data_type in ("decimal", "numeric")
            and (c.precision or 10) <= MAX_DECIMAL128_PRECISION
        ),
        Read.TEXT,
        lambda c: pa.decimal128(c.precision or 10, c.scale or 0),
    ),
    Rule("DECIMAL(p,s), p > 38", _is("decimal", "numeric"), Read.TEXT, lambda c: pa.string()),
    Rule("FLOAT", _is("float"), Read.AS_IS, lambda c: pa.float32()),
    Rule("DOUBLE", _is("double", "real"), Read.AS_IS, lambda c: pa.float64()),
    Rule("DATE", _is("date"), Read.DIGITS, lambda c: pa.date32(), Convert.DATE_DIGITS),
    Rule(
        "DATETIME",
        lambda c: c.data_type == "datetime" and not c.datetime_precision,
        Read.DIGITS,
        lambda c: pa.timestamp("us"),
        Convert.DATETIME_DIGITS,
    ),
    Rule(
        "DATETIME(n), n > 0",
        _is("datetime"),
        Read.TEXT,
        lambda c: pa.timestamp("us"),
        Convert.DATETIME_TEXT,
    ),
    Rule(
        "TIMESTAMP(n)",
        _is("timestamp"),
        Read.EPOCH_MICROS,
        lambda c: pa.timestamp("us", tz="UTC"),
        Convert.EPOCH_MICROS_UTC,
    ),
    Rule("TIME(n)", _is("time"), Read.TEXT, lambda c: pa.string()),
    Rule("YEAR", _is("year"), Read.AS_IS, lambda c: pa.int16()),
    Rule(
        "CHAR, VARCHAR, TEXT, ENUM, SET",
        lambda c: c.data_type in _STRINGS,
        Read.AS_IS,
        lambda c: pa.string(),
    ),
    Rule(
        "JSON (and MariaDB INET4, INET6, UUID)",
        lambda c: c.data_type in _TEXTUAL,
        Read.TEXT,
        lambda c: pa.string(),
    ),
    Rule(
        "BINARY, VARBINARY, BLOB",
        lambda c: c.data_type in _BINARIES,
        Read.AS_IS,
        lambda c: pa.binary(),
    ),
    Rule(
        "GEOMETRY (all spatial types)",
        lambda c: c.data_type in _GEOMETRIES,
        Read.WKB,
        lambda c: pa.binary(),
    ),
)


def plan_column(column: Column, table: str | None = None) -> ColumnPlan:
    """The contract's plan for one column; UnsupportedColumn if no rule covers it."""
    for rule in RULES:
        if rule.matches(column):
            return ColumnPlan(column, rule.read, rule.arrow(column), rule.convert)
    raise UnsupportedColumn(
        f"column {column.name!r} has type {column.column_type!r}, which the type contract "
        "does not cover",
        table=table,
        step=Step.PLAN,
    )


def arrow_schema(plans: list[ColumnPlan]) -> pa.Schema:
    """Every field is nullable (Parquet OPTIONAL), NOT NULL columns too: a zero date in a
    NOT NULL column becomes NULL, and a change of nullability never splits Athena partitions."""
    return pa.schema([pa.field(p.name, p.arrow_type) for p in plans])


def quote_identifier(name: str) -> str:
    """Quote a MySQL identifier (a name read from information_schema, never user text)."""
    return "`" + name.replace("`", "``") + "`"
