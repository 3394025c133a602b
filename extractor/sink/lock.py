"""One writer per table and date: a leased lock object outside the data location
(keys.lock: `locks/<table>/cog_dt_ingestion=<date>.json` in our folder), who writes it and
until when; its body has a `format` as every file we write (extractor/sink/formats.py).

Two runs of one table and date (a manual rerun beside the nightly, an orchestrator retry
that overlaps its first try) would each delete the keys the other has not moved in yet.
So a run takes this lock before it reads the table and keeps it until the manifest is
written: a second run waits (`RADAR_LOCK_WAIT_S`) and then fails the table at step `lock`
without reading anything.

The lock is a lease (`RADAR_LOCK_LEASE_S`, 300 s), renewed by a heartbeat thread every fifth
of it, so a run killed by SIGKILL or a lost pod holds it at most one lease after its last
renewal. The lease is not sized to the table: a read may take hours, and a dead run should
block the next one for minutes, not for the longest table's time. A lock whose lease has
run out is taken over by a compare-and-swap on what was read, so of two runs that both see
it expired, exactly one wins. A holder that could not renew stops writing half a lease
after its last renewal began: room for a late heartbeat and for clocks that disagree by
less than that (hosts keep UTC by NTP). A process frozen for longer than that inside one
storage request can still act after a take-over: a lease bounds overlaps, it cannot fence.

S3: `PutObject IfNoneMatch="*"` creates the lock, `PutObject IfMatch=<ETag>` renews it or
takes it over, `DeleteObject IfMatch=<ETag>` releases it (all atomic on AWS S3 and in moto).
Local: `link()` creates it (it fails on an existing name, and the content is complete when
the name appears); renewal, take-over and release compare and write under an flock of the
lock's directory, which the kernel drops when the process dies.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from extractor.errors import ExtractError, FormatError, PartitionLocked, Step
from extractor.sink.destination import Destination, error_code
from extractor.sink.formats import as_int, as_str, checked, dumps, reading

logger = logging.getLogger(__name__)

FORMAT = 1  # the body of the first release of the lock had `"version": 1` instead: format 1
WHAT = "lock"
_TAKE_LAPS = 5  # each lap follows a change another run made between our read and our write


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Holder:
    """The content of a lock object."""

    run_id: str
    table: str
    date: str
    token: str  # one per acquisition: tells a holder from an earlier attempt of its run
    host: str
    pid: int
    since: datetime
    lease_until: datetime

    def live(self, now: datetime) -> bool:
        return now < self.lease_until

    def describe(self) -> str:
        return f"run {self.run_id} (since {_iso(self.since)}, lease until {_iso(self.lease_until)})"

    def to_json(self) -> str:
        return dumps(
            {
                "format": FORMAT,
                **dataclasses.asdict(self),
                "since": self.since.isoformat(),
                "lease_until": self.lease_until.isoformat(),
            }
        )

    @classmethod
    def from_json(cls, text: str, where: str = "(in memory)") -> Holder | None:
        """None for a body that is not a lock of ours: it is then treated as expired. A lock
        of a newer format (a later release holds it) is FormatError, in one line: never
        taken over."""
        try:
            data = json.loads(text)
        except ValueError:
            return None
        version = data.get("format") if isinstance(data, dict) else None
        if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT:
            checked(data, WHAT, where, FORMAT)  # raises: has format N, newer than ...
        try:
            checked(data, WHAT, where, FORMAT)
            with reading(WHAT, where):
                holder = cls(
                    as_str(data["run_id"]),
                    as_str(data["table"]),
                    as_str(data["date"]),
                    as_str(data["token"]),
                    as_str(data["host"]),
                    as_int(data["pid"]),
                    datetime.fromisoformat(as_str(data["since"])),
                    datetime.fromisoformat(as_str(data["lease_until"])),
                )
        except FormatError:
            return None
        return holder if holder.lease_until.tzinfo is not None else None


class _Store(Protocol):
    """Compare-and-swap on one small object; an etag names one version of its content."""

    def create(self, path: str, body: str) -> str | None: ...  # its etag; None: it exists
    def read(self, path: str) -> tuple[str, str] | None: ...  # (body, etag); None: absent
    def replace(self, path: str, body: str, etag: str) -> str | None: ...  # None: not `etag`
    def delete(self, path: str, etag: str) -> bool: ...  # False: gone, or not `etag`


class TableLock:
    """The lock of one table and date, for one acquisition by one run."""

    def __init__(
        self,
        destination: Destination,
        table: str,
        date: str,
        run_id: str,
        *,
        lease_s: float,
        clock: Callable[[], datetime] = _now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = destination.keys.lock(table, date)
        self._where = destination.url(self.path)
        self.table, self.date, self.run_id, self.lease_s = table, date, run_id, lease_s
        self._store: _Store = (
            _S3Store(destination) if destination.is_s3 else _LocalStore(destination)
        )
        self._clock, self._monotonic = clock, monotonic
        self._token = uuid.uuid4().hex
        self._mine: Holder | None = None
        self._etag = ""
        self._renewed = 0.0  # monotonic time at which the last successful renewal was sent
        self._lost: str | None = None
        self._mutex = threading.Lock()  # the heartbeat thread and the pipeline both renew
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self.blocker: Holder | None = None  # the live holder that the last try ran into

    @property
    def partition(self) -> str:
        return f"cog_dt_ingestion={self.date}"

    def try_acquire(self) -> bool:
        """Take the lock if it is free or its lease has run out; False if someone holds it."""
        for _ in range(_TAKE_LAPS):
            now, sent = self._clock(), self._monotonic()
            mine = Holder(
                self.run_id,
                self.table,
                self.date,
                self._token,
                socket.gethostname(),
                os.getpid(),
                now,
                now + timedelta(seconds=self.lease_s),
            )
            etag = self._store.create(self.path, mine.to_json())
            if etag is not None:
                return self._hold(mine, etag, sent)
            found = self._store.read(self.path)
            if found is None:
                continue  # released meanwhile
            try:
                holder, etag = Holder.from_json(found[0], self._where), found[1]
            except FormatError as exc:  # a later release holds it: neither wait nor take it
                raise PartitionLocked(str(exc), table=self.table) from exc
            if holder is not None and holder.token == self._token:
                return self._hold(holder, etag, sent)  # our create landed, its reply was lost
            # An earlier attempt of this very run has ended: its lock is no one's.
            if holder is not None and holder.live(now) and holder.run_id != self.run_id:
                self.blocker = holder
                return False
            taken = self._store.replace(self.path, mine.to_json(), etag)
            if taken is not None:
                why = (
                    "an earlier attempt of this run"
                    if holder and holder.live(now)
                    else "whose lease ran out"
                )
                logger.warning(
                    "%s: took over the lock of %s from %s, %s",
                    self.table,
                    self.partition,
                    holder.describe() if holder else "an unreadable lock",
                    why,
                )
                return self._hold(mine, taken, sent)
        return False

    def acquire(self, wait_s: float, checkpoint: Callable[[], None] | None = None) -> None:
        """Take the lock, waiting up to `wait_s` for its holder; then renew it in the
        background until `release`. Raises PartitionLocked naming the holder."""
        until = self._monotonic() + wait_s
        announced = False
        while not self.try_acquire():
            left = until - self._monotonic()
            if left <= 0:
                raise PartitionLocked(self._busy(wait_s), table=self.table)
            if not announced:
                announced = True
                logger.info("%s: %s; waiting up to %g s", self.table, self._busy(None), wait_s)
            time.sleep(min(left, 2.0, self.lease_s / 4))
            if checkpoint is not None:
                checkpoint()  # the wait counts towards the table's time limit
        self._stop.clear()
        self._heartbeat = threading.Thread(
            target=self._beat, daemon=True, name=f"lock-{self.table}"
        )
        self._heartbeat.start()

    def check(self) -> None:
        """Raises unless the lock is surely still ours; renews it first if it is due."""
        if self._lost is not None:
            raise PartitionLocked(self._lost, table=self.table)
        if self._monotonic() - self._renewed >= self.lease_s / 2:
            self.renew()

    def renew(self) -> None:
        """Extend the lease now; raises PartitionLocked if another run has taken the lock."""
        with self._mutex:
            if self._lost is not None:
                raise PartitionLocked(self._lost, table=self.table)
            if self._mine is None:
                raise PartitionLocked(
                    f"{self.partition}: this run does not hold its lock", table=self.table
                )
            now, sent = self._clock(), self._monotonic()
            mine = dataclasses.replace(
                self._mine, lease_until=now + timedelta(seconds=self.lease_s)
            )
            etag = self._store.replace(self.path, mine.to_json(), self._etag)
            if etag is None:
                found = self._store.read(self.path)
                try:
                    holder = Holder.from_json(found[0], self._where) if found else None
                    who = holder.describe() if holder else "no run"
                except FormatError:
                    holder, who = None, "a run of a later release"
                if found is None or holder is None or holder.token != self._token:
                    self._lost = (
                        f"the lock of {self.partition} was lost after this run's "
                        f"lease ran out: {who} holds it now"
                    )
                    raise PartitionLocked(self._lost, table=self.table)
                mine, etag = holder, found[1]  # our write landed, its reply was lost
            self._mine, self._etag, self._renewed = mine, etag, sent

    def release(self) -> None:
        """Stop renewing and delete the lock if it is still ours; never raises (a lock that
        cannot be deleted expires with its lease)."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
            self._heartbeat = None
        with self._mutex:
            if self._mine is None or self._lost is not None:
                return
            try:
                self._store.delete(self.path, self._etag)
            except ExtractError as exc:
                logger.warning(
                    "%s: could not release the lock of %s, it expires at %s: %s",
                    self.table,
                    self.partition,
                    _iso(self._mine.lease_until),
                    exc,
                )
            self._mine = None

    def _hold(self, mine: Holder, etag: str, sent: float) -> bool:
        self._mine, self._etag, self._renewed, self._lost = mine, etag, sent, None
        self.blocker = None
        return True

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_s / 5):
            try:
                self.renew()
            except PartitionLocked as exc:
                logger.error("%s: %s", self.table, exc)
                return
            except ExtractError as exc:  # transient: the next beat tries again
                logger.warning(
                    "%s: could not renew the lock of %s: %s", self.table, self.partition, exc
                )

    def _busy(self, waited: float | None) -> str:
        who = self.blocker.describe() if self.blocker else "another run"
        text = f"{self.partition} is being written by {who}"
        return text if waited is None else f"{text}; waited {waited:g} s (RADAR_LOCK_WAIT_S)"


