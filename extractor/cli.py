"""The `radar-extract` command: parse, build settings, call the library, map errors to exit codes.

Exit codes: 0 every selected table published; 1 at least one table failed (the others
are published); 2 usage or configuration error (nothing touched); 3 the source or the
destination cannot be reached or refuses the credentials (nothing touched).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from extractor import __version__
from extractor.errors import EXIT_FAILED, EXIT_OK, ExtractError
from extractor.logs import ProgressPrinter, configure_logging, logging_configured, mask

logger = logging.getLogger("extractor.cli")
F = TypeVar("F", bound=Callable[..., Any])


def _common(func: F) -> F:
    """Options every command takes: configuration file and logging."""
    options = [
        click.option("--config", "config_file", type=click.Path(dir_okay=False),
                     help="TOML configuration file (overridden by RADAR_* variables and flags)."),
        click.option("--log-json", is_flag=True, help="Log JSON lines (for CloudWatch)."),
        click.option("-v", "--verbose", is_flag=True, help="Debug logging, with tracebacks."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _guarded(func: F) -> F:
    """One clear line and the documented exit code for every failure; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ExtractError as exc:
            _fail(f"radar-extract: error: {exc}")
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("radar-extract: interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:  # `radar-extract tables | head`: the reader left, not an error
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - nothing may flush to the pipe
            sys.exit(EXIT_OK)
        except Exception as exc:  # a bug of ours: still one line, traceback with -v
            _fail(f"radar-extract: internal error: {type(exc).__name__}: {str(exc)[:300]}")
            sys.exit(EXIT_FAILED)

    return wrapper  # type: ignore[return-value]


def _fail(line: str) -> None:
    """The failure's one line: through the log handlers once they exist (so the log file and
    JSON logs hold it too), else straight to stderr. The traceback only at debug level."""
    logger.debug("traceback", exc_info=True)
    if logging_configured():
        logger.error("%s", line)
    else:
        click.echo(mask(line), err=True)


def _settings(config_file: str | None, log_json: bool, verbose: bool, **flags: Any) -> Any:
    from extractor.config import load_settings

    settings = load_settings(config_file, overrides=flags)
    configure_logging(verbose=verbose, json_lines=log_json, log_file=settings.log_file,
                      secrets=[settings.mysql.password.reveal(),
                               settings.slack_webhook_url.reveal()])
    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="radar-extract")
def main() -> None:
    """Copy every table of a MySQL database to SNAPPY Parquet partitions, all or nothing."""


@main.command()
@click.option("--table", "tables", multiple=True, metavar="NAME",
              help="Extract only this table (repeatable).")
@click.option("--exclude", multiple=True, metavar="NAME", help="Skip this table (repeatable).")
@click.option("--date", "run_date", metavar="YYYY-MM-DD",
              help="Partition date cog_dt_ingestion=DATE (default: today, UTC).")
@click.option("--workers", type=int, help="Worker processes (default: CPU count).")
@click.option("--dest", help="Destination root: s3://bucket[/prefix] or a local path.")
@click.option("--report", "report_file", type=click.Path(dir_okay=False),
              help="Also write the JSON run report to this file.")
@click.option("--glue-crawler", metavar="NAME",
              help="Start this Glue crawler after a run where every table published.")
@_common
@_guarded
def extract(tables: tuple[str, ...], exclude: tuple[str, ...], run_date: str | None,
            workers: int | None, dest: str | None, report_file: str | None,
            glue_crawler: str | None, config_file: str | None, log_json: bool,
            verbose: bool) -> None:
    """Extract every base table (or the --table ones) into cog_dt_ingestion=DATE."""
    from extractor.runner import parse_date, run_extract

    parse_date(run_date)  # a bad date is a usage error before any I/O
    settings = _settings(config_file, log_json, verbose, workers=workers, dest=dest,
                         glue_crawler=glue_crawler)
    progress = ProgressPrinter(terminal=sys.stderr.isatty() and not log_json)
    try:
        report = run_extract(settings, tables=tables, exclude=exclude, run_date=run_date,
                             progress=progress,
                             on_result=lambda result: progress.done(result.table))
    except ExtractError as exc:  # stopped before its report: Slack must still hear of it
        from extractor.ops import after_stopped_run

        after_stopped_run(settings, parse_date(run_date), exc)
        raise
    if report_file:
        Path(report_file).write_text(report.to_json(), encoding="utf-8")
    if not log_json:  # JSON logs already carry the run's summary as one event
        for line in report.summary_lines():
            click.echo(line, err=True)
    if not getattr(report, "shard", None):  # a shard's follow-ups are the merge step's (#4)
        from extractor.ops import after_extract

        problem = after_extract(settings, report)  # crawler (on success), then Slack
        if problem is not None and report.ok:
            raise problem
    sys.exit(EXIT_OK if report.ok else EXIT_FAILED)


