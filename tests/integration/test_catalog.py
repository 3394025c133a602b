"""`catalog sync` for real: a Glue database and tables made as a crawler makes them, in moto's
server (the `s3` fixture's: one server answers S3 and Glue), a real extraction from MariaDB
into moto's S3, then the partitions read back with get_partitions.

`radar-extract` runs as a real process; botocore reaches Glue through `AWS_ENDPOINT_URL`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import S3, Result, Server
from tests.webhook import message, webhook

pytestmark = pytest.mark.integration

PREFIX = "origin=airbyte/database=bronze_radar"
DAY = "2024-03-01"
SCHEMA = [
    "CREATE TABLE store (id INT PRIMARY KEY, name VARCHAR(20))",
    "INSERT INTO store VALUES (1, 'a'), (2, 'b'), (3, 'c')",
    "CREATE TABLE product (sku VARCHAR(10) PRIMARY KEY, price DECIMAL(14,2) NOT NULL,"
    " stock BIGINT, qty SMALLINT, flag TINYINT, active BIT(1), weight DOUBLE, ratio FLOAT,"
    " photo BLOB, born DATE, seen DATETIME, changed TIMESTAMP NULL, views INT UNSIGNED,"
    " serial BIGINT UNSIGNED, Mixed_Case INT)",
    "INSERT INTO product VALUES ('A', 1234567890.12, 1, 2, 3, b'1', 1.5, 2.5, x'00ff',"
    " '2024-01-02', '2024-01-02 03:04:05', '2024-01-02 03:04:05', 7, 8, 9),"
    " ('B', 2.50, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "CREATE TABLE empty_table (id INT PRIMARY KEY)",
]
# What a crawler over Airbyte's output declared: decimals as double, dates as strings.
CRAWLED = {
    "store": [("id", "bigint"), ("name", "string")],
    "product": [
        ("sku", "string"),
        ("price", "double"),
        ("stock", "bigint"),
        ("qty", "bigint"),
        ("flag", "bigint"),
        ("active", "boolean"),
        ("weight", "double"),
        ("ratio", "double"),
        ("photo", "binary"),
        ("born", "string"),
        ("seen", "string"),
        ("changed", "string"),
        ("views", "bigint"),
        ("serial", "bigint"),
        ("mixed_case", "bigint"),
    ],
    "empty_table": [("id", "bigint")],
}
# The exact types of the files the engine writes (the type contract, then Hive).
EXACT_PRODUCT = [
    ("sku", "string"),
    ("price", "decimal(14,2)"),
    ("stock", "bigint"),
    ("qty", "smallint"),
    ("flag", "tinyint"),
    ("active", "boolean"),
    ("weight", "double"),
    ("ratio", "float"),
    ("photo", "binary"),
    ("born", "date"),
    ("seen", "timestamp"),
    ("changed", "timestamp"),
    ("views", "bigint"),
    ("serial", "decimal(20,0)"),
    ("mixed_case", "int"),
]
PARQUET_SERDE = {
    "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
    "Parameters": {"serialization.format": "1"},
}
INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"


def _glue(s3: S3) -> Any:
    import boto3

    return boto3.client(
        "glue",
        endpoint_url=s3.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _s3(s3: S3) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=s3.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


class Night:
    """One test's MariaDB database, moto bucket and Glue database, and the CLI over them."""

    def __init__(self, cli: Callable[..., Result], server: Server, database: str, s3: S3) -> None:
        self.glue = _glue(s3)
        self.bucket = s3.new_bucket()
        self.glue_db = f"bronze_{uuid.uuid4().hex[:8]}"
        self.glue.create_database(DatabaseInput={"Name": self.glue_db})
        self.env = {
            "RADAR_MYSQL_URL": server.url(database),
            "RADAR_DEST": f"s3://{self.bucket}",
            "RADAR_WORKERS": "1",
            "RADAR_GLUE_DATABASE": self.glue_db,
            **s3.env,
            "AWS_ENDPOINT_URL": s3.endpoint,
        }
        self._cli = cli
        self._s3 = _s3(s3)

    def run(self, *args: str, **env: str) -> Result:
        return self._cli(*args, env={**self.env, **env})

    def crawled_table(self, table: str, comment: str | None = None) -> None:
        """The Glue table as a crawler leaves it: its columns, partition key, SerDe, stats."""
        columns: list[dict[str, str]] = [{"Name": n, "Type": t} for n, t in CRAWLED[table]]
        if comment:
            columns[1]["Comment"] = comment
        self.glue.create_table(
            DatabaseName=self.glue_db,
            TableInput={
                "Name": table,
                "TableType": "EXTERNAL_TABLE",
                "Parameters": {"classification": "parquet", "UPDATED_BY_CRAWLER": "radar-bronze"},
                "PartitionKeys": [{"Name": "cog_dt_ingestion", "Type": "string"}],
                "StorageDescriptor": {
                    "Columns": columns,
                    "Location": f"s3://{self.bucket}/{PREFIX}/{table}/",
                    "InputFormat": INPUT_FORMAT,
                    "OutputFormat": OUTPUT_FORMAT,
                    "Compressed": False,
                    "NumberOfBuckets": -1,
                    "SerdeInfo": PARQUET_SERDE,
                    "BucketColumns": [],
                    "SortColumns": [],
                    "StoredAsSubDirectories": False,
                    "Parameters": {
                        "classification": "parquet",
                        "compressionType": "none",
                        "typeOfData": "file",
                        "recordCount": "99",
                        "objectCount": "9",
                        "sizeKey": "9999",
                        "averageRecordSize": "12",
                        "UPDATED_BY_CRAWLER": "radar-bronze",
                    },
                },
            },
        )

    def table(self, table: str) -> dict[str, Any]:
        result: dict[str, Any] = self.glue.get_table(DatabaseName=self.glue_db, Name=table)["Table"]
        return result

    def partitions(self, table: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.glue.get_partitions(
            DatabaseName=self.glue_db, TableName=table
        )["Partitions"]
        return result

    def manifest(self, table: str) -> dict[str, Any]:
        key = f"_radar_extract/manifests/{table}/cog_dt_ingestion={DAY}.json"
        body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        result: dict[str, Any] = json.loads(body)
        return result


@pytest.fixture
def night(
    cli: Callable[..., Result], server: Server, make_database: Callable[..., str], s3: S3
) -> Night:
    return Night(cli, server, make_database(*SCHEMA), s3)


def _pairs(columns: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(c["Name"], c["Type"]) for c in columns]


def _error_lines(result: Result) -> list[str]:
    """stderr without INFO lines, and without the "HH:MM:SS LEVEL " prefix."""
    return [
        re.sub(r"^\d\d:\d\d:\d\d [A-Z]+ ", "", line)
        for line in result.stderr.strip().splitlines()
        if " INFO " not in line[:15]
    ]


def test_sync_registers_the_partitions_with_the_tables_descriptor_and_is_idempotent(
    night: Night,
) -> None:
    assert night.run("extract", "--date", DAY).code == 0
    for table in CRAWLED:
        night.crawled_table(table)
    result = night.run("catalog", "sync", "--date", DAY)
    assert result.code == 0, result.output
    db = night.glue_db
    assert result.stdout.splitlines() == [
        f"ok   empty_table -> {db}.empty_table: partition created",
        f"ok   product -> {db}.product: partition created",
        f"ok   store -> {db}.store: partition created",
        f"glue catalog sync of cog_dt_ingestion={DAY} into {db}: 3 tables, 3 created, "
        "0 updated, 0 unchanged, 0 failed: ok",
    ]
    rows = {"store": 3, "product": 2, "empty_table": 0}
    for table, count in rows.items():
        (partition,) = night.partitions(table)
        sd = partition["StorageDescriptor"]
        assert partition["Values"] == [DAY]
        assert sd["Location"] == f"s3://{night.bucket}/{PREFIX}/{table}/cog_dt_ingestion={DAY}/"
        assert _pairs(sd["Columns"]) == CRAWLED[table]  # the table's, not guessed
        assert sd["SerdeInfo"] == PARQUET_SERDE
        assert (sd["InputFormat"], sd["OutputFormat"]) == (INPUT_FORMAT, OUTPUT_FORMAT)
        # The partition's own statistics, from the manifest; the table's are not copied.
        assert sd["Parameters"] == {
            "classification": "parquet",
            "compressionType": "none",
            "typeOfData": "file",
            "recordCount": str(count),
            "objectCount": "1",
            "sizeKey": str(night.manifest(table)["bytes"]),
        }
        assert partition["Parameters"]["radar_extract.run_id"] == night.manifest(table)["run_id"]
        assert _pairs(night.table(table)["StorageDescriptor"]["Columns"]) == CRAWLED[table]
    before = {table: night.partitions(table) for table in rows}

    again = night.run("catalog", "sync", "--date", DAY)
    assert again.code == 0, again.output
    assert again.stdout.splitlines()[-1].endswith("0 created, 0 updated, 3 unchanged, 0 failed: ok")
    # Nothing was written: moto re-creates a partition on every update (a new CreationTime).
    assert {table: night.partitions(table) for table in rows} == before

    # A re-extract of one table: its partition is updated in place, the others stay.
    assert night.run("extract", "--date", DAY, "--table", "store").code == 0
    rerun = night.run("catalog", "sync", "--date", DAY)
    assert rerun.code == 0, rerun.output
    assert f"ok   store -> {db}.store: partition updated" in rerun.stdout.splitlines()
    assert rerun.stdout.splitlines()[-1].endswith("0 created, 1 updated, 2 unchanged, 0 failed: ok")
    (store,) = night.partitions("store")
    assert store["Parameters"]["radar_extract.run_id"] == night.manifest("store")["run_id"]
    assert (
        store["Parameters"]["radar_extract.run_id"]
        != (before["store"][0]["Parameters"]["radar_extract.run_id"])
    )
    assert night.partitions("product") == before["product"]


def test_update_columns_sets_the_exact_types_on_the_table_and_its_partitions(
    night: Night,
) -> None:
    assert night.run("extract", "--date", DAY, "--table", "product").code == 0
    night.crawled_table("product", comment="the price, in BRL")
    # An older partition, as the crawler registered it (after a migrate, its files are exact).
    crawled = night.table("product")["StorageDescriptor"]
    night.glue.create_partition(
        DatabaseName=night.glue_db,
        TableName="product",
        PartitionInput={
            "Values": ["2024-02-29"],
            "StorageDescriptor": {
                **crawled,
                "Location": crawled["Location"] + "cog_dt_ingestion=2024-02-29/",
            },
        },
    )
    result = night.run("catalog", "sync", "--date", DAY, "--update-columns")
    assert result.code == 0, result.output
    assert result.stdout.splitlines()[0] == (
        f"ok   product -> {night.glue_db}.product: partition created; table columns updated; "
        "1 other partitions given its columns"
    )
    table = night.table("product")
    assert _pairs(table["StorageDescriptor"]["Columns"]) == EXACT_PRODUCT
    assert table["StorageDescriptor"]["Columns"][1]["Comment"] == "the price, in BRL"
    assert _pairs(table["PartitionKeys"]) == [("cog_dt_ingestion", "string")]
    assert table["StorageDescriptor"]["SerdeInfo"] == PARQUET_SERDE  # the rest is kept
    assert table["StorageDescriptor"]["Location"] == crawled["Location"]
    partitions = {p["Values"][0]: p for p in night.partitions("product")}
    assert sorted(partitions) == ["2024-02-29", DAY]
    for partition in partitions.values():
        assert _pairs(partition["StorageDescriptor"]["Columns"]) == EXACT_PRODUCT
    assert partitions["2024-02-29"]["StorageDescriptor"]["Location"].endswith(
        "/product/cog_dt_ingestion=2024-02-29/"
    )
    before = night.partitions("product")
    again = night.run("catalog", "sync", "--date", DAY, "--update-columns")
    assert again.code == 0, again.output
    assert again.stdout.splitlines()[0] == (
        f"ok   product -> {night.glue_db}.product: partition unchanged"
    )
    assert night.partitions("product") == before


def test_a_missing_glue_table_is_one_line_and_create_tables_makes_it(night: Night) -> None:
    assert night.run("extract", "--date", DAY).code == 0
    night.crawled_table("store")
    night.crawled_table("product")
    result = night.run("catalog", "sync", "--date", DAY)
    assert result.code == 1, result.output
    fails = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert fails == [
        f"FAIL empty_table: glue table {night.glue_db}.empty_table does not exist: "
        f"cog_dt_ingestion={DAY} not registered (create it, or sync with "
        "--create-tables)"
    ]
    assert result.stdout.splitlines()[-1].endswith(
        "2 created, 0 updated, 0 unchanged, 1 failed: FAILED"
    )
    assert len(night.partitions("store")) == len(night.partitions("product")) == 1
    assert _error_lines(result) == []  # the line is said once, on stdout

    created = night.run("catalog", "sync", "--date", DAY, "--create-tables")
    assert created.code == 0, created.output
    assert (
        f"ok   empty_table -> {night.glue_db}.empty_table: partition created; table created"
    ) in created.stdout.splitlines()
    table = night.table("empty_table")
    sd = table["StorageDescriptor"]
    assert _pairs(sd["Columns"]) == [("id", "int")]
    assert _pairs(table["PartitionKeys"]) == [("cog_dt_ingestion", "string")]
    assert sd["Location"] == f"s3://{night.bucket}/{PREFIX}/empty_table/"
    assert (sd["SerdeInfo"], sd["InputFormat"], sd["OutputFormat"]) == (
        PARQUET_SERDE,
        INPUT_FORMAT,
        OUTPUT_FORMAT,
    )
    assert table["TableType"] == "EXTERNAL_TABLE"
    (partition,) = night.partitions("empty_table")
    assert partition["StorageDescriptor"]["Location"] == (
        f"s3://{night.bucket}/{PREFIX}/empty_table/cog_dt_ingestion={DAY}/"
    )
    assert _pairs(partition["StorageDescriptor"]["Columns"]) == [("id", "int")]


def test_a_failed_table_is_not_registered(night: Night, server: Server) -> None:
    """product's SELECT is refused for real: the run fails, `extract --catalog-sync` syncs
    nothing (as the crawler, never after a failed run), `catalog sync` registers the others."""
    user = f"ro_{uuid.uuid4().hex[:8]}"
    database = night.env["RADAR_MYSQL_URL"].rsplit("/", 1)[1]
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'")
            for table in ("store", "empty_table"):
                cur.execute(f"GRANT SELECT ON `{database}`.`{table}` TO '{user}'@'%'")
            cur.execute(f"GRANT INSERT ON `{database}`.`product` TO '{user}'@'%'")
        for table in CRAWLED:
            night.crawled_table(table)
        as_reader = {
            "RADAR_MYSQL_URL": f"mysql+pymysql://{user}:pw@{server.host}:{server.port}/{database}"
        }
        extract = night.run("extract", "--date", DAY, "--catalog-sync", **as_reader)
        assert extract.code == 1, extract.output
        assert (
            "WARNING glue catalog not synced: did not publish every table (1 failed, "
            "0 not run, 2/3 published)"
        ) in extract.stderr
        assert all(night.partitions(table) == [] for table in CRAWLED)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP USER '{user}'@'%'")
        conn.close()
    result = night.run("catalog", "sync", "--date", DAY)
    assert result.code == 0, result.output
    assert result.stdout.splitlines()[-1].endswith(
        "2 tables, 2 created, 0 updated, 0 unchanged, 0 failed: ok"
    )
    assert [len(night.partitions(t)) for t in ("store", "empty_table", "product")] == [1, 1, 0]
    named = night.run("catalog", "sync", "--date", DAY, "--table", "product", "--table", "store")
    assert named.code == 1, named.output
    assert named.stdout.splitlines()[0] == (
        f"FAIL product: no published partition for {DAY} (no manifest): not registered"
    )
    assert night.partitions("product") == []


def test_extract_catalog_sync_after_a_full_success(night: Night) -> None:
    for table in CRAWLED:
        night.crawled_table(table)
    with webhook() as hook:
        result = night.run(
            "extract",
            "--date",
            DAY,
            "--table",
            "store",
            "--table",
            "product",
            "--catalog-sync",
            RADAR_SLACK_WEBHOOK_URL=hook.url,
        )
        assert result.code == 0, result.output
        assert (
            f"glue catalog sync of cog_dt_ingestion={DAY} into {night.glue_db}: 2 tables, "
            "2 created, 0 updated, 0 unchanged, 0 failed"
        ) in result.stderr
        assert [len(night.partitions(t)) for t in ("store", "product", "empty_table")] == [1, 1, 0]
        # The setting does the same; a missing Glue table is the run's one error line, exit 1.
        night.glue.delete_table(DatabaseName=night.glue_db, Name="empty_table")
        missing = night.run(
            "extract", "--date", DAY, RADAR_CATALOG_SYNC="true", RADAR_SLACK_WEBHOOK_URL=hook.url
        )
        assert missing.code == 1, missing.output
    first, second = (message(p) for p in hook.payloads)
    assert (
        f"Glue catalog {night.glue_db}: 2 tables, 2 created, 0 updated, 0 unchanged, 0 failed"
    ) in first
    assert (
        f"Glue catalog {night.glue_db} NOT fully synced: 3 tables, 0 created, 2 updated" in second
        and "empty_table: glue table" in second
    )
    (line,) = [line for line in missing.stderr.splitlines() if " ERROR " in line]
    assert line.split(" ERROR ", 1)[1] == (
        f"radar-extract: error: glue catalog sync of cog_dt_ingestion={DAY} into "
        f"{night.glue_db}: 3 tables, 0 created, 2 updated, 0 unchanged, 1 failed: empty_table: "
        f"glue table {night.glue_db}.empty_table does not exist: cog_dt_ingestion={DAY} not "
        "registered (create it, or sync with --create-tables)"
    )


def test_missing_database_unreachable_glue_and_bad_settings_are_one_line_each(
    night: Night,
) -> None:
    assert night.run("extract", "--date", DAY, "--table", "store").code == 0
    missing = night.run("catalog", "sync", "--date", DAY, "--database", "no_such_db")
    assert missing.code == 1, missing.output
    assert _error_lines(missing) == [
        "radar-extract: error: glue database 'no_such_db' does not exist (EntityNotFoundException)"
    ]
    closed = night.run("catalog", "sync", "--date", DAY, AWS_ENDPOINT_URL_GLUE="http://127.0.0.1:1")
    assert closed.code == 3, closed.output
    assert _error_lines(closed) == [
        f"radar-extract: error: glue is unreachable, could not read database {night.glue_db!r}: "
        'Could not connect to the endpoint URL: "http://127.0.0.1:1/"'
    ]
    nothing = night.run("catalog", "sync", "--date", "2024-02-28")
    assert nothing.code == 1, nothing.output
    assert nothing.stdout.splitlines() == [
        "note store: no published partition for 2024-02-28",
        "FAIL no table has a published partition for 2024-02-28: nothing registered",
        f"glue catalog sync of cog_dt_ingestion=2024-02-28 into {night.glue_db}: 0 tables, "
        "0 created, 0 updated, 0 unchanged, 0 failed: FAILED",
    ]
    local = night.run("catalog", "sync", "--date", DAY, "--dest", "/tmp/x")
    assert local.code == 2 and _error_lines(local) == [
        "radar-extract: error: catalog sync needs an s3:// destination, not '/tmp/x': Glue "
        "locations are S3 URLs"
    ]
    nameless = night.run("catalog", "sync", "--date", DAY, RADAR_GLUE_DATABASE="")
    assert nameless.code == 2 and _error_lines(nameless) == [
        "radar-extract: error: no Glue database: give --database NAME or set RADAR_GLUE_DATABASE"
    ]
    bad = night.run(
        "extract", "--date", DAY, "--catalog-sync", RADAR_GLUE_DATABASE="", RADAR_DEST="/tmp/x"
    )
    assert bad.code == 2 and _error_lines(bad) == [
        "radar-extract: error: invalid configuration: catalog_sync needs glue_database "
        "(RADAR_GLUE_DATABASE); catalog_sync needs an s3:// dest: Glue locations are S3 URLs"
    ]
