"""The `radar-extract` command: parse, build settings, call the library, map errors to exit codes.

Exit codes: 0 every selected table published; 1 at least one table failed (the others
are published), or the run failed at its end after publishing (its report, its staging);
2 usage or configuration error (nothing touched); 3 the source or the destination cannot
be reached or refuses the credentials before any table ran (nothing touched). Values are
parsed by the click types of `cli_options`, once, before any I/O.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from extractor import __version__
from extractor.cli_options import (
    SHARD,
    SHARD_COUNT,
    STREAMS,
    common_options,
    date_option,
    date_range_options,
    dest_option,
    exclude_option,
    glue_crawler_option,
    json_option,
    output_option,
    required_table_option,
    table_option,
)
from extractor.compat_policy import MODES
from extractor.drift_policy import ACTIONS
from extractor.errors import EXIT_FAILED, EXIT_OK, ExtractError
from extractor.logs import configure_logging, logging_configured
from extractor.masking import mask
from extractor.progress import ProgressPrinter
from extractor.streams_policy import Streams

if TYPE_CHECKING:
    from extractor.run.shards import Shard

logger = logging.getLogger("extractor.cli")
F = TypeVar("F", bound=Callable[..., Any])


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
    configure_logging(
        verbose=verbose,
        json_lines=log_json,
        log_file=settings.log_file,
        secrets=[settings.mysql.password.reveal(), settings.slack_webhook_url.reveal()],
    )
    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="radar-extract")
def main() -> None:
    """Copy every table of a MySQL database to SNAPPY Parquet partitions, all or nothing."""


@main.command()
@table_option
@exclude_option
@date_option(required=False)
@click.option("--workers", type=int, help="Worker processes (default: CPU count).")
@dest_option
@click.option(
    "--report",
    "report_file",
    type=click.Path(dir_okay=False),
    help="Also write the JSON run report to this file.",
)
@click.option(
    "--shard",
    type=SHARD,
    metavar="I/N",
    help="Run only group I of the plan for N shards (the saved plan of DATE if any).",
)
@click.option(
    "--on-drift",
    type=click.Choice(ACTIONS),
    help="Action for every schema-drift class of every table (overrides the "
    "drift policy, per-table overrides included).",
)
@glue_crawler_option
@click.option(
    "--resume",
    is_flag=True,
    help="Skip the tables already published for DATE since its plan was saved (at "
    "any time without a saved plan): a retried shard redoes only what failed.",
)
@click.option(
    "--catalog-sync",
    is_flag=True,
    help="Register the partitions in the Glue database (RADAR_GLUE_DATABASE) after "
    "a run where every table published (or RADAR_CATALOG_SYNC).",
)
@click.option(
    "--compat",
    type=click.Choice(MODES),
    help="airbyte: write each table that has a stored output schema in it (the "
    "old Airbyte partitions' shape); none: the exact contract. Every table.",
)
@click.option(
    "--streams",
    type=STREAMS,
    metavar="N|auto",
    help="Read each table as N primary-key ranges at once (N snapshots, not one "
    "consistent read), or auto: split the largest table when it would run "
    "alone while workers idle (default: RADAR_STREAMS, else 1). Every table.",
)
@common_options
@_guarded
def extract(
    tables: tuple[str, ...],
    exclude: tuple[str, ...],
    run_date: date | None,
    workers: int | None,
    dest: str | None,
    report_file: str | None,
    shard: Shard | None,
    on_drift: str | None,
    glue_crawler: str | None,
    resume: bool,
    catalog_sync: bool,
    compat: str | None,
    streams: Streams | None,
    config_file: str | None,
    log_json: bool,
    verbose: bool,
) -> None:
    """Extract every base table (or the --table ones) into cog_dt_ingestion=DATE."""
    from extractor.run.runner import run_extract

    settings = _settings(
        config_file,
        log_json,
        verbose,
        workers=workers,
        dest=dest,
        on_drift=on_drift,
        glue_crawler=glue_crawler,
        catalog_sync=catalog_sync or None,
        compat=compat,
        streams=streams,
    )
    progress = ProgressPrinter(terminal=sys.stderr.isatty() and not log_json)
    outcome = run_extract(
        settings,
        tables=tables,
        exclude=exclude,
        run_date=run_date,
        progress=progress,
        on_result=lambda result: progress.done(result.table),
        shard=shard,
        resume=resume,
    )
    if report_file and outcome.report is not None:
        Path(report_file).write_text(outcome.report.to_json(), encoding="utf-8")
    if not log_json:  # JSON logs already carry the run's summary as one event
        from extractor.run.summary import outcome_lines

        for line in outcome_lines(outcome):
            click.echo(line, err=True)
    problem = None
    if shard is None:  # a shard's follow-ups are the merge step's (the DAG's crawl and notify)
        from extractor.ops.after_run import after_extract

        problem = after_extract(settings, outcome)  # crawler, catalog (on success), Slack
    if outcome.stopped is not None:  # its one line and exit code (_guarded)
        raise outcome.stopped
    if problem is not None and outcome.ok:
        raise problem
    sys.exit(outcome.exit_code)


@main.command()
@dest_option
@common_options
@_guarded
def check(dest: str | None, config_file: str | None, log_json: bool, verbose: bool) -> None:
    """Preflight: MySQL reachable, tables readable, TLS in use or not, destination writable."""
    from extractor.ops.preflight import run_checks

    settings = _settings(config_file, log_json, verbose, dest=dest)
    ok = True
    for check_result in run_checks(settings):
        ok = ok and check_result.ok
        mark = "FAIL" if not check_result.ok else "warn" if check_result.warning else "ok  "
        click.echo(f"{mark} {check_result.name}: {check_result.detail}")
    sys.exit(EXIT_OK if ok else EXIT_FAILED)


@main.command()
@json_option
@common_options
@_guarded
def tables(as_json: bool, config_file: str | None, log_json: bool, verbose: bool) -> None:
    """Base tables with estimated rows and bytes (information_schema)."""
    from extractor.run.catalog import discover

    settings = _settings(config_file, log_json, verbose)
    catalog = discover(settings)
    rows = [
        {"table": t.name, "estimated_rows": t.estimated_rows, "estimated_bytes": t.estimated_bytes}
        for t in catalog.tables
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max([len(t.name) for t in catalog.tables] + [5])
    click.echo(f"{'table':<{width}}  {'est. rows':>14}  {'est. bytes':>14}")
    for t in catalog.tables:
        click.echo(f"{t.name:<{width}}  {t.estimated_rows:>14,}  {t.estimated_bytes:>14,}")


@main.command()
@click.option(
    "--shards",
    "count",
    type=SHARD_COUNT,
    required=True,
    metavar="N",
    help="Number of groups (1-256).",
)
@table_option
@exclude_option
@date_option(required=False)
@dest_option
@json_option
@click.option(
    "--save",
    is_flag=True,
    help="Store the plan in the destination; `extract --shard` of DATE then uses it.",
)
@output_option
@common_options
@_guarded
def plan(
    count: int,
    tables: tuple[str, ...],
    exclude: tuple[str, ...],
    run_date: date | None,
    dest: str | None,
    as_json: bool,
    save: bool,
    output_file: str | None,
    config_file: str | None,
    log_json: bool,
    verbose: bool,
) -> None:
    """Split the tables into N groups of about equal estimated bytes, largest first."""
    from extractor.run.catalog import discover, select_tables
    from extractor.run.runner import partition_date
    from extractor.run.shards import ShardPlan, plan_shards, save_plan
    from extractor.run.summary import human_bytes
    from extractor.sink.destination import Destination

    day = partition_date(run_date).isoformat()
    settings = _settings(config_file, log_json, verbose, dest=dest)
    catalog = discover(settings)
    chosen = set(select_tables(catalog, tables, exclude))
    infos = [t for t in catalog.tables if t.name in chosen]
    result = ShardPlan(day, count, plan_shards(infos, count))
    if save:
        destination = Destination(settings)
        path = save_plan(destination, result)
        logger.info("plan of %s saved to %s", day, destination.url(path))
    if output_file:
        Path(output_file).parent.mkdir(parents=True, exist_ok=True)
        Path(output_file).write_text(result.to_json(), encoding="utf-8")
    if as_json:
        click.echo(result.to_json(), nl=False)
        return
    sizes = {t.name: t for t in infos}
    click.echo(f"plan of {day}: {len(infos)} tables in {count} shards, by estimated bytes")
    for group in result.groups:
        click.echo(
            f"shard {group.shard}: {len(group.tables)} tables, "
            f"{group.estimated_rows:,} est. rows, {human_bytes(group.estimated_bytes)}"
        )
        for name in group.tables:
            click.echo(
                f"  {name:<40} {sizes[name].estimated_rows:>14,} "
                f"{human_bytes(sizes[name].estimated_bytes):>10}"
            )


@main.group()
def report() -> None:
    """Run reports of a date: merge the shards' and reruns' reports into one."""


@report.command("merge")
@date_option(required=True)
@dest_option
@json_option
@output_option
@common_options
@_guarded
def report_merge(
    run_date: date,
    dest: str | None,
    as_json: bool,
    output_file: str | None,
    config_file: str | None,
    log_json: bool,
    verbose: bool,
) -> None:
    """Combine every run report of DATE: the latest result of each table wins."""
    from extractor.ops.merge import merge_reports, summary_lines

    settings = _settings(config_file, log_json, verbose, dest=dest)
    merged = merge_reports(settings, run_date)
    if output_file:
        Path(output_file).parent.mkdir(parents=True, exist_ok=True)
        Path(output_file).write_text(merged.to_json(), encoding="utf-8")
    if as_json:
        click.echo(merged.to_json(), nl=False)
    if not log_json:  # JSON logs already carry the merge's summary as one event
        for line in summary_lines(merged):
            click.echo(line, err=as_json)
    sys.exit(EXIT_OK if merged.ok else EXIT_FAILED)


@main.command()
@date_option(required=True)
@dest_option
@table_option
@click.option(
    "--against-source",
    is_flag=True,
    help="Expect the source's base tables and compare row counts with the source.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="With --against-source, any count difference fails (default: only an "
    "empty partition of a non-empty table).",
)
@json_option
@common_options
@_guarded
def validate(
    run_date: date,
    dest: str | None,
    tables: tuple[str, ...],
    against_source: bool,
    strict: bool,
    as_json: bool,
    config_file: str | None,
    log_json: bool,
    verbose: bool,
) -> None:
    """Check the partitions of DATE: present, intact, as many rows as the manifests, schema."""
    from extractor.ops.validate import validate as run_validation

    settings = _settings(config_file, log_json, verbose, dest=dest)
    result = run_validation(
        settings, run_date, tables=tables, against_source=against_source, strict=strict
    )
    if as_json:
        click.echo(result.to_json(), nl=False)
    else:
        for line in result.lines():
            click.echo(line)
    sys.exit(EXIT_OK if result.valid else EXIT_FAILED)


@main.group()
def schemas() -> None:
    """Stored schemas (<schemas_dir>/<database>/<table>.json) and drift from the database."""


@schemas.command()
@table_option
@common_options
@_guarded
def snapshot(
    tables: tuple[str, ...], config_file: str | None, log_json: bool, verbose: bool
) -> None:
    """Write the stored schemas from the live database, new tables included.

    Without --table, every base table is stored and the files of tables that no longer
    exist are removed, so the folder mirrors the database; with --table, only those files
    are written and the others are left as they are. Review and commit the result.
    """
    from extractor.drift.check import snapshot as take_snapshot
    from extractor.run.catalog import discover, select_tables

    settings = _settings(config_file, log_json, verbose)
    catalog = discover(settings)
    names = select_tables(catalog, tables, ())
    done = take_snapshot(settings, catalog.tasks, names, whole_database=not tables)
    for line in done.lines():
        click.echo(line)


@schemas.command()
@table_option
@json_option
@common_options
@_guarded
def diff(
    tables: tuple[str, ...], as_json: bool, config_file: str | None, log_json: bool, verbose: bool
) -> None:
    """Print the drift of every table from its stored schema, classified, with the action
    the policy gives it. Exit 0 when there is none, 1 when there is drift.

    Without --table, stored tables that no longer exist are reported (table_removed).
    The --json output is stable (sorted keys).
    """
    from extractor.drift.check import check_drift
    from extractor.run.catalog import discover, select_tables

    settings = _settings(config_file, log_json, verbose)
    catalog = discover(settings)
    names = select_tables(catalog, tables, ())
    result = check_drift(settings, catalog.tasks, names, whole_database=not tables)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    else:
        for line in result.lines():
            click.echo(line)
    sys.exit(EXIT_FAILED if result.drifted else EXIT_OK)


@main.group()
def compat() -> None:
    """The cut-over from Airbyte: the old partitions' shape, and writes compatible with it."""


