"""A compatible write: every batch of the exact contract, converted to the output schema.

`open_compat` decides per table (the `compat` setting, a stored output schema) and returns
None for an exact write. The `CompatWriter` maps the output columns to the live MySQL
columns (by the name matched at inspect time, else the name, else Airbyte's sanitized
name), checks the differences through the drift policy before anything is read (a column
the output schema lacks is appended; one MySQL no longer has is written NULL; a type with
no conversion is NULL, counted), and fills Airbyte's metadata columns as Airbyte does.
Every value a conversion changes is counted per column (`converted`), and in the 1.x era
also recorded in that row's `_airbyte_meta.changes`.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from extractor.compat import kernels
from extractor.compat.airbyte import Role, sanitize
from extractor.compat.migration import read_state
from extractor.compat.output_schema import (
    OutputSchema,
    load_output_schema,
    output_schema_path,
    type_to_json,
)
from extractor.compat.rules import Route, route
from extractor.config import Settings
from extractor.contract.types import ColumnPlan
from extractor.drift_policy import DriftPolicy
from extractor.errors import SchemaDrift, Step
from extractor.sink.destination import Destination
from extractor.sink.manifest import CompatColumn, CompatDrift, CompatWrite

logger = logging.getLogger(__name__)
_RUN_STAMP = re.compile(r"_(\d{8}T\d{6}Z)_")


@dataclass(frozen=True)
class Slot:
    """One column written: an output column, or a MySQL column appended after them."""

    field: pa.Field
    role: Role
    source: str | None = None  # the MySQL column
    index: int | None = None  # its place in the contract's batch
    route: Route | None = None


def run_started(run_id: str) -> datetime:
    """The run's start, to the second, from its id (`<date>_<YYYYmmddTHHMMSSZ>_<hex>`)."""
    found = _RUN_STAMP.search(run_id)
    if found is None:
        return datetime.now(UTC).replace(microsecond=0)
    return datetime.strptime(found.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def open_compat(
    settings: Settings, table: str, plans: list[ColumnPlan], run_id: str
) -> CompatWriter | None:
    """The compatible writer of `table`, or None when it is written exact."""
    mode = settings.compat.mode_for(table)
    if mode == "none":
        return None
    output = load_output_schema(settings.schemas_dir, settings.mysql.database, table)
    if output is None:
        return None
    # A migrate rewrote the table's history exact: one compatible partition would mix it.
    destination = Destination(settings)
    switched = read_state(destination, table)
    if switched is not None:
        logger.warning(
            "%s: written exact, not in its output schema %s: migration %s made "
            "every partition exact (%s); remove the output schema",
            table,
            output_schema_path(settings.schemas_dir, output.database, table),
            switched.migration_id,
            destination.url(destination.keys.migration_state(table)),
        )
        return None
    return CompatWriter(
        output,
        plans,
        table,
        run_started(run_id),
        settings.drift_policy,
        str(output_schema_path(settings.schemas_dir, output.database, table)),
    )


def match_columns(output: OutputSchema, live: list[str]) -> dict[str, str]:
    """Output column name -> live MySQL column, each MySQL column used once."""
    free = list(live)
    matched: dict[str, str] = {}
    data = [c for c in output.columns if c.role == "data"]
    # By the name matched at inspect time, then the same name, then Airbyte's sanitized one.
    for rule in ("source", "name", "sanitized"):
        for column in data:
            if column.name in matched:
                continue
            hit = next((m for m in free if _matches(rule, column.name, column.source, m)), None)
            if hit is not None:
                matched[column.name] = hit
                free.remove(hit)
    return matched


def _matches(rule: str, name: str, source: str | None, live: str) -> bool:
    if rule == "source":
        return live == source
    return live == name if rule == "name" else sanitize(live) == name


class CompatWriter:
    def __init__(
        self,
        output: OutputSchema,
        plans: list[ColumnPlan],
        table: str,
        started: datetime,
        policy: DriftPolicy,
        path: str = "",
    ) -> None:
        self.output = output
        self.table = table
        self.path = path
        self.converted: Counter[str] = Counter()
        self.drift: list[CompatDrift] = []
        self._changes: list[tuple[str, str, str | None, str | None]] = []
        micros = int(started.timestamp()) * 1_000_000
        self._micros = micros
        self._sync = micros // 1_000_000  # a number that grows by run, as Airbyte's job ids
        by_name = {p.name: (i, p) for i, p in enumerate(plans)}
        matched = match_columns(output, list(by_name))
        slots: list[Slot] = []
        for column in output.columns:
            found = column.arrow_type
            if column.role != "data":
                known = column.role != "unknown_metadata"
                slots.append(
                    Slot(pa.field(column.name, found, column.nullable or not known), column.role)
                )
                continue
            field = pa.field(column.name, found)  # data columns may hold NULL (zero dates)
            source = matched.get(column.name)
            if source is None:
                self._change("column_removed", column.name, str(found), None)
                slots.append(Slot(field, "data"))
                continue
            index, plan = by_name[source]
            chosen = route(plan.column, plan.arrow_type, found)
            if chosen.kind == "unsupported":
                self._change("type_changed", source, str(found), plan.column.column_type)
            slots.append(Slot(field, "data", source, index, chosen))
        taken = {s.field.name for s in slots}
        for name, (index, plan) in by_name.items():
            if name in matched.values():
                continue
            out_name = sanitize(name) if sanitize(name) not in taken else name
            self._change("column_added", name, None, plan.column.column_type)
            slots.append(
                Slot(
                    pa.field(out_name, plan.arrow_type),
                    "data",
                    name,
                    index,
                    route(plan.column, plan.arrow_type, plan.arrow_type),
                )
            )
        self._resolve(policy)
        self.slots = slots
        self.schema = pa.schema([s.field for s in slots])

    def _change(self, kind: str, column: str, stored: str | None, live: str | None) -> None:
        self._changes.append((kind, column, stored, live))

    def _resolve(self, policy: DriftPolicy) -> None:
        for kind, column, stored, live in self._changes:
            action, key = policy.resolve(self.table, kind)
            self.drift.append(
                CompatDrift(kind, column, action, stored=stored, live=live, policy_key=key)
            )
        failed = [d for d in self.drift if d.action == "fail"]
        if failed:
            listed = "; ".join(f"{d.kind} {d.column}" for d in failed)
            raise SchemaDrift(
                f"the live columns differ from the output schema {self.path}: "
                f"{listed} (policy: fail)",
                table=self.table,
                step=Step.COMPAT,
            )

    # -- per batch ---------------------------------------------------------------------------
    def convert(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """One batch of the exact contract in the output schema; counts what changed."""
        n = batch.num_rows
        arrays: list[pa.Array | None] = []
        entries: list[tuple[pa.Array, str, str, str]] = []
        for slot in self.slots:
            if slot.role != "data":
                arrays.append(None)
            elif slot.index is None or slot.route is None:
                arrays.append(pa.nulls(n, slot.field.type))
            else:
                out, changes = slot.route.apply(batch.column(slot.index))
                for mask, change, reason in changes:
                    mask = pc.fill_null(mask, False)
                    count = int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)
                    if count:
                        self.converted[slot.field.name] += count
                        entries.append((mask, slot.source or slot.field.name, change, reason))
                arrays.append(out if out.type == slot.field.type else out.cast(slot.field.type))
        filled = [
            a if a is not None else self._metadata(s, n, entries)
            for s, a in zip(self.slots, arrays, strict=True)
        ]
        return pa.RecordBatch.from_arrays(filled, schema=self.schema)

    def _metadata(
        self, slot: Slot, n: int, entries: list[tuple[pa.Array, str, str, str]]
    ) -> pa.Array:
        t = slot.field.type
        if slot.role in ("ab_id", "raw_id"):
            if pa.types.is_fixed_size_binary(t) and t.byte_width == 16:
                return kernels.uuid4(n, as_bytes=True)
            if pa.types.is_string(t) or pa.types.is_large_string(t):
                return kernels.uuid4(n).cast(t)
        if slot.role in ("emitted_at", "extracted_at"):
            if pa.types.is_timestamp(t):
                per_unit = {"s": 1_000_000, "ms": 1_000, "us": 1}.get(t.unit)
                if per_unit is not None:
                    return pc.cast(_constant(n, self._micros // per_unit), t)
            if pa.types.is_integer(t):  # 1.x writes epoch milliseconds as a plain long
                return pc.cast(_constant(n, self._micros // 1_000), t)
        if slot.role == "generation_id" and pa.types.is_integer(t):
            return pc.cast(_constant(n, self._sync), t)
        if slot.role == "meta" and pa.types.is_struct(t):
            return self._meta(t, n, entries)
        if slot.role == "additional_properties" and not slot.field.nullable and pa.types.is_map(t):
            return pa.MapArray.from_arrays(
                pa.array(np.zeros(n + 1, np.int32)),
                pa.array([], t.key_type),
                pa.array([], t.item_type),
            )
        return pa.nulls(n, t)  # additional properties, and metadata we do not know

    def _meta(
        self, t: pa.StructType, n: int, entries: list[tuple[pa.Array, str, str, str]]
    ) -> pa.Array:
        children = []
        for member in t:
            if member.name == "sync_id" and pa.types.is_integer(member.type):
                children.append(pc.cast(_constant(n, self._sync), member.type))
            elif (
                member.name == "changes"
                and pa.types.is_list(member.type)
                and pa.types.is_struct(member.type.value_type)
            ):
                children.append(kernels.change_lists(n, entries, member.type))
            else:
                children.append(pa.nulls(n, member.type))
        return pa.StructArray.from_arrays(children, fields=list(t))

    # -- what the run records ---------------------------------------------------------------
    def manifest(self) -> CompatWrite:
        """The manifest's `compat` entry: the output schema, what each column's write was,
        the values changed per column, and the drift from the output schema."""
        return CompatWrite(
            era=self.output.era,
            output_schema=self.path,
            found=dict(self.output.found),
            columns=[
                CompatColumn(
                    s.field.name,
                    s.role,
                    str(s.field.type),
                    type_to_json(s.field.type),
                    s.route.kind if s.route else ("null" if s.role == "data" else "metadata"),
                    source=s.source,
                )
                for s in self.slots
            ],
            converted=dict(sorted(self.converted.items())),
            drift=list(self.drift),
        )


def _constant(n: int, value: int) -> pa.Array:
    return pa.array(np.full(n, value, np.int64))
