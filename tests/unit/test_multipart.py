"""The pure parts of the multipart protocol: part sizes, the journal form of an upload, and
how a completed upload is told from another object at its key."""

from __future__ import annotations

import hashlib

from extractor.sink.multipart import (
    MAX_PARTS,
    MIB,
    PART_BYTES,
    Part,
    PendingUpload,
    _made_by,
    part_bytes,
)


def _upload(*sizes: int) -> PendingUpload:
    parts = tuple(
        Part(n, f'"{hashlib.md5(bytes([n])).hexdigest()}"', size)
        for n, size in enumerate(sizes, start=1)
    )
    return PendingUpload(
        "bucket/p/t/cog_dt_ingestion=2024-05-01/file_t_001.parquet", "id-1", parts, sum(sizes)
    )


def test_parts_are_8_mib_unless_the_largest_file_needs_more_than_9000() -> None:
    assert part_bytes(1024 * MIB, 96 * MIB) == PART_BYTES == 8 * MIB
    big = part_bytes(65536 * MIB, 4096 * MIB)  # the largest settings allow
    assert big % MIB == 0 and (65536 + 4096) * MIB / big <= 9_000 < MAX_PARTS
    assert big >= 5 * MIB  # S3's minimum for every part but the last


def test_the_composite_etag_is_s3s() -> None:
    upload = _upload(8 * MIB, 3)
    digests = b"".join(bytes.fromhex(p.etag.strip('"')) for p in upload.parts)
    assert upload.composite_etag() == f"{hashlib.md5(digests).hexdigest()}-2"


def test_an_object_is_the_uploads_only_with_its_etag_and_size() -> None:
    upload = _upload(8 * MIB, 3)
    assert _made_by(upload, upload.composite_etag(), upload.bytes)
    assert not _made_by(upload, upload.composite_etag(), upload.bytes - 1)
    assert not _made_by(upload, "0" * 32 + "-2", upload.bytes)  # another multipart object
    assert not _made_by(upload, "0" * 32, upload.bytes)  # a plain PUT
    # SSE-KMS: part ETags are no MD5s, so neither is the object's; the part count must match.
    kms = PendingUpload(
        upload.key,
        upload.upload_id,
        tuple(Part(p.number, "kms-" + p.etag, p.bytes) for p in upload.parts),
        upload.bytes,
    )
    assert _made_by(kms, "anything-2", kms.bytes) and not _made_by(kms, "anything-3", kms.bytes)
