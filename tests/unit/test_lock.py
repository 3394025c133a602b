"""The lease logic of the table-and-date lock, on a real local filesystem with a clock the
test moves: taking, waiting, expiry and take-over (one winner), renewal, release, and the
recovery that leaves a locked partition to its holder."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from extractor.config import load_settings
from extractor.errors import ConfigError, FormatError, PartitionLocked, TableTimeout
from extractor.sink.destination import Destination
from extractor.sink.journal import Journal
from extractor.sink.lock import Holder, TableLock
from extractor.sink.publish import recover
from tests.unit.samples import manifest

START = datetime(2026, 12, 1, 2, 10, 3, tzinfo=UTC)


class Clock:
    """Wall clock and monotonic clock, moved together by the test."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def now(self) -> datetime:
        return START + timedelta(seconds=self.seconds)

    def monotonic(self) -> float:
        return 1000.0 + self.seconds


@pytest.fixture
def dest(tmp_path: Path) -> Destination:
    return Destination(load_settings(env={"RADAR_DEST": str(tmp_path)}))


def _lock(dest: Destination, run_id: str, clock: Clock, lease_s: float = 300) -> TableLock:
    return TableLock(
        dest,
        "store",
        "2026-12-01",
        run_id,
        lease_s=lease_s,
        clock=clock.now,
        monotonic=clock.monotonic,
    )


def _holder(dest: Destination) -> Holder:
    holder = Holder.from_json(Path(dest.keys.lock("store", "2026-12-01")).read_text())
    assert holder is not None
    return holder


def test_the_lock_body_has_a_format_and_reads_back_as_written() -> None:
    holder = Holder(
        "2026-12-01_20261201T021003Z_aaaa",
        "store",
        "2026-12-01",
        "t0k",
        "pod-1",
        42,
        START,
        START + timedelta(seconds=300),
    )
    golden = (
        '{\n  "date": "2026-12-01",\n  "format": 1,\n  "host": "pod-1",\n'
        '  "lease_until": "2026-12-01T02:15:03+00:00",\n  "pid": 42,\n'
        '  "run_id": "2026-12-01_20261201T021003Z_aaaa",\n'
        '  "since": "2026-12-01T02:10:03+00:00",\n  "table": "store",\n  "token": "t0k"\n'
        "}\n"
    )
    assert holder.to_json() == golden
    assert Holder.from_json(golden) == holder
    # The first release's body, `"version": 1` and no `format`, is format 1: it still reads.
    first = {k: v for k, v in json.loads(golden).items() if k != "format"}
    assert Holder.from_json(json.dumps({**first, "version": 1})) == holder
    # Keys a reader does not know are ignored; a body that is not ours reads as None (expired).
    assert Holder.from_json(json.dumps({**json.loads(golden), "fencing": 7})) == holder
    assert Holder.from_json("not json") is None
    assert Holder.from_json('{"run_id": "x"}') is None
    assert Holder.from_json('{"format": "one", "run_id": "x"}') is None
    # A later release's lock is refused in one line, never taken for expired.
    with pytest.raises(FormatError) as caught:
        Holder.from_json(json.dumps({**json.loads(golden), "format": 2}), "s3://b/lock.json")
    assert str(caught.value) == (
        "lock s3://b/lock.json has format 2, newer than the 1 this radar-extract reads: a "
        "later release wrote it, upgrade to read it"
    )


def test_a_lock_of_a_later_release_fails_the_table_at_step_lock(dest: Destination) -> None:
    path = dest.keys.lock("store", "2026-12-01")
    newer = (
        Holder(
            "run-new", "store", "2026-12-01", "t", "pod", 1, START, START + timedelta(seconds=300)
        )
        .to_json()
        .replace('"format": 1', '"format": 2')
    )
    dest.write_text(path, newer)
    with pytest.raises(PartitionLocked) as caught:
        _lock(dest, "run-a", Clock()).acquire(0)
    assert caught.value.step == "lock" and "has format 2, newer than the 1" in str(caught.value)
    assert Path(path).read_text() == newer  # left alone


def test_a_second_run_fails_with_one_line_naming_the_holder(dest: Destination) -> None:
    clock = Clock()
    first = _lock(dest, "run-a", clock)
    first.acquire(0)
    second = _lock(dest, "run-b", clock)
    with pytest.raises(PartitionLocked) as caught:
        second.acquire(0)
    assert caught.value.step == "lock" and not caught.value.transient
    assert str(caught.value) == (
        "cog_dt_ingestion=2026-12-01 is being written by run run-a (since 2026-12-01T02:10:03Z,"
        " lease until 2026-12-01T02:15:03Z); waited 0 s (RADAR_LOCK_WAIT_S)"
    )
    first.release()
    assert not os.path.exists(dest.keys.lock("store", "2026-12-01"))
    second.acquire(0)  # free again
    assert _holder(dest).run_id == "run-b"
    second.release()


def test_the_wait_is_bounded_and_counts_towards_the_table_time_limit(
    dest: Destination,
) -> None:
    first = TableLock(dest, "store", "2026-12-01", "run-a", lease_s=60)
    first.acquire(0)
    second = TableLock(dest, "store", "2026-12-01", "run-b", lease_s=60)
    started = time.monotonic()
    with pytest.raises(PartitionLocked, match=r"waited 0\.3 s"):
        second.acquire(0.3)
    assert 0.3 <= time.monotonic() - started < 2

    def checkpoint() -> None:
        raise TableTimeout("time is up", table="store")

    with pytest.raises(TableTimeout):
        second.acquire(30, checkpoint)
    first.release()