def _etag(body: str) -> str:
    return hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest()


class _LocalStore:
    def __init__(self, destination: Destination) -> None:
        self.destination = destination

    @contextlib.contextmanager
    def _guarded(self, path: str) -> Iterator[None]:
        directory = os.path.dirname(path)
        os.makedirs(directory, exist_ok=True)
        fd = os.open(directory, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held for microseconds; dropped if we die
            yield
        finally:
            os.close(fd)

    def _read(self, path: str) -> tuple[str, str] | None:
        try:
            with open(path, encoding="utf-8") as handle:
                body = handle.read()
        except FileNotFoundError:
            return None
        return body, _etag(body)

    def _write_temp(self, path: str, body: str) -> str:
        temp = f"{path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(body)
        return temp

    def create(self, path: str, body: str) -> str | None:
        with self.destination.errors(Step.LOCK, path), self._guarded(path):
            temp = self._write_temp(path, body)
            try:
                os.link(temp, path)
            except FileExistsError:
                return None
            finally:
                os.unlink(temp)
            return _etag(body)

    def read(self, path: str) -> tuple[str, str] | None:
        with self.destination.errors(Step.LOCK, path):
            return self._read(path)

    def replace(self, path: str, body: str, etag: str) -> str | None:
        with self.destination.errors(Step.LOCK, path), self._guarded(path):
            current = self._read(path)
            if current is None or current[1] != etag:
                return None
            os.replace(self._write_temp(path, body), path)
            return _etag(body)

    def delete(self, path: str, etag: str) -> bool:
        with self.destination.errors(Step.LOCK, path), self._guarded(path):
            current = self._read(path)
            if current is None or current[1] != etag:
                return False
            os.unlink(path)
            return True


# The S3 error codes that mean "the condition did not hold" (409: a concurrent conditional
# write to the same key won; 404 NoSuchKey: If-Match on a key that is gone).
_NOT_MATCHED = {"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey"}


class _S3Store:
    def __init__(self, destination: Destination) -> None:
        self.destination = destination
        self.fs: Any = destination.fs

    def _put(self, path: str, body: str, **condition: str) -> str | None:
        bucket, key = path.split("/", 1)
        with self.destination.errors(Step.LOCK, path):
            try:
                response = self.fs.call_s3(
                    "put_object",
                    Bucket=bucket,
                    Key=key,
                    Body=body.encode("utf-8"),
                    ContentType="application/json",
                    **condition,
                )
            except OSError as exc:
                if isinstance(exc, FileExistsError) or error_code(exc) in _NOT_MATCHED:
                    return None
                raise
            return str(response["ETag"])

    def create(self, path: str, body: str) -> str | None:
        return self._put(path, body, IfNoneMatch="*")

    def replace(self, path: str, body: str, etag: str) -> str | None:
        return self._put(path, body, IfMatch=etag)

    def read(self, path: str) -> tuple[str, str] | None:
        from fsspec.asyn import sync

        bucket, key = path.split("/", 1)

        async def get() -> tuple[str, str]:
            # One GET for body and ETag: a HEAD after it could see a newer version.
            response = await self.fs._call_s3("get_object", Bucket=bucket, Key=key)
            stream = response["Body"]
            try:
                data = await stream.read()
            finally:
                stream.close()
            return bytes(data).decode("utf-8", "replace"), str(response["ETag"])

        with self.destination.errors(Step.LOCK, path):
            try:
                found: tuple[str, str] = sync(self.fs.loop, get)
            except FileNotFoundError:
                return None
            return found

    def delete(self, path: str, etag: str) -> bool:
        bucket, key = path.split("/", 1)
        with self.destination.errors(Step.LOCK, path):
            try:
                self.fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch=etag)
            except OSError as exc:
                if isinstance(exc, FileNotFoundError) or error_code(exc) in _NOT_MATCHED:
                    return False
                if error_code(exc) != "NotImplemented":
                    raise
                # A store without conditional deletes: the lease is still ours, so no other
                # run can have replaced the lock since we read it.
                found = self.read(path)
                if found is None or found[1] != etag:
                    return False
                self.fs.call_s3("delete_object", Bucket=bucket, Key=key)
            return True
