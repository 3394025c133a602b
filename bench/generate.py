"""Create and deterministically fill the benchmark table (MySQL 8 and MariaDB).

`ensure_table` is idempotent: when the table already exists with exactly `rows` rows and the
same DDL it does nothing. Rows are numbered n = 1..rows (id = n) and every column is a pure
function of n, so two fills are identical. The numbers come from MariaDB's SEQUENCE engine
(seq_1_to_N) when available, otherwise from a cross join of digit derived tables.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pymysql

from extractor.config import load_settings

CHUNK = 1_000_000  # rows per INSERT ... SELECT (keeps each transaction bounded)

DDL = """CREATE TABLE `{table}` (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  store_id INT NOT NULL, metric_id INT NOT NULL, ref_date DATE NOT NULL,
  value DECIMAL(14,2) NOT NULL, target DECIMAL(14,2) NOT NULL, quantity INT NOT NULL,
  pct DECIMAL(5,2) NULL, is_active TINYINT(1) NOT NULL, code VARCHAR(32) NOT NULL,
  status ENUM('open','closed','pending') NOT NULL, note VARCHAR(255) CHARACTER SET utf8mb4 NULL,
  created_at DATETIME NOT NULL, updated_at TIMESTAMP NULL, score DOUBLE NOT NULL
) ENGINE=InnoDB"""

INSERT = """INSERT INTO `{table}` (id, store_id, metric_id, ref_date, value, target, quantity,
  pct, is_active, code, status, note, created_at, updated_at, score)
SELECT n, n % 5000, n % 97, DATE '2020-01-01' + INTERVAL (n % 2000) DAY,
  ((n * 7919) % 10000019) / 100, ((n * 104729) % 2000003) / 100, (n * 31) % 1000,
  IF(n % 3 = 0, NULL, ((n * 37) % 10000) / 100), n % 2, CONCAT('C', n % 100000),
  ELT(1 + n % 3, 'open', 'closed', 'pending'),
  IF(n % 20 = 0, CONCAT('observação ', n, ' ✓'), NULL),
  TIMESTAMP '2020-01-01 00:00:00' + INTERVAL n SECOND,
  IF(n % 4 = 0, NULL, FROM_UNIXTIME(1600000000 + n)), n / 7e0
FROM ({numbers}) AS numbers WHERE n BETWEEN {lo} AND {hi}
ORDER BY n"""


def _digits_source(lo: int, hi: int) -> str:
    """Numbers lo..(lo + 10**k - 1) from a cross join of k single-digit derived tables."""
    k = max(1, len(str(hi - lo)))
    digit = " UNION ALL ".join(f"SELECT {d} AS d" for d in range(10))
    terms = " + ".join(f"{10**i} * d{i}.d" for i in range(k))
    joins = " CROSS JOIN ".join(f"({digit}) AS d{i}" for i in range(k))
    return f"SELECT {lo} + {terms} AS n FROM {joins}"


def _connect(url: str) -> pymysql.connections.Connection:
    mysql = load_settings(env={"RADAR_MYSQL_URL": url}).mysql
    return pymysql.connect(
        host=mysql.host,
        port=mysql.port,
        user=mysql.user,
        password=mysql.password.reveal(),
        charset="utf8mb4",
        autocommit=True,
        init_command="SET time_zone = '+00:00'",
    )


def _normalized_ddl(cur: pymysql.cursors.Cursor, database: str, table: str) -> str:
    cur.execute(f"SHOW CREATE TABLE `{database}`.`{table}`")
    ddl: str = cur.fetchone()[1]
    return re.sub(r" AUTO_INCREMENT=\d+", "", ddl.replace(f"`{table}`", "`T`", 1))


def _has_sequence_engine(cur: pymysql.cursors.Cursor) -> bool:
    cur.execute("SELECT SUPPORT FROM information_schema.ENGINES WHERE ENGINE = 'SEQUENCE'")
    row = cur.fetchone()
    return row is not None and row[0] in ("YES", "DEFAULT")


def _is_current(cur: pymysql.cursors.Cursor, database: str, table: str, rows: int) -> bool:
    cur.execute(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s",
        (database, table),
    )
    if cur.fetchone()[0] == 0:
        return False
    probe = f"{table}__ddl_probe"
    cur.execute(f"DROP TABLE IF EXISTS `{database}`.`{probe}`")
    cur.execute(DDL.format(table=f"{database}`.`{probe}"))
    try:
        expected = _normalized_ddl(cur, database, probe)
    finally:
        cur.execute(f"DROP TABLE `{database}`.`{probe}`")
    if _normalized_ddl(cur, database, table) != expected:
        return False
    cur.execute(f"SELECT COUNT(*) FROM `{database}`.`{table}`")
    return int(cur.fetchone()[0]) == rows


def ensure_database(url: str, database: str) -> None:
    """Create `database` if it is missing: on a new machine nothing else could connect to it."""
    conn = _connect(url)
    try:
        conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    finally:
        conn.close()


def ensure_table(
    url: str, database: str = "radar_bench", table: str = "store_metrics", rows: int = 3_000_000
) -> bool:
    """Make `database`.`table` hold exactly `rows` generated rows. Returns True if it (re)filled."""
    conn = _connect(url)
    try:
        cur = conn.cursor()
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{database}`")
        if _is_current(cur, database, table, rows):
            return False
        t0 = time.perf_counter()
        cur.execute(f"USE `{database}`")
        cur.execute(f"DROP TABLE IF EXISTS `{table}`")
        cur.execute(DDL.format(table=table))
        use_seq = _has_sequence_engine(cur)
        for lo in range(1, rows + 1, CHUNK):
            hi = min(lo + CHUNK - 1, rows)
            seq = f"SELECT seq AS n FROM seq_{lo}_to_{hi}"
            numbers = seq if use_seq else _digits_source(lo, hi)
            cur.execute(INSERT.format(table=table, numbers=numbers, lo=lo, hi=hi))
        source = "seq engine" if use_seq else "digit cross join"
        took = time.perf_counter() - t0
        print(f"generated {database}.{table}: {rows:,} rows via {source} in {took:.1f} s")
        return True
    finally:
        conn.close()


# The wide benchmark table: the shape of store_document / user_document (a LONGBLOB per row).
WIDE_DDL = """CREATE TABLE `{table}` (
  id BIGINT UNSIGNED NOT NULL PRIMARY KEY, store_id INT NOT NULL, name VARCHAR(255) NOT NULL,
  mime VARCHAR(64) NOT NULL, content LONGBLOB NOT NULL, created_at DATETIME NOT NULL
) ENGINE=InnoDB"""
MIB = 1024 * 1024
WIDE_ROWS, WIDE_HUGE = 2_000, 20  # 2,140 MiB of content
_POOL_BYTES = 32 * MIB  # random, so Snappy cannot shrink the values (documents, images)


def _pool() -> bytes:
    import random

    return random.Random(20240601).randbytes(_POOL_BYTES)


def wide_value(n: int, size: int, pool: bytes) -> bytes:
    """Row n's content: its id, then `size - 8` bytes of the pool from an offset set by n."""
    start = (n * 7_919_423) % (len(pool) - size)
    return n.to_bytes(8, "big") + pool[start : start + size - 8]


