"""Which tables are written in their stored output schema: the `compat` setting. Pure.

`none` (the default) writes the exact contract; `airbyte` writes each table that has a
stored output schema (`compat inspect --save`) in it, and the others exact.
The file may hold `compat = "airbyte"`, or a `[compat]` table with `mode` and per-table
overrides `[compat.tables.<table>] mode = "none"`. The flag `--compat` and `RADAR_COMPAT`
set the mode of every table, overrides included: like `--on-drift`, they are what an
operator types to switch a whole run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, cast

CompatMode = Literal["none", "airbyte"]
MODES: tuple[CompatMode, ...] = ("none", "airbyte")


@dataclass(frozen=True)
class CompatPolicy:
    mode: CompatMode = "none"
    tables: Mapping[str, CompatMode] = field(default_factory=dict)
    forced: CompatMode | None = None  # flag or environment: every table

    def mode_for(self, table: str) -> CompatMode:
        if self.forced is not None:
            return self.forced
        return self.tables.get(table, self.mode)


def is_mode(value: object) -> bool:
    return isinstance(value, str) and value in MODES


def validate_compat(section: object, where: str, problems: list[str]) -> CompatPolicy:
    """The policy from the file's `compat` value (a mode, or a table); problems appended."""
    if is_mode(section):
        return CompatPolicy(mode=cast(CompatMode, section))
    if not isinstance(section, Mapping):
        problems.append(f"{where}: compat must be one of {', '.join(MODES)} or a [compat] table")
        return CompatPolicy()
    unknown = sorted(set(section) - {"mode", "tables"})
    if unknown:
        problems.append(f"{where}: [compat] has unknown keys: {', '.join(unknown)}")
    mode = section.get("mode", "none")
    if not is_mode(mode):
        problems.append(f"{where}: [compat] mode = {mode!r} must be one of {', '.join(MODES)}")
        mode = "none"
    tables: dict[str, CompatMode] = {}
    raw = section.get("tables", {})
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: [compat.tables] must hold one table per database table")
        raw = {}
    for name in sorted(raw):
        override = raw[name]
        value = override.get("mode") if isinstance(override, Mapping) else None
        if not is_mode(value) or set(override) != {"mode"}:
            problems.append(
                f"{where}: [compat.tables.{name}] must be mode = "
                f"{' or '.join(repr(m) for m in MODES)}"
            )
            continue
        tables[name] = cast(CompatMode, value)
    return CompatPolicy(mode=cast(CompatMode, mode), tables=tables)
