"""The drift policy: which action each class of change gets, per table.

Actions, from the mildest: `evolve` (extract with the live schema, report it), `warn`
(the same, and the run summary carries a warning), `fail` (the table is not read and not
published; the run exits 1).

Resolution for one change of one table:
1. `on_drift` (flag `--on-drift` > `RADAR_ON_DRIFT` > `on_drift` in the file), when set, is
   the action of every change of every table, per-table overrides included: it is the
   emergency switch an operator types.
2. Otherwise each policy key that applies to the change gives an action: its class, plus
   `parquet_type_changed` when the Arrow/Parquet type of the column changes. A key's action
   is the table's override (`[drift.tables.<table>]`) if it has one, else the `[drift]`
   value, else the default below. The change gets the strictest of these actions.
A table's action is the strictest action of its changes.

This module is pure: the settings validate their drift keys against `CLASSES`, `KEYS` and
`ACTIONS` defined here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, cast

Action = Literal["evolve", "warn", "fail"]
ACTIONS: tuple[Action, ...] = ("evolve", "warn", "fail")  # mildest first

# The classes of change, stable ids of the JSON report and of the policy keys.
CLASSES: tuple[str, ...] = (
    "table_added",
    "table_removed",
    "column_added",
    "column_added_required",
    "column_removed",
    "column_renamed",
    "type_widened",
    "type_changed",
    "nullability_changed",
    "order_changed",
)
PARQUET_TYPE_CHANGED = "parquet_type_changed"  # a key, not a class: it adds to a change's class
KEYS: tuple[str, ...] = (*CLASSES, PARQUET_TYPE_CHANGED)

# The defaults: additive and widening changes warn; removals, incompatible type
# changes and changes of the Parquet type fail; a table with no stored schema warns.
DEFAULTS: dict[str, Action] = {
    "table_added": "warn",
    "table_removed": "fail",
    "column_added": "warn",
    "column_added_required": "warn",  # additive; older rows hold MySQL's implicit 0 or ''
    "column_removed": "fail",
    "column_renamed": "fail",  # the old name disappears for every reader
    "type_widened": "warn",
    "type_changed": "fail",
    "nullability_changed": "warn",  # every Parquet column is OPTIONAL: no reader breaks
    "order_changed": "warn",  # Athena reads Parquet columns by name
    PARQUET_TYPE_CHANGED: "fail",
}


def strictest(actions: Iterable[Action]) -> Action:
    """The strictest of `actions` (evolve < warn < fail); `evolve` for none."""
    return max(actions, key=ACTIONS.index, default="evolve")


def is_action(value: object) -> bool:
    return isinstance(value, str) and value in ACTIONS


@dataclass(frozen=True)
class DriftPolicy:
    """Actions per policy key, per-table overrides, and the emergency `on_drift`."""

    keys: Mapping[str, Action] = field(default_factory=dict)  # [drift]
    tables: Mapping[str, Mapping[str, Action]] = field(default_factory=dict)  # [drift.tables.*]
    on_drift: Action | None = None

    def action_for(self, table: str, key: str) -> Action:
        """The action one policy key gives for `table` (without `on_drift`)."""
        override = self.tables.get(table, {})
        return override.get(key) or self.keys.get(key) or DEFAULTS[key]

    def resolve(
        self, table: str, kind: str, parquet_type_changed: bool = False
    ) -> tuple[Action, str]:
        """The action of one change, and the policy key that decided it (`on_drift` when the
        emergency switch is set)."""
        if self.on_drift is not None:
            return self.on_drift, "on_drift"
        keys = [kind, PARQUET_TYPE_CHANGED] if parquet_type_changed else [kind]
        # max() keeps the first of equals: the class wins a tie with parquet_type_changed.
        key = max(keys, key=lambda k: ACTIONS.index(self.action_for(table, k)))
        return self.action_for(table, key), key


def validate_policy(section: object, where: str, problems: list[str]) -> DriftPolicy:
    """A DriftPolicy from the TOML `[drift]` table; every problem is appended to `problems`."""
    if not isinstance(section, Mapping):
        problems.append(f"{where}: [drift] must be a table of class = action")
        return DriftPolicy()
    keys = _actions(section, "[drift]", where, problems, allow_tables=True)
    tables: dict[str, dict[str, Action]] = {}
    raw_tables = section.get("tables", {})
    if not isinstance(raw_tables, Mapping):
        problems.append(f"{where}: [drift.tables] must hold one table per database table")
    else:
        for name in sorted(raw_tables):
            overrides = raw_tables[name]
            if not isinstance(overrides, Mapping):
                problems.append(f"{where}: [drift.tables.{name}] must be a table of class = action")
                continue
            tables[name] = _actions(overrides, f"[drift.tables.{name}]", where, problems)
    return DriftPolicy(keys=keys, tables=tables)


def _actions(
    section: Mapping[str, object],
    label: str,
    where: str,
    problems: list[str],
    allow_tables: bool = False,
) -> dict[str, Action]:
    out: dict[str, Action] = {}
    for key in sorted(section):
        value = section[key]
        if allow_tables and key == "tables":
            continue
        if key not in KEYS:
            problems.append(
                f"{where}: {label} has unknown drift class {key!r} (known: {', '.join(KEYS)})"
            )
        elif not is_action(value):
            problems.append(
                f"{where}: {label} {key} = {value!r} must be one of {', '.join(ACTIONS)}"
            )
        else:
            out[key] = cast(Action, value)
    return out
