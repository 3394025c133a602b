"""Small records for tests that need a valid file of ours but not its particulars."""

from __future__ import annotations

from extractor.sink.manifest import Manifest, SourceRead


def manifest(run_id: str, rows: int, table: str = "store", date: str = "2024-05-01") -> Manifest:
    return Manifest(
        table=table,
        date=date,
        run_id=run_id,
        engine="radar-extract test",
        published_at="2024-05-01T02:00:00+00:00",
        rows=rows,
        bytes=0,
        source=SourceRead("db", rows, rows),
    )
