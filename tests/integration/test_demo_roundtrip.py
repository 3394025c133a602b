"""Every table of the demo database round-trips exactly, to a local path and to S3.

The source is read independently of the engine (plain pymysql, `SELECT *`, its default
converters), each value is turned into what the type contract promises by a small function
per MySQL DATA_TYPE, and the row multiset is compared with the Parquet file as DuckDB reads
it: values and their Python types, not only counts.
"""

from __future__ import annotations

import json
import secrets
import struct
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import s3fs

from extractor import demo
from extractor.config import load_settings
from extractor.run.report import RunReport
from extractor.run.runner import run_extract
from extractor.run.summary import error_line
from tests.conftest import ROOT, S3, Result, Server, report_of

pytestmark = pytest.mark.integration

RUN_DATE = "2024-05-01"
TABLES = sorted(t.name for t in demo.TABLES)
PARTITION = "origin=airbyte/database=bronze_radar/{table}/cog_dt_ingestion=" + RUN_DATE


@dataclass(frozen=True)
class Col:
    """One source column as information_schema.COLUMNS describes it."""

    name: str
    data_type: str
    column_type: str
    precision: int | None
    fsp: int | None  # DATETIME_PRECISION

    @property
    def unsigned(self) -> bool:
        return "unsigned" in self.column_type


# --- pymysql's value (never None here) -> the value the contract promises in Parquet ---


def _same(c: Col, v: Any) -> Any:
    return v


def _unsigned(c: Col, v: int) -> int | Decimal:
    return Decimal(v) if c.unsigned else v  # only BIGINT UNSIGNED leaves int64


def _bit(c: Col, v: bytes) -> bool | int | Decimal:
    n = int.from_bytes(v, "big")
    bits = c.precision or 1
    return bool(n) if bits == 1 else n if bits <= 63 else Decimal(n)


def _decimal(c: Col, v: Decimal) -> Decimal | str:
    return v if (c.precision or 10) <= 38 else format(v, "f")


