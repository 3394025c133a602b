"""The circuit breaker: stop starting tables once the source or the destination looks down.

Rule: after `threshold` consecutive table results (in the order they finish, retries
already spent) that failed with a transient error of the same kind, the breaker opens;
the run starts no new table, lets the running ones finish, and reports every table it
did not start as `not_run`.

"Same kind" is the pair (error_type, error_step), e.g. SourceError at read or
DestinationError at upload. Not the MySQL error number: connectorx's I/O errors carry
none, and one outage shows several (2013 on the read in flight, 2003 on the next connect,
1927 or 1317 when connections are killed), which must all count as one incident. A
success, a permanent failure, a timeout or a transient failure of another kind restarts
the count: they show that the fault is not the same, or not general.
"""

from __future__ import annotations

from extractor.errors import Step
from extractor.run.report import TableResult


class CircuitBreaker:
    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.reason: str | None = None  # set once open, for the report and the log
        self._kind: tuple[str | None, Step | None] | None = None
        self._count = 0

    @property
    def open(self) -> bool:
        return self.reason is not None

    def record(self, result: TableResult) -> None:
        """Count a finished table; opens the breaker on the threshold-th failure in a row."""
        if self.open or result.status not in ("published", "failed"):
            return
        if result.status == "failed" and result.transient and result.error_step != Step.TIMEOUT:
            kind = (result.error_type, result.error_step)
            self._count = self._count + 1 if kind == self._kind else 1
            self._kind = kind
            if self._count >= self.threshold:
                self.reason = (
                    f"circuit breaker opened after {self._count} consecutive tables "
                    f"failed with transient {kind[0]} at {kind[1]}"
                )
        else:
            self._kind, self._count = None, 0

    def not_run(self, table: str) -> TableResult:
        """The result of a table the run did not start because the breaker is open."""
        return TableResult(
            table=table, status="not_run", error=self.reason, error_type="CircuitBreakerOpen"
        )
