"""S3: object keys, streamed uploads, presigned URLs."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from backdrop import aws
from backdrop.config import ResultUrlSettings
from backdrop.domain import (
    FORMATS,
    MAX_S3_KEY_BYTES,
    PUBLISHED_PREFIX,
    ImageSource,
    Job,
    ResultImage,
)

# Results are streamed in parts of this size: memory stays bounded whatever the image size.
_PART_SIZE = 8 * 1024 * 1024
_TRANSFER = TransferConfig(
    multipart_threshold=_PART_SIZE, multipart_chunksize=_PART_SIZE, max_concurrency=2
)


INBOX_PREFIX = "inbox/"
# The input bucket's folder for a catalogue the inbox should not start on its own: batches
# run over it (or over inbox/).
CATALOG_PREFIX = "catalog/"
OUTBOX_PREFIX = "outbox/"
MANIFEST_NAME = "manifest.json"
# Every result carries the id of the job that wrote it: a folder shared by the versions of
# one inbox image can tell this job's images from an earlier one's.
JOB_ID_METADATA = "job-id"
_RESULT_NAME = re.compile(r"^[0-9]+\.(?:" + "|".join(ext for ext, _ in FORMATS.values()) + r")$")
# The longest inbox key whose outbox folder S3 can hold: outbox/ is one byte longer than
# inbox/, the folder adds a "/", and the manifest is the longest name in it (a result is
# "<index>.<ext>", at most 6 bytes with count <= 10).
LONGEST_INBOX_KEY = (
    MAX_S3_KEY_BYTES - (len(OUTBOX_PREFIX) - len(INBOX_PREFIX)) - len("/") - len(MANIFEST_NAME)
)


def outbox_folder(key: str) -> str | None:
    """The folder under outbox/ that mirrors a source image, for the folders that are
    mirrored: inbox/spring/mug.png -> outbox/spring/mug.png/ (the file name whole, so a
    re-upload replaces its results and mug.png and mug.jpg do not share one), and
    catalog/shoes/a.png -> outbox/catalog/shoes/a.png/. None for any other key."""
    if key.startswith(INBOX_PREFIX):
        return f"{OUTBOX_PREFIX}{key.removeprefix(INBOX_PREFIX)}/"
    if key.startswith(CATALOG_PREFIX):
        return f"{OUTBOX_PREFIX}{key}/"
    return None


def outbox_misfit(key: str) -> str | None:
    """Why the results of the source image `key` cannot go beside it under outbox/, or None
    if they can (or if `key` is in no mirrored folder, so nothing is mirrored)."""
    folder = outbox_folder(key)
    size = len(key.encode())
    if folder is None or len((folder + MANIFEST_NAME).encode()) <= MAX_S3_KEY_BYTES:
        return None
    longest = MAX_S3_KEY_BYTES - (len(folder.encode()) - size) - len(MANIFEST_NAME)
    return (
        f"the key is {size} bytes; the longest that fits is {longest} bytes (S3 "
        f"takes keys of at most {MAX_S3_KEY_BYTES} bytes, and the results' folder under "
        f"{OUTBOX_PREFIX} would make a longer one)"
    )


def mirrors_source(job: Job) -> bool:
    """Whether the job's results go beside its source under outbox/ (inbox and batch jobs
    over stored images whose key fits), rather than under results/<job id>/."""
    key = job.source.key
    return (
        job.trigger in ("inbox", "batch")
        and key is not None
        and outbox_folder(key) is not None
        and outbox_misfit(key) is None
    )


def results_prefix(job: Job) -> str:
    """Where a job's results go: beside the source (outbox_folder) where it mirrors one,
    else under the job id."""
    if mirrors_source(job):
        assert job.source.key is not None
        folder = outbox_folder(job.source.key)
        assert folder is not None
        return folder
    return f"results/{job.id}/"


def result_key(job: Job, index: int) -> str:
    extension, _ = FORMATS[job.options.format]
    return f"{results_prefix(job)}{index}.{extension}"


def published_key(job: Job, result: ResultImage | None = None, given: str | None = None) -> str:
    """Where an approved result of `job` is published (ReviewMode=required): under
    published/, at `given` (the key a PIM expects, such as a SKU; domain.publish_key_refusal says
    which it may be), else at the source's path as the inbox mirrors it (inbox/spring/mug.png
    -> published/spring/mug.jpg, catalog/shoes/a.png -> published/catalog/shoes/a.jpg: the
    result's extension: the format it was stored in), else at the job's id, the first of its
    regenerations' (published/<job id>.jpg)."""
    if given is not None:
        return f"{PUBLISHED_PREFIX}{given}"
    extension, _ = FORMATS[job.options.format]
    if result is not None:
        extension = next(
            (e for e, kind in FORMATS.values() if kind == result.content_type), extension
        )
    folder = outbox_folder(job.source.key) if job.source.key else None
    if folder is None:
        return f"{PUBLISHED_PREFIX}{job.root_id or job.id}.{extension}"  # a line's first job
    path = folder.removeprefix(OUTBOX_PREFIX).removesuffix("/")
    stem = path.rsplit(".", 1)[0] if "." in path.rsplit("/", 1)[-1] else path
    return f"{PUBLISHED_PREFIX}{stem}.{extension}"


