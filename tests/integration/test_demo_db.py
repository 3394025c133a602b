"""The synthetic demo database (extractor.demo) against the real MySQL/MariaDB server."""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pymysql
import pytest
from click.testing import CliRunner

from extractor import demo

pytestmark = pytest.mark.integration

URL = os.environ.get("RADAR_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/")

NAMED = {
    "store",
    "store_metrics",
    "store_general_strategy",
    "store_document",
    "store_distributor",
    "user_access",
    "user_store",
    "user_document",
    "user_terms",
    "product",
    "product_ean",
    "product_pbm",
    "product_category",
    "contest",
    "contest_objective",
    "contest_score",
    "voucher",
    "brand_metrics_average",
    "performance_indicators",
    "dashboard_data",
}
INT_RANGES = {
    "tinyint": (-128, 127),
    "tinyint unsigned": (0, 255),
    "smallint": (-32768, 32767),
    "smallint unsigned": (0, 65535),
    "mediumint": (-8388608, 8388607),
    "mediumint unsigned": (0, 16777215),
    "int": (-2147483648, 2147483647),
    "int unsigned": (0, 4294967295),
    "bigint": (-9223372036854775808, 9223372036854775807),
    "bigint unsigned": (0, 18446744073709551615),
}


def _connect() -> Any:
    u = urlsplit(URL)
    return pymysql.connect(
        host=u.hostname or "127.0.0.1",
        port=u.port or 3306,
        user=u.username or "root",
        password=u.password or "",
        charset="utf8mb4",
        autocommit=True,
    )


def _with_database(url: str, database: str) -> str:
    return urlsplit(url)._replace(path=f"/{database}").geturl()


@pytest.fixture(scope="module")
def conn() -> Iterator[Any]:
    c = _connect()
    yield c
    c.close()


@pytest.fixture(scope="module")
def built(conn: Any) -> Iterator[tuple[str, dict[str, int], float]]:
    """One demo database at scale=1; the URL's own database part must be ignored."""
    name = f"radar_demo_test_{secrets.token_hex(4)}"
    url = _with_database(URL, "not_this_one")
    start = time.monotonic()
    try:
        counts = demo.build_demo_database(url, name, scale=1)
        yield name, counts, time.monotonic() - start
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture(scope="module")
def query(conn: Any, built: tuple[str, dict[str, int], float]) -> Callable[..., list[Any]]:
    with conn.cursor() as cur:
        cur.execute(f"USE `{built[0]}`")

    def run(sql: str, *args: Any) -> list[Any]:
        with conn.cursor() as cur:
            cur.execute(sql, args or None)
            return list(cur.fetchall())

    return run


def _columns(query: Callable[..., list[Any]], db: str) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in query(
            "SELECT c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE, c.NUMERIC_PRECISION, "
            "c.NUMERIC_SCALE, c.DATETIME_PRECISION FROM information_schema.COLUMNS c "
            "JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA "
            "AND t.TABLE_NAME = c.TABLE_NAME AND t.TABLE_TYPE = 'BASE TABLE' "
            "WHERE c.TABLE_SCHEMA = %s ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION",
            db,
        )
    ]


def _family(data_type: str, column_type: str, prec: Any, scale: Any, dtp: Any) -> str:
    """A contract family name: 'tinyint(1)', 'int unsigned', 'decimal(38,0)', 'time(6)', ..."""
    ct = column_type.lower()
    if ct.startswith("tinyint(1)"):
        return "tinyint(1)"
    if data_type in {"tinyint", "smallint", "mediumint", "int", "bigint"}:
        return data_type + (" unsigned" if "unsigned" in ct else "")
    if data_type == "bit":
        return f"bit({prec})"
    if data_type == "decimal":
        return f"decimal({prec},{scale})"
    if data_type in {"datetime", "timestamp", "time"}:
        return f"{data_type}({dtp or 0})"
    return data_type


