"""Job records: conditional transitions on DynamoDB (moto)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from backdrop import aws
from backdrop.config import Settings
from backdrop.domain import GenerationOptions, ImageSource, JobError, JobStatus, NewJob, ResultImage
from backdrop.jobs import JobConflict, JobNotFound, JobStore, new_job_id, source_job_id

SETTINGS = Settings(
    jobs_table="jobs",
    governor_table="governor",
    input_bucket="in",
    results_bucket="out",
    event_bus_name="bus",
    default_prompt="studio",
    picsart_secret_name="secret",
    photoroom_secret_name="secret2",
)


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


def _create(store: JobStore, job_id: str | None = None) -> str:
    job_id = job_id or new_job_id()
    store.create(
        NewJob(
            id=job_id,
            trigger="api",
            provider="picsart",
            source=ImageSource(url="https://example.com/a.png"),
            options=GenerationOptions(prompt="p", count=3, format="PNG"),
        )
    )
    return job_id


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
    job, created = store.create(
        NewJob(
            id=job_id,
            trigger="inbox",
            provider="picsart",
            source=ImageSource(bucket="b", key="k"),
            options=GenerationOptions(prompt="other"),
        )
    )
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