@main.command()
@click.option("--dest", help="Destination root: s3://bucket[/prefix] or a local path.")
@_common
@_guarded
def check(dest: str | None, config_file: str | None, log_json: bool, verbose: bool) -> None:
    """Preflight: MySQL reachable, tables readable, TLS in use or not, destination writable."""
    from extractor.preflight import run_checks

    settings = _settings(config_file, log_json, verbose, dest=dest)
    ok = True
    for check_result in run_checks(settings):
        ok = ok and check_result.ok
        mark = "FAIL" if not check_result.ok else "warn" if check_result.warning else "ok  "
        click.echo(f"{mark} {check_result.name}: {check_result.detail}")
    sys.exit(EXIT_OK if ok else EXIT_FAILED)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_common
@_guarded
def tables(as_json: bool, config_file: str | None, log_json: bool, verbose: bool) -> None:
    """Base tables with estimated rows and bytes (information_schema)."""
    from extractor.runner import discover

    settings = _settings(config_file, log_json, verbose)
    catalog = discover(settings)
    rows = [{"table": t.name, "estimated_rows": t.estimated_rows,
             "estimated_bytes": t.estimated_bytes} for t in catalog.tables]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max([len(t.name) for t in catalog.tables] + [5])
    click.echo(f"{'table':<{width}}  {'est. rows':>14}  {'est. bytes':>14}")
    for t in catalog.tables:
        click.echo(f"{t.name:<{width}}  {t.estimated_rows:>14,}  {t.estimated_bytes:>14,}")


@main.command()
@click.option("--date", "run_date", metavar="YYYY-MM-DD", required=True,
              help="The date whose report (merged over its shards) is sent.")
@_common
@_guarded
def notify(run_date: str, config_file: str | None, log_json: bool, verbose: bool) -> None:
    """Post the Slack message of one date: its run report and its stored validation."""
    from extractor.runner import parse_date

    day = parse_date(run_date)
    settings = _settings(config_file, log_json, verbose)
    if not settings.slack_webhook_url:
        click.echo("no Slack webhook configured (RADAR_SLACK_WEBHOOK_URL): nothing sent")
        sys.exit(EXIT_OK)
    from extractor.ops import notify_date

    sent = notify_date(settings, day)
    click.echo(f"Slack message of {day} " + ("sent" if sent else "NOT sent (see the warning)"))
    sys.exit(EXIT_OK)  # Slack being down is logged, never a failure


@main.command()
@click.option("--date", "run_date", metavar="YYYY-MM-DD", required=True,
              help="The date whose report (merged over its shards) must be a success.")
@click.option("--glue-crawler", metavar="NAME", help="Crawler name (or RADAR_GLUE_CRAWLER).")
@_common
@_guarded
def crawl(run_date: str, glue_crawler: str | None, config_file: str | None, log_json: bool,
          verbose: bool) -> None:
    """Start the Glue crawler if the run of the date published every table."""
    from extractor.errors import UsageError
    from extractor.runner import parse_date

    day = parse_date(run_date)
    settings = _settings(config_file, log_json, verbose, glue_crawler=glue_crawler)
    if not settings.glue_crawler:
        raise UsageError("no crawler: give --glue-crawler NAME or set RADAR_GLUE_CRAWLER")
    from extractor.ops import crawl_date

    state = crawl_date(settings, day, settings.glue_crawler)
    click.echo(f"glue crawler {settings.glue_crawler!r}: {state}")
