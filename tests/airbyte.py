"""Airbyte-era partitions for tests, written from Airbyte's documented rules.

The builder reads a MySQL table's columns and rows with pymysql (the JDBC values Airbyte's
MySQL source saw), maps each value by the rules of one era of Airbyte's S3 Parquet writer,
and writes the file with pyarrow as parquet-avro lays it out: the metadata columns, the
sanitized names, the `member0`/`member1` groups of the legacy unions, timestamp-millis for
`_airbyte_emitted_at`. It shares no code with extractor.compat: it is the reference the
compatible writer is checked against. `expected()` gives, per column, what a compatible
write must hold for each source row and whether that value was changed (lossy).

Eras:
- legacy: `_airbyte_ab_id`, `_airbyte_emitted_at`, data, `_airbyte_additional_properties`;
  integers long, numbers double, booleans; DATE/DATETIME/TIMESTAMP/TIME as the member0
  (date, timestamp-micros, time-micros) / member1 (string) union; YEAR and binaries as text.
- 1.x: `_airbyte_raw_id`, `_airbyte_extracted_at` (long, epoch ms), `_airbyte_meta`,
  `_airbyte_generation_id`, then data; dates, timestamps and times as plain logical types,
  YEAR as long; a BIGINT UNSIGNED above the signed range NULLed and recorded in the meta.
`overrides` forces another Airbyte type on some columns (e.g. the number-only early source:
integers as double).
"""

from __future__ import annotations

import base64
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Context, Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

EMITTED = datetime(2024, 4, 30, 2, 0, 0, 123000, tzinfo=UTC)
TS_UNION = pa.struct([("member0", pa.timestamp("us", tz="UTC")), ("member1", pa.string())])
DATE_UNION = pa.struct([("member0", pa.date32()), ("member1", pa.string())])
TIME_UNION = pa.struct([("member0", pa.time64("us")), ("member1", pa.string())])
CHANGE = pa.struct(
    [
        pa.field("field", pa.string(), False),
        pa.field("change", pa.string(), False),
        pa.field("reason", pa.string(), False),
    ]
)
META = pa.struct(
    [
        pa.field("sync_id", pa.int64(), False),
        pa.field("changes", pa.list_(pa.field("element", CHANGE, False)), False),
    ]
)
_BINARY = {
    "binary",
    "varbinary",
    "tinyblob",
    "blob",
    "mediumblob",
    "longblob",
    "geometry",
    "point",
    "linestring",
    "polygon",
}
_TEXT = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json"}
MAX_I64 = 2**63 - 1


@dataclass(frozen=True)
class Col:
    name: str
    data_type: str
    column_type: str
    precision: int | None
    scale: int | None
    datetime_precision: int | None


def sanitize(name: str) -> str:
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    out = re.sub(r"[^A-Za-z0-9_]", "_", plain)
    return "_" + out if out[:1].isdigit() else out


def columns(conn: Any, table: str) -> list[Col]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, NUMERIC_PRECISION, "
            "NUMERIC_SCALE, DATETIME_PRECISION FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s "
            "ORDER BY ORDINAL_POSITION",
            (table,),
        )
        return [Col(r[0], r[1].lower(), r[2].lower(), r[3], r[4], r[5]) for r in cur.fetchall()]


def rows(conn: Any, table: str, cols: list[Col]) -> list[tuple[Any, ...]]:
    # MariaDB reports JSON as longtext; MySQL 9 returns JSON text either way.
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        mariadb = "mariadb" in str(cur.fetchone()[0]).lower()
        # The WKB the contract writes: longitude first (MySQL's default for SRID 4326 is not).
        wkb = "ST_AsBinary(`{}`)" if mariadb else "ST_AsBinary(`{}`, 'axis-order=long-lat')"
        select = ", ".join(
            wkb.format(c.name) if c.data_type in ("geometry", "point") else f"`{c.name}`"
            for c in cols
        )
        cur.execute(f"SELECT {select} FROM `{table}` ORDER BY 1")
        return list(cur.fetchall())