@compat.command("inspect")
@table_option
@json_option
@click.option(
    "--save",
    is_flag=True,
    help="Store what was found as each table's output schema "
    "(<schemas_dir>/<database>/output/<table>.json); review and commit it.",
)
@dest_option
@common_options
@_guarded
def compat_inspect(
    tables: tuple[str, ...],
    as_json: bool,
    save: bool,
    dest: str | None,
    config_file: str | None,
    log_json: bool,
    verbose: bool,
) -> None:
    """Per table, the newest partition radar-extract did not write (its footer only): the
    Airbyte era and, per column, the type readers expect, the contract's type, and what a
    compatible write does. Tables with no such partition are exact. Nothing changes
    without --save. The --json output is stable (sorted keys)."""
    from extractor.compat.inspect import inspect_tables, to_json
    from extractor.run.catalog import discover, select_tables

    settings = _settings(config_file, log_json, verbose, dest=dest)
    catalog = discover(settings)
    names = sorted(select_tables(catalog, tables, ()))
    reports = inspect_tables(settings, {n: catalog.tasks[n].columns for n in names}, save=save)
    if as_json:
        click.echo(to_json(reports), nl=False)
        return
    for report in reports:
        for line in report.lines():
            click.echo(line)


@main.command()
@date_option(required=True)
@dest_option
@common_options
@_guarded
def notify(
    run_date: date, dest: str | None, config_file: str | None, log_json: bool, verbose: bool
) -> None:
    """Post the Slack message of one date: its run report and its stored validation."""
    settings = _settings(config_file, log_json, verbose, dest=dest)
    if not settings.slack_webhook_url:
        click.echo("no Slack webhook configured (RADAR_SLACK_WEBHOOK_URL): nothing sent")
        sys.exit(EXIT_OK)
    from extractor.ops.after_run import notify_date

    sent = notify_date(settings, run_date)
    click.echo(f"Slack message of {run_date} " + ("sent" if sent else "NOT sent (see the warning)"))
    sys.exit(EXIT_OK)  # Slack being down is logged, never a failure


