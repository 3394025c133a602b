"""Every key under the destination root: the one module that knows the layout.

    <root>/<prefix>/<table>/cog_dt_ingestion=<date>/file_<table>_NNN.parquet   data
    <root>/_radar_extract/staging/<run_id>/<table>/...                       not yet published
    <root>/_radar_extract/manifests/<table>/cog_dt_ingestion=<date>.json     one per partition
    <root>/_radar_extract/journal/<table>/cog_dt_ingestion=<date>.json       a publish under way
    <root>/_radar_extract/locks/<table>/cog_dt_ingestion=<date>.json         its one writer
    <root>/_radar_extract/runs/<run_id>.json                                 run reports
    <root>/_radar_extract/reports/<date>.json                                merged report of a date
    <root>/_radar_extract/plans/<date>.json                                  a date's saved plan
    <root>/_radar_extract/validation/<date>.json                             its last validation
    <root>/_radar_extract/probes/<run_id>.probe                              write probes
    <root>/_radar_extract/migrations/<table>/<migration_id>.json             a migrate's report
    <root>/_radar_extract/migrations/<table>/exact.json                      its switch to exact

Only data files live under a table's location: Athena reads every object there, so
everything else is under `_radar_extract/`, outside the crawler's path. `recover()`,
`--resume` and `report merge` find files that earlier releases wrote by these keys: a key
that changes here strands them (tests/unit/test_keys.py holds each one).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

INTERNAL = "_radar_extract"
PARTITION = "cog_dt_ingestion"


@dataclass(frozen=True)
class Keys:
    """The keys under one root: a bucket path or a local directory (then the keys are
    paths), or a root URL such as `s3://bucket` (then they are URLs)."""

    root: str
    prefix: str  # the data prefix, e.g. origin=airbyte/database=bronze_radar

    # -- data -----------------------------------------------------------------------------
    def data_root(self) -> str:
        """The folder of every table's location."""
        return posixpath.join(self.root, self.prefix).rstrip("/")

    def table_dir(self, table: str) -> str:
        """A table's location: its partitions' folder (the Glue table's location)."""
        return posixpath.join(self.root, self.prefix, table)

    def data_dir(self, table: str, date: str) -> str:
        return posixpath.join(self.table_dir(table), f"{PARTITION}={date}")

    def partition_of(self, key: str) -> tuple[str, str] | None:
        """(table, date) of a key inside a partition (a data file, or an upload to one);
        None for a key elsewhere."""
        root = self.data_root() + "/"
        if not key.startswith(root):
            return None
        table, _, rest = key[len(root) :].partition("/")
        partition, slash, _ = rest.partition("/")
        name, _, date = partition.partition("=")
        return (table, date) if table and slash and name == PARTITION and date else None

    # -- ours -------------------------------------------------------------------------------
    def internal(self) -> str:
        """The folder of everything that is not data."""
        return posixpath.join(self.root, INTERNAL)

    def staging(self, run_id: str, table: str | None = None) -> str:
        """A run's staging folder, or one table's within it."""
        run_dir = posixpath.join(self.internal(), "staging", run_id)
        return run_dir if table is None else posixpath.join(run_dir, table)

    def staging_root(self) -> str:
        return posixpath.join(self.internal(), "staging")

    def manifests(self, table: str | None = None) -> str:
        """The folder of every manifest, or of one table's."""
        folder = posixpath.join(self.internal(), "manifests")
        return folder if table is None else posixpath.join(folder, table)

    def manifest(self, table: str, date: str) -> str:
        return self._partition_file("manifests", table, date)

    def journals(self) -> str:
        return posixpath.join(self.internal(), "journal")

    def journal(self, table: str, date: str) -> str:
        return self._partition_file("journal", table, date)

    def lock(self, table: str, date: str) -> str:
        """The lock of a table and date (extractor/sink/lock.py): who writes it, until when."""
        return self._partition_file("locks", table, date)

    @staticmethod
    def table_of(partition_file: str) -> str:
        """The table of a per-partition key (manifest, journal): its folder's name."""
        return posixpath.basename(posixpath.dirname(partition_file))

    def runs(self) -> str:
        return posixpath.join(self.internal(), "runs")

    def run_report(self, run_id: str) -> str:
        return posixpath.join(self.runs(), f"{run_id}.json")

    def is_run_report_of(self, key: str, date: str) -> bool:
        """Whether `key` (under `runs()`) names a run report of `date`: run ids start with it."""
        name = posixpath.basename(key)
        return name.startswith(f"{date}_") and name.endswith(".json")

    def merged_report(self, date: str) -> str:
        return posixpath.join(self.internal(), "reports", f"{date}.json")

    def plan(self, date: str) -> str:
        return posixpath.join(self.internal(), "plans", f"{date}.json")

    def validation(self, date: str) -> str:
        return posixpath.join(self.internal(), "validation", f"{date}.json")

    def probe(self, run_id: str) -> str:
        return posixpath.join(self.internal(), "probes", f"{run_id}.probe")

    def migrations(self, table: str) -> str:
        """The folder of a table's migrate reports and its switch (extractor/compat/)."""
        return posixpath.join(self.internal(), "migrations", table)

    def migration_report(self, table: str, migration_id: str) -> str:
        return posixpath.join(self.migrations(table), f"{migration_id}.json")

    def migration_state(self, table: str) -> str:
        """The switch: every partition of the table is exact (a compatible write then
        writes it exact)."""
        return posixpath.join(self.migrations(table), "exact.json")

    def _partition_file(self, kind: str, table: str, date: str) -> str:
        """`<kind>/<table>/cog_dt_ingestion=<date>.json`: one file per table and date."""
        return posixpath.join(self.internal(), kind, table, f"{PARTITION}={date}.json")
