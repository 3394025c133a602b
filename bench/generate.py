"""Create and deterministically fill the benchmark table (MySQL 8 and MariaDB).

`ensure_table` is idempotent: when the table already exists with exactly `rows` rows and the
same DDL it does nothing. Rows are numbered n = 1..rows (id = n) and every column is a pure
function of n, so two fills are identical. The numbers come from MariaDB's SEQUENCE engine
(seq_1_to_N) when available, otherwise from a cross join of digit derived tables.
"""

from __future__ import annotations

import re
import time

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
        host=mysql.host, port=mysql.port, user=mysql.user,
        password=mysql.password.reveal(), charset="utf8mb4", autocommit=True,
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
