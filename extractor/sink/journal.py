"""The journal entry of a publish under way (keys.journal): written before the first key of
the partition changes, removed after its manifest. A run killed in between leaves it, and
the next run's `recover()` rolls that publish forward from it: the verified staged files,
their sizes, and the manifest to write last. One reader, one writer, a `format`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from extractor.sink.formats import as_int, as_list, as_str, as_strs, dumps, loads, reading
from extractor.sink.manifest import Manifest

FORMAT = 1
WHAT = "journal entry"


@dataclass(frozen=True)
class Journal:
    table: str
    date: str
    manifest: Manifest
    staged: list[str] = field(default_factory=list)  # staged keys, in the order to move
    bytes: list[int] = field(default_factory=list)  # each staged file's size

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "table": self.table, "date": self.date,
                "staged": list(self.staged), "bytes": list(self.bytes),
                "manifest": self.manifest.to_dict()}

    def to_json(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str, where: str) -> Journal:
        data = loads(text, WHAT, where, FORMAT)
        with reading(WHAT, where):
            staged = as_strs(data["staged"])
            sizes = [as_int(b) for b in as_list(data["bytes"])]
            if len(sizes) != len(staged):
                raise ValueError(f"{len(staged)} staged files but {len(sizes)} sizes")
            return cls(table=as_str(data["table"]), date=as_str(data["date"]),
                       manifest=Manifest.from_dict(data["manifest"], where),
                       staged=staged, bytes=sizes)