def _families(
    query: Callable[..., list[Any]], db: str, tables: set[str] | None = None
) -> dict[str, list[tuple[str, str]]]:
    columns = _columns(query, db)
    json_cols = {(r[0], r[1]) for r in columns if r[2] == "json"}  # MariaDB: longtext + CHECK
    mariadb = "mariadb" in query("SELECT VERSION()")[0][0].lower()
    for table, clause in (
        query(
            "SELECT TABLE_NAME, CHECK_CLAUSE FROM "
            "information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s",
            db,
        )
        if mariadb
        else []
    ):  # MySQL's has no TABLE_NAME
        m = re.search(r"json_valid\(`([^`]+)`\)", clause, re.IGNORECASE)
        if m:
            json_cols.add((table, m.group(1)))
    out: dict[str, list[tuple[str, str]]] = {}
    for t, c, dt, ct, p, s, d in columns:
        if tables is not None and t not in tables:
            continue
        fam = "json" if (t, c) in json_cols else _family(dt, ct, p, s, d)
        out.setdefault(fam, []).append((t, c))
    return out


CONTRACT = {
    "tinyint",
    "tinyint unsigned",
    "tinyint(1)",
    "smallint",
    "smallint unsigned",
    "mediumint",
    "mediumint unsigned",
    "int",
    "int unsigned",
    "bigint",
    "bigint unsigned",
    "bit(1)",
    "bit(8)",
    "bit(64)",
    "decimal(5,2)",
    "decimal(14,2)",
    "decimal(20,0)",
    "decimal(38,0)",
    "decimal(65,30)",
    "float",
    "double",
    "date",
    "datetime(0)",
    "datetime(3)",
    "datetime(6)",
    "timestamp(0)",
    "timestamp(6)",
    "time(0)",
    "time(6)",
    "year",
    "char",
    "varchar",
    "text",
    "mediumtext",
    "longtext",
    "enum",
    "set",
    "json",
    "binary",
    "varbinary",
    "blob",
    "geometry",
    "point",
    "polygon",
}


def test_validation_rejects_bad_names_and_scales() -> None:
    for bad in ("", "a-b", "x`y", "a" * 65, "radar demo", "ção"):
        with pytest.raises(ValueError):
            demo.build_demo_database(URL, bad)
    with pytest.raises(ValueError):
        demo.build_demo_database(URL, "radar_demo_unused", scale=0)


def test_scale_is_proportional() -> None:
    one, three = demo.generated_rows(1), demo.generated_rows(3)
    assert three == {t: 3 * n for t, n in one.items()}
    assert 180_000 <= sum(one.values()) <= 230_000
    assert max(one, key=one.__getitem__) == "store_metrics"


def test_build_time(built: tuple[str, dict[str, int], float]) -> None:
    assert built[2] < 60, f"scale=1 build took {built[2]:.1f} s"


def test_tables_views_and_keys(
    built: tuple[str, dict[str, int], float], query: Callable[..., list[Any]]
) -> None:
    db, counts, _ = built
    kinds = dict(
        query(
            "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
            db,
        )
    )
    base = {t for t, k in kinds.items() if k == "BASE TABLE"}
    views = {t for t, k in kinds.items() if k == "VIEW"}
    assert len(base) >= 80
    assert base == set(counts)
    assert set(counts) >= NAMED
    assert views == {"v_store_overview", "v_contest_leaderboard"}
    assert query("SELECT COUNT(*) FROM v_store_overview")[0][0] == counts["store"]
    pk = {}
    for t, cols in query(
        "SELECT TABLE_NAME, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) "
        "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s "
        "AND INDEX_NAME = 'PRIMARY' GROUP BY TABLE_NAME",
        db,
    ):
        pk[t] = cols.split(",")
    assert "user_terms" not in pk
    assert pk["user_store"] == ["user_id", "store_id"]
    assert pk["product_ean"] == ["ean"]
    ean_type = query(
        "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
        "AND TABLE_NAME = 'product_ean' AND COLUMN_NAME = 'ean'",
        db,
    )[0][0]
    assert ean_type == "varchar"


