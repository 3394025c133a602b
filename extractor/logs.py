"""Logging setup (called by the CLI and by worker processes, never by the library).

Human lines on stderr, or JSON lines for CloudWatch; optionally one rotating file shared
safely by all worker processes (concurrent-log-handler). A filter masks every
registered secret in every record, whatever code logged it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from extractor.masking import mask, masking_active, register_secret, registered_secrets

_CONFIG: dict[str, Any] = {"level": logging.INFO, "json": False, "file": None, "secrets": []}


class _MaskSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if masking_active():
            record.msg = mask(record.getMessage())
            record.args = None
        return True


class _MaskingFormatter(logging.Formatter):
    """Masks the whole formatted record: tracebacks (with -v) are formatted after filters run."""

    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))


class _TerminalHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Clears the live progress line before a log line is written over it."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream.write("\r\x1b[2K")
        super().emit(record)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        data.update(getattr(record, "fields", {}))
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        # Masked value by value, before encoding: JSON escaping could hide a secret's bytes.
        return json.dumps(
            {k: mask(v) if isinstance(v, str) else v for k, v in data.items()}, default=str
        )


_native: dict[str, int] = {}  # "real": the duplicate of the original fd 2, "pipe": the pipe


def capture_native_stderr() -> None:
    """Route what native libraries write straight to file descriptor 2 into the log.

    connectorx reports a dropped or killed query as a Rust panic, whose hook prints the
    panic (and, with RUST_BACKTRACE, a backtrace) on fd 2 before Python sees an exception.
    Python's own stderr moves to a duplicate of the real fd 2; fd 2 becomes a pipe whose
    lines are logged at debug level. So a failure stays one clear line on the terminal.
    """
    try:
        if _native or sys.stderr.fileno() != 2:
            return
    except (AttributeError, OSError, ValueError):  # a test runner's stream: leave it alone
        return
    sys.stderr.flush()
    real = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    _native.update(real=real, pipe=write_end)
    sys.stderr = open(real, "w", buffering=1, encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
    native = logging.getLogger("extractor.native")

    def relay() -> None:
        with open(read_end, encoding="utf-8", errors="replace") as pipe:
            for line in pipe:
                if line.strip():
                    native.debug("native stderr: %s", line.rstrip())

    threading.Thread(target=relay, name="native-stderr", daemon=True).start()


@contextlib.contextmanager
def real_stderr_for_children() -> Iterator[None]:
    """While starting worker processes, give them the real stderr as their fd 2 (they
    capture their own native output); the pipe is put back afterwards."""
    if not _native:
        yield
        return
    sys.stderr.flush()
    os.dup2(_native["real"], 2)
    try:
        yield
    finally:
        os.dup2(_native["pipe"], 2)


def configure_logging(
    *,
    verbose: bool = False,
    json_lines: bool = False,
    log_file: str | None = None,
    secrets: list[str] | None = None,
) -> None:
    for secret in secrets or []:
        register_secret(secret)
    capture_native_stderr()
    level = logging.DEBUG if verbose else logging.INFO
    _CONFIG.update(
        level=level, json=json_lines, file=log_file, secrets=registered_secrets(), configured=True
    )
    human = _MaskingFormatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    formatter = _JsonFormatter() if json_lines else human
    terminal = sys.stderr.isatty() and not json_lines
    stream = _TerminalHandler(sys.stderr) if terminal else logging.StreamHandler(sys.stderr)
    handlers: list[logging.Handler] = [stream]
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


def logging_configured() -> bool:
    return bool(_CONFIG.get("configured"))


def worker_logging_config() -> dict[str, Any]:
    return dict(_CONFIG)


def worker_initializer(config: dict[str, Any]) -> None:
    configure_logging(
        verbose=config["level"] <= logging.DEBUG,
        json_lines=config["json"],
        log_file=config["file"],
        secrets=config["secrets"],
    )
