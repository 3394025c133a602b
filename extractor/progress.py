"""Live progress of a run on the terminal or in the log (the CLI's, never the library's)."""

from __future__ import annotations

import logging
import shutil
import sys
import threading
import time


class ProgressPrinter:
    """Live progress of the running tables: a rewritten status line on a terminal, else a
    log line per table every `every` seconds. Rate and ETA come from the row estimate."""

    def __init__(self, *, terminal: bool, every: float = 10.0) -> None:
        self.terminal = terminal
        self.every = 0.25 if terminal else every
        self._lock = threading.Lock()
        self._tables: dict[str, tuple[int, int, float]] = {}  # rows, estimate, start
        self._last: dict[str, float] = {}
        self._log = logging.getLogger("extractor.progress")

    def __call__(self, table: str, rows: int, estimated: int) -> None:
        now = time.monotonic()
        with self._lock:
            start = self._tables.get(table, (0, 0, now))[2]
            self._tables[table] = (rows, estimated, start)
            key = "" if self.terminal else table
            if now - self._last.setdefault(key, start) < self.every:
                return
            self._last[key] = now
            if self.terminal:
                line = " | ".join(self._describe(t, now) for t in sorted(self._tables))
                sys.stderr.write("\r\x1b[2K" + line[: shutil.get_terminal_size().columns - 1])
                sys.stderr.flush()
            else:
                self._log.info("%s", self._describe(table, now))

    def done(self, table: str) -> None:
        with self._lock:
            self._tables.pop(table, None)
            if self.terminal:
                sys.stderr.write("\r\x1b[2K")
                sys.stderr.flush()

    def _describe(self, table: str, now: float) -> str:
        rows, estimated, start = self._tables[table]
        share = f" ({min(rows / estimated, 1):.0%})" if estimated else ""
        if now - start < 0.5:  # too early for a meaningful rate
            return f"{table}: {rows:,} rows{share}"
        rate = rows / (now - start)
        eta = f", ETA {(estimated - rows) / rate:.0f} s" if estimated > rows and rate else ""
        return f"{table}: {rows:,} rows{share}, {rate:,.0f}/s{eta}"
