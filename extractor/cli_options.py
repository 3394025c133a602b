"""What the command line parses: click parameter types for dates, shards and counts, and
the options several commands share, each spelled and explained once.

Every value is parsed here once, into the type the library takes (a `datetime.date`, a
`Shard`, an int); a bad one is one line and exit 2, before any I/O, like every usage error
of ours (click's own format would add a usage block and a hint).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click

from extractor.errors import UsageError
from extractor.masking import mask
from extractor.streams_policy import Streams, parse_streams

if TYPE_CHECKING:
    from extractor.run.shards import Shard

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class BadValue(click.BadParameter):
    """A value that does not parse: one line, exit 2."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(mask(f"radar-extract: error: {self.message}"), err=True)


class Parsed(click.ParamType[T]):
    """A click type whose parser is one of ours: a UsageError becomes a BadValue."""

    def __init__(self, name: str, parse: Callable[[str], T]) -> None:
        self.name = name
        self._parse = parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> T:
        if not isinstance(value, str):  # already parsed (a default, or a second pass)
            return value  # type: ignore[no-any-return]
        try:
            return self._parse(value)
        except UsageError as exc:
            raise BadValue(exc.message, ctx, param) from exc


def parse_date(text: str, flag: str = "--date") -> date:
    """`--date YYYY-MM-DD` (or another `flag`): a real calendar date, in exactly that form."""
    try:
        if len(text) == 10:  # fromisoformat alone also takes 20240501 and 2024-W18-3
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise UsageError(f"{flag} {text[:40]!r} is not a valid date (YYYY-MM-DD)")


def _parse_shard(text: str) -> Shard:
    from extractor.run.shards import Shard

    return Shard.parse(text)


def _parse_shard_count(text: str) -> int:
    from extractor.run.shards import parse_shard_count

    return parse_shard_count(text)


def _parse_streams(text: str) -> Streams:
    try:
        return parse_streams(text, "--streams")
    except ValueError as exc:
        raise UsageError(str(exc)) from None


DATE = Parsed("date", parse_date)
FROM_DATE = Parsed("date", lambda text: parse_date(text, "--from"))
TO_DATE = Parsed("date", lambda text: parse_date(text, "--to"))
STREAMS = Parsed("streams", _parse_streams)
SHARD = Parsed("shard", _parse_shard)
SHARD_COUNT = Parsed("shards", _parse_shard_count)


# -- options shared by several commands: one spelling, one help text ----------------------
def _options(*options: Callable[[F], F]) -> Callable[[F], F]:
    def apply(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return apply


common_options = _options(
    click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False),
        help="TOML configuration file (overridden by RADAR_* variables and flags).",
    ),
    click.option("--log-json", is_flag=True, help="Log JSON lines (for CloudWatch)."),
    click.option("-v", "--verbose", is_flag=True, help="Debug logging, with tracebacks."),
)
"""`--config`, `--log-json`, `-v`: every command."""

dest_option = click.option(
    "--dest",
    metavar="ROOT",
    help="Destination root: s3://bucket[/prefix] or a local path (default: RADAR_DEST).",
)
"""Every command that reads or writes the destination."""

_TABLE_HELP = "Only this table (repeatable)."
table_option = click.option("--table", "tables", multiple=True, metavar="NAME", help=_TABLE_HELP)
required_table_option = click.option(
    "--table", "tables", multiple=True, required=True, metavar="NAME", help=_TABLE_HELP
)
"""`--table` where one is needed (`migrate`): the same help text."""
exclude_option = click.option(
    "--exclude", multiple=True, metavar="NAME", help="Leave this table out (repeatable)."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
output_option = click.option(
    "--output",
    "output_file",
    type=click.Path(dir_okay=False),
    help="Also write the JSON result to this file (e.g. /airflow/xcom/return.json).",
)
glue_crawler_option = click.option(
    "--glue-crawler",
    metavar="NAME",
    help="Glue crawler to start once the date's tables are all published "
    "(default: RADAR_GLUE_CRAWLER).",
)


def date_option(*, required: bool) -> Callable[[F], F]:
    """`--date`: the partition date cog_dt_ingestion=DATE, a `datetime.date`."""
    default = "" if required else " (default: today, UTC)"
    return click.option(
        "--date",
        "run_date",
        type=DATE,
        required=required,
        metavar="YYYY-MM-DD",
        help=f"Partition date cog_dt_ingestion=DATE{default}.",
    )


date_range_options = _options(
    click.option(
        "--from",
        "date_from",
        type=FROM_DATE,
        metavar="YYYY-MM-DD",
        help="First partition date (default: the oldest).",
    ),
    click.option(
        "--to",
        "date_to",
        type=TO_DATE,
        metavar="YYYY-MM-DD",
        help="Last partition date (default: the newest).",
    ),
)
"""`--from`, `--to`: a range of partition dates, each a `datetime.date` or None."""