def manifest_key(job: Job) -> str:
    return f"{results_prefix(job)}{MANIFEST_NAME}"


def presigned_get(bucket: str, key: str, expires_in: int, version_id: str | None = None) -> str:
    # The version pins the job to the bytes it was created for, whatever came after.
    params = {"Bucket": bucket, "Key": key} | ({"VersionId": version_id} if version_id else {})
    return str(
        aws.client("s3").generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
    )


def result_url(settings: ResultUrlSettings, key: str) -> str:
    """A stored result's presigned URL, as callers get it (the API's views, webhooks)."""
    return presigned_get(settings.results_bucket, key, settings.result_url_expiry_seconds)


@dataclass(frozen=True)
class ViewUrls:
    """The presigned URLs a job's view shows (contracts/views.py): its results' and its
    photo's."""

    settings: ResultUrlSettings

    def result_url(self, key: str) -> str:
        return result_url(self.settings, key)

    def source_url(self, source: ImageSource) -> str | None:
        return source_url(source, self.settings.result_url_expiry_seconds)


def source_url(source: ImageSource, expires_in: int) -> str | None:
    """Where a reviewer sees a job's photo: its URL as given, or a presigned URL of the
    version of the object it was made from."""
    if source.url is not None:
        return source.url
    if source.bucket is None or source.key is None:
        return None
    return presigned_get(source.bucket, source.key, expires_in, source.version_id)


def publish(results_bucket: str, result: ResultImage, bucket: str, key: str, job_id: str) -> None:
    """Copy an approved result to its published key in `bucket` (replacing what was there;
    the versioned bucket keeps it), labelled with the job it came from."""
    aws.client("s3").copy_object(
        Bucket=bucket,
        Key=key,
        CopySource={"Bucket": results_bucket, "Key": result.key},
        MetadataDirective="REPLACE",
        Metadata={JOB_ID_METADATA: job_id},
        ContentType=result.content_type,
    )


def unpublish(bucket: str, key: str) -> None:
    """Remove a published object (the versioned bucket keeps it as a noncurrent version)."""
    aws.client("s3").delete_object(Bucket=bucket, Key=key)


def head_object(bucket: str, key: str, version_id: str | None = None) -> dict[str, Any] | None:
    """The object's HeadObject answer, or None if it does not exist."""
    extra = {"VersionId": version_id} if version_id else {}
    try:
        return dict(aws.client("s3").head_object(Bucket=bucket, Key=key, **extra))
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NoSuchVersion"):
            return None
        raise


def object_metadata(bucket: str, key: str, version_id: str | None) -> dict[str, str] | None:
    """The object's user metadata (x-amz-meta-*), or None if it no longer exists."""
    head = head_object(bucket, key, version_id)
    return None if head is None else dict(head.get("Metadata", {}))


def object_size(bucket: str, key: str, version_id: str | None) -> int | None:
    """The object's size in bytes, or None if it does not exist."""
    head = head_object(bucket, key, version_id)
    return None if head is None else int(head["ContentLength"])


def read_object(bucket: str, key: str, version_id: str | None = None) -> bytes:
    extra = {"VersionId": version_id} if version_id else {}
    return bytes(aws.client("s3").get_object(Bucket=bucket, Key=key, **extra)["Body"].read())


