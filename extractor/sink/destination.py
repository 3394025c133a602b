"""The destination root, local or S3, through fsspec, and the file operations under it.

The keys under the root are built by `keys` (extractor/sink/keys.py), and nowhere else. Only
data files live under a table's location: Athena reads every object there. On S3 a file's
parts are uploaded to its final key in the partition, where a multipart upload stays
invisible until it is completed (extractor/sink/multipart.py).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from extractor.config import Settings
from extractor.errors import DestinationError, DestinationUnavailable, ExtractError, Step
from extractor.sink.keys import Keys


class Destination:
    """Keys and file operations under the configured root."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.is_s3 = settings.dest_is_s3
        if self.is_s3:
            import s3fs

            client_kwargs: dict[str, Any] = {}
            if settings.s3_endpoint_url:
                client_kwargs["endpoint_url"] = settings.s3_endpoint_url
            # Credentials only from the standard chain (environment, profile, task role).
            # Retries must not multiply: a table that fails with a transient S3 error is
            # itself retried from a fresh read (extractor/run/retry.py, 3 attempts). botocore's
            # default (legacy mode, 5 attempts per request), under s3fs's own loop (5 tries
            # for timeouts, connection errors and SlowDown; a class attribute, not settable
            # here), would make up to 25 requests per call, 75 per table. Standard mode with
            # 2 attempts in total keeps one quick, jittered retry for an isolated 5xx or
            # throttle and hands a lasting fault to the table retry: at most 2 x 5 x 3.
            self.fs: Any = s3fs.S3FileSystem(
                client_kwargs=client_kwargs,
                use_listings_cache=False,
                config_kwargs={"retries": {"total_max_attempts": 2, "mode": "standard"}},
            )
            self.root = settings.dest[len("s3://") :].rstrip("/")
        else:
            from fsspec.implementations.local import LocalFileSystem

            self.fs = LocalFileSystem(auto_mkdir=True)
            self.root = os.path.abspath(settings.dest)
        self.keys = Keys(self.root, settings.prefix)

    def url(self, path: str) -> str:
        """A path as a person would type it."""
        return f"s3://{path}" if self.is_s3 else path

    # -- operations ---------------------------------------------------------------------
    def put(self, local_path: str, path: str) -> None:
        with self.errors(Step.UPLOAD, path):
            self.fs.put_file(local_path, path)

    def move_or_copy(self, src: str, dst: str) -> None:
        """Local: an atomic rename. S3: a server-side copy (the staging copy is removed later)."""
        with self.errors(Step.PUBLISH, dst):
            if self.is_s3:
                self.fs.copy(src, dst)
            else:
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                os.replace(src, dst)

    def list_files(self, directory: str, *, recursive: bool = False) -> list[str]:
        with self.errors(Step.LIST, directory):
            try:
                if recursive:
                    return sorted(self.fs.find(directory))
                entries = self.fs.ls(directory, detail=True)
            except FileNotFoundError:
                return []
        return sorted(e["name"] for e in entries if e.get("type") == "file")

    def list_dirs(self, directory: str) -> list[str]:
        with self.errors(Step.LIST, directory):
            try:
                entries = self.fs.ls(directory, detail=True)
            except FileNotFoundError:
                return []
        return sorted(e["name"] for e in entries if e.get("type") == "directory")

    def exists(self, path: str) -> bool:
        with self.errors(Step.LIST, path):
            return bool(self.fs.exists(path))

    def size(self, path: str) -> int:
        with self.errors(Step.VERIFY, path):
            return int(self.fs.size(path))

    def remove(self, paths: list[str], *, step: Step = Step.REMOVE) -> None:
        if paths:
            with self.errors(step, paths[0]):
                self.fs.rm(paths)

    def remove_tree(self, directory: str) -> None:
        with self.errors(Step.CLEANUP, directory), contextlib.suppress(FileNotFoundError):
            self.fs.rm(directory, recursive=True)

    def write_text(self, path: str, text: str, *, step: Step = Step.WRITE) -> None:
        with self.errors(step, path):
            # Local writes go through a temporary name so a reader never sees half a file.
            tmp = path if self.is_s3 else f"{path}.tmp-{os.getpid()}"
            with self.fs.open(tmp, "w", encoding="utf-8") as handle:
                handle.write(text)
            if not self.is_s3:
                os.replace(tmp, path)

    def read_text(self, path: str) -> str | None:
        with self.errors(Step.READ, path):
            try:
                with self.fs.open(path, "r", encoding="utf-8") as handle:
                    return str(handle.read())
            except FileNotFoundError:
                return None

    # -- S3 multipart uploads (extractor/sink/multipart.py) ----------------------------------
    def create_upload(self, path: str) -> str:
        """Start a multipart upload of `path`; returns its upload id."""
        bucket, key = path.split("/", 1)
        with self.errors(Step.UPLOAD, path):
            response = self.fs.call_s3("create_multipart_upload", Bucket=bucket, Key=key)
        return str(response["UploadId"])

    def upload_part(self, path: str, upload_id: str, number: int, data: bytes) -> str:
        """Upload part `number` (1-based); returns its ETag."""
        bucket, key = path.split("/", 1)
        with self.errors(Step.UPLOAD, path):
            response = self.fs.call_s3(
                "upload_part",
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
            )
        return str(response["ETag"])

    def complete_upload(self, path: str, upload_id: str, parts: list[tuple[int, str]]) -> bool:
        """Complete the upload: `path` becomes the whole object at once. False if the upload
        is gone (completed already, or aborted): the caller tells which from the object."""
        bucket, key = path.split("/", 1)
        body = {"Parts": [{"PartNumber": number, "ETag": etag} for number, etag in parts]}
        with self.errors(Step.PUBLISH, path):
            try:
                self.fs.call_s3(
                    "complete_multipart_upload",
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload=body,
                )
            except OSError as exc:
                if error_code(exc) == "NoSuchUpload":
                    return False
                raise
        return True

    def abort_upload(self, path: str, upload_id: str) -> None:
        """Abort the upload and free its parts; one already gone is fine."""
        bucket, key = path.split("/", 1)
        with self.errors(Step.CLEANUP, path):
            try:
                self.fs.call_s3(
                    "abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload_id
                )
            except OSError as exc:
                if not isinstance(exc, FileNotFoundError) and error_code(exc) != "NoSuchUpload":
                    raise

    def list_uploads(self, directory: str) -> list[tuple[str, str, datetime]]:
        """(path, upload id, initiated) of every multipart upload in progress under
        `directory`; such uploads are invisible to every other listing."""
        bucket, _, prefix = directory.partition("/")
        found: list[tuple[str, str, datetime]] = []
        page: dict[str, str] = {}
        with self.errors(Step.LIST, directory):
            while True:
                response = self.fs.call_s3(
                    "list_multipart_uploads",
                    Bucket=bucket,
                    Prefix=f"{prefix}/" if prefix else "",
                    **page,
                )
                found.extend(
                    (f"{bucket}/{u['Key']}", str(u["UploadId"]), u["Initiated"])
                    for u in response.get("Uploads", [])
                )
                if not response.get("IsTruncated"):
                    return found
                page = {
                    "KeyMarker": response["NextKeyMarker"],
                    "UploadIdMarker": response["NextUploadIdMarker"],
                }

    def etag(self, path: str) -> tuple[str, int] | None:
        """(ETag, size) of an object; None if there is none."""
        with self.errors(Step.VERIFY, path):
            try:
                info = self.fs.info(path)
            except FileNotFoundError:
                return None
        return str(info.get("ETag", "")).strip('"'), int(info["size"])

    def probe(self, run_id: str) -> None:
        """Write and delete an object outside the data prefix: proves the destination works."""
        path = self.keys.probe(run_id)
        self.write_text(path, "radar-extract write probe\n", step=Step.PROBE)
        self.remove([path], step=Step.PROBE)

    @contextmanager
    def errors(self, step: Step, path: str, table: str | None = None) -> Iterator[None]:
        """Translate filesystem and S3 errors into ours, with the step and the key."""
        try:
            yield
        except ExtractError:
            raise
        except Exception as exc:
            raise translate(exc, step=step, where=self.url(path), table=table) from exc