@main.command()
@date_option(required=True)
@dest_option
@glue_crawler_option
@common_options
@_guarded
def crawl(
    run_date: date,
    dest: str | None,
    glue_crawler: str | None,
    config_file: str | None,
    log_json: bool,
    verbose: bool,
) -> None:
    """Start the Glue crawler if the run of the date published every table."""
    from extractor.errors import UsageError

    settings = _settings(config_file, log_json, verbose, dest=dest, glue_crawler=glue_crawler)
    if not settings.glue_crawler:
        raise UsageError("no crawler: give --glue-crawler NAME or set RADAR_GLUE_CRAWLER")
    from extractor.ops.after_run import crawl_date

    state = crawl_date(settings, run_date, settings.glue_crawler)
    click.echo(f"glue crawler {settings.glue_crawler!r}: {state}")


@main.group()
def catalog() -> None:
    """The Glue Data Catalog without a crawler: register the published partitions."""


@catalog.command("sync")
@date_option(required=True)
@table_option
@click.option(
    "--database", "glue_database", metavar="GLUE_DB", help="Glue database (or RADAR_GLUE_DATABASE)."
)
@click.option(
    "--update-columns",
    is_flag=True,
    help="Also set each Glue table's columns to the exact types of the files, and "
    "every partition's to the table's (after a migrate).",
)
@click.option(
    "--create-tables", is_flag=True, help="Create a missing Glue table, with the files' columns."
)
@dest_option
@common_options
@_guarded
def catalog_sync(
    run_date: date,
    tables: tuple[str, ...],
    glue_database: str | None,
    update_columns: bool,
    create_tables: bool,
    dest: str | None,
    config_file: str | None,
    log_json: bool,
    verbose: bool,
) -> None:
    """Register the partitions of DATE on their Glue tables: created, updated or unchanged.

    The destination must be on S3 (--dest s3://bucket[/prefix]): Glue locations are S3 URLs.
    """
    from extractor.ops.catalog import sync_catalog

    settings = _settings(config_file, log_json, verbose, dest=dest, glue_database=glue_database)
    result = sync_catalog(
        settings,
        run_date,
        tables=tables or None,
        update_columns=update_columns,
        create_tables=create_tables,
    )
    for line in result.lines():
        click.echo(line)
    sys.exit(EXIT_OK if result.ok else EXIT_FAILED)