def test_an_expired_lock_is_taken_over_and_its_old_holder_stops(dest: Destination) -> None:
    clock = Clock()
    dead = _lock(dest, "run-dead", clock)
    dead.acquire(0)
    dead._stop.set()  # as after SIGKILL: no more heartbeats
    clock.seconds = 299
    assert not _lock(dest, "run-b", clock).try_acquire()  # one second of lease left
    clock.seconds = 300
    taker = _lock(dest, "run-b", clock)
    assert taker.try_acquire()
    assert _holder(dest).run_id == "run-b"
    with pytest.raises(
        PartitionLocked, match="was lost after this run's lease ran out: run run-b "
    ):
        dead.renew()
    with pytest.raises(PartitionLocked):
        dead.check()
    dead.release()  # a lost lock is not ours to delete
    assert _holder(dest).run_id == "run-b"
    taker.release()


def test_of_two_runs_that_see_an_expired_lock_exactly_one_takes_it(dest: Destination) -> None:
    clock = Clock()
    _lock(dest, "run-dead", clock).try_acquire()
    clock.seconds = 301
    a, b = _lock(dest, "run-a", clock), _lock(dest, "run-b", clock)
    store = b._store
    real_replace = store.replace

    def a_wins_meanwhile(path: str, body: str, etag: str) -> str | None:
        assert a.try_acquire()  # between b's read of the expired lock and b's write
        return real_replace(path, body, etag)

    store.replace = a_wins_meanwhile  # type: ignore[method-assign]
    assert not b.try_acquire()
    assert b.blocker is not None and b.blocker.run_id == "run-a"
    assert _holder(dest).run_id == "run-a"


def test_renewal_extends_the_lease_and_check_renews_when_due(dest: Destination) -> None:
    clock = Clock()
    lock = _lock(dest, "run-a", clock)
    assert lock.try_acquire()
    clock.seconds = 100
    lock.check()  # not due: no write
    assert _holder(dest).lease_until == START + timedelta(seconds=300)
    clock.seconds = 150  # half a lease since the last renewal: check renews first
    lock.check()
    assert _holder(dest).lease_until == START + timedelta(seconds=450)
    assert _holder(dest).since == START
    clock.seconds = 500  # past the lease, but no one took it: renewing is still safe
    lock.renew()
    assert _holder(dest).lease_until == START + timedelta(seconds=800)
    lock.release()


def test_the_heartbeat_keeps_a_short_lease_alive(dest: Destination) -> None:
    holder = TableLock(dest, "store", "2026-12-01", "run-a", lease_s=1)
    holder.acquire(0)
    time.sleep(2.5)  # two and a half leases: only the heartbeat keeps it
    other = TableLock(dest, "store", "2026-12-01", "run-b", lease_s=1)
    assert not other.try_acquire()
    holder.check()
    holder.release()
    assert other.try_acquire()
    other.release()


def test_an_earlier_attempt_of_the_same_run_does_not_block_it(dest: Destination) -> None:
    clock = Clock()
    assert _lock(dest, "run-a", clock).try_acquire()  # its release failed, say
    again = _lock(dest, "run-a", clock)
    assert again.try_acquire()
    assert _holder(dest).token == again._token


def test_a_create_whose_reply_was_lost_is_recognised_as_ours(dest: Destination) -> None:
    clock = Clock()
    lock = _lock(dest, "run-a", clock)
    real_create = lock._store.create

    def reply_lost(path: str, body: str) -> str | None:
        real_create(path, body)
        return None  # as when a retried PUT meets the object its first try wrote

    lock._store.create = reply_lost  # type: ignore[method-assign]
    assert lock.try_acquire()
    lock.renew()
    lock.release()
    assert not os.path.exists(dest.keys.lock("store", "2026-12-01"))


def _journal(dest: Destination) -> str:
    path = dest.keys.journal("store", "2026-12-01")
    entry = Journal("store", "2026-12-01", manifest("run-a", 0, date="2026-12-01"))
    dest.write_text(path, entry.to_json())
    return path


def test_recovery_leaves_a_journal_to_the_run_that_holds_the_lock(dest: Destination) -> None:
    path = _journal(dest)
    owner = TableLock(dest, "store", "2026-12-01", "run-a", lease_s=60)
    owner.acquire(0)
    assert recover(dest, run_id="run-b") == []  # run-a is publishing it right now
    assert os.path.exists(path)
    owner.release()
    assert recover(dest, run_id="run-b") == ["store 2026-12-01"]
    assert not os.path.exists(path)
    assert not os.path.exists(dest.keys.lock("store", "2026-12-01"))  # released


def test_lock_settings_are_validated() -> None:
    settings = load_settings(env={"RADAR_LOCK_LEASE_S": "2", "RADAR_LOCK_WAIT_S": "0"})
    assert (settings.lock_lease_s, settings.lock_wait_s) == (2, 0)
    assert (load_settings(env={}).lock_lease_s, load_settings(env={}).lock_wait_s) == (300, 300)
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"RADAR_LOCK_LEASE_S": "0", "RADAR_LOCK_WAIT_S": "-1"})
    assert len(caught.value.problems) == 2
