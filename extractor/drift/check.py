"""The drift check of a run (and of `schemas diff`), and `schemas snapshot`.

Compares the discovered tables with the stored schemas, resolves each change's action
through the policy, and says which tables must not be read. Nothing here reads table data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from extractor.drift.compare import PARQUET_NOTE, Change, table_changes
from extractor.drift.store import (
    StoredSchema,
    build_schema,
    database_dir,
    load_schemas,
    remove_schema,
    write_schema,
)
from extractor.drift_policy import Action, DriftPolicy, strictest
from extractor.sink.manifest import DriftRecord

if TYPE_CHECKING:
    from extractor.config import Settings
    from extractor.contract.types import Column


class LiveTable(Protocol):
    """A discovered table as the check needs it (the run's task satisfies it)."""

    @property
    def columns(self) -> list[Column]: ...
    @property
    def primary_key(self) -> list[str]: ...


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resolved:
    """A change with the action the policy gives it and the key that decided it."""

    change: Change
    action: Action
    key: str

    def record(self) -> DriftRecord:
        """The form the manifest and the run report record."""
        c = self.change
        return DriftRecord(
            kind=c.kind,
            action=self.action,
            column=c.column,
            stored=c.stored,
            live=c.live,
            policy_key=self.key,
            note=c.note,
            parquet_type_changed=c.parquet_type_changed,
            stored_arrow_type=c.stored_arrow,
            live_arrow_type=c.live_arrow,
        )

    def describe(self) -> str:
        by = "" if self.key == self.change.kind else f" [{self.key}]"
        return f"{self.action}{by}: {self.change.describe()}"


@dataclass(frozen=True)
class TableDrift:
    table: str
    changes: list[Resolved] = field(default_factory=list)

    @property
    def action(self) -> Action:
        return strictest(r.action for r in self.changes)

    @property
    def only_added(self) -> bool:
        return [r.change.kind for r in self.changes] == ["table_added"]

    def records(self) -> list[DriftRecord]:
        return [r.record() for r in self.changes]

    def to_list(self) -> list[dict[str, Any]]:
        return [r.record().to_dict() for r in self.changes]

    def error(self) -> str:
        """The one line of a table that fails drift: the failing changes, then advice."""
        failing = [r for r in self.changes if r.action == "fail"]
        text = "schema drift: " + "; ".join(r.describe() for r in failing)
        if any(r.change.parquet_type_changed for r in failing):
            text += f". {PARQUET_NOTE}"
        # A removed table has no live schema to store: the plain snapshot removes its file.
        which = (
            ""
            if any(r.change.kind == "table_removed" for r in failing)
            else f" --table {self.table}"
        )
        return (
            f"{text}. Review it, then `radar-extract schemas snapshot{which}` and commit, "
            "or set the drift policy"
        )


@dataclass(frozen=True)
class DriftCheck:
    database: str
    folder: Path
    found: bool  # whether the database's folder of stored schemas exists
    tables: dict[str, TableDrift]
    # [drift.tables.<name>] overrides for tables the database does not have (a typo?)
    stray_overrides: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return any(t.changes for t in self.tables.values())

    @property
    def failed(self) -> list[str]:
        return [name for name, t in self.tables.items() if t.action == "fail"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "schemas_dir": str(self.folder),
            "stored_schemas_found": self.found,
            "drift": self.drifted,
            "tables": [
                {"table": name, "action": t.action, "changes": t.to_list()}
                for name, t in sorted(self.tables.items())
                if t.changes
            ],
        }

    def lines(self) -> list[str]:
        """Human output, grouped per table."""
        changed = {n: t for n, t in sorted(self.tables.items()) if t.changes}
        out = (
            [
                f"note: the drift policy has overrides for tables not in the database: "
                f"{', '.join(self.stray_overrides)}"
            ]
            if self.stray_overrides
            else []
        )
        if not changed:
            return [*out, f"no drift: {len(self.tables)} tables match {self.folder}"]
        if not self.found:
            out.append(
                f"no stored schemas in {self.folder}: all {len(changed)} tables are "
                "new (table_added); `radar-extract schemas snapshot` stores them"
            )
            return out
        for name, t in changed.items():
            out.append(f"{name}: {t.action}")
            out.extend(f"  {r.describe()}" for r in t.changes)
        if any(r.change.parquet_type_changed for t in changed.values() for r in t.changes):
            out.append(f"note: a changed Parquet type: {PARQUET_NOTE}")
        out.append(f"{len(changed)} of {len(self.tables)} tables drifted from {self.folder}")
        return out

    def log(self) -> None:
        """Warnings for the run's log: one line per warned table, or one for no schemas."""
        if self.stray_overrides:
            logger.warning(
                "the drift policy has overrides for tables not in the database: %s",
                ", ".join(self.stray_overrides),
            )
        if not self.found:
            logger.warning(
                "no stored schemas in %s: all %d tables count as added; "
                "`radar-extract schemas snapshot` stores them",
                self.folder,
                len(self.tables),
                extra={"fields": {"event": "drift", "action": "warn", "classes": ["table_added"]}},
            )
            return
        for name, t in sorted(self.tables.items()):
            if t.action == "warn":
                retyped = any(r.change.parquet_type_changed for r in t.changes)
                logger.warning(
                    "%s: schema drift: %s%s",
                    name,
                    "; ".join(r.describe() for r in t.changes),
                    f". {PARQUET_NOTE}" if retyped else "",
                    extra={
                        "fields": {
                            "event": "drift",
                            "table": name,
                            "action": t.action,
                            "classes": [r.change.kind for r in t.changes],
                        }
                    },
                )


def live_schemas(database: str, tasks: Mapping[str, LiveTable]) -> dict[str, StoredSchema]:
    return {
        name: build_schema(database, name, task.columns, task.primary_key)
        for name, task in tasks.items()
    }


def check_drift(
    settings: Settings,
    tasks: Mapping[str, LiveTable],
    names: Sequence[str],
    *,
    whole_database: bool,
) -> DriftCheck:
    """Drift of the tables `names` (and, for the whole database, of the stored tables that
    no longer exist), each change resolved through the settings' policy."""
    database = settings.mysql.database
    stored = load_schemas(settings.schemas_dir, database)
    live = live_schemas(database, tasks)
    changes = table_changes(stored, live, names, whole_database)
    policy: DriftPolicy = settings.drift_policy
    tables = {
        name: TableDrift(
            name,
            [Resolved(c, *policy.resolve(name, c.kind, c.parquet_type_changed)) for c in found],
        )
        for name, found in changes.items()
    }
    stray = sorted(set(policy.tables) - set(tasks) - set(stored or {}))
    return DriftCheck(
        database, database_dir(settings.schemas_dir, database), stored is not None, tables, stray
    )


@dataclass(frozen=True)
class Snapshot:
    folder: Path
    written: list[str]
    unchanged: list[str]
    removed: list[str]

    def lines(self) -> list[str]:
        out = [f"wrote {t}" for t in self.written] + [
            f"removed {t} (no longer in the database)" for t in self.removed
        ]
        out.append(
            f"{self.folder}: {len(self.written)} written, {len(self.unchanged)} "
            f"unchanged, {len(self.removed)} removed"
        )
        return out


def snapshot(
    settings: Settings,
    tasks: Mapping[str, LiveTable],
    names: Sequence[str],
    *,
    whole_database: bool,
) -> Snapshot:
    """Write the stored schemas of `names`; for the whole database, also remove the files
    of tables that no longer exist, so the folder mirrors the database."""
    database = settings.mysql.database
    live = live_schemas(database, {n: tasks[n] for n in names})
    written: list[str] = []
    unchanged: list[str] = []
    for name in sorted(live):
        (written if write_schema(settings.schemas_dir, live[name]) else unchanged).append(name)
    removed: list[str] = []
    if whole_database:
        folder = database_dir(settings.schemas_dir, database)
        for name in sorted(p.stem for p in folder.glob("*.json")):
            if name not in tasks:
                remove_schema(settings.schemas_dir, database, name)
                removed.append(name)
    return Snapshot(database_dir(settings.schemas_dir, database), written, unchanged, removed)
