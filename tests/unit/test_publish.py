"""The publish protocol on a real local filesystem: a crash mid-move is rolled forward by the
next run; old orphan staging is cleaned, young staging (maybe a running shard) is kept."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from extractor.config import load_settings
from extractor.errors import DestinationUnavailable, Step
from extractor.sink.destination import Destination
from extractor.sink.manifest import Manifest
from extractor.sink.parquet import WrittenFile
from extractor.sink.publish import StagedFile, clean_orphans, publish, recover
from tests.unit.samples import manifest


class Crash(BaseException):
    """Stands for SIGKILL: nothing after it runs, no `except Exception` catches it."""


def _stage(dest: Destination, run_id: str, values: list[list[int]]) -> list[StagedFile]:
    staging = dest.keys.staging(run_id, "store")
    os.makedirs(staging)
    staged = []
    for n, chunk in enumerate(values, start=1):
        path = f"{staging}/file_store_{n:03d}.parquet"
        pq.write_table(pa.table({"id": chunk}), path)
        staged.append(StagedFile(WrittenFile(path, len(chunk), os.path.getsize(path)), path))
    return staged


def _ids(dest: Destination) -> list[int]:
    return sorted(pq.read_table(dest.keys.data_dir("store", "2024-05-01")).column("id").to_pylist())


def test_crash_in_the_middle_of_a_move_is_rolled_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = Destination(load_settings(env={"RADAR_DEST": str(tmp_path)}))
    first_run = "2024-05-01_20240501T020000Z_a"
    publish(
        dest,
        "store",
        "2024-05-01",
        _stage(dest, first_run, [[1], [2], [3]]),
        manifest(first_run, 3),
    )
    assert _ids(dest) == [1, 2, 3]

    new_run = "2024-05-02_20240502T020000Z_b"
    staged = _stage(dest, new_run, [[10, 11]])
    real_move = Destination.move_or_copy
    moves: list[str] = []

    def move_then_crash(self: Destination, src: str, dst: str) -> None:
        real_move(self, src, dst)
        moves.append(dst)
        raise Crash

    monkeypatch.setattr(Destination, "move_or_copy", move_then_crash)
    with pytest.raises(Crash):
        publish(dest, "store", "2024-05-01", staged, manifest(new_run, 2))
    monkeypatch.undo()
    # Mixed for now: the new file_001 beside the old 002 and 003, journal still there.
    assert _ids(dest) == [2, 3, 10, 11]
    assert os.path.exists(dest.keys.journal("store", "2024-05-01"))

    assert recover(dest) == ["store 2024-05-01"]
    assert _ids(dest) == [10, 11]
    assert sorted(os.listdir(dest.keys.data_dir("store", "2024-05-01"))) == [
        "file_store_001.parquet"
    ]
    path = dest.keys.manifest("store", "2024-05-01")
    assert Manifest.from_json(Path(path).read_text(), path) == manifest(new_run, 2)
    assert not os.path.exists(dest.keys.journal("store", "2024-05-01"))
    assert recover(dest) == []


def test_only_old_unjournaled_staging_is_cleaned(tmp_path: Path) -> None:
    dest = Destination(load_settings(env={"RADAR_DEST": str(tmp_path)}))
    old, young = "2020-01-01_20200101T020000Z_old", "2099-01-01_20990101T020000Z_new"
    for run_id in (old, young):
        os.makedirs(dest.keys.staging(run_id, "store"))
    assert clean_orphans(dest) == [dest.keys.staging(old)]
    assert os.listdir(dest.keys.staging_root()) == [young]


def test_a_destination_that_cannot_be_written_fails_at_the_probe(tmp_path: Path) -> None:
    (tmp_path / "_radar_extract").write_text("a file where the folder must be")
    dest = Destination(load_settings(env={"RADAR_DEST": str(tmp_path)}))
    with pytest.raises(DestinationUnavailable) as caught:
        dest.probe("run")
    assert caught.value.step is Step.PROBE and caught.value.exit_code == 3
    assert f"destination {tmp_path}/_radar_extract/probes/run.probe is not writable" in str(
        caught.value
    )
