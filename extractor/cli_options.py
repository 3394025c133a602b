"""What the command line parses: click parameter types for dates, shards and counts.

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

if TYPE_CHECKING:
    from extractor.run.shards import Shard

T = TypeVar("T")


class BadValue(click.BadParameter):
    """A value that does not parse: one line, exit 2."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(mask(f"radar-extract: error: {self.message}"), err=True)


class Parsed(click.ParamType[T]):
    """A click type whose parser is one of ours: a UsageError becomes a BadValue."""

    def __init__(self, name: str, parse: Callable[[str], T]) -> None:
        self.name = name
        self._parse = parse

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> T:
        if not isinstance(value, str):  # already parsed (a default, or a second pass)
            return value  # type: ignore[no-any-return]
        try:
            return self._parse(value)
        except UsageError as exc:
            raise BadValue(exc.message, ctx, param) from exc


def parse_date(text: str) -> date:
    """`--date YYYY-MM-DD`: a real calendar date, in exactly that form."""
    try:
        if len(text) == 10:  # fromisoformat alone also takes 20240501 and 2024-W18-3
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise UsageError(f"--date {text[:40]!r} is not a valid date (YYYY-MM-DD)")


def _parse_shard(text: str) -> Shard:
    from extractor.run.shards import Shard

    return Shard.parse(text)


def _parse_shard_count(text: str) -> int:
    from extractor.run.shards import parse_shard_count

    return parse_shard_count(text)


DATE = Parsed("date", parse_date)
SHARD = Parsed("shard", _parse_shard)
SHARD_COUNT = Parsed("shards", _parse_shard_count)