def error_code(exc: BaseException) -> str | None:
    """The S3 error code behind an s3fs error (s3fs keeps the ClientError as the cause)."""
    seen: BaseException | None = exc
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            return str(response.get("Error", {}).get("Code"))
        seen = seen.__cause__
    return None


_REFUSED = re.compile(
    r"access ?denied|forbidden|invalidaccesskeyid|signaturedoesnotmatch|"
    r"nosuchbucket|no credentials|unable to locate credentials|"
    r"expiredtoken|read-only file system|permission denied",
    re.I,
)
_TRANSIENT = re.compile(
    r"slowdown|throttl|internalerror|serviceunavailable|timeout|timed out|"
    r"connection (reset|refused|aborted)|503|500|502|504",
    re.I,
)


def translate(exc: BaseException, *, step: Step, where: str, table: str | None) -> ExtractError:
    detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:400]
    if isinstance(exc, PermissionError) or _REFUSED.search(detail):
        return DestinationUnavailable(
            f"destination {where} refused {step}: {detail}", table=table, step=step
        )
    transient = bool(_TRANSIENT.search(detail))
    if step in (Step.PROBE, Step.WRITE) and isinstance(exc, OSError) and not transient:
        return DestinationUnavailable(
            f"destination {where} is not writable: {detail}", table=table, step=step
        )
    return DestinationError(
        f"destination {where} failed at {step}: {detail}",
        table=table,
        step=step,
        transient=transient,
    )
