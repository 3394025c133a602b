"""The CLI parses and delegates: help for every command, usage errors before any I/O."""

from __future__ import annotations

import pickle
from datetime import date
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from extractor.cli import main
from extractor.cli_options import DATE, SHARD, SHARD_COUNT
from extractor.errors import (
    ConfigError,
    DestinationUnavailable,
    ExtractError,
    SourceError,
    Step,
)
from extractor.run.shards import Shard


@pytest.mark.parametrize("command", sorted(main.commands))
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert main.commands[command].help


def test_bad_date_is_a_usage_error_without_touching_anything() -> None:
    # Port 1 refuses connections: the date must be rejected before any connection attempt.
    result = CliRunner().invoke(
        main, ["extract", "--date", "2024-02-30"], env={"RADAR_MYSQL_PORT": "1"}
    )
    assert result.exit_code == 2
    assert (
        result.output.strip() == "radar-extract: error: --date '2024-02-30' is not a valid "
        "date (YYYY-MM-DD)"
    )


def test_unknown_flag_exits_2() -> None:
    assert CliRunner().invoke(main, ["extract", "--tabel", "x"]).exit_code == 2


@pytest.mark.parametrize(
    "error",
    [
        ExtractError("x", table="t", step=Step.READ, transient=True),
        ConfigError(["a", "b"]),
        SourceError("lost", table="t", step=Step.READ, transient=True),
        DestinationUnavailable("no bucket", step=Step.PROBE),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_survive_pickling_across_processes(error: ExtractError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error)
    assert (copy.table, copy.step, copy.transient, copy.exit_code) == (
        error.table,
        error.step,
        error.transient,
        error.exit_code,
    )


def test_cli_module_imports_neither_pyarrow_nor_drivers() -> None:
    import extractor.cli as cli_module

    source = Path(cli_module.__file__).read_text(encoding="utf-8")
    for module in ("pyarrow", "pymysql", "connectorx", "sqlalchemy"):
        assert f"import {module}" not in source
    assert isinstance(main, click.Group)


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["extract", "--date", "2024-5-1"], "--date '2024-5-1' is not a valid date (YYYY-MM-DD)"),
        (["extract", "--date", "20240501"], "--date '20240501' is not a valid date (YYYY-MM-DD)"),
        (["notify", "--date", "yesterday"], "--date 'yesterday' is not a valid date (YYYY-MM-DD)"),
        (
            ["extract", "--shard", "2/1"],
            "--shard '2/1' must be I/N with 1 <= I <= N <= 256 (e.g. 2/4)",
        ),
        (
            ["extract", "--shard", "two"],
            "--shard 'two' must be I/N with 1 <= I <= N <= 256 (e.g. 2/4)",
        ),
        (["plan", "--shards", "0"], "--shards '0' must be a number from 1 to 256"),
    ],
    ids=["short-date", "compact-date", "word-date", "shard-past-n", "shard-word", "no-shards"],
)
def test_bad_values_are_one_line_and_exit_2(args: list[str], line: str) -> None:
    result = CliRunner().invoke(main, args, env={"RADAR_MYSQL_PORT": "1"})
    assert result.exit_code == 2
    assert result.output == f"radar-extract: error: {line}\n"


def test_the_click_types_give_the_library_its_types() -> None:
    assert DATE.convert("2024-02-29", None, None) == date(2024, 2, 29)
    assert DATE.convert(date(2024, 2, 29), None, None) == date(2024, 2, 29)  # a default
    assert SHARD.convert(" 2/4 ", None, None) == Shard(2, 4)
    assert SHARD_COUNT.convert("8", None, None) == 8
    with pytest.raises(click.BadParameter, match="not a valid date"):
        DATE.convert("2023-02-29", None, None)


def _commands(group: click.Group = main, prefix: str = "") -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.update(_commands(command, f"{prefix}{name} "))
        else:
            found[f"{prefix}{name}"] = command
    return found


def test_a_shared_option_has_one_spelling_and_one_help_text() -> None:
    seen: dict[str, set[tuple[str, ...]]] = {}
    for command in _commands().values():
        for param in command.params:
            if isinstance(param, click.Option) and param.help:
                help_text = param.help.replace(" (default: today, UTC)", "")
                seen.setdefault(param.opts[-1], set()).add((*param.opts, help_text))
    for flag in (
        "--dest",
        "--date",
        "--table",
        "--json",
        "--config",
        "--log-json",
        "--verbose",
        "--exclude",
        "--output",
        "--glue-crawler",
    ):
        assert len(seen[flag]) == 1, (flag, seen[flag])


def test_every_command_on_the_destination_takes_dest() -> None:
    with_dest = sorted(
        name
        for name, command in _commands().items()
        if any(p.name == "dest" for p in command.params)
    )
    assert with_dest == [
        "catalog sync",
        "check",
        "compat inspect",
        "crawl",
        "extract",
        "migrate",
        "notify",
        "plan",
        "report merge",
        "validate",
    ]