def airbyte_type(col: Col, era: str) -> pa.DataType:
    t = col.data_type
    if (t == "tinyint" and col.column_type.startswith("tinyint(1)")) or (
        t == "bit" and (col.precision or 1) == 1
    ):
        return pa.bool_()
    if t in ("tinyint", "smallint", "mediumint", "int", "integer", "bigint"):
        return pa.int64()
    if t in ("decimal", "numeric", "float", "double"):
        return pa.float64()
    if t == "date":
        return DATE_UNION if era == "legacy" else pa.date32()
    if t in ("datetime", "timestamp"):
        return TS_UNION if era == "legacy" else pa.timestamp("us", tz="UTC")
    if t == "time":
        return TIME_UNION if era == "legacy" else pa.time64("us")
    if t == "year":
        return pa.string() if era == "legacy" else pa.int64()
    return pa.string()  # text, JSON, ENUM, SET; binaries and BIT(n) as base64


def value(col: Col, v: Any, target: pa.DataType) -> tuple[Any, bool]:
    """What Airbyte wrote for one source value, and whether it differs from the exact value."""
    if v is None or (isinstance(v, str) and col.data_type in ("date", "datetime", "timestamp")):
        return None, False  # NULL, or a zero date (the contract NULLs it, counted as nulled)
    if pa.types.is_struct(target):
        inner, changed = value(col, v, target.field("member0").type)
        return (None if inner is None else {"member0": inner, "member1": None}), changed
    if col.data_type == "bit":
        v = int.from_bytes(v, "big") if isinstance(v, bytes) else v
    if target == pa.bool_():
        return v != 0, v not in (0, 1)
    if target == pa.string():
        if col.data_type == "bit":
            raw = v.to_bytes(((col.precision or 1) + 7) // 8, "big")
            return base64.b64encode(raw).decode(), False
        if col.data_type in _BINARY:
            return base64.b64encode(v).decode(), col.data_type in ("geometry", "point")
        return str(v), False
    if target in (pa.int64(), pa.int32()):
        high = MAX_I64 if target == pa.int64() else 2**31 - 1
        return (None, True) if not -high - 1 <= v <= high else (int(v), False)
    if target == pa.float64():
        d = float(v)
        if isinstance(v, Decimal):  # the double's exact value, rounded at the column's scale
            back = Decimal(d).quantize(
                Decimal(1).scaleb(-(col.scale or 0)), context=Context(prec=100)
            )
            return d, back != v
        return d, isinstance(v, int) and int(d) != v
    if target == pa.date32():
        return v, False
    if pa.types.is_timestamp(target):
        instant = v.replace(tzinfo=UTC)  # DATETIME's wall clock taken as UTC
        if target.unit == "ms":
            lost = instant.microsecond % 1000
            return instant - timedelta(microseconds=lost), lost != 0
        return instant, False
    if pa.types.is_time(target):
        if not timedelta(0) <= v < timedelta(days=1):
            return None, True
        micros = v // timedelta(microseconds=1)
        clock = time(
            micros // 3_600_000_000,
            micros // 60_000_000 % 60,
            micros // 1_000_000 % 60,
            micros % 1_000_000,
        )
        if target.unit == "ms":
            return clock.replace(
                microsecond=clock.microsecond // 1000 * 1000
            ), clock.microsecond % 1000 != 0
        return clock, False
    raise AssertionError(f"no rule for {col.column_type} -> {target}")


def expected(conn: Any, table: str, schema: pa.Schema) -> dict[str, tuple[list[Any], int]]:
    """Per output column of `schema` (an old partition's): the values a compatible write
    must hold (source rows in key order) and how many a conversion changed."""
    cols = columns(conn, table)
    data = rows(conn, table, cols)
    out = {}
    for i, col in enumerate(cols):
        name = sanitize(col.name)
        if name not in schema.names:
            continue
        pairs = [value(col, r[i], schema.field(name).type) for r in data]
        out[name] = ([p[0] for p in pairs], sum(p[1] for p in pairs))
    return out


def write_partition(
    conn: Any, table: str, folder: Path, era: str, overrides: dict[str, pa.DataType] | None = None
) -> tuple[Path, pa.Schema]:
    """One Airbyte partition file of `table` in `folder`; returns its path and schema."""
    cols = columns(conn, table)
    data = rows(conn, table, cols)
    n = len(data)
    fields: list[pa.Field] = []
    arrays: list[pa.Array] = []
    changes: list[list[dict[str, str]]] = [[] for _ in range(n)]
    if era == "legacy":
        fields += [
            pa.field("_airbyte_ab_id", pa.string(), False),
            pa.field("_airbyte_emitted_at", pa.timestamp("ms", tz="UTC"), False),
        ]
        arrays += [
            pa.array([str(uuid.uuid4()) for _ in range(n)], pa.string()),
            pa.array([EMITTED] * n, pa.timestamp("ms", tz="UTC")),
        ]
    data_fields, data_arrays = [], []
    for i, col in enumerate(cols):
        target = (overrides or {}).get(col.name) or airbyte_type(col, era)
        values = []
        for r, row in enumerate(data):
            v, changed = value(col, row[i], target)
            values.append(v)
            if changed and v is None:
                changes[r].append(
                    {
                        "field": col.name,
                        "change": "NULLED",
                        "reason": "DESTINATION_FIELD_SIZE_LIMITATION",
                    }
                )
        data_fields.append(pa.field(sanitize(col.name), target))
        data_arrays.append(pa.array(values, target))
    if era == "1.x":
        fields += [
            pa.field("_airbyte_raw_id", pa.string(), False),
            pa.field("_airbyte_extracted_at", pa.int64(), False),
            pa.field("_airbyte_meta", META, False),
            pa.field("_airbyte_generation_id", pa.int64(), False),
        ]
        arrays += [
            pa.array([str(uuid.uuid4()) for _ in range(n)], pa.string()),
            pa.array([int(EMITTED.timestamp() * 1000)] * n, pa.int64()),
            pa.array([{"sync_id": 41, "changes": c} for c in changes], META),
            pa.array([3] * n, pa.int64()),
        ]
    fields += data_fields
    arrays += data_arrays
    if era == "legacy":
        extra = pa.map_(pa.string(), pa.string())
        fields.append(pa.field("_airbyte_additional_properties", extra))
        arrays.append(pa.nulls(n, extra))
    schema = pa.schema(fields)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"file_{table}_001.parquet"
    pq.write_table(
        pa.Table.from_arrays(arrays, schema=schema),
        path,
        compression="snappy",
        coerce_timestamps=None,
        version="2.6",
    )
    return path, schema


# The source tables of the cut-over tests (test_compat.py, test_migrate.py): sanitized names,
# every lossy conversion of an Airbyte write, zero dates.
STORE_TABLES = [
    """CREATE TABLE store (id INT PRIMARY KEY, `store name` VARCHAR(40), active TINYINT(1),
       revenue DECIMAL(14,2), big_revenue DECIMAL(20,2), opened DATE, updated_at DATETIME,
       created_at TIMESTAMP(3) NULL, `2nd score` INT, `preço` VARCHAR(10))""",
    """INSERT INTO store VALUES
       (1, 'Centro', 1, 1234.56, 12345678901234567.89, '2020-01-31', '2024-04-29 10:00:00',
        '2024-04-29 10:00:00.123', 7, 'a'),
       (2, 'Praia', 0, 0.10, 0.10, '0000-00-00', '2024-04-29 11:30:00', NULL, NULL, NULL),
       (3, 'Serra', 2, NULL, 1.25, '1999-12-31', NULL, '2038-01-19 03:14:07.999', -1, 'ç')""",
    """CREATE TABLE store_metrics (id BIGINT PRIMARY KEY, store_id INT, metric_date DATE,
       visits INT UNSIGNED, conversion DECIMAL(20,6), score DOUBLE, captured_at DATETIME(6),
       big BIGINT UNSIGNED, flags BIT(12), doc JSON, kind ENUM('a','b'), at TIME(6))""",
    """INSERT INTO store_metrics VALUES
       (1, 1, '2024-04-29', 4294967295, 12345678901234.123456, 0.5,
        '2024-04-29 23:59:59.999999', 9223372036854775807, b'101010101010', '{"a": 1}', 'a',
        '12:00:00.000001'),
       (2, 1, '2024-04-30', 0, 0.5, -1.25, '2024-04-30 00:00:00.000000',
        18446744073709551615, b'0', '[]', 'b', '25:00:00'),
       (3, 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)""",
]
DRIFTED_TABLE = [
    "CREATE TABLE drifted (id INT PRIMARY KEY, name VARCHAR(20), old_col INT)",
    "INSERT INTO drifted VALUES (1, 'x', 10), (2, 'y', 20)",
]
