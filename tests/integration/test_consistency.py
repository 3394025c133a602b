"""Rows inserted, updated and deleted while a table is read never produce duplicates or a
torn row: the published partition is one consistent read of the table."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from extractor.config import load_settings
from extractor.run.runner import run_extract
from tests.conftest import NUMBERS_TO_100K, Server, query, report_of

pytestmark = pytest.mark.integration
ACCOUNTS = 200_000
TOTAL = ACCOUNTS * 100


def _writer(server: Server, database: str, stop: threading.Event, done: list[int]) -> None:
    """Transactions that keep two invariants at every commit: the balances sum to TOTAL,
    and every row's `twin` column equals its `balance` (a torn row would break it)."""
    conn = server.connect(database)
    conn.autocommit(False)
    step = 0
    with conn.cursor() as cur:
        while not stop.is_set():
            step += 1
            a, b = 1 + (step * 7919) % ACCOUNTS, 1 + (step * 104729) % ACCOUNTS
            if a == b:
                continue
            cur.execute(
                "UPDATE accounts SET balance = balance - 5, twin = twin - 5 WHERE id = %s", (a,)
            )
            cur.execute(
                "UPDATE accounts SET balance = balance + 5, twin = twin + 5 WHERE id = %s", (b,)
            )
            if step % 3 == 0:  # move a whole account: delete it and insert it under a new id
                new_id = ACCOUNTS + step
                cur.execute(
                    "INSERT INTO accounts (id, balance, twin)"
                    " SELECT %s, balance, twin FROM accounts WHERE id = %s",
                    (new_id, b),
                )
                cur.execute("DELETE FROM accounts WHERE id = %s", (b,))
                cur.execute("INSERT INTO accounts (id, balance, twin) VALUES (%s, 0, 0)", (b,))
            conn.commit()
    done.append(step)
    conn.close()


def test_concurrent_writes_give_one_consistent_read(
    make_database: Callable[..., str], server: Server, tmp_path: Path
) -> None:
    database = make_database(
        "CREATE TABLE accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL,"
        " twin BIGINT NOT NULL, pad CHAR(100) NOT NULL DEFAULT 'x') ENGINE=InnoDB",
        *[
            f"INSERT INTO accounts (id, balance, twin) SELECT seq + {k * 100_000}, 100, 100"
            f" FROM ({NUMBERS_TO_100K}) AS numbers"
            for k in range(ACCOUNTS // 100_000)
        ],
    )
    stop = threading.Event()
    done: list[int] = []
    writer = threading.Thread(target=_writer, args=(server, database, stop, done))
    writer.start()
    time.sleep(0.3)  # writes are flowing before and during the read
    try:
        settings = load_settings(
            env={
                "RADAR_MYSQL_URL": server.url(database),
                "RADAR_DEST": str(tmp_path),
                "RADAR_BATCH_ROWS": "2000",
            }
        )
        report = report_of(run_extract(settings, run_date=date(2024, 5, 1)))
    finally:
        stop.set()
        writer.join()
    assert report.ok and done and done[0] > 50, done  # many commits happened meanwhile
    files = f"{tmp_path}/origin=airbyte/database=bronze_radar/accounts/*/*.parquet"
    ((rows, distinct, total, torn),) = query(
        f"SELECT count(*), count(DISTINCT id), sum(balance), count(*) FILTER (balance <> twin)"
        f" FROM read_parquet('{files}', hive_partitioning = false)"
    ).fetchall()
    assert torn == 0  # no row mixes two versions
    assert rows == distinct  # no duplicates, even of moved accounts
    assert total == TOTAL  # the money adds up: one snapshot, not a smear across commits
    assert rows == report.tables[0].rows
