"""An old partition as migrate sees it: who wrote it, its columns matched to the stored
schema's, and the conversion of each back to the exact contract; counting per batch.

Who wrote a partition comes from our manifest: none (Airbyte, or another tool), one with a
`compat` entry (`extract --compat airbyte`), or one without (exact already). The old columns
are matched to the stored schema's MySQL columns by the name a compatible write (or `compat
inspect`) recorded as the column's `source`, then by the same name, then by Airbyte's
sanitized name; Airbyte's metadata columns are dropped, and so is a data column MySQL no
longer has (listed). What is known about changed values comes from the partition itself:
the 1.x era's `_airbyte_meta.changes` per row, a compatible write's counts per column; the
legacy era records nothing.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from extractor.compat.airbyte import NULLED, TRUNCATED, Era, era_of, role_of, sanitize
from extractor.compat.migration import CLASSES, ColumnCounts, ColumnResult, WrittenBy
from extractor.compat.reverse import Reverse, reverse
from extractor.contract.types import Column, ColumnPlan
from extractor.drift.store import StoredSchema
from extractor.errors import FormatError, SchemaDrift, Step
from extractor.sink.destination import Destination
from extractor.sink.keys import PARTITION
from extractor.sink.manifest import CompatWrite, Manifest

META = "_airbyte_meta"
_READ_BUFFER = 8 * 1024 * 1024  # stream column chunks: memory follows the batch, not the file
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class OldPartition:
    date: str
    files: list[str]  # the data files (.parquet), sorted
    manifest: Manifest | None
    written_by: WrittenBy

    @property
    def compat(self) -> CompatWrite | None:
        return None if self.manifest is None else self.manifest.compat


def partition_dates(
    destination: Destination, table: str, since: str | None = None, until: str | None = None
) -> list[str]:
    """The dates of the table's partitions in [since, until], oldest first."""
    folder = f"{PARTITION}="
    dates = [
        posixpath.basename(d)[len(folder) :]
        for d in destination.list_dirs(destination.keys.table_dir(table))
        if posixpath.basename(d).startswith(folder)
    ]
    return sorted(
        d
        for d in dates
        if _DATE.match(d) and (since is None or d >= since) and (until is None or d <= until)
    )


def classify(destination: Destination, table: str, date: str) -> OldPartition:
    path = destination.keys.manifest(table, date)
    text = destination.read_text(path)
    files = [
        f
        for f in destination.list_files(destination.keys.data_dir(table, date))
        if f.endswith(".parquet")
    ]
    manifest = None
    if text is not None:
        try:
            manifest = Manifest.from_json(text, destination.url(path))
        except FormatError as exc:  # damaged, or a later release's: never guessed
            raise FormatError(
                f"{exc.message}; cannot tell who wrote the partition",
                table=table,
                step=Step.MIGRATE,
            ) from exc
    if manifest is not None:
        written: WrittenBy = "compat" if manifest.compat is not None else "radar-extract"
    else:
        written = "airbyte" if files else "none"
    return OldPartition(date, files, manifest, written)


@dataclass(frozen=True)
class Slot:
    plan: ColumnPlan
    old: str | None  # None: the old partition has no such column
    found: pa.DataType | None = None
    route: Reverse | None = None
    known: int = 0  # values a compatible write changed, by its manifest (legacy era)


@dataclass
class PartitionPlan:
    era: Era
    slots: list[Slot]
    dropped: list[str]
    recorded: bool  # `_airbyte_meta.changes` says which values were changed
    compat: bool
    counts: list[ColumnCounts] = field(default_factory=list)

    @property
    def read_columns(self) -> list[str]:
        names = [s.old for s in self.slots if s.old is not None]
        return [*names, META] if self.recorded else names


def plan_partition(
    old: OldPartition,
    schema: pa.Schema,
    plans: list[ColumnPlan],
    sources: dict[str, str],
    table: str,
) -> PartitionPlan:
    """The conversion of every stored column from this partition's columns; a column with
    no conversion fails the partition before anything is read."""
    era = era_of(schema.names)
    written = old.compat
    compat = written is not None
    if written is not None:  # the compatible write recorded what each of its columns holds
        sources = {c.name: c.source for c in written.columns if c.source}
    data = [n for n in schema.names if role_of(n) == "data"]
    matched = match_columns(data, [p.name for p in plans], sources)
    converted = dict(written.converted) if written is not None else {}
    recorded = era == "1.x" and META in schema.names and _has_changes(schema.field(META).type)
    slots, refused = [], []
    for p in plans:
        name = matched.get(p.name)
        if name is None:
            slots.append(Slot(p, None))
            continue
        found = schema.field(name).type
        chosen = reverse(p.column, p.arrow_type, found)
        if chosen.kind == "unsupported":
            refused.append(f"{p.name} ({chosen.how})")
        known = converted.get(name, 0) if compat and not recorded and not _geometry(p) else 0
        slots.append(Slot(p, name, found, chosen, known))
    if refused:
        raise SchemaDrift(
            f"cog_dt_ingestion={old.date}: no conversion back to the contract "
            f"for {'; '.join(refused)}",
            table=table,
            step=Step.MIGRATE,
        )
    dropped = [n for n in data if n not in matched.values()]
    return PartitionPlan(era, slots, dropped, recorded, compat, [ColumnCounts() for _ in slots])


