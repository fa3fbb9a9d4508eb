"""Where results go: an inbox image's beside its source, anything else under its job id."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backdrop import storage
from backdrop.domain import (
    MAX_S3_KEY_BYTES,
    STACK_OWNER,
    GenerationOptions,
    ImageFormat,
    ImageSource,
    Job,
    JobStatus,
    Trigger,
)

JOB_ID = "c9d0db4376cc41c3a9ba5d8fab1b7733"


def _job(trigger: Trigger, key: str, image_format: ImageFormat = "JPG") -> Job:
    now = datetime.now(UTC)
    return Job(
        id=JOB_ID,
        status=JobStatus.QUEUED,
        trigger=trigger,
        provider="picsart",
        source=ImageSource(bucket="inputs", key=key),
        options=GenerationOptions(prompt="studio", format=image_format),
        created_at=now,
        updated_at=now,
        expires_at=0,
        owner=STACK_OWNER,
    )


@pytest.mark.parametrize(
    ("key", "prefix"),
    [
        ("inbox/spring/mug.png", "outbox/spring/mug.png/"),
        ("inbox/mug.png", "outbox/mug.png/"),
        ("inbox/mug", "outbox/mug/"),
        ("inbox/a/b/c.tar.gz", "outbox/a/b/c.tar.gz/"),
        ("inbox/v1.2/mug.jpeg", "outbox/v1.2/mug.jpeg/"),
        ("inbox/summer sale/tasse café.png", "outbox/summer sale/tasse café.png/"),
    ],
)
def test_inbox_results_go_beside_their_source(key: str, prefix: str) -> None:
    job = _job("inbox", key, "PNG")

    assert storage.results_prefix(job) == prefix
    assert storage.result_key(job, 1) == f"{prefix}1.png"
    assert storage.manifest_key(job) == f"{prefix}manifest.json"


def test_api_results_go_under_the_job_id() -> None:
    job = _job("api", "inbox/mug.png")  # even an API job whose image is in inbox/
    assert storage.result_key(job, 0) == f"results/{job.id}/0.jpg"


def test_sources_that_differ_only_by_extension_get_distinct_folders() -> None:
    png, jpg = _job("inbox", "inbox/spring/mug.png"), _job("inbox", "inbox/spring/mug.jpg")

    assert storage.results_prefix(png) == "outbox/spring/mug.png/"
    assert storage.results_prefix(jpg) == "outbox/spring/mug.jpg/"
    assert storage.manifest_key(png) != storage.manifest_key(jpg)
    assert storage.result_key(png, 0) != storage.result_key(jpg, 0)


def _key_of(size: int, fill: str) -> str:
    """An inbox key of exactly `size` bytes in UTF-8, padded with `fill` (and "x" to even out
    a multi-byte fill)."""
    head, tail = "inbox/deep/", ".png"
    room = size - len(head) - len(tail)
    width = len(fill.encode())
    key = f"{head}{fill * (room // width)}{'x' * (room % width)}{tail}"
    assert len(key.encode()) == size
    return key


def test_the_longest_key_that_fits_is_1009_bytes() -> None:
    # outbox/ is a byte longer than inbox/, then "/" and "manifest.json": 15 bytes more.
    assert storage.LONGEST_INBOX_KEY == 1009


@pytest.mark.parametrize("fill", ["x", "é", "杯"], ids=["ascii", "2-byte", "3-byte"])
def test_the_longest_key_that_fits_keeps_its_folder_beside_it(fill: str) -> None:
    key = _key_of(storage.LONGEST_INBOX_KEY, fill)
    job = _job("inbox", key, "WEBP")

    assert storage.outbox_misfit(key) is None
    assert storage.results_prefix(job) == f"outbox/{key.removeprefix('inbox/')}/"
    # The manifest is exactly at S3's limit; every result name is shorter.
    assert len(storage.manifest_key(job).encode()) == MAX_S3_KEY_BYTES
    assert all(len(storage.result_key(job, i).encode()) < MAX_S3_KEY_BYTES for i in range(10))


@pytest.mark.parametrize("fill", ["x", "é", "杯"], ids=["ascii", "2-byte", "3-byte"])
def test_one_byte_more_falls_back_to_the_job_id(fill: str) -> None:
    key = _key_of(storage.LONGEST_INBOX_KEY + 1, fill)
    job = _job("inbox", key)

    assert storage.results_prefix(job) == f"results/{JOB_ID}/"
    assert storage.manifest_key(job) == f"results/{JOB_ID}/manifest.json"
    reason = storage.outbox_misfit(key)
    assert reason is not None
    assert reason.startswith("the key is 1010 bytes; the longest that fits is 1009 bytes")


def test_keys_outside_inbox_are_never_misfits() -> None:
    assert storage.outbox_misfit("uploads/" + "x" * 2000) is None


@pytest.mark.parametrize(
    ("key", "prefix"),
    [
        ("catalog/shoes/a.png", "outbox/catalog/shoes/a.png/"),  # the whole key mirrored
        ("inbox/spring/mug.png", "outbox/spring/mug.png/"),  # where the inbox put it
        ("uploads/abc.png", f"results/{JOB_ID}/"),  # no folder to mirror
    ],
)
def test_batch_results_go_where_the_inbox_puts_them(key: str, prefix: str) -> None:
    assert storage.results_prefix(_job("batch", key)) == prefix


def test_the_longest_catalogue_key_fits_its_folder_and_one_byte_more_does_not() -> None:
    longest = "catalog/" + "k" * (1003 - len("catalog/"))
    assert storage.outbox_misfit(longest) is None
    assert storage.results_prefix(_job("batch", longest)) == f"outbox/{longest}/"
    reason = storage.outbox_misfit(longest + "k")
    assert reason is not None
    assert "1004 bytes; the longest that fits is 1003 bytes" in reason
    assert storage.results_prefix(_job("batch", longest + "k")) == f"results/{JOB_ID}/"
