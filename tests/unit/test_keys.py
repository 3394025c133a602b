"""The key layout under the destination root, key by key: files that earlier releases wrote
are found by these keys (`recover()`, `--resume`, `report merge`), so each one is pinned.
And no module but extractor/sink/keys.py spells the folder of ours."""

from __future__ import annotations

from pathlib import Path

import pytest

from extractor.config import load_settings
from extractor.sink.destination import Destination
from extractor.sink.keys import Keys

EXTRACTOR = Path(__file__).resolve().parent.parent.parent / "extractor"
KEYS = Keys("bucket/root", "origin=airbyte/database=bronze_radar")
RUN = "2024-05-01_20240501T020000Z_abcd1234"


def test_a_key_inside_a_partition_names_its_table_and_date() -> None:
    data = "bucket/root/origin=airbyte/database=bronze_radar"
    assert KEYS.data_root() == data
    assert KEYS.partition_of(
        f"{data}/store/cog_dt_ingestion=2024-05-01/file_store_001.parquet"
    ) == ("store", "2024-05-01")
    for elsewhere in (
        f"{data}/store/file_store_001.parquet",  # not in a partition
        f"{data}/store/other=2024-05-01/f.parquet",
        f"{data}/store/cog_dt_ingestion=2024-05-01",  # the folder itself
        "bucket/root/_radar_extract/journal/store/cog_dt_ingestion=2024-05-01.json",
        "bucket/rootless/store/cog_dt_ingestion=2024-05-01/f.parquet",
    ):
        assert KEYS.partition_of(elsewhere) is None, elsewhere


def test_every_key_under_the_root() -> None:
    ours = "bucket/root/_radar_extract"
    assert KEYS.data_dir("store", "2024-05-01") == (
        "bucket/root/origin=airbyte/database=bronze_radar/store/cog_dt_ingestion=2024-05-01"
    )
    assert KEYS.table_dir("store") == ("bucket/root/origin=airbyte/database=bronze_radar/store")
    assert KEYS.internal() == ours
    assert KEYS.staging_root() == f"{ours}/staging"
    assert KEYS.staging(RUN) == f"{ours}/staging/{RUN}"
    assert KEYS.staging(RUN, "store") == f"{ours}/staging/{RUN}/store"
    assert KEYS.manifests() == f"{ours}/manifests"
    assert KEYS.manifest("store", "2024-05-01") == (
        f"{ours}/manifests/store/cog_dt_ingestion=2024-05-01.json"
    )
    assert KEYS.manifests("store") == f"{ours}/manifests/store"
    assert KEYS.journals() == f"{ours}/journal"
    assert KEYS.journal("store", "2024-05-01") == (
        f"{ours}/journal/store/cog_dt_ingestion=2024-05-01.json"
    )
    assert KEYS.lock("store", "2024-05-01") == (
        f"{ours}/locks/store/cog_dt_ingestion=2024-05-01.json"
    )
    assert KEYS.runs() == f"{ours}/runs"
    assert KEYS.run_report(RUN) == f"{ours}/runs/{RUN}.json"
    assert KEYS.merged_report("2024-05-01") == f"{ours}/reports/2024-05-01.json"
    assert KEYS.plan("2024-05-01") == f"{ours}/plans/2024-05-01.json"
    assert KEYS.validation("2024-05-01") == f"{ours}/validation/2024-05-01.json"
    assert KEYS.probe(RUN) == f"{ours}/probes/{RUN}.probe"
    migration = "migrate_20240501T020000Z_1a2b3c4d"
    assert KEYS.migrations("store") == f"{ours}/migrations/store"
    assert KEYS.migration_report("store", migration) == (
        f"{ours}/migrations/store/{migration}.json"
    )
    assert KEYS.migration_state("store") == f"{ours}/migrations/store/exact.json"


def test_keys_of_a_url_root_are_urls() -> None:
    assert Keys("s3://bronze", "p").run_report(RUN) == f"s3://bronze/_radar_extract/runs/{RUN}.json"


@pytest.mark.parametrize(
    ("key", "date", "found"),
    [
        (f"x/runs/{RUN}.json", "2024-05-01", True),
        (f"x/runs/{RUN}.json", "2024-05-02", False),
        (f"x/runs/{RUN}.json.tmp-12", "2024-05-01", False),
        ("x/runs/2024-05-01.json", "2024-05-01", False),
    ],
)
def test_run_reports_of_a_date(key: str, date: str, found: bool) -> None:
    assert KEYS.is_run_report_of(key, date) is found


def test_the_table_of_a_partition_file() -> None:
    assert Keys.table_of(KEYS.journal("store", "2024-05-01")) == "store"


def test_a_destination_s_keys_are_under_its_root(tmp_path: Path) -> None:
    local = Destination(load_settings(env={"RADAR_DEST": str(tmp_path)}))
    assert local.keys == Keys(str(tmp_path), "origin=airbyte/database=bronze_radar")
    s3 = Destination(load_settings(env={"RADAR_DEST": "s3://bronze/raw/", "RADAR_PREFIX": "p"}))
    assert s3.keys == Keys("bronze/raw", "p")


def test_only_the_keys_module_spells_the_folder_of_ours() -> None:
    spelled = sorted(
        str(p.relative_to(EXTRACTOR))
        for p in EXTRACTOR.rglob("*.py")
        if "_radar_extract" in p.read_text(encoding="utf-8")
    )
    assert spelled == ["sink/keys.py"]
