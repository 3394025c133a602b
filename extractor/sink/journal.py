"""The journal entry of a publish under way (keys.journal): written before the first key of
the partition changes, removed after its manifest. A run killed in between leaves it, and
the next run's `recover()` rolls that publish forward from it: the verified staged files,
their sizes, the open S3 multipart uploads to complete, and the manifest to write last. One
reader, one writer, a `format`.

Format 2 added `uploads` (a publish to S3). A release that reads only format 1 would roll
such an entry forward without completing its uploads, so it must refuse it; an entry with no
uploads (a local publish) is still written as format 1, which every release reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from extractor.sink.formats import (
    as_dict,
    as_int,
    as_list,
    as_str,
    as_strs,
    dumps,
    loads,
    reading,
)
from extractor.sink.manifest import Manifest
from extractor.sink.multipart import Part, PendingUpload

FORMAT = 2
_STAGED_ONLY = 1  # the format of an entry without uploads
WHAT = "journal entry"


@dataclass(frozen=True)
class Journal:
    table: str
    date: str
    manifest: Manifest
    staged: list[str] = field(default_factory=list)  # staged keys, in the order to move
    bytes: list[int] = field(default_factory=list)  # each staged file's size
    uploads: list[PendingUpload] = field(default_factory=list)  # S3: to complete, in order

    def to_dict(self) -> dict[str, Any]:
        data = {
            "format": FORMAT if self.uploads else _STAGED_ONLY,
            "table": self.table,
            "date": self.date,
            "staged": list(self.staged),
            "bytes": list(self.bytes),
            "manifest": self.manifest.to_dict(),
        }
        if self.uploads:
            data["uploads"] = [_upload_dict(u) for u in self.uploads]
        return data

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
            return cls(
                table=as_str(data["table"]),
                date=as_str(data["date"]),
                manifest=Manifest.from_dict(data["manifest"], where),
                staged=staged,
                bytes=sizes,
                uploads=[_upload(as_dict(u)) for u in as_list(data.get("uploads", []))],
            )


def _upload_dict(upload: PendingUpload) -> dict[str, Any]:
    return {
        "key": upload.key,
        "upload_id": upload.upload_id,
        "bytes": upload.bytes,
        "parts": [{"number": p.number, "etag": p.etag, "bytes": p.bytes} for p in upload.parts],
    }


def _upload(data: dict[str, Any]) -> PendingUpload:
    parts = tuple(
        Part(as_int(p["number"]), as_str(p["etag"]), as_int(p["bytes"]))
        for p in map(as_dict, as_list(data["parts"]))
    )
    return PendingUpload(
        as_str(data["key"]), as_str(data["upload_id"]), parts, as_int(data["bytes"])
    )