def match_columns(old: list[str], stored: list[str], sources: dict[str, str]) -> dict[str, str]:
    """Stored (MySQL) column -> old column, each old column used once."""
    free = list(old)
    matched: dict[str, str] = {}
    rules: tuple[Callable[[str, str], bool], ...] = (
        lambda o, m: sources.get(o) == m,
        lambda o, m: o == m,
        lambda o, m: o == sanitize(m),
    )
    for rule in rules:
        for name in stored:
            if name in matched:
                continue
            hit = next((o for o in free if rule(o, name)), None)
            if hit is not None:
                matched[name] = hit
                free.remove(hit)
    return matched


def _has_changes(t: pa.DataType) -> bool:
    if not pa.types.is_struct(t) or t.get_field_index("changes") < 0:
        return False
    changes = t.field("changes").type
    return (
        pa.types.is_list(changes)
        and pa.types.is_struct(changes.value_type)
        and all(changes.value_type.get_field_index(k) >= 0 for k in ("field", "change"))
    )


def _geometry(p: ColumnPlan) -> bool:
    # A compatible write counted every GEOMETRY value, though its text is the contract's WKB.
    return p.column.data_type in (
        "geometry",
        "point",
        "linestring",
        "polygon",
        "multipoint",
        "multilinestring",
        "multipolygon",
        "geometrycollection",
        "geomcollection",
    )


