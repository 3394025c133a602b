"""A run's outcome as one value: stopped before any table, finished, or failed at its end.

A run that fails after its tables ran (removing staging, writing the run report) has still
published them: it is reported as such, exit 1, never as a run that touched nothing. Its
summary is rendered by extractor/run/summary.py (`outcome_lines`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from extractor.errors import EXIT_FAILED, EXIT_OK, ExtractError
from extractor.run.report import RunReport


@dataclass(frozen=True)
class LateFailure:
    """What failed after the tables ran; the tables it published stay published."""

    what: str  # "run report not written", "staging not removed"
    error: ExtractError
    report_written: bool

    def line(self) -> str:
        return f"{self.what}: {self.error}"


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended, with its date (fixed at its start) whatever happened."""

    date: date
    report: RunReport | None = None  # None: the run stopped before any table ran
    stopped: ExtractError | None = None  # why it stopped before any table ran
    late: LateFailure | None = None

    def __post_init__(self) -> None:
        if (self.report is None) == (self.stopped is None):
            raise ValueError("a run has either a report or the error that stopped it")

    @property
    def ok(self) -> bool:
        return self.report is not None and self.report.ok and self.late is None

    @property
    def published(self) -> list[str]:
        tables = self.report.tables if self.report is not None else []
        return sorted(t.table for t in tables if t.status == "published")

    @property
    def exit_code(self) -> int:
        if self.stopped is not None:
            return self.stopped.exit_code
        return EXIT_OK if self.ok else EXIT_FAILED

    @property
    def status(self) -> str:
        """The run's status in its log event: success or failed."""
        return "success" if self.ok else "failed"