def test_row_counts_match(
    built: tuple[str, dict[str, int], float], query: Callable[..., list[Any]]
) -> None:
    _, counts, _ = built
    for table, n in counts.items():
        assert query(f"SELECT COUNT(*) FROM `{table}`")[0][0] == n, table
    assert min(counts.values()) == 0
    assert {t for t, n in counts.items() if n == 0} == {"import_error", "email_outbox"}
    assert max(counts, key=counts.__getitem__) == "store_metrics"
    assert 95_000 <= counts["store_metrics"] <= 105_000
    assert 180_000 <= sum(counts.values()) <= 230_000


def test_every_contract_type_is_present(
    built: tuple[str, dict[str, int], float], query: Callable[..., list[Any]]
) -> None:
    families = _families(query, built[0])
    assert set(families) == CONTRACT  # every contract type, and no other
    in_named = set(_families(query, built[0], NAMED))
    assert len(in_named & CONTRACT) >= 35, sorted(CONTRACT - in_named)


def test_integer_limits(
    built: tuple[str, dict[str, int], float], query: Callable[..., list[Any]]
) -> None:
    families = _families(query, built[0])
    for fam, (lo, hi) in INT_RANGES.items():
        seen: set[int] = set()
        for table, column in families[fam]:
            low, high = query(f"SELECT MIN(`{column}`), MAX(`{column}`) FROM `{table}`")[0]
            seen.update(v for v in (low, high) if v is not None)
        assert {lo, hi} <= seen, fam
    values = {r[0] for r in query("SELECT DISTINCT is_active FROM store")}
    assert {0, 1, 2, 127, -1, -128} <= values
    assert {-1, 0, 1, 2, 3} == {r[0] for r in query("SELECT DISTINCT stock_status FROM product")}


def test_edge_values(query: Callable[..., list[Any]]) -> None:
    def one(sql: str) -> Any:
        return query(sql)[0][0]

    def texts(table: str, column: str) -> set[str | None]:
        return {r[0] for r in query(f"SELECT CAST(`{column}` AS CHAR) FROM `{table}`")}

    assert {"0000-00-00", "2024-00-15", "1000-01-01", "9999-12-31"} <= texts("store", "opened_on")
    assert {"0000-00-00 00:00:00", "2024-00-15 08:30:00"} <= texts("store", "created_at")
    assert "0000-00-00" in texts("product_pbm", "valid_to")
    assert "0000-00-00 00:00:00" in texts("contest", "ends_at")
    assert one("SELECT COUNT(*) FROM user_terms WHERE UNIX_TIMESTAMP(accepted_at) = 0") == 2
    assert {"838:59:59", "-838:59:59"} <= texts("performance_indicators", "window_length")
    assert {"838:59:59.000000", "-838:59:59.000000", "-00:00:01.500000"} <= texts(
        "performance_indicators", "processing_time"
    )
    assert (
        one(
            "SELECT MAX(TIME_TO_SEC(window_length)) FROM performance_indicators "
            "WHERE window_length < '838:00:00'"
        )
        > 24 * 3600
    )
    nines = "9" * 38
    assert {nines, "-" + nines} <= texts("performance_indicators", "value_num")
    dec65 = "9" * 35 + "." + "9" * 30
    assert {dec65, "-" + dec65, "0." + "0" * 29 + "1"} <= texts("contest_score", "score")
    assert {"18446744073709551615", "0"} <= {
        str(r[0]) for r in query("SELECT CAST(mask AS UNSIGNED) FROM voucher")
    }
    assert one("SELECT MAX(id) FROM audit_log") == 18446744073709551615
    assert one("SELECT HEX(flags) FROM voucher WHERE serial = 18446744073709551615") == "FF"
    stamps = {
        r[0]
        for r in query(
            "SELECT CAST(UNIX_TIMESTAMP(last_login) * 1000000 AS SIGNED) FROM user_access"
        )
    }
    assert {1_000_000, 2_147_483_647_999_999, None} <= stamps
    expires = {r[0] for r in query("SELECT UNIX_TIMESTAMP(expires_at) FROM voucher")}
    assert {1, 2147483647} <= expires
    assert {"0000", "1901", "2155"} <= texts("store_general_strategy", "strategy_year")
    assert {"", None} <= texts("store", "trade_name")
    assert {"", None} <= texts("store", "notes")
    assert {b"", None} <= {r[0] for r in query("SELECT mfa_secret FROM user_access")}
    assert one("SELECT COUNT(*) FROM store WHERE status = ''") == 1
    assert one("SELECT MAX(LENGTH(leaflet)) FROM product") > 1_000_000
    assert (
        one("SELECT HEX(content) FROM store_document WHERE LENGTH(content) = 256")
        == bytes(range(256)).hex().upper()
    )
    assert {"POLYGON", "POINT"} == {
        r[0].upper() for r in query("SELECT DISTINCT ST_GeometryType(boundary) FROM region")
    }
    # JSON null, not SQL NULL. As text: MySQL compares a JSON column with 'null' as the
    # JSON string "null".
    assert one("SELECT COUNT(*) FROM dashboard_data WHERE CAST(payload AS CHAR) = 'null'") == 1
    assert (
        one(
            "SELECT JSON_UNQUOTE(JSON_EXTRACT(preferences, '$.clave')) FROM user_access "
            "WHERE preferences LIKE '%clave%'"
        )
        == "𝄞"
    )