def footer(destination: Destination, path: str) -> tuple[pa.Schema, int]:
    """The Arrow schema and the rows of one old file, from its footer."""
    with destination.errors(Step.READ, path), destination.fs.open(path, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        return parquet.schema_arrow, int(parquet.metadata.num_rows)


def batches(
    destination: Destination,
    old: OldPartition,
    columns: list[str],
    batch_rows: int,
    batch_bytes: int,
    schema: pa.Schema,
    table: str,
) -> Iterator[pa.RecordBatch]:
    """Every row of the partition's files, in batches of the columns read: at most
    `batch_rows` rows, and about `batch_bytes` of them by the footer's sizes."""
    for path in old.files:
        with (
            destination.errors(Step.READ, path, table=table),
            destination.fs.open(path, "rb") as handle,
        ):
            parquet = pq.ParquetFile(handle, buffer_size=_READ_BUFFER, pre_buffer=False)
            found = parquet.schema_arrow
            if found.names != schema.names or found.types != schema.types:
                raise SchemaDrift(
                    f"cog_dt_ingestion={old.date}: {posixpath.basename(path)} "
                    f"has other columns than {posixpath.basename(old.files[0])}",
                    table=table,
                    step=Step.MIGRATE,
                )
            rows = batch_size(parquet.metadata, columns, batch_rows, batch_bytes)
            yield from parquet.iter_batches(batch_size=rows, columns=columns)


def batch_size(
    metadata: pq.FileMetaData, columns: list[str], batch_rows: int, batch_bytes: int
) -> int:
    """Rows per batch: `batch_bytes` over the widest row group's bytes per row (uncompressed,
    of the columns read: about their Arrow size), at most `batch_rows`. Rows of base64 BLOBs
    can be megabytes wide; a count of rows alone would not bound the memory."""
    prefixes = tuple(f"{c}." for c in columns)  # a nested column's leaves: "meta.changes..."
    wanted = set(columns)
    widest = 0.0
    for i in range(metadata.num_row_groups):
        group = metadata.row_group(i)
        if group.num_rows == 0:
            continue
        leaves = (group.column(j) for j in range(group.num_columns))
        size = sum(
            leaf.total_uncompressed_size
            for leaf in leaves
            if leaf.path_in_schema in wanted or leaf.path_in_schema.startswith(prefixes)
        )
        widest = max(widest, size / group.num_rows)
    if widest <= 0:
        return batch_rows
    return max(1, min(batch_rows, int(batch_bytes // widest)))


# -- per batch -------------------------------------------------------------------------------
def convert(plan: PartitionPlan, batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """One batch of old columns in the exact contract; the plan's counts grow."""
    n = batch.num_rows
    changes = _changes(batch) if plan.recorded else None
    arrays = []
    for i, slot in enumerate(plan.slots):
        target = slot.plan.arrow_type
        if slot.old is None or slot.route is None:
            arrays.append(pa.nulls(n, target))
            plan.counts[i].add(ColumnCounts(rows=n, absent=n))
            continue
        out, marks = slot.route.apply(batch.column(slot.old))
        masks: dict[str, list[pa.Array]] = {}
        for mark, mask in marks:
            if plan.compat and mark in ("inexact", "possibly_lost", "not_guaranteed"):
                continue  # a compatible write counted every value it changed
            masks.setdefault(mark, []).append(mask)
        if slot.route.narrower and not plan.recorded and not plan.compat:
            masks.setdefault("possibly_lost", []).append(out.is_null())
        if changes is not None and not (plan.compat and _geometry(slot.plan)):
            for kind, mask in _recorded(changes, n, {slot.plan.name, slot.old}).items():
                masks.setdefault(kind, []).append(mask)
        plan.counts[i].add(_tally(n, masks))
        arrays.append(out if out.type == target else out.cast(target))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _tally(n: int, masks: dict[str, list[pa.Array]]) -> ColumnCounts:
    """Each cell in the first class that holds it; the rest exact."""
    counts = ColumnCounts(rows=n)
    taken: pa.Array | None = None
    for name in CLASSES:
        found = [pc.fill_null(m, False) for m in masks.get(name, [])]
        if not found:
            continue
        mask = found[0]
        for more in found[1:]:
            mask = pc.or_(mask, more)
        if taken is not None:
            mask = pc.and_not(mask, taken)
        setattr(counts, name, int(pc.sum(pc.cast(mask, pa.int8())).as_py() or 0))
        taken = mask if taken is None else pc.or_(taken, mask)
    counts.exact = n - sum(getattr(counts, c) for c in CLASSES)
    return counts


def _changes(batch: pa.RecordBatch) -> tuple[np.ndarray, pa.Array, pa.Array] | None:
    """Row, field and change of every `_airbyte_meta.changes` entry; None when there is none."""
    changes = pc.struct_field(batch.column(META), "changes")
    flat = pc.list_flatten(changes)
    if len(flat) == 0:
        return None
    rows = np.asarray(pc.list_parent_indices(changes).to_numpy(zero_copy_only=False))
    return rows, pc.struct_field(flat, "field"), pc.struct_field(flat, "change")


def _recorded(
    changes: tuple[np.ndarray, pa.Array, pa.Array] | None, n: int, names: set[str | None]
) -> dict[str, pa.Array]:
    """The rows whose change record names this column: NULLED lost, TRUNCATED inexact."""
    if changes is None:
        return {}
    rows, fields, kinds = changes
    named = pc.is_in(fields, value_set=pa.array(sorted(x for x in names if x), pa.string()))
    out = {}
    for mark, change in (("lost", NULLED), ("inexact", TRUNCATED)):
        hit = np.asarray(
            pc.fill_null(pc.and_(named, pc.equal(kinds, change)), False).to_numpy(
                zero_copy_only=False
            )
        )
        if hit.any():
            mask = np.zeros(n, bool)
            mask[rows[hit]] = True
            out[mark] = pa.array(mask)
    return out


def results(plan: PartitionPlan) -> list[ColumnResult]:
    """The columns' results, a compatible write's own counts of the legacy era added."""
    out = []
    for slot, counts in zip(plan.slots, plan.counts, strict=True):
        if slot.known:
            moved = min(slot.known, counts.exact)
            counts.lost += moved
            counts.exact -= moved
        route = slot.route
        out.append(
            ColumnResult(
                slot.plan.name,
                slot.old,
                None if slot.found is None else str(slot.found),
                str(slot.plan.arrow_type),
                "absent" if route is None else route.kind,
                "the old partition has no such column: NULL" if route is None else route.how,
                _counted(plan, slot),
                counts,
            )
        )
    return out


def _counted(plan: PartitionPlan, slot: Slot) -> str | None:
    if slot.route is None:
        return None
    if plan.compat:
        return "the values the compatible write changed (its manifest's count)"
    notes = [slot.route.counted] if slot.route.counted else []
    if slot.route.narrower and not plan.recorded:
        notes.append(
            "possibly lost: every NULL, since the old type could not hold every "
            "value and Airbyte wrote NULL for those without a record"
        )
    return "; ".join(notes) or None


def stored_columns(stored: StoredSchema) -> list[Column]:
    """The stored schema's columns as discovery would describe them."""
    out = []
    for c in stored.columns:
        numbers = [int(x) for x in re.findall(r"\d+", c.mysql_type.split(")")[0])]
        first, second = (numbers[0] if numbers else None), (numbers[1] if len(numbers) > 1 else 0)
        kind = c.data_type.lower()
        precision = scale = fraction = None
        if kind in ("decimal", "numeric"):  # MySQL's DECIMAL is DECIMAL(10,0)
            precision, scale = first or 10, second
        elif kind == "bit":
            precision = first or 1
        elif kind in ("datetime", "timestamp", "time"):
            fraction = first or 0
        out.append(
            Column(
                c.name, kind, c.mysql_type, c.nullable, precision, scale, fraction, c.has_default
            )
        )
    return out