def _float32(c: Col, v: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", v))[0])


def _temporal(c: Col, v: Any) -> Any:
    return None if isinstance(v, str) else v  # pymysql leaves zero/invalid dates as text


def _timestamp(c: Col, v: Any) -> Any:
    return None if isinstance(v, str) else v.replace(tzinfo=UTC)  # session is UTC


def _time(c: Col, v: timedelta) -> str:
    secs, frac = divmod(abs(v) // timedelta(microseconds=1), 1_000_000)
    sign = "-" if v < timedelta(0) else ""
    text = f"{sign}{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
    return text + (f".{frac:06d}"[: c.fsp + 1] if c.fsp else "")


def _geometry(c: Col, v: bytes) -> bytes:
    return v[4:]  # MySQL's internal value is a 4-byte SRID, then WKB


_TEXT = ("char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json")
_BYTES = ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob")
_SPATIAL = (
    "geometry",
    "point",
    "linestring",
    "polygon",
    "multipoint",
    "multilinestring",
    "multipolygon",
    "geometrycollection",
)
NORMALISE: dict[str, Callable[[Col, Any], Any]] = {
    **dict.fromkeys(("tinyint", "smallint", "mediumint", "int", "year"), _same),
    "bigint": _unsigned,
    "bit": _bit,
    "decimal": _decimal,
    "float": _float32,
    "double": _same,
    "date": _temporal,
    "datetime": _temporal,
    "timestamp": _timestamp,
    "time": _time,
    **dict.fromkeys(_TEXT + _BYTES, _same),
    **dict.fromkeys(_SPATIAL, _geometry),
}


def _types(columns: list[str], rows: list[tuple[Any, ...]]) -> dict[str, set[str]]:
    """Python types of each column's non-NULL values: 1 == True == Decimal(1) must not pass."""
    values = zip(*rows, strict=True) if rows else [()] * len(columns)
    return {
        c: {type(v).__name__ for v in col if v is not None}
        for c, col in zip(columns, values, strict=True)
    }


@dataclass(frozen=True)
class Expected:
    columns: list[str]
    types: dict[str, set[str]]
    rows: Counter[tuple[Any, ...]]
    nulled: dict[str, int]


@dataclass(frozen=True)
class Extracted:
    report: RunReport
    root: Path  # local copy of the destination


@pytest.fixture(scope="module")
def demo_db(server: Server) -> Iterator[str]:
    name = f"radar_demo_rt_{secrets.token_hex(5)}"
    try:
        demo.build_demo_database(server.url(name), name, scale=1)
        yield name
    finally:
        conn = server.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            conn.close()


@pytest.fixture(scope="module", params=["local", "s3"])
def extracted(
    request: pytest.FixtureRequest,
    server: Server,
    demo_db: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Extracted:
    local = tmp_path_factory.mktemp(f"demo_{request.param}")
    env = {"RADAR_MYSQL_URL": server.url(demo_db), "RADAR_DEST": str(local)}
    if request.param == "s3":
        s3: S3 = request.getfixturevalue("s3")
        bucket = s3.new_bucket()
        env.update(RADAR_DEST=f"s3://{bucket}/bronze", RADAR_S3_ENDPOINT_URL=s3.endpoint)
    report = report_of(run_extract(load_settings(env=env), run_date=date.fromisoformat(RUN_DATE)))
    if request.param == "s3":
        fs = s3fs.S3FileSystem(
            client_kwargs={"endpoint_url": s3.endpoint}, key="testing", secret="testing"
        )
        fs.get(f"{bucket}/bronze/", f"{local}/", recursive=True)
    return Extracted(report, local)


@pytest.fixture(scope="module")
def expected(server: Server, demo_db: str) -> Iterator[Callable[[str], Expected]]:
    """Each table's source rows in contract form, read once (both destinations use them)."""
    conn = server.connect(demo_db)
    with conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
    cache: dict[str, Expected] = {}

    def read(table: str) -> Expected:
        if table in cache:
            return cache[table]
        with conn.cursor() as cur:
            cur.execute(
                "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, NUMERIC_PRECISION, "
                "DATETIME_PRECISION FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
                (table,),
            )
            cols = [Col(n, d.lower(), t.lower(), p, f) for n, d, t, p, f in cur.fetchall()]
            cur.execute(f"SELECT * FROM `{table}`")
            source = cur.fetchall()
        normalisers = [NORMALISE[c.data_type] for c in cols]
        rows = [
            tuple(
                None if v is None else f(c, v)
                for f, c, v in zip(normalisers, cols, raw, strict=True)
            )
            for raw in source
        ]
        nulled = Counter(
            c.name
            for raw, row in zip(source, rows, strict=True)
            for c, v, w in zip(cols, raw, row, strict=True)
            if v is not None and w is None
        )
        names = [c.name for c in cols]
        cache[table] = Expected(names, _types(names, rows), Counter(rows), dict(nulled))
        return cache[table]

    yield read
    conn.close()


def test_run_publishes_every_table(extracted: Extracted) -> None:
    report = extracted.report
    assert report.ok, [error_line(t) for t in report.tables if t.status == "failed"]
    assert sorted(t.table for t in report.tables if t.status == "published") == TABLES
    assert len(TABLES) == 86


@pytest.mark.parametrize("table", TABLES)
def test_table_round_trips(
    extracted: Extracted, expected: Callable[[str], Expected], table: str
) -> None:
    want = expected(table)
    files = sorted((extracted.root / PARTITION.format(table=table)).glob("*.parquet"))
    assert [f.name for f in files][:1] == [f"file_{table}_001.parquet"]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    relation = con.sql(
        f"SELECT * FROM read_parquet({[str(f) for f in files]!r}, hive_partitioning=false)"
    )
    assert relation.columns == want.columns
    rows = relation.fetchall()
    assert _types(want.columns, rows) == want.types
    got = Counter(rows)
    missing, extra = want.rows - got, got - want.rows
    assert not missing and not extra, (
        f"{table}: {sum(missing.values())} source rows missing, {sum(extra.values())} "
        f"unexpected; first missing {list(missing)[:2]}, first unexpected {list(extra)[:2]}"
    )
    result = next(t for t in extracted.report.tables if t.table == table)
    assert result.rows == sum(want.rows.values())
    assert {c: n for c, n in result.nulled.items() if n} == want.nulled


def test_the_committed_schemas_match_the_demo_on_either_server(
    cli: Callable[..., Result], server: Server, demo_db: str, tmp_path: Path
) -> None:
    """schemas/radar_demo was snapshotted once; the same DDL on MariaDB or MySQL (int(11) or
    int, LONGTEXT-with-a-check or JSON, year(4) or year) shows no drift against it."""
    folder = tmp_path / demo_db
    folder.mkdir()
    for stored in sorted((ROOT / "schemas" / "radar_demo").glob("*.json")):
        schema = json.loads(stored.read_text(encoding="utf-8"))
        schema["database"] = demo_db
        (folder / stored.name).write_text(json.dumps(schema), encoding="utf-8")
    diff = cli(
        "schemas",
        "diff",
        env={"RADAR_MYSQL_URL": server.url(demo_db), "RADAR_SCHEMAS_DIR": str(tmp_path)},
    )
    assert (diff.code, diff.stdout) == (0, f"no drift: {len(TABLES)} tables match {folder}\n"), (
        diff.output
    )
