"""The review rules (review.py) and where an approved result is published
(storage.published_key): what each decision may follow, and what it records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backdrop import review, storage
from backdrop.domain import (
    STACK_OWNER,
    GenerationOptions,
    ImageFormat,
    ImageSource,
    Job,
    JobStatus,
    Refused,
    ResultImage,
    Trigger,
    publish_key_refusal,
)

JOB_ID = "c9d0db4376cc41c3a9ba5d8fab1b7733"
AT = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)


def _job(
    *,
    status: JobStatus = JobStatus.SUCCEEDED,
    trigger: Trigger = "batch",
    key: str | None = "catalog/shoes/red.png",
    image_format: ImageFormat = "JPG",
    results: int = 3,
) -> Job:
    return Job(
        id=JOB_ID,
        status=status,
        trigger=trigger,
        provider="picsart",
        source=ImageSource(bucket="inputs", key=key)
        if key
        else ImageSource(url="https://a.example/p.png"),
        options=GenerationOptions(prompt="studio", format=image_format, count=max(results, 1)),
        results=[
            ResultImage(index=i, key=f"outbox/x/{i}.jpg", content_type="image/jpeg", size=9)
            for i in range(results)
        ],
        created_at=AT,
        updated_at=AT,
        expires_at=0,
        owner=STACK_OWNER,
    )


@pytest.mark.parametrize(
    ("trigger", "key", "image_format", "published"),
    [
        ("inbox", "inbox/spring/mug.png", "JPG", "published/spring/mug.jpg"),
        ("batch", "catalog/shoes/red.png", "WEBP", "published/catalog/shoes/red.webp"),
        ("batch", "catalog/shoes/README", "PNG", "published/catalog/shoes/README.png"),
        ("api", "uploads/0a1b.png", "JPG", f"published/{JOB_ID}.jpg"),
        ("api", None, "PNG", f"published/{JOB_ID}.png"),
    ],
)
def test_an_approved_result_is_published_where_its_source_says(
    trigger: Trigger, key: str | None, image_format: ImageFormat, published: str
) -> None:
    job = _job(trigger=trigger, key=key, image_format=image_format)
    assert storage.published_key(job) == published
    assert storage.published_key(job, given="sku-1234.jpg") == "published/sku-1234.jpg"


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("", "relative path"),
        ("/etc/passwd", "relative path"),
        ("a/../b.jpg", "'..'"),
        ("./b.jpg", "'.'"),
        ("a//b.jpg", "empty"),
        ("sku\n1.jpg", "control characters"),
        ("a\\b.jpg", "backslashes"),
        ("é" * 509, "is 1018 bytes; at most 1014 fit under published/"),
    ],
)
def test_a_publish_key_must_be_a_plain_relative_path_s3_can_hold(given: str, reason: str) -> None:
    refusal = publish_key_refusal(given)
    assert refusal is not None
    assert reason in refusal
    job = _job()
    with pytest.raises(Refused) as refused:
        review.approve(job, review.pending(), index=0, at=AT, publish_key=given)
    assert [p.field for p in refused.value.problems] == ["publish_key"]


def test_the_longest_publish_key_s3_can_hold_is_taken() -> None:
    assert publish_key_refusal("k" * (1024 - len("published/"))) is None


def test_approve_then_approve_another_then_reject_keeps_the_whole_history() -> None:
    job = _job()
    first = review.approve(job, review.pending(), index=2, at=AT, reviewer="ana")
    assert (first.status, first.chosen, first.published_key) == (
        "approved",
        2,
        "published/catalog/shoes/red.jpg",
    )
    later = AT + timedelta(minutes=5)
    second = review.approve(job, first, index=0, at=later, publish_key="sku-1.jpg")
    assert (second.chosen, second.published_key, second.decided_at) == (
        0,
        "published/sku-1.jpg",
        later,
    )
    third = review.reject(job, second, at=later, reason="shadow is wrong", reviewer="bo")
    assert (third.status, third.chosen, third.published_key, third.reason) == (
        "rejected",
        None,
        None,
        "shadow is wrong",
    )
    assert [(d.decision, d.index, d.reviewer) for d in third.history] == [
        ("approve", 2, "ana"),
        ("approve", 0, None),
        ("reject", None, "bo"),
    ]
    assert [review.version(r) for r in (None, review.pending(), first, second, third)] == [
        0,
        0,
        1,
        2,
        3,
    ]


@pytest.mark.parametrize(("results", "listed"), [(3, "0 to 2"), (2, "0, 1"), (0, "none")])
def test_an_index_outside_the_results_is_refused_naming_the_range(
    results: int, listed: str
) -> None:
    with pytest.raises(Refused) as refused:
        review.approve(_job(results=results), review.pending(), index=3, at=AT)
    [problem] = refused.value.problems
    assert problem.field == "index"
    assert listed in problem.reason


@pytest.mark.parametrize(
    "status", [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELED]
)
def test_only_a_succeeded_job_can_be_reviewed(status: JobStatus) -> None:
    with pytest.raises(review.NotReviewable) as refused:
        review.approve(_job(status=status), review.pending(), index=0, at=AT)
    assert refused.value.status == str(status)
    assert str(status) in str(refused.value)


def test_a_job_not_held_for_review_cannot_be_decided() -> None:
    with pytest.raises(review.NotReviewable, match="not held for review"):
        review.reject(_job(), None, at=AT, reason=None, reviewer=None)


def test_a_superseded_job_points_at_the_one_that_replaced_it() -> None:
    job = _job()
    approved = review.approve(job, review.pending(), index=1, at=AT)
    superseded = review.supersede(approved, by_job="f" * 32, at=AT)
    assert superseded.status == "superseded"
    assert superseded.published_key == approved.published_key  # until the new one is approved
    with pytest.raises(review.NotReviewable, match=r"superseded by job f{32}"):
        review.approve(job, superseded, index=0, at=AT)
