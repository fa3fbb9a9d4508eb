"""Job records: conditional transitions on DynamoDB (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import boto3
import pytest
from moto import mock_aws

from backdrop import aws, review
from backdrop.batches.store import review_moved
from backdrop.config import JobSettings
from backdrop.domain import (
    STACK_OWNER,
    GenerationOptions,
    ImageSource,
    JobError,
    JobStatus,
    NewJob,
    ResultImage,
    key_owner,
)
from backdrop.jobs import (
    DecisionChanged,
    JobConflict,
    JobNotFound,
    JobStore,
    new_job_id,
    source_job_id,
)

SETTINGS = JobSettings(jobs_table="jobs", batches_table="batches")


@pytest.fixture
def store() -> Iterator[JobStore]:
    with mock_aws():
        aws.reset()
        boto3.client("dynamodb").create_table(
            TableName="jobs",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield JobStore(SETTINGS)
        aws.reset()


OWNER = "key:k1l2m3n4o5"


def _create(store: JobStore, job_id: str | None = None, owner: str = OWNER) -> str:
    job_id = job_id or new_job_id()
    store.create(
        NewJob(
            id=job_id,
            trigger="api",
            provider="picsart",
            source=ImageSource(url="https://example.com/a.png"),
            options=GenerationOptions(prompt="p", count=3, format="PNG"),
            owner=owner,
        )
    )
    return job_id


def _inbox_job(job_id: str | None = None) -> NewJob:
    return NewJob(
        id=job_id or new_job_id(),
        trigger="inbox",
        provider="picsart",
        source=ImageSource(bucket="b", key="k"),
        options=GenerationOptions(prompt="other"),
    )


def test_a_job_moves_forward_to_succeeded(store: JobStore) -> None:
    job_id = _create(store)
    store.mark_running(job_id, "inf-1")
    result = ResultImage(index=0, key="results/x/0.png", content_type="image/png", size=10)
    store.mark_succeeded(job_id, [result])

    job = store.get(job_id)
    assert job.status is JobStatus.SUCCEEDED
    assert job.provider_job_id == "inf-1"
    assert job.results == [result]
    assert job.options.count == 3
    assert job.updated_at >= job.created_at
    assert job.expires_at > job.created_at.timestamp() + 89 * 86400


def test_creating_twice_returns_the_first_job(store: JobStore) -> None:
    job_id = _create(store)
    store.mark_running(job_id, "inf-1")
    job, created = store.create(_inbox_job(job_id))
    assert created is False
    assert job.status is JobStatus.RUNNING
    assert job.options.prompt == "p"


def test_repeating_a_transition_is_harmless(store: JobStore) -> None:
    job_id = _create(store)
    store.mark_running(job_id, "inf-1")
    store.mark_running(job_id, "inf-1")  # a retried task
    with pytest.raises(JobConflict):
        store.mark_running(job_id, "inf-2")  # but never a second provider job


def test_a_finished_job_never_goes_back(store: JobStore) -> None:
    job_id = _create(store)
    store.mark_running(job_id, "inf-1")
    store.mark_succeeded(job_id, [])
    with pytest.raises(JobConflict):
        store.mark_failed(job_id, JobError(code="x", message="late failure"))
    with pytest.raises(JobConflict):
        store.mark_running(job_id, "inf-1")
    assert store.get(job_id).status is JobStatus.SUCCEEDED


def test_failing_twice_keeps_the_first_error(store: JobStore) -> None:
    job_id = _create(store)
    store.mark_failed(job_id, JobError(code="provider_auth", message="first"))
    job = store.mark_failed(job_id, JobError(code="internal_error", message="second"))
    assert job.error == JobError(code="provider_auth", message="first")


def test_a_queued_job_cannot_succeed(store: JobStore) -> None:
    job_id = _create(store)
    with pytest.raises(JobConflict):
        store.mark_succeeded(job_id, [])


def test_unknown_jobs_are_not_found(store: JobStore) -> None:
    with pytest.raises(JobNotFound):
        store.get(new_job_id())
    with pytest.raises(JobNotFound):
        store.mark_running(new_job_id(), "inf-1")


def test_source_job_id_depends_on_every_part() -> None:
    base = source_job_id("bucket", "inbox/a.png", "v1")
    assert base == source_job_id("bucket", "inbox/a.png", "v1")
    assert len(base) == 32
    others = {
        source_job_id("bucket2", "inbox/a.png", "v1"),
        source_job_id("bucket", "inbox/b.png", "v1"),
        source_job_id("bucket", "inbox/a.png", "v2"),
    }
    assert base not in others
    assert len(others) == 3


# ---- owners ------------------------------------------------------------------------------


def test_a_job_records_its_owner_and_the_stacks_work_is_the_stacks(store: JobStore) -> None:
    api_job = _create(store)
    inbox_job, _ = store.create(_inbox_job())

    assert store.get(api_job).owner == OWNER
    assert inbox_job.owner == STACK_OWNER
    assert store.get(inbox_job.id).owner == STACK_OWNER


def test_an_api_job_cannot_be_left_without_its_key() -> None:
    with pytest.raises(ValueError, match="belongs to the API key"):
        NewJob(
            id=new_job_id(),
            trigger="api",
            provider="picsart",
            source=ImageSource(url="https://example.com/a.png"),
            options=GenerationOptions(prompt="p"),
        )
    for bad in ("k1l2m3n4o5", "key:", "key:a#b", "Stack", "key:" + "a" * 129):
        with pytest.raises(ValueError, match="not an owner"):
            replace(_inbox_job(), owner=bad)


def test_key_owner_takes_only_api_key_ids() -> None:
    assert key_owner("k1l2m3n4o5") == "key:k1l2m3n4o5"
    for bad in ("", "a#b", "a:b", "a" * 129, "ключ"):
        with pytest.raises(ValueError, match="not an API key id"):
            key_owner(bad)


def test_a_key_reads_its_own_jobs_and_the_stacks_only(store: JobStore) -> None:
    mine = _create(store)
    theirs = _create(store, owner="key:someoneelse")
    stacks, _ = store.create(_inbox_job())

    assert store.get_for(mine, OWNER).id == mine
    assert store.get_for(stacks.id, OWNER).id == stacks.id
    assert store.get_for(stacks.id, "key:someoneelse").id == stacks.id
    with pytest.raises(JobNotFound):
        store.get_for(theirs, OWNER)
    with pytest.raises(JobNotFound):
        store.get_for(new_job_id(), OWNER)


def test_a_batch_job_s_review_status_moves_its_batch_s_counts_once(store: JobStore) -> None:
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName="batches",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    batch_id = new_job_id()

    def counts() -> dict[str, str]:
        item = dynamodb.get_item(
            TableName="batches", Key={"pk": {"S": batch_id}, "sk": {"S": "batch"}}
        ).get("Item", {})
        return {k: v["N"] for k, v in item.items() if k.startswith("review_")}

    job_id = _create(store)
    store.mark_running(job_id, None)
    held = review.on_success("required")
    assert held is not None
    moved = review_moved("batches", batch_id, None, held.status)
    result = ResultImage(index=0, key="k", content_type="image/png", size=1)
    store.mark_succeeded(job_id, [result], held, None, moved)
    store.mark_succeeded(job_id, [result], held, None, moved)  # a retried task
    assert counts() == {"review_pending": "1"}

    job = store.get(job_id)
    assert job.review is not None
    approved = review.approve(job, job.review, index=0, at=job.updated_at)
    move = review_moved("batches", batch_id, "pending", "approved")
    store.record_review(job_id, 0, approved, also=move)
    with pytest.raises(DecisionChanged):  # the same decision, over the review it was made on
        store.record_review(job_id, 0, approved, also=move)
    assert counts() == {"review_pending": "0", "review_approved": "1"}
    # Nothing moves outside a batch, or where the status stays.
    assert review_moved("batches", None, "pending", "approved") == []
    assert review_moved("batches", batch_id, "pending", "pending") == []
