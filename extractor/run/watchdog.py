"""The per-table time limit, enforced from a watchdog process that kills the table's read.

Why a process: connectorx holds the GIL while it waits for the server's next batch (a
`SELECT SLEEP(2)` starves every other Python thread for the full 2 s; a 50,000-row batch
from a slow server, for as long as the server takes). A watchdog thread would wake up only
when the read moves on, which is never when the read hangs. So each process that runs tables
(the main process inline, every pool worker) starts one small spawned watchdog process,
once, and tells it over a pipe when a table starts, which query tag each attempt uses,
and when the table ends. At the deadline the watchdog opens its own control connection
and issues `KILL QUERY` for every SELECT whose comment carries the attempt's random token
(information_schema.PROCESSLIST; one per stream of a table read on several), every 0.2 s
until the table ends; the server then ends the statement with error 1317 and the reader
raises promptly. The pipeline's checkpoint (`check`) covers the steps after the read and
needs no watchdog: the deadline is a number this process can compare with its own clock.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any

from extractor.config import MySQLSettings
from extractor.errors import TableTimeout

logger = logging.getLogger(__name__)

_KILL_EVERY_S = 0.2  # until the table ends: the SELECT may not have started yet
_SWEEP_WAIT_S = 15.0  # a connect (10 s timeout) and one KILL pass


class _Watchdog:
    """This process's watchdog process and the pipe to it; started on first use."""

    _current: _Watchdog | None = None
    _generation = 0

    def __init__(self) -> None:
        from extractor.logs import real_stderr_for_children, worker_logging_config

        ctx = multiprocessing.get_context("spawn")  # never fork a process with live threads
        # A socket pair, no shared memory: a semaphore would start multiprocessing's
        # resource tracker, one more interpreter to boot next to the first read.
        self.pipe, child_end = ctx.Pipe(duplex=True)
        self.swept = 0  # generation of the last table the watchdog swept after its deadline
        self.process = ctx.Process(
            target=_serve,
            name="radar-extract-watchdog",
            daemon=True,
            args=(child_end, worker_logging_config()),
        )
        with real_stderr_for_children():  # its log lines go to the terminal, not our pipe
            self.process.start()
        child_end.close()  # the child's copy stays open; ours would hide the child's exit

    @classmethod
    def get(cls) -> _Watchdog:
        if cls._current is None or not cls._current.process.is_alive():
            cls._current = cls()
        return cls._current

    @classmethod
    def next_generation(cls) -> int:
        cls._generation += 1
        return cls._generation

    def send(self, *message: object) -> None:
        try:
            self.pipe.send(message)
        except OSError:  # the watchdog died: the checkpoint still enforces the limit
            logger.warning("the table watchdog process is gone; reads cannot be killed")

    def wait_swept(self, generation: int, seconds: float) -> None:
        """Wait until the watchdog has swept this table once after its deadline."""
        until = time.monotonic() + seconds
        while self.swept < generation and (left := until - time.monotonic()) > 0:
            try:
                if self.pipe.poll(min(left, 0.1)):
                    self.swept = max(self.swept, int(self.pipe.recv()[1]))
                elif not self.process.is_alive():
                    return
            except (EOFError, OSError):
                return


def start_watchdog() -> None:
    """Start this process's watchdog now, while nothing is being read (else on first use)."""
    _Watchdog.get()


