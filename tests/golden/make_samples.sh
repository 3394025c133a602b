#!/bin/bash
# Samples of every file a release of radar-extract writes, taken by running that release:
#   tests/golden/make_samples.sh OUT [SRC]
# SRC is the folder holding that release's `extractor` package (default: this checkout), e.g.
# `git archive <commit> extractor | tar -x -C /tmp/old` for an earlier release. Needs MariaDB
# at 127.0.0.1:3306 as root, the `mysql` client and `make install`. The run ids and times
# differ on every run: refreshing the golden files means updating tests/unit/test_golden.py.
# A release with extractor/compat/ also gives the files of a compatible write (*_compat.json):
# an Airbyte partition of `legacy_store` (tests/airbyte.py), `compat inspect --save`, the
# table changed since (a column dropped, one added), then `extract --compat airbyte`; with
# extractor/compat/migrate.py, `migrate` then rewrites both its partitions exact
# (manifest_migrated.json, migration_report.json, and the switch, migration_state.json).
set -euo pipefail
OUT=${1:?usage: make_samples.sh OUT [SRC]}
HERE=$(cd "$(dirname "$0")/../.." && pwd)
SRC=${2:-$HERE}
PY="$HERE/.venv/bin/python"
WORK=/tmp/radar-golden  # fixed, so that the paths inside the files do not change
DB=radar_golden
export PYTHONPATH="$SRC"
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
rm -rf "$WORK"; mkdir -p "$WORK"
mysql -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB CHARACTER SET utf8mb4"
mysql -h127.0.0.1 -uroot $DB <<'SQL'
SET SESSION sql_mode = '';
CREATE TABLE customer (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, born DATE NULL);
INSERT INTO customer VALUES (1, 'Ada', '1990-01-02'), (2, 'Bob', '0000-00-00'), (3, 'Cy', NULL);
CREATE TABLE orders (id BIGINT UNSIGNED PRIMARY KEY, amount DECIMAL(10,2) NOT NULL);
INSERT INTO orders VALUES (1, 9.99), (2, 100.00);
CREATE TABLE product (id INT PRIMARY KEY, label VARCHAR(20));
INSERT INTO product VALUES (1, 'pen'), (2, 'ink');
CREATE TABLE audit (id INT PRIMARY KEY);
INSERT INTO audit VALUES (1);
SQL
export RADAR_MYSQL_URL="mysql+pymysql://root@127.0.0.1:3306/$DB"
export RADAR_DEST="$WORK/dest" RADAR_SCHEMAS_DIR="$WORK/schemas" RADAR_WORKERS=1
cd "$WORK"
printf '[drift.tables.orders]\ncolumn_added = "fail"\n' > radar.toml
printf '[drift.tables.legacy_store]\ncolumn_removed = "warn"\n' >> radar.toml
run() { "$PY" -m extractor "$@" --config radar.toml || echo "($* exit $?)"; }
run schemas snapshot
# product widens (warn: published, drift recorded), orders gains a column (fail: not read)
mysql -h127.0.0.1 -uroot $DB -e "ALTER TABLE product MODIFY label VARCHAR(40);
                                 ALTER TABLE orders ADD COLUMN note VARCHAR(10) NULL"
run plan --shards 2 --date 2024-05-01 --save --json > /dev/null
run extract --date 2024-05-01 --table customer --table orders --table product
run extract --date 2024-05-01 --shard 2/2 --resume  # both tables skipped: already published
run report merge --date 2024-05-01 > /dev/null  # audit, shard 1/2's, is not run
run validate --date 2024-05-01 > /dev/null
if [ -d "$SRC/extractor/compat" ]; then  # before the killed publish: a run would finish it
  mysql -h127.0.0.1 -uroot $DB <<'SQL'
CREATE TABLE legacy_store (id INT PRIMARY KEY, active TINYINT(1) NOT NULL, opened DATETIME NULL,
                           gone VARCHAR(5) NULL);
INSERT INTO legacy_store VALUES (1, 1, '2024-04-01 08:30:00', 'x'), (2, 5, NULL, NULL);
SQL
  PYTHONPATH="$SRC:$HERE" "$PY" - <<'PY'
from pathlib import Path

import pymysql

from tests import airbyte

conn = pymysql.connect(host="127.0.0.1", user="root", database="radar_golden")
folder = Path("dest/origin=airbyte/database=bronze_radar/legacy_store/cog_dt_ingestion=2024-04-30")
airbyte.write_partition(conn, "legacy_store", folder, "legacy")
PY
  mysql -h127.0.0.1 -uroot $DB -e "ALTER TABLE legacy_store DROP COLUMN gone, ADD COLUMN added INT NULL"
  run schemas snapshot --table legacy_store
  run compat inspect --table legacy_store --save > /dev/null
  run extract --date 2024-05-03 --table legacy_store --compat airbyte
  cp dest/_radar_extract/manifests/legacy_store/cog_dt_ingestion=2024-05-03.json manifest_compat.json
  if [ -f "$SRC/extractor/compat/migrate.py" ]; then  # both partitions back to exact: the switch
    run migrate --table legacy_store > /dev/null
  fi
fi
# A journal: a publish killed after its journal entry, before any key moved.
cat > kill_publish.py <<'PY'
import os
from datetime import date

import extractor.run.runner as runner
import extractor.sink.publish as publish
from extractor.config import load_settings

publish._apply = lambda *args: os._exit(9)  # (destination, entry[, guard])
# A release that parses the date at the edge takes a date (it has partition_date), else "D".
day = date(2024, 5, 2) if hasattr(runner, "partition_date") else "2024-05-02"
if __name__ == "__main__":
    runner.run_extract(load_settings("radar.toml"), tables=["product"], run_date=day)
PY
"$PY" kill_publish.py || echo "(killed publish exit $?)"
INTERNAL="$WORK/dest/_radar_extract"
first=$(ls "$INTERNAL"/runs | head -1)
cp "$INTERNAL/manifests/product/cog_dt_ingestion=2024-05-01.json" "$OUT/manifest.json"
cp "$INTERNAL/journal/product/cog_dt_ingestion=2024-05-02.json" "$OUT/journal.json"
cp "$INTERNAL/plans/2024-05-01.json" "$OUT/plan.json"
cp "$INTERNAL/runs/$first" "$OUT/run_report.json"
cp "$INTERNAL/reports/2024-05-01.json" "$OUT/merged_report.json"
cp "$INTERNAL/validation/2024-05-01.json" "$OUT/validation.json"
cp "$WORK/schemas/$DB/product.json" "$OUT/stored_schema.json"
if [ -d "$SRC/extractor/compat" ]; then
  cp manifest_compat.json "$OUT/manifest_compat.json"
  cp "$INTERNAL"/runs/2024-05-03_*.json "$OUT/run_report_compat.json"
fi
if [ -f "$SRC/extractor/compat/migrate.py" ]; then
  cp "$INTERNAL/manifests/legacy_store/cog_dt_ingestion=2024-05-03.json" "$OUT/manifest_migrated.json"
  cp "$INTERNAL"/migrations/legacy_store/migrate_*.json "$OUT/migration_report.json"
  cp "$INTERNAL/migrations/legacy_store/exact.json" "$OUT/migration_state.json"
fi
mysql -h127.0.0.1 -uroot -e "DROP DATABASE $DB"
