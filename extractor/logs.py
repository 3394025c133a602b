"""Logging setup (called by the CLI and by worker processes, never by the library) and progress.

Human lines on stderr, or JSON lines for CloudWatch; optionally one rotating file shared
safely by all worker processes (concurrent-log-handler). A filter masks every
registered secret in every record, whatever code logged it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

_SECRETS: set[str] = set()
_CONFIG: dict[str, Any] = {"level": logging.INFO, "json": False, "file": None, "secrets": []}


def register_secret(value: str | None) -> None:
    if value and len(value) >= 3:
        _SECRETS.add(value)


def mask(text: str) -> str:
    for secret in _SECRETS:
        text = text.replace(secret, "***")
    return text


class _MaskSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            record.msg = mask(record.getMessage())
            record.args = None
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(getattr(record, "fields", {}))
        if record.exc_info:
            data["traceback"] = mask(self.formatException(record.exc_info))
        return json.dumps(data, default=str)


def configure_logging(
    *, verbose: bool = False, json_lines: bool = False, log_file: str | None = None,
    secrets: list[str] | None = None,
) -> None:
    for secret in secrets or []:
        register_secret(secret)
    level = logging.DEBUG if verbose else logging.INFO
    _CONFIG.update(level=level, json=json_lines, file=log_file, secrets=sorted(_SECRETS))
    human = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    formatter = _JsonFormatter() if json_lines else human
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        from concurrent_log_handler import ConcurrentRotatingFileHandler

        file_handler = ConcurrentRotatingFileHandler(
            log_file, maxBytes=50 * 1024 * 1024, backupCount=5, encoding="utf-8"
        )
        handlers.append(file_handler)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(_MaskSecrets())
        root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("extractor").setLevel(level)


def worker_logging_config() -> dict[str, Any]:
    return dict(_CONFIG)


def worker_initializer(config: dict[str, Any]) -> None:
    configure_logging(
        verbose=config["level"] <= logging.DEBUG, json_lines=config["json"],
        log_file=config["file"], secrets=config["secrets"],
    )


class ProgressPrinter:
    """Live progress for one table at a time: a rewritten line on a terminal, else a log
    line every `every` seconds."""

    def __init__(self, *, terminal: bool, every: float = 10.0) -> None:
        self.terminal = terminal
        self.every = 0.25 if terminal else every
        self._last = 0.0
        self._started: dict[str, float] = {}
        self._log = logging.getLogger("extractor.progress")

    def __call__(self, table: str, rows: int, estimated: int) -> None:
        now = time.monotonic()
        start = self._started.setdefault(table, now)
        if now - self._last < self.every:
            return
        self._last = now
        rate = rows / max(now - start, 1e-6)
        eta = f", ETA {max(estimated - rows, 0) / rate:.0f} s" if estimated > rows and rate else ""
        line = f"{table}: {rows:,} rows ({rate:,.0f}/s{eta})"
        if self.terminal:
            sys.stderr.write("\r\x1b[2K" + line)
            sys.stderr.flush()
        else:
            self._log.info("%s", line)

    def clear(self) -> None:
        if self.terminal:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()
