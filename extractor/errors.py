"""The exception tree of radar-extract, with exit codes in one place.

    ExtractError                    exit 1  a table or the run failed
    ├── UsageError                  exit 2  bad flag, bad date, unknown table (nothing touched)
    │   └── ConfigError             exit 2  invalid configuration, every problem listed at once
    ├── SourceError                 exit 1  MySQL failed while reading one table
    │   ├── SourceUnavailable       exit 3  server unreachable, or refuses the credentials
    │   └── UnsupportedColumn       exit 1  a column type outside the type contract
    ├── DestinationError            exit 1  writing, uploading or publishing failed
    │   ├── DestinationUnavailable  exit 3  destination unreachable, unwritable, or refusing
    │   └── PartitionLocked         exit 1  another run writes this table and date (step `lock`)
    ├── VerificationError           exit 1  rows read differ from rows in the Parquet footers
    ├── SchemaDrift                 exit 1  the table drifted from its stored schema, policy `fail`
    ├── FormatError                 exit 1  a file we wrote is damaged, or of a format too new
    ├── TableTimeout                exit 1  a table ran past RADAR_TABLE_TIMEOUT_S (step `timeout`)
    └── GlueError                   exit 1  the Glue crawler could not be started (e.g. missing)
        └── GlueUnavailable         exit 3  Glue unreachable, or refusing the credentials

`transient` marks the errors a retry may cure (lost connection, throttling), so that
retries can be decided on the type, never on string matching. Every error stays
picklable, since it crosses the boundary of a worker process, and carries its context
(`table`, and `step`, one of the closed set `Step`) so a report line can say where it
happened. Ctrl-C exits 130.
"""

from __future__ import annotations

from enum import StrEnum

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


class Step(StrEnum):
    """Where a table or the run failed: the `error_step` of the run report, whose strings
    these values are (a report's readers match on them)."""

    CONNECT = "connect"  # the control connection to MySQL
    DISCOVER = "discover"  # information_schema, or a planned table no longer there
    DRIFT = "drift"  # the drift policy failed the table: never read
    PLAN = "plan"  # a column's read plan, or the saved shard plan
    RECOVER = "recover"  # finishing a publish an earlier run left half-done
    LOCK = "lock"  # the partition's writer lock
    COMPAT = "compat"  # the compatible (Airbyte-shaped) write and its output schema
    READ = "read"
    CONVERT = "convert"
    TIMEOUT = "timeout"  # the table's time limit: never retried
    UPLOAD = "upload"
    VERIFY = "verify"
    PUBLISH = "publish"
    LIST = "list"
    WRITE = "write"
    REMOVE = "remove"
    CLEANUP = "cleanup"  # removing staging
    PROBE = "probe"  # the write-and-delete proof that the destination works
    EXTRACT = "extract"  # a bug of ours during one table
    WORKER = "worker"  # the worker process died
    VALIDATE = "validate"
    COUNT = "count"
    MERGE = "merge"
    GLUE = "glue"
    CATALOG = "catalog"  # registering partitions in the Glue catalog
    INSPECT = "inspect"  # `compat inspect` reading a partition we did not write
    MIGRATE = "migrate"  # `migrate` reading an old partition, or planning its conversion


class ExtractError(Exception):
    """Root of every error radar-extract raises on purpose."""

    exit_code = EXIT_FAILED

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        step: Step | None = None,
        transient: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.table = table
        self.step = step
        self.transient = transient

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments do not survive the default pickling of exceptions.
        return (
            _rebuild,
            (type(self), self.message, self.table, self.step, self.transient),
        )

    def __str__(self) -> str:
        return self.message


def _rebuild(
    cls: type[ExtractError], message: str, table: str | None, step: Step | None, transient: bool
) -> ExtractError:
    return cls(message, table=table, step=step, transient=transient)


class UsageError(ExtractError):
    """The command line asks for something impossible; nothing was touched."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """The configuration is invalid; `problems` lists every one found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration: " + "; ".join(self.problems))

    def __reduce__(self) -> tuple[object, ...]:
        return (ConfigError, (self.problems,))


class SourceError(ExtractError):
    """MySQL failed while serving one table."""


class SourceUnavailable(SourceError):
    """The MySQL server cannot be reached or refuses the credentials."""

    exit_code = EXIT_UNAVAILABLE


class UnsupportedColumn(SourceError):
    """A column type that the type contract does not cover: never passed through silently."""


class DestinationError(ExtractError):
    """Writing, uploading or publishing Parquet files failed."""


class DestinationUnavailable(DestinationError):
    """The destination cannot be reached, written, or refuses the credentials."""

    exit_code = EXIT_UNAVAILABLE


class PartitionLocked(DestinationError):
    """Another run holds the lock of this table and date (extractor/sink/lock.py), or took it
    over from this one: the table is not read or not published, and never retried, since
    the wait for the holder has already been spent (RADAR_LOCK_WAIT_S)."""

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        step: Step | None = Step.LOCK,
        transient: bool = False,
    ) -> None:
        super().__init__(message, table=table, step=step or Step.LOCK, transient=False)


class VerificationError(ExtractError):
    """The files written do not hold exactly the rows that were read."""


class SchemaDrift(ExtractError):
    """The live table differs from its stored schema in a way the policy fails (step `drift`):
    the table is not read and its destination is not touched."""

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        step: Step | None = Step.DRIFT,
        transient: bool = False,
    ) -> None:
        super().__init__(message, table=table, step=step or Step.DRIFT, transient=False)


class FormatError(ExtractError):
    """A file radar-extract wrote (manifest, journal, plan, report, validation, stored schema)
    cannot be read: it is damaged, or a later release wrote it in a format this one does not
    know. The message is one line naming the file."""


class TableTimeout(ExtractError):
    """A table ran past its time limit: its read was stopped and nothing was published.

    Never transient: a table that outgrew its limit (or a server that slowed down) would
    hit the same limit again, so a retry would only hold a worker for another full period.
    """

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        step: Step | None = Step.TIMEOUT,
        transient: bool = False,
    ) -> None:
        super().__init__(message, table=table, step=step or Step.TIMEOUT, transient=False)


class GlueError(ExtractError):
    """The Glue crawler could not be started; the data itself is published."""


class GlueUnavailable(GlueError):
    """Glue cannot be reached, or refuses the credentials."""

    exit_code = EXIT_UNAVAILABLE