@main.command()
@required_table_option
@date_range_options
@click.option(
    "--dry-run",
    is_flag=True,
    help="Read the partitions and report, per column, what would be exact; write nothing.",
)
@json_option
@click.option(
    "--report",
    "report_file",
    type=click.Path(dir_okay=False),
    help="Also write the JSON reports to this file.",
)
@dest_option
@common_options
@_guarded
def migrate(
    tables: tuple[str, ...],
    date_from: date | None,
    date_to: date | None,
    dry_run: bool,
    as_json: bool,
    report_file: str | None,
    dest: str | None,
    config_file: str | None,
    log_json: bool,
    verbose: bool,
) -> None:
    """Rewrite each table's Airbyte-shaped (or --compat) partitions into the exact contract
    of its stored schema, one partition at a time, published as extract publishes. Exact
    partitions are skipped; once all are, the table's output schema is removed (commit it)."""
    from extractor.compat.migrate import migrate_tables

    settings = _settings(config_file, log_json, verbose, dest=dest)
    reports = migrate_tables(settings, tables, since=date_from, until=date_to, dry_run=dry_run)
    text = "[" + ",".join(r.to_json() for r in reports) + "]\n"
    if report_file:
        Path(report_file).write_text(text, encoding="utf-8")
    if as_json:
        click.echo(json.dumps(json.loads(text), indent=2, sort_keys=True))
    else:
        for r in reports:
            for line in r.lines():
                click.echo(line)
    sys.exit(EXIT_OK if all(r.ok for r in reports) else EXIT_FAILED)
