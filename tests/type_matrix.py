"""The type contract as test data: one case per contract row, with edge values and NULLs.

Used by both tiers: the unit tests check the plan each case gets, the integration test
creates a table per case in the server under test (MariaDB or MySQL), extracts it, and
reads it back with DuckDB (an independent Parquet reader) to compare every value with
`expected`. Values are SQL literals, inserted with sql_mode='' (zero dates allowed) and
time_zone='+00:00' (TIMESTAMP literals are UTC). `data_type` and `column_type` are what
discovery reports on either server (MySQL 8's form: no integer display widths); where
the servers take other literals or return other values, `mysql_values`/`mysql_expected`
say what MySQL's user writes and gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa


@dataclass(frozen=True)
class Case:
    id: str
    ddl: str  # the column type in CREATE TABLE
    data_type: str  # information_schema DATA_TYPE
    column_type: str  # information_schema COLUMN_TYPE
    values: tuple[str, ...]  # SQL literals; a NULL row is always added
    expected: tuple[object, ...]  # what an independent reader must see, in order
    arrow: pa.DataType
    nulled: int = 0  # values that become NULL by a documented rule
    precision: int | None = None
    scale: int | None = None
    mysql_values: tuple[str, ...] | None = None  # None: the same as `values`
    mysql_expected: tuple[object, ...] | None = None  # None: the same as `expected`

    def values_on(self, flavor: str) -> tuple[str, ...]:
        return self.mysql_values if flavor == "mysql" and self.mysql_values else self.values

    def expected_on(self, flavor: str) -> tuple[object, ...]:
        return self.mysql_expected if flavor == "mysql" and self.mysql_expected else self.expected


def _utc(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    microsecond: int = 0,
) -> datetime:
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=UTC)


MAX_U64 = 18446744073709551615
NINES_38 = "9" * 38

CASES: tuple[Case, ...] = (
    Case(
        "tinyint", "TINYINT", "tinyint", "tinyint", ("-128", "0", "127"), (-128, 0, 127), pa.int8()
    ),
    Case(
        "tinyint_unsigned",
        "TINYINT UNSIGNED",
        "tinyint",
        "tinyint unsigned",
        ("0", "255"),
        (0, 255),
        pa.int16(),
    ),
    Case(
        "tinyint_1",
        "TINYINT(1)",
        "tinyint",
        "tinyint(1)",
        ("0", "1", "2", "127", "-128"),
        (0, 1, 2, 127, -128),
        pa.int8(),
    ),
    Case(
        "smallint",
        "SMALLINT",
        "smallint",
        "smallint",
        ("-32768", "32767"),
        (-32768, 32767),
        pa.int16(),
    ),
    Case(
        "smallint_unsigned",
        "SMALLINT UNSIGNED",
        "smallint",
        "smallint unsigned",
        ("0", "65535"),
        (0, 65535),
        pa.int32(),
    ),
    Case(
        "mediumint",
        "MEDIUMINT",
        "mediumint",
        "mediumint",
        ("-8388608", "8388607"),
        (-8388608, 8388607),
        pa.int32(),
    ),
    Case(
        "mediumint_unsigned",
        "MEDIUMINT UNSIGNED",
        "mediumint",
        "mediumint unsigned",
        ("0", "16777215"),
        (0, 16777215),
        pa.int32(),
    ),
    Case(
        "int",
        "INT",
        "int",
        "int",
        ("-2147483648", "2147483647"),
        (-2147483648, 2147483647),
        pa.int32(),
    ),
    Case(
        "int_unsigned",
        "INT UNSIGNED",
        "int",
        "int unsigned",
        ("0", "4294967295"),
        (0, 4294967295),
        pa.int64(),
    ),
    Case(
        "bigint",
        "BIGINT",
        "bigint",
        "bigint",
        ("-9223372036854775808", "9223372036854775807"),
        (-9223372036854775808, 9223372036854775807),
        pa.int64(),
    ),
    Case(
        "bigint_unsigned",
        "BIGINT UNSIGNED",
        "bigint",
        "bigint unsigned",
        ("0", "9223372036854775808", str(MAX_U64)),
        (Decimal(0), Decimal(9223372036854775808), Decimal(MAX_U64)),
        pa.decimal128(20, 0),
    ),
    Case(
        "bit_1", "BIT(1)", "bit", "bit(1)", ("b'0'", "b'1'"), (False, True), pa.bool_(), precision=1
    ),
    Case(
        "bit_8",
        "BIT(8)",
        "bit",
        "bit(8)",
        ("b'0'", "b'10101010'", "b'11111111'"),
        (0, 170, 255),
        pa.int64(),
        precision=8,
    ),
    Case(
        "bit_63",
        "BIT(63)",
        "bit",
        "bit(63)",
        ("b'" + "1" * 63 + "'",),
        (2**63 - 1,),
        pa.int64(),
        precision=63,
    ),
    Case(
        "bit_64",
        "BIT(64)",
        "bit",
        "bit(64)",
        ("b'" + "1" * 64 + "'", "b'1'"),
        (Decimal(MAX_U64), Decimal(1)),
        pa.decimal128(20, 0),
        precision=64,
    ),
    Case(
        "decimal_5_2",
        "DECIMAL(5,2)",
        "decimal",
        "decimal(5,2)",
        ("-999.99", "0", "999.99", "0.01"),
        (Decimal("-999.99"), Decimal("0.00"), Decimal("999.99"), Decimal("0.01")),
        pa.decimal128(5, 2),
        precision=5,
        scale=2,
    ),
    Case(
        "decimal_14_2",
        "DECIMAL(14,2)",
        "decimal",
        "decimal(14,2)",
        ("123456789012.34", "-0.05"),
        (Decimal("123456789012.34"), Decimal("-0.05")),
        pa.decimal128(14, 2),
        precision=14,
        scale=2,
    ),
    Case(
        "decimal_20_0",
        "DECIMAL(20,0)",
        "decimal",
        "decimal(20,0)",
        ("99999999999999999999", "-99999999999999999999"),
        (Decimal("99999999999999999999"), Decimal("-99999999999999999999")),
        pa.decimal128(20, 0),
        precision=20,
        scale=0,
    ),
    Case(
        "decimal_38_0",
        "DECIMAL(38,0)",
        "decimal",
        "decimal(38,0)",
        (NINES_38, "-" + NINES_38),
        (Decimal(NINES_38), Decimal("-" + NINES_38)),
        pa.decimal128(38, 0),
        precision=38,
        scale=0,
    ),
    Case(
        "decimal_30_20",
        "DECIMAL(30,20)",
        "decimal",
        "decimal(30,20)",
        ("1234567890.12345678901234567890",),
        (Decimal("1234567890.12345678901234567890"),),
        pa.decimal128(30, 20),
        precision=30,
        scale=20,
    ),
    Case(
        "decimal_65_30",
        "DECIMAL(65,30)",
        "decimal",
        "decimal(65,30)",
        ("12345678901234567890123456789012345.123456789012345678901234567890", "0", "-1.5"),
        (
            "12345678901234567890123456789012345.123456789012345678901234567890",
            "0.000000000000000000000000000000",
            "-1.500000000000000000000000000000",
        ),
        pa.string(),
        precision=65,
        scale=30,
    ),
    Case(
        "float",
        "FLOAT",
        "float",
        "float",
        ("1.5", "-3.4028234e38", "1.17549435e-38"),
        (1.5, -3.4028234663852886e38, 1.1754943508222875e-38),
        pa.float32(),
    ),
    Case(
        "double",
        "DOUBLE",
        "double",
        "double",
        ("3.141592653589793", "-1.7976931348623157e308", "5e-324"),
        (3.141592653589793, -1.7976931348623157e308, 5e-324),
        pa.float64(),
    ),
    Case(
        "date",
        "DATE",
        "date",
        "date",
        (
            "'2024-02-29'",
            "'1000-01-01'",
            "'9999-12-31'",
            "'0001-01-01'",
            "'0000-00-00'",
            "'2024-00-15'",
            "'2024-02-00'",
        ),
        (date(2024, 2, 29), date(1000, 1, 1), date(9999, 12, 31), date(1, 1, 1), None, None, None),
        pa.date32(),
        nulled=3,
    ),
    Case(
        "datetime",
        "DATETIME",
        "datetime",
        "datetime",
        (
            "'2024-02-29 23:59:59'",
            "'1000-01-01 00:00:00'",
            "'0000-00-00 00:00:00'",
            "'2024-00-15 10:00:00'",
        ),
        (datetime(2024, 2, 29, 23, 59, 59), datetime(1000, 1, 1), None, None),
        pa.timestamp("us"),
        nulled=2,
    ),
    Case(
        "datetime_6",
        "DATETIME(6)",
        "datetime",
        "datetime(6)",
        (
            "'9999-12-31 23:59:59.999999'",
            "'2024-01-01 00:00:00.000001'",
            "'0000-00-00 00:00:00.000000'",
        ),
        (datetime(9999, 12, 31, 23, 59, 59, 999999), datetime(2024, 1, 1, 0, 0, 0, 1), None),
        pa.timestamp("us"),
        nulled=1,
    ),
    Case(
        "timestamp",
        "TIMESTAMP NULL",
        "timestamp",
        "timestamp",
        ("'1970-01-01 00:00:01'", "'2024-02-29 12:00:00'", "'0000-00-00 00:00:00'"),
        (_utc(1970, 1, 1, 0, 0, 1), _utc(2024, 2, 29, 12), None),
        pa.timestamp("us", tz="UTC"),
        nulled=1,
    ),
    Case(
        "timestamp_6",
        "TIMESTAMP(6) NULL",
        "timestamp",
        "timestamp(6)",
        ("'2038-01-19 03:14:07.999999'", "'2000-06-15 08:30:00.000001'"),
        (_utc(2038, 1, 19, 3, 14, 7, 999999), _utc(2000, 6, 15, 8, 30, 0, 1)),
        pa.timestamp("us", tz="UTC"),
    ),
    Case(
        "time",
        "TIME",
        "time",
        "time",
        ("'838:59:59'", "'-838:59:59'", "'00:00:00'", "'12:34:56'"),
        ("838:59:59", "-838:59:59", "00:00:00", "12:34:56"),
        pa.string(),
    ),
    Case(
        "time_6",
        "TIME(6)",
        "time",
        "time(6)",
        ("'-00:00:01.500000'", "'100:00:00.000001'"),
        ("-00:00:01.500000", "100:00:00.000001"),
        pa.string(),
    ),
    Case("year", "YEAR", "year", "year", ("1901", "2155", "0"), (1901, 2155, 0), pa.int16()),
    Case(
        "char",
        "CHAR(10)",
        "char",
        "char(10)",
        ("''", "'ab'", "'ção'"),
        ("", "ab", "ção"),
        pa.string(),
    ),
    Case(
        "varchar_utf8mb4",
        "VARCHAR(255)",
        "varchar",
        "varchar(255)",
        ("'olá 😀 𝄞'", "''", "'a''b\\\\c'"),
        ("olá 😀 𝄞", "", "a'b\\c"),
        pa.string(),
    ),
    Case("text", "TEXT", "text", "text", ("REPEAT('x😀', 5000)",), ("x😀" * 5000,), pa.string()),
    Case(
        "enum",
        "ENUM('open','closed')",
        "enum",
        "enum('open','closed')",
        ("'open'", "'closed'"),
        ("open", "closed"),
        pa.string(),
    ),
    Case(
        "set",
        "SET('a','b','c')",
        "set",
        "set('a','b','c')",
        ("'a,c'", "''"),
        ("a,c", ""),
        pa.string(),
    ),
    # MariaDB keeps the text as written; MySQL stores JSON and returns its normal form.
    Case(
        "json",
        "JSON",
        "json",
        "json",
        ('\'{"b":1,  "a":[1,"é😀"],"c":1.50, "aa": null}\'', "'null'", "'\"x\"'"),
        ('{"b":1,  "a":[1,"é😀"],"c":1.50, "aa": null}', "null", '"x"'),
        pa.string(),
        mysql_expected=('{"a": [1, "é😀"], "b": 1, "c": 1.5, "aa": null}', "null", '"x"'),
    ),
    Case(
        "binary",
        "BINARY(4)",
        "binary",
        "binary(4)",
        ("X'00FF'",),
        (b"\x00\xff\x00\x00",),
        pa.binary(),
    ),
    Case(
        "varbinary",
        "VARBINARY(16)",
        "varbinary",
        "varbinary(16)",
        ("X'00'", "X''"),
        (b"\x00", b""),
        pa.binary(),
    ),
    Case(
        "blob", "BLOB", "blob", "blob", ("X'DEADBEEF00'",), (b"\xde\xad\xbe\xef\x00",), pa.binary()
    ),
    Case(
        "geometry",
        "GEOMETRY",
        "geometry",
        "geometry",
        ("ST_GeomFromText('POINT(1 2)')",),
        (bytes.fromhex("0101000000000000000000f03f0000000000000040"),),
        pa.binary(),
    ),
    # São Paulo, longitude -46.63, latitude -23.55, in SRID 4326: MySQL reads the WKT in
    # the SRID's axis order (latitude first), MariaDB as x y. The same WKB on both,
    # longitude first.
    Case(
        "geometry_4326",
        "GEOMETRY",
        "geometry",
        "geometry",
        ("ST_GeomFromText('POINT(-46.63 -23.55)', 4326)",),
        (bytes.fromhex("0101000000713d0ad7a35047c0cdcccccccc8c37c0"),),
        pa.binary(),
        mysql_values=("ST_GeomFromText('POINT(-23.55 -46.63)', 4326)",),
    ),
)