def read_object_head(bucket: str, key: str, version_id: str | None, length: int) -> bytes:
    """The first `length` bytes of an object (all of it, if it is shorter)."""
    extra = {"VersionId": version_id} if version_id else {}
    answer = aws.client("s3").get_object(
        Bucket=bucket, Key=key, Range=f"bytes=0-{length - 1}", **extra
    )
    return bytes(answer["Body"].read())


class _StreamReader(io.RawIOBase):
    """A file-like view of an httpx byte stream, for boto3's upload_fileobj."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        self.size += n
        return n


def upload_stream(
    chunks: Iterator[bytes],
    *,
    bucket: str,
    key: str,
    content_type: str,
    metadata: dict[str, str] | None = None,
) -> int:
    """Write a stream of bytes to S3 in parts; returns the size written."""
    reader = _StreamReader(chunks)
    aws.client("s3").upload_fileobj(
        io.BufferedReader(reader, buffer_size=256 * 1024),
        bucket,
        key,
        ExtraArgs={"ContentType": content_type, "Metadata": metadata or {}},
        Config=_TRANSFER,
    )
    return reader.size


def describe_result(bucket: str, key: str, index: int) -> ResultImage:
    """A stored result as the job records it (the seed travels in the object's metadata)."""
    head = aws.client("s3").head_object(Bucket=bucket, Key=key)
    seed = head.get("Metadata", {}).get("seed")
    return ResultImage(
        index=index,
        key=key,
        content_type=head["ContentType"],
        size=head["ContentLength"],
        seed=int(seed) if seed else None,
    )


def stored_by_job(bucket: str, prefix: str, keys: list[str], job_id: str) -> set[str]:
    """Which of `keys` (all under `prefix`) this job has written already: a retried task
    skips them. An image left by another job, such as an earlier version of the same inbox
    image, does not count. Listed first, so only objects that exist are asked about."""
    listed = _direct_children(bucket, prefix) & set(keys)
    return {
        key
        for key in listed
        if (head_object(bucket, key, None) or {}).get("Metadata", {}).get(JOB_ID_METADATA) == job_id
    }


def _direct_children(bucket: str, prefix: str) -> set[str]:
    pages = (
        aws.client("s3")
        .get_paginator("list_objects_v2")
        .paginate(Bucket=bucket, Prefix=prefix, Delimiter="/")
    )
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def remove_other_results(bucket: str, prefix: str, keep: set[str]) -> list[str]:
    """Delete the result images directly under `prefix` that are not in `keep` (those of an
    earlier version, e.g. one with a larger count); returns the keys deleted. Nothing but
    result images is touched: not the manifest, not a deeper folder."""
    s3 = aws.client("s3")
    stale = sorted(
        key
        for key in _direct_children(bucket, prefix) - keep
        if _RESULT_NAME.match(key.removeprefix(prefix))
    )
    for start in range(0, len(stale), 1000):  # DeleteObjects takes 1000 keys at a time
        batch = [{"Key": key} for key in stale[start : start + 1000]]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    return stale


def put_json(bucket: str, key: str, body: str) -> None:
    put_bytes(bucket, key, body.encode(), "application/json")


def put_bytes(bucket: str, key: str, data: bytes, content_type: str) -> str | None:
    """Store a small object; returns its version id (None in an unversioned bucket)."""
    answer = aws.client("s3").put_object(
        Bucket=bucket, Key=key, Body=data, ContentType=content_type
    )
    version = answer.get("VersionId")
    return str(version) if version else None


def presigned_post(
    bucket: str, key: str, *, content_type: str, sizes: tuple[int, int], expires_in: int
) -> tuple[str, dict[str, str]]:
    """A browser-style upload form for one object: S3 itself refuses another content type
    or a size outside `sizes` (inclusive), whatever the client sends. Returns (url, fields)."""
    form = aws.client("s3").generate_presigned_post(
        Bucket=bucket,
        Key=key,
        Fields={"Content-Type": content_type},
        Conditions=[{"Content-Type": content_type}, ["content-length-range", *sizes]],
        ExpiresIn=expires_in,
    )
    return str(form["url"]), dict(form["fields"])