def test_four_byte_characters_are_intact(query: Callable[..., list[Any]]) -> None:
    expected = "Drogaria São João 💊 𝄞 Ação"
    rows = query("SELECT name, HEX(name) FROM store WHERE name LIKE 'Drogaria São João %'")
    assert [r[0] for r in rows] == [expected]
    assert rows[0][1] == expected.encode("utf-8").hex().upper()
    assert "F09D849E" in rows[0][1] and "F09F928A" in rows[0][1]  # U+1D11E, U+1F48A
    title = query("SELECT HEX(title) FROM contest WHERE title LIKE 'Campeonato%'")[0][0]
    assert bytes.fromhex(title).decode("utf-8") == "Campeonato 𝄞 Música & Saúde 🎵"


def test_cli_rebuild_is_deterministic(
    built: tuple[str, dict[str, int], float], conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second build, through the CLI and in smaller INSERT chunks, holds the same data."""
    db, counts, _ = built
    monkeypatch.setattr(demo, "CHUNK", 30_000)
    other = f"radar_demo_test_{secrets.token_hex(4)}"
    url = _with_database(URL, other)
    try:
        result = CliRunner().invoke(demo.main, ["--url", url, "--scale", "1"])
        assert result.exit_code == 0, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == -(-len(counts) // 10) + 1  # one per 10 tables, then the summary
        assert lines[-1] == (
            f"synthetic demo database {other}: {len(counts)} tables, {sum(counts.values())} rows"
        )
        with conn.cursor() as cur:
            sums = []
            for name in (db, other):
                cur.execute("CHECKSUM TABLE " + ", ".join(f"`{name}`.`{t}`" for t in counts))
                sums.append({r[0].split(".", 1)[1]: r[1] for r in cur.fetchall()})
                cur.execute(
                    f"SELECT SUM(CRC32(CONCAT_WS('|', id, store_id, revenue, "
                    f"margin_pct, avg_ticket, conversion, HEX(flags), captured_at))), "
                    f"COUNT(*) FROM `{name}`.store_metrics"
                )
                sums[-1]["store_metrics aggregate"] = cur.fetchone()
            assert sums[0] == sums[1]
            assert all(v is not None for v in sums[0].values())
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{other}`")