def wide_sizes(rows: int, huge: int, huge_bytes: int = 8 * MIB) -> dict[int, int]:
    """Content size by id: 1 MiB each, but `huge` consecutive rows mid-table of `huge_bytes`
    (together, the worst case for a batch sized by the average)."""
    first = rows // 2
    return {n: huge_bytes if first <= n < first + huge else MIB for n in range(1, rows + 1)}


def ensure_wide_table(url: str, database: str, table: str, rows: int, huge: int) -> bool:
    """Make `database`.`table` hold `rows` 1 MiB BLOB rows, `huge` of them 8 MiB instead."""
    sizes = wide_sizes(rows, huge)
    conn = _connect(url)
    try:
        cur = conn.cursor()
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{database}`")
        cur.execute(f"USE `{database}`")
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s",
            (database, table),
        )
        if cur.fetchone()[0]:
            cur.execute(f"SELECT COUNT(*), COALESCE(SUM(LENGTH(content)), 0) FROM `{table}`")
            count, total = cur.fetchone()
            if count == rows and int(total) == sum(sizes.values()):
                return False
        t0 = time.perf_counter()
        cur.execute(f"DROP TABLE IF EXISTS `{table}`")
        cur.execute(WIDE_DDL.format(table=table))
        pool = _pool()
        sql = (
            f"INSERT INTO `{table}` (id, store_id, name, mime, content, created_at)"
            " VALUES (%s, %s, %s, %s, %s, TIMESTAMP '2024-01-01 00:00:00' + INTERVAL %s MINUTE)"
        )
        chunk: list[tuple[object, ...]] = []
        # pymysql sends a BLOB as hex text, twice its size: statements stay below 8 MiB so
        # that the default 16 MiB max_allowed_packet (MariaDB) needs no change.
        piece = 2 * MIB
        held = 0
        for n, size in sizes.items():
            if chunk and held + size > 4 * MIB:
                cur.executemany(sql, chunk)
                chunk, held = [], 0
            value = wide_value(n, size, pool)
            chunk.append((n, n % 5000, f"document-{n}.pdf", "application/pdf", value[:piece], n))
            held += min(size, piece)
            for at in range(piece, size, piece):  # a huge value is appended piece by piece
                cur.executemany(sql, chunk)
                chunk, held = [], 0
                cur.execute(
                    f"UPDATE `{table}` SET content = CONCAT(content, %s) WHERE id = %s",
                    (value[at : at + piece], n),
                )
        if chunk:
            cur.executemany(sql, chunk)
        cur.execute(f"ANALYZE TABLE `{table}`")
        took = time.perf_counter() - t0
        print(
            f"generated {database}.{table}: {rows:,} rows, {sum(sizes.values()) / MIB:,.0f} MiB"
            f" in {took:.1f} s"
        )
        return True
    finally:
        conn.close()


def verify_wide(dest: Path) -> str:
    """Compare every value of the wide table's Parquet output with the generated one: "" when
    all are intact, else what differs. Reads a few rows at a time (memory stays small)."""
    import pyarrow.parquet as pq

    sizes = wide_sizes(WIDE_ROWS, WIDE_HUGE)
    pool = _pool()
    seen = 0
    for path in sorted(dest.rglob("*.parquet")):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=8, columns=["id", "content"]):
            ids = [int(i) for i in batch.column(0).to_pylist()]  # BIGINT UNSIGNED: decimal
            for n, value in zip(ids, batch.column(1).to_pylist(), strict=True):
                if value != wide_value(n, sizes[n], pool):
                    return f"wide_documents id {n}: content differs from the source"
                seen += 1
    return "" if seen == len(sizes) else f"wide_documents: {seen} values, expected {len(sizes)}"