class TableDeadline:
    """The time limit of one table, across all its attempts and the waits between them."""

    def __init__(self, mysql: MySQLSettings, table: str, seconds: float) -> None:
        self.mysql = mysql
        self.table = table
        self.seconds = seconds
        self._generation = 0
        self._deadline = 0.0
        self._watchdog: _Watchdog | None = None

    def __enter__(self) -> TableDeadline:
        self._watchdog = _Watchdog.get()
        self._generation = _Watchdog.next_generation()
        # CLOCK_MONOTONIC is one clock for every process of the host, so the watchdog can
        # use this deadline as is, however long it took to start.
        self._deadline = time.monotonic() + self.seconds
        self._watchdog.send(
            "start", self._generation, self.mysql, self.table, self._deadline, self.seconds
        )
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        watchdog = self._watchdog
        if watchdog is None:
            return
        if self.expired:
            # The checkpoint may have ended the attempt before the KILL landed: without one
            # full pass, the server could go on computing and sending the abandoned read.
            watchdog.wait_swept(self._generation, _SWEEP_WAIT_S)
        watchdog.send("end", self._generation)

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self._deadline

    def attempt_tag(self, run_id: str, attempt: int) -> str:
        """The SELECT's comment for a new attempt; its random token is what gets killed.

        The reader keeps only [A-Za-z0-9_.:=-] of a tag, so the token is hex: a table name
        that the reader rewrites (spaces, accents) still finds its own query, and never
        another table's.
        """
        token = f"q={uuid.uuid4().hex}"
        if self._watchdog is not None:
            self._watchdog.send("token", self._generation, token)
        return f"radar-extract run={run_id} table={self.table} attempt={attempt} {token}"

    def message(self) -> str:
        return (
            f"still running after {self.seconds:g} s (RADAR_TABLE_TIMEOUT_S): "
            "its read was stopped and nothing was published"
        )

    def check(self) -> None:
        """The pipeline's checkpoint: raises once the time is up."""
        if self.expired:
            raise TableTimeout(self.message(), table=self.table)

    def wait(self, seconds: float, stop: Callable[[], bool]) -> bool:
        """Sleep between attempts; False if the time ran out or `stop` turned true first."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if stop() or self.expired:
                return False
            time.sleep(min(left, 0.05))
        return not stop() and not self.expired


# -- the watchdog process -------------------------------------------------------------------
class _Table:
    """What the watchdog process knows of the table being run."""

    def __init__(
        self, generation: int, mysql: MySQLSettings, table: str, deadline: float, seconds: float
    ) -> None:
        self.generation, self.mysql, self.table = generation, mysql, table
        self.deadline, self.seconds = deadline, seconds
        self.token: str | None = None
        self.expired = False
        self.swept = False
        self.warned = False


def _serve(pipe: Any, log_config: dict[str, Any]) -> None:
    """Runs in the watchdog process until its parent closes the pipe (or exits)."""
    from extractor.logs import worker_initializer

    # Ctrl-C reaches the whole process group: the parent handles it, and this process ends
    # when the parent's end of the pipe closes (or with the parent, being a daemon).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    worker_initializer(log_config)
    current: _Table | None = None
    conn: Any = None
    while True:
        if current is None:
            timeout: float | None = None
        elif current.expired:
            timeout = _KILL_EVERY_S
        else:
            timeout = max(current.deadline - time.monotonic(), 0.0)
        try:
            if pipe.poll(timeout):
                message = pipe.recv()
                current, conn = _handle(message, current, conn)
                continue
        except (EOFError, OSError):
            break  # the process that runs tables has ended
        if current is not None and time.monotonic() >= current.deadline:
            if not current.expired:
                current.expired = True
                logger.warning(
                    "%s: %g s time limit reached, stopping its read", current.table, current.seconds
                )
            conn = _sweep(current, conn)
            if not current.swept:  # once per table: the parent reads it only when it waits
                current.swept = True
                try:
                    pipe.send(("swept", current.generation))
                except OSError:
                    break
    _close(conn)


def _handle(
    message: tuple[Any, ...], current: _Table | None, conn: Any
) -> tuple[_Table | None, Any]:
    kind, generation = message[0], message[1]
    if kind == "start":
        _close(conn)
        return _Table(generation, *message[2:6]), None
    if current is None or current.generation != generation:
        return current, conn  # a message about a table that has already ended
    if kind == "token":
        current.token = message[2]
        return current, conn
    _close(conn)  # "end"
    return None, None


def _sweep(table: _Table, conn: Any) -> Any:
    """KILL QUERY every statement carrying the current token; returns the connection."""
    from extractor.source.connection import connect_kwargs, scrub

    if table.token is None:
        return conn
    try:
        if conn is None:
            import pymysql

            conn = pymysql.connect(**connect_kwargs(table.mysql), autocommit=True)
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT ID FROM information_schema.PROCESSLIST"
                " WHERE ID <> CONNECTION_ID() AND LOCATE(%s, INFO) > 0",
                (table.token,),
            )
            for (process_id,) in cursor.fetchall():
                try:
                    cursor.execute(f"KILL QUERY {int(process_id)}")
                    logger.info("%s: killed query %s (table timeout)", table.table, process_id)
                except Exception as exc:  # it ended meanwhile (1094 unknown thread)
                    logger.debug("%s: KILL QUERY %s: %s", table.table, process_id, exc)
        return conn
    except Exception as exc:  # the read fails on its own, or at its next checkpoint
        if not table.warned:  # once per table, though it is tried again every 0.2 s
            table.warned = True
            logger.warning(
                "%s: could not stop the read: %s",
                table.table,
                scrub(f"{type(exc).__name__}: {exc}", table.mysql),
            )
        _close(conn)
        return None


def _close(conn: Any) -> None:
    if conn is not None:
        try:
            conn.close()
        except Exception:  # already broken: nothing to release
            logger.debug("closing the watchdog connection failed", exc_info=True)
