"""Where results go: an inbox image's beside its source, anything else under its job id."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backdrop import storage
from backdrop.domain import GenerationOptions, ImageFormat, ImageSource, Job, JobStatus, Trigger


def _job(trigger: Trigger, key: str, image_format: ImageFormat = "JPG") -> Job:
    now = datetime.now(UTC)
    return Job(
        id="c9d0db4376cc41c3a9ba5d8fab1b7733",
        status=JobStatus.QUEUED,
        trigger=trigger,
        provider="picsart",
        source=ImageSource(bucket="inputs", key=key),
        options=GenerationOptions(prompt="studio", format=image_format),
        created_at=now,
        updated_at=now,
        expires_at=0,
    )


@pytest.mark.parametrize(
    ("key", "prefix"),
    [
        ("inbox/spring/mug.png", "outbox/spring/mug/"),
        ("inbox/mug.png", "outbox/mug/"),
        ("inbox/mug", "outbox/mug/"),
        ("inbox/a/b/c.tar.gz", "outbox/a/b/c.tar/"),
        ("inbox/v1.2/mug.jpeg", "outbox/v1.2/mug/"),
        ("inbox/summer sale/tasse café.png", "outbox/summer sale/tasse café/"),
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
