"""Every file we write, against golden files: tests/golden/ as this release writes them, and
tests/golden/previous/ as the release before the `format` fields wrote them (both taken by
running the release, tests/golden/make_samples.sh; the compatible write's, `*_compat.json`,
as this release and as the compat writer before the `format` fields wrote them).

For each file: the reader gives the expected values, the writer turns those values back
into the golden file byte for byte (a silent change of the format fails here), a format
newer than the reader's is refused in one line, and the previous release's file still reads,
losing nothing.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from extractor.compat.migration import (
    ColumnCounts,
    ColumnResult,
    ExactState,
    MigrationReport,
    PartitionResult,
    read_state,
)
from extractor.config import load_settings
from extractor.drift.store import StoredColumn, StoredSchema, load_schemas
from extractor.errors import FormatError, Step, UsageError
from extractor.ops.after_run import validation_of_date
from extractor.ops.merge import MergedReport, run_reports
from extractor.ops.validate import validate
from extractor.ops.validation import TableCheck, Validation
from extractor.run.report import CompatResult, RunReport, TableResult
from extractor.run.shards import ShardGroup, ShardPlan, load_plan
from extractor.sink.destination import Destination
from extractor.sink.journal import Journal
from extractor.sink.manifest import (
    CompatColumn,
    CompatDrift,
    CompatWrite,
    DriftRecord,
    Manifest,
    ManifestColumn,
    ManifestFile,
    MigratedColumn,
    MigratedFrom,
    SourceRead,
)
from extractor.sink.multipart import Part, PendingUpload
from extractor.sink.publish import published_since, recover

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
PREVIOUS = GOLDEN / "previous"
DEST = "/tmp/radar-golden/dest"
DATA = f"{DEST}/origin=airbyte/database=bronze_radar"
RUN = "2024-05-01_20261201T212802Z_0ba22e7b"
SHARD_RUN = "2024-05-01_20261201T212802Z_4f23dd90"
KILLED_RUN = "2024-05-02_20261201T212804Z_83756887"

WIDENED = DriftRecord(
    "type_widened",
    "warn",
    column="label",
    stored="varchar(20)",
    live="varchar(40)",
    policy_key="type_widened",
    stored_arrow_type="string",
    live_arrow_type="string",
)
ADDED = DriftRecord(
    "column_added",
    "fail",
    column="note",
    live="varchar(10)",
    policy_key="column_added",
    live_arrow_type="string",
)
PRODUCT_COLUMNS = [
    ManifestColumn("id", "int", False, "int32"),
    ManifestColumn("label", "varchar(40)", True, "string"),
]


def _manifest(date: str, run_id: str, published_at: str) -> Manifest:
    return Manifest(
        table="product",
        date=date,
        run_id=run_id,
        engine="radar-extract 0.1.0",
        published_at=published_at,
        rows=2,
        bytes=628,
        source=SourceRead("radar_golden", rows_read=2, estimated_rows=2),
        files=[ManifestFile("file_product_001.parquet", 2, 628)],
        schema=PRODUCT_COLUMNS,
        primary_key=["id"],
        drift=[WIDENED],
        nulled={},
    )


MANIFEST = _manifest("2024-05-01", RUN, "2026-12-01T21:28:02.083007+00:00")
JOURNAL = Journal(
    "product",
    "2024-05-02",
    _manifest("2024-05-02", KILLED_RUN, "2026-12-01T21:28:04.025565+00:00"),
    staged=[f"{DEST}/_radar_extract/staging/{KILLED_RUN}/product/file_product_001.parquet"],
    bytes=[628],
)
PLAN = ShardPlan(
    "2024-05-01",
    2,
    [
        ShardGroup(1, 2, ["audit", "orders"], estimated_bytes=32768, estimated_rows=3),
        ShardGroup(2, 2, ["customer", "product"], estimated_bytes=32768, estimated_rows=5),
    ],
    saved_at="2026-12-01T21:28:01.543499+00:00",
)

CUSTOMER = TableResult(
    "customer",
    "published",
    rows=3,
    files=1,
    bytes=867,
    seconds=0.024,
    nulled={"born": 1},
    keys=[f"{DATA}/customer/cog_dt_ingestion=2024-05-01/file_customer_001.parquet"],
    attempts=1,
)
ORDERS = TableResult(
    "orders",
    "failed",
    error="schema drift: fail: column_added note: (none) → varchar(10). Review it, then "
    "`radar-extract schemas snapshot --table orders` and commit, or set the drift policy",
    error_step=Step.DRIFT,
    error_type="SchemaDrift",
    retry_note="not retried: the schema must be reviewed",
    drift=[ADDED],
)
PRODUCT = TableResult(
    "product",
    "published",
    rows=2,
    files=1,
    bytes=628,
    seconds=0.006,
    keys=[f"{DATA}/product/cog_dt_ingestion=2024-05-01/file_product_001.parquet"],
    attempts=1,
    drift=[WIDENED],
)
RUN_REPORT = RunReport(
    run_id=RUN,
    date="2024-05-01",
    database="radar_golden",
    destination=DEST,
    started_at="2026-12-01T21:28:01+00:00",
    finished_at="2026-12-01T21:28:02+00:00",
    seconds=0.195,
    tls=False,
    reader="connectorx",
    tables=[CUSTOMER, ORDERS, PRODUCT],
)
MERGED = MergedReport(
    run_id="2024-05-01_merged",
    date="2024-05-01",
    database="radar_golden",
    destination=DEST,
    started_at="2026-12-01T21:28:01+00:00",
    finished_at="2026-12-01T21:28:02+00:00",
    seconds=1.0,
    reader="connectorx",
    tables=[
        TableResult("audit", "not_run", error="shard 1/2 wrote no report"),
        CUSTOMER,
        ORDERS,
        PRODUCT,
    ],
    runs=[RUN, SHARD_RUN],
    shards=["2/2"],
)
VALIDATION = Validation(
    date="2024-05-01",
    database="radar_golden",
    destination=DEST,
    expected_from="schemas",
    against_source=False,
    strict=False,
    checked_at="2026-12-01T21:28:03+00:00",
    tables=[
        TableCheck(
            "audit",
            valid=False,
            problems=["audit: no published partition for 2024-05-01 (no manifest)"],
        ),
        TableCheck(
            "customer", partition=True, files=1, manifest_rows=3, footer_rows=3, schema="match"
        ),
        TableCheck(
            "orders",
            valid=False,
            problems=["orders: no published partition for 2024-05-01 (no manifest)"],
        ),
        TableCheck(
            "product",
            partition=True,
            files=1,
            manifest_rows=2,
            footer_rows=2,
            schema="match",
            accepted_drift=["type_widened label"],
        ),
    ],
)
STORED = StoredSchema(
    "radar_golden",
    "product",
    [
        StoredColumn("id", "int", "int", False, "int32", has_default=False),
        StoredColumn("label", "varchar", "varchar(20)", True, "string", has_default=True),
    ],
    primary_key=["id"],
)

# A compatible write (extractor/compat/): `legacy_store`, written in the output schema found in
# its Airbyte partition, after a column was dropped (`gone`, NULL) and one added (`added`).
COMPAT_RUN = "2024-05-03_20261201T221434Z_04c584a5"
COMPAT_DRIFT = [
    CompatDrift("column_removed", "gone", "warn", stored="string", policy_key="column_removed"),
    CompatDrift("column_added", "added", "warn", live="int", policy_key="column_added"),
]
STRING, MS = {"type": "string"}, {"type": "timestamp", "tz": "UTC", "unit": "ms"}
UNION = {
    "type": "struct",
    "fields": [
        {
            "name": "member0",
            "nullable": True,
            "type": {"type": "timestamp", "tz": "UTC", "unit": "us"},
        },
        {"name": "member1", "nullable": True, "type": STRING},
    ],
}
PROPERTIES = {
    "type": "map",
    "key": {"name": "key", "nullable": False, "type": STRING},
    "value": {"name": "value", "nullable": True, "type": STRING},
}
COMPAT_MANIFEST = Manifest(
    table="legacy_store",
    date="2024-05-03",
    run_id=COMPAT_RUN,
    engine="radar-extract 0.1.0",
    published_at="2026-12-01T22:14:34.898264+00:00",
    rows=2,
    bytes=2996,
    source=SourceRead("radar_golden", rows_read=2, estimated_rows=2),
    files=[ManifestFile("file_legacy_store_001.parquet", 2, 2996)],
    schema=[
        ManifestColumn("id", "int", False, "int32"),
        ManifestColumn("active", "tinyint(1)", False, "int8"),
        ManifestColumn("opened", "datetime", True, "timestamp[us]"),
        ManifestColumn("added", "int", True, "int32"),
    ],
    primary_key=["id"],
    compat=CompatWrite(
        era="legacy",
        output_schema="/tmp/radar-golden/schemas/radar_golden/output/legacy_store.json",
        found={
            "created_by": "parquet-cpp-arrow version 26.0.1",
            "file": "file_legacy_store_001.parquet",
            "partition": "2024-04-30",
        },
        columns=[
            CompatColumn("_airbyte_ab_id", "ab_id", "string", STRING, "metadata"),
            CompatColumn(
                "_airbyte_emitted_at", "emitted_at", "timestamp[ms, tz=UTC]", MS, "metadata"
            ),
            CompatColumn("id", "data", "int64", {"type": "int64"}, "lossless", source="id"),
            CompatColumn("active", "data", "bool", {"type": "boolean"}, "lossy", source="active"),
            CompatColumn(
                "opened",
                "data",
                "struct<member0: timestamp[us, tz=UTC], member1: string>",
                UNION,
                "lossless",
                source="opened",
            ),
            CompatColumn("gone", "data", "string", STRING, "null"),
            CompatColumn(
                "_airbyte_additional_properties",
                "additional_properties",
                "map<string, string>",
                PROPERTIES,
                "metadata",
            ),
            CompatColumn("added", "data", "int32", {"type": "int32"}, "identical", source="added"),
        ],
        converted={"active": 1},
        drift=COMPAT_DRIFT,
    ),
)
COMPAT_REPORT = RunReport(
    run_id=COMPAT_RUN,
    date="2024-05-03",
    database="radar_golden",
    destination=DEST,
    started_at="2026-12-01T22:14:34+00:00",
    finished_at="2026-12-01T22:14:34+00:00",
    seconds=0.804,
    reader="connectorx",
    tables=[
        TableResult(
            "legacy_store",
            "published",
            rows=2,
            files=1,
            bytes=2996,
            seconds=0.121,
            keys=[f"{DATA}/legacy_store/cog_dt_ingestion=2024-05-03/file_legacy_store_001.parquet"],
            attempts=1,
            compat=CompatResult("legacy", COMPAT_DRIFT),
            converted={"active": 1},
        )
    ],
)

# `migrate --table legacy_store` after that compatible write (a later run of make_samples.sh:
# its own run ids): both partitions, Airbyte's and the compatible one, rewritten exact.
MIGRATION = "migrate_20261202T044506Z_1e202f28"
MIGRATED_COMPAT_RUN = "2024-05-03_20261202T044505Z_c9be1565"
OUTPUT_SCHEMA = "/tmp/radar-golden/schemas/radar_golden/output/legacy_store.json"
OPENED_UNION = "struct<member0: timestamp[us, tz=UTC], member1: string>"
OPENED_HOW = (
    "member0 timestamp[us, tz=UTC] to timestamp[us], the wall clock Airbyte took as "
    "UTC; member1's text parsed where member0 is NULL"
)
BY_COMPAT = "the values the compatible write changed (its manifest's count)"
TRUE_VALUES = "true values: a value 2..127 was written as true too"
LEGACY_STORE = [
    ManifestColumn("id", "int", False, "int32"),
    ManifestColumn("active", "tinyint(1)", False, "int8"),
    ManifestColumn("opened", "datetime", True, "timestamp[us]"),
    ManifestColumn("added", "int", True, "int32"),
]


def _migrated_columns(
    counted: str | None, active: ColumnCounts, added: ColumnResult
) -> list[ColumnResult]:
    return [
        ColumnResult(
            "id",
            "id",
            "int64",
            "int32",
            "exact",
            "int64 to int32",
            counted,
            ColumnCounts(rows=2, exact=2),
        ),
        ColumnResult(
            "active",
            "active",
            "bool",
            "int8",
            "possibly_lost",
            "true 1, false 0",
            counted or TRUE_VALUES,
            active,
        ),
        ColumnResult(
            "opened",
            "opened",
            OPENED_UNION,
            "timestamp[us]",
            "exact",
            OPENED_HOW,
            counted,
            ColumnCounts(rows=2, exact=2),
        ),
        added,
    ]


MIGRATION_REPORT = MigrationReport(
    migration_id=MIGRATION,
    table="legacy_store",
    database="radar_golden",
    destination=DEST,
    started_at="2026-12-02T04:45:06+00:00",
    finished_at="2026-12-02T04:45:06+00:00",
    seconds=0.055,
    exact=True,
    output_schema=f"removed {OUTPUT_SCHEMA}",
    notes=[
        f"every partition is exact: removed {OUTPUT_SCHEMA}; commit its deletion (the next "
        "extract writes the table exact)"
    ],
    partitions=[
        PartitionResult(
            "2024-04-30",
            "migrated",
            "airbyte",
            "legacy",
            rows=2,
            files=1,
            bytes=1153,
            old_files=1,
            seconds=0.025,
            dropped=["gone"],
            columns=_migrated_columns(
                None,
                ColumnCounts(rows=2, possibly_lost=2),
                ColumnResult(
                    "added",
                    None,
                    None,
                    "int32",
                    "absent",
                    "the old partition has no such column: NULL",
                    None,
                    ColumnCounts(rows=2, absent=2),
                ),
            ),
        ),
        PartitionResult(
            "2024-05-03",
            "migrated",
            "compat",
            "legacy",
            rows=2,
            files=1,
            bytes=1153,
            old_files=1,
            seconds=0.028,
            dropped=["gone"],
            columns=_migrated_columns(
                BY_COMPAT,
                ColumnCounts(rows=2, exact=1, lost=1),
                ColumnResult(
                    "added",
                    "added",
                    "int32",
                    "int32",
                    "identical",
                    "as it is",
                    BY_COMPAT,
                    ColumnCounts(rows=2, exact=2),
                ),
            ),
        ),
    ],
)
MIGRATION_STATE = ExactState("legacy_store", "2026-12-02T04:45:06+00:00", MIGRATION, 2)
MIGRATED_MANIFEST = Manifest(
    table="legacy_store",
    date="2024-05-03",
    run_id="2024-05-03_20261202T044506Z_1e202f28",
    engine="radar-extract 0.1.0",
    published_at="2026-12-02T04:45:06.530278+00:00",
    rows=2,
    bytes=1153,
    source=SourceRead("radar_golden", rows_read=2, estimated_rows=2),
    files=[ManifestFile("file_legacy_store_001.parquet", 2, 1153)],
    schema=LEGACY_STORE,
    primary_key=["id"],
    migrated=MigratedFrom(
        migration_id=MIGRATION,
        written_by="compat",
        era="legacy",
        old_run_id=MIGRATED_COMPAT_RUN,
        old_files=["file_legacy_store_001.parquet"],
        dropped=["gone"],
        columns={
            "id": MigratedColumn("exact", 2, "id", "int64"),
            "active": MigratedColumn("possibly_lost", 1, "active", "bool", {"lost": 1}),
            "opened": MigratedColumn("exact", 2, "opened", OPENED_UNION),
            "added": MigratedColumn("identical", 2, "added", "int32"),
        },
    ),
)

Reader = Callable[[str, str], Any]
# file, its reader, the one reader's name for it in messages, the values it holds
CASES: list[tuple[str, Reader, str, Any]] = [
    ("manifest.json", Manifest.from_json, "manifest", MANIFEST),
    ("journal.json", Journal.from_json, "journal entry", JOURNAL),
    ("plan.json", ShardPlan.from_json, "saved plan", PLAN),
    ("run_report.json", RunReport.from_json, "run report", RUN_REPORT),
    ("merged_report.json", MergedReport.from_json, "merged report", MERGED),
    ("validation.json", Validation.from_json, "validation", VALIDATION),
    ("stored_schema.json", StoredSchema.from_json, "stored schema", STORED),
    ("manifest_compat.json", Manifest.from_json, "manifest", COMPAT_MANIFEST),
    ("run_report_compat.json", RunReport.from_json, "run report", COMPAT_REPORT),
    ("manifest_migrated.json", Manifest.from_json, "manifest", MIGRATED_MANIFEST),
    ("migration_report.json", MigrationReport.from_json, "migration report", MIGRATION_REPORT),
    ("migration_state.json", ExactState.from_json, "migration switch", MIGRATION_STATE),
]
IDS = [name.removesuffix(".json") for name, *_ in CASES]
# Files that had a `format` from their first release: no earlier one to read.
NEW_WITH_FORMAT = {"manifest_migrated.json", "migration_report.json", "migration_state.json"}
PREVIOUS_CASES = [case for case in CASES if case[0] not in NEW_WITH_FORMAT]


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize(("name", "read", "what", "expected"), CASES, ids=IDS)
def test_the_reader_reads_the_golden_file_to_its_values(
    name: str, read: Reader, what: str, expected: Any
) -> None:
    got = read(_text(GOLDEN / name), name)
    assert type(got) is type(expected)
    assert got == expected


@pytest.mark.parametrize(("name", "read", "what", "expected"), CASES, ids=IDS)
def test_the_writer_writes_the_golden_file_byte_for_byte(
    name: str, read: Reader, what: str, expected: Any
) -> None:
    assert expected.to_json() == _text(GOLDEN / name)


@pytest.mark.parametrize(("name", "read", "what", "expected"), CASES, ids=IDS)
def test_a_newer_format_is_refused_in_one_line(
    name: str, read: Reader, what: str, expected: Any
) -> None:
    data = json.loads(_text(GOLDEN / name))
    data["format"] = 99
    known = 2 if name == "journal.json" else 1  # the journal's format 2 added S3 uploads
    with pytest.raises(FormatError) as caught:
        read(json.dumps(data), f"s3://bronze/{name}")
    assert str(caught.value) == (
        f"{what} s3://bronze/{name} has format 99, newer than the {known} this radar-extract "
        "reads: a later release wrote it, upgrade to read it"
    )


@pytest.mark.parametrize(("name", "read", "what", "expected"), CASES, ids=IDS)
@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{", "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        ("[]", "not a JSON object"),
        ('{"format": "one"}', "format 'one' is not a format radar-extract writes"),
        ('{"format": 1}', None),  # a key missing: named by the reader
    ],
    ids=["not-json", "not-an-object", "bad-format", "missing-key"],
)
def test_a_damaged_file_is_one_line_naming_it(
    name: str, read: Reader, what: str, expected: Any, text: str, why: str | None
) -> None:
    with pytest.raises(FormatError) as caught:
        read(text, "/d/x.json")
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{what} /d/x.json is not readable: ")
    if why is not None:
        assert message.endswith(why)
    else:
        assert "it has no '" in message


def test_a_journal_of_an_s3_publish_is_format_2_and_keeps_its_uploads() -> None:
    parts = (
        Part(1, '"0cc175b9c0f1b6a831c399e269772661"', 8 * 1024 * 1024),
        Part(2, '"92eb5ffee6ae2fec3ad71c777531578f"', 628),
    )
    upload = PendingUpload(
        f"{DATA}/product/cog_dt_ingestion=2024-05-02/file_product_001.parquet",
        "upload-1",
        parts,
        8 * 1024 * 1024 + 628,
    )
    entry = dataclasses.replace(JOURNAL, staged=[], bytes=[], uploads=[upload])
    data = json.loads(entry.to_json())
    assert data["format"] == 2 and data["staged"] == []
    assert data["uploads"] == [
        {
            "key": upload.key,
            "upload_id": "upload-1",
            "bytes": 8 * 1024 * 1024 + 628,
            "parts": [
                {"number": 1, "etag": parts[0].etag, "bytes": 8 * 1024 * 1024},
                {"number": 2, "etag": parts[1].etag, "bytes": 628},
            ],
        }
    ]
    assert Journal.from_json(entry.to_json(), "j.json") == entry
    # A release that reads only format 1 would complete none of the uploads: it must refuse.
    assert json.loads(JOURNAL.to_json())["format"] == 1 and "uploads" not in JOURNAL.to_json()
    data["uploads"][0]["parts"][0]["number"] = "1"
    with pytest.raises(FormatError, match=r"^journal entry j\.json is not readable: '1' is not"):
        Journal.from_json(json.dumps(data), "j.json")


def test_a_journal_holds_a_manifest_of_a_known_format_too() -> None:
    data = json.loads(_text(GOLDEN / "journal.json"))
    data["manifest"]["format"] = 3
    with pytest.raises(FormatError, match=r"^manifest j\.json has format 3, newer than the 1"):
        Journal.from_json(json.dumps(data), "j.json")


def test_a_stored_schema_of_a_newer_format_stops_the_check(tmp_path: Path) -> None:
    data = json.loads(_text(GOLDEN / "stored_schema.json"))
    data["format"] = 2
    (tmp_path / "radar_golden").mkdir()
    path = tmp_path / "radar_golden" / "product.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        load_schemas(tmp_path, "radar_golden")
    assert str(caught.value) == (
        f"stored schema {path} has format 2, newer than the 1 this radar-extract reads: a "
        "later release wrote it, upgrade to read it; rewrite it with `radar-extract schemas "
        "snapshot --table product`"
    )


# -- the release before: the same keys, no `format` ----------------------------------------

PREVIOUS_RUN = "2024-05-01_20261201T212759Z_15a8ef65"


@pytest.mark.parametrize(
    ("name", "read", "what", "expected"),
    PREVIOUS_CASES,
    ids=[name.removesuffix(".json") for name, *_ in PREVIOUS_CASES],
)
def test_the_previous_release_s_file_reads_and_loses_nothing(
    name: str, read: Reader, what: str, expected: Any
) -> None:
    text = _text(PREVIOUS / name)
    got = read(text, name)
    assert type(got) is type(expected)
    # Written again by this release: the same JSON, plus the format it now carries and the
    # optional keys added since, empty (a compatible write's, extractor/compat/).
    before, after = json.loads(text), json.loads(got.to_json())
    before["format"] = 1
    if name == "journal.json":
        before["manifest"]["format"] = 1
    if name in ("run_report.json", "merged_report.json"):
        for table in before["tables"]:
            assert "compat" not in table and "converted" not in table
            table.update(compat=None, converted={})
        before["totals"]["converted"] = 0
    assert after == before


def test_the_previous_release_s_values() -> None:
    manifest = Manifest.from_json(_text(PREVIOUS / "manifest.json"), "m")
    assert (manifest.run_id, manifest.rows, manifest.drift[0].kind, manifest.files[0].key) == (
        PREVIOUS_RUN,
        2,
        "type_widened",
        "file_product_001.parquet",
    )
    journal = Journal.from_json(_text(PREVIOUS / "journal.json"), "j")
    assert journal.manifest.run_id == "2024-05-02_20261201T212800Z_7c5dd48c"
    assert journal.bytes == [628] and journal.staged[0].endswith("/file_product_001.parquet")
    plan = ShardPlan.from_json(_text(PREVIOUS / "plan.json"), "p")
    assert plan.shard_of() == {"audit": "1/2", "orders": "1/2", "customer": "2/2", "product": "2/2"}
    assert plan.saved_at == "2026-12-01T21:27:58.520990+00:00"
    report = RunReport.from_json(_text(PREVIOUS / "run_report.json"), "r")
    assert report.run_id == PREVIOUS_RUN and report.seconds == 0.376
    assert [(t.table, t.status) for t in report.tables] == [
        ("customer", "published"),
        ("orders", "failed"),
        ("product", "published"),
    ]
    assert report.tables[1].drift[0] == ADDED
    merged = MergedReport.from_json(_text(PREVIOUS / "merged_report.json"), "m")
    assert merged.runs == [PREVIOUS_RUN, "2024-05-01_20261201T212759Z_760f56b8"]
    assert merged.tables[0] == TableResult("audit", "not_run", error="shard 1/2 wrote no report")
    validation = Validation.from_json(_text(PREVIOUS / "validation.json"), "v")
    assert not validation.valid and validation.all_problems() == [
        "audit: no published partition for 2024-05-01 (no manifest)",
        "orders: no published partition for 2024-05-01 (no manifest)",
    ]
    # That release named column types with display widths (extractor/source/discovery.py)
    widths = dataclasses.replace(STORED.columns[0], mysql_type="int(11)")
    previous = dataclasses.replace(STORED, columns=[widths, *STORED.columns[1:]])
    assert StoredSchema.from_json(_text(PREVIOUS / "stored_schema.json"), "s") == previous


# -- what each reader's caller does with a file of a newer format --------------------------


def _newer(name: str) -> str:
    data = json.loads(_text(GOLDEN / name))
    data["format"] = 99  # newer than any reader's
    return json.dumps(data)


def _destination(tmp_path: Path) -> Destination:
    return Destination(
        load_settings(
            env={
                "RADAR_DEST": str(tmp_path / "dest"),
                "RADAR_SCHEMAS_DIR": str(tmp_path / "schemas"),
            }
        )
    )


def test_callers_of_the_readers_with_a_newer_format(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dest = _destination(tmp_path)
    keys = dest.keys
    day = "2024-05-01"
    dest.write_text(keys.manifest("product", day), _newer("manifest.json"))
    # --resume and merge: a manifest this release cannot read is not a publish (runs again)
    assert published_since(dest, ["product"], day, None) == {}
    # validate: the partition fails, in one line naming the file
    result = validate(dest.settings, date.fromisoformat(day))
    (check,) = result.tables
    assert not check.valid and check.problems == [
        f"product: manifest {keys.manifest('product', day)} has format 99, newer than the 1 "
        "this radar-extract reads: a later release wrote it, upgrade to read it"
    ]
    # merge: a run report it cannot read is left out, with a warning
    dest.write_text(keys.run_report(RUN), _newer("run_report.json"))
    assert run_reports(dest, day) == []
    assert f"run report {keys.run_report(RUN)} has format 99" in caplog.text
    # notify: the validation goes out of the message, with a warning
    dest.write_text(keys.validation(day), _newer("validation.json"))
    assert validation_of_date(dest.settings, date.fromisoformat(day)) is None
    assert "left out of the message" in caplog.text
    # --shard: every shard must agree on the plan, so one it cannot read stops the run
    dest.write_text(keys.plan(day), _newer("plan.json"))
    with pytest.raises(FormatError, match=r"^the saved plan .* has format 99"):
        load_plan(dest, day)
    # recover: a half-done publish it cannot read is never applied
    dest.write_text(keys.journal("product", "2024-05-02"), _newer("journal.json"))
    with pytest.raises(FormatError, match=r"^journal entry .* has format 99"):
        recover(dest)
    assert Path(keys.journal("product", "2024-05-02")).exists()


def test_a_migrated_manifest_is_an_exact_one_plus_its_migrated_entry() -> None:
    # Extract's manifests have no `migrated` key at all: their golden files stay as they were.
    assert "migrated" not in MANIFEST.to_json() and "migrated" not in COMPAT_MANIFEST.to_json()
    data = json.loads(_text(GOLDEN / "manifest_migrated.json"))
    assert "compat" not in data and data["migrated"]["from"] == "compat"
    data["migrated"]["columns"]["active"]["classes"]["lost"] = "1"
    with pytest.raises(FormatError, match=r"^manifest m\.json is not readable: '1' is not"):
        Manifest.from_json(json.dumps(data), "m.json")


def test_a_switch_of_a_newer_format_still_counts_as_set(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A compatible write must not add an Airbyte-shaped partition to a history a later
    # release rewrote exact: the switch it cannot read is set, and it says so.
    dest = _destination(tmp_path)
    path = dest.keys.migration_state("legacy_store")
    dest.write_text(path, _newer("migration_state.json"))
    assert read_state(dest, "legacy_store") is not None
    assert (
        f"migration switch {path} has format 99, newer than the 1 this radar-extract reads"
    ) in caplog.text and "it counts as set" in caplog.text
    dest.write_text(path, _text(GOLDEN / "migration_state.json"))
    assert read_state(dest, "legacy_store") == MIGRATION_STATE
