"""The in-memory stores keep the conditions of the DynamoDB ones: the same assertions, run
against both (DynamoDB on moto, one table for the module), on the changes the workflow
makes."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from backdrop import aws, review
from backdrop.config import JobSettings
from backdrop.domain import (
    GenerationOptions,
    ImageSource,
    JobError,
    JobStatus,
    NewJob,
    ResultImage,
    WebhookState,
)
from backdrop.governor import DynamoBuckets, Governor, Limit
from backdrop.jobs import DecisionChanged, JobConflict, JobNotFound, JobStore, new_job_id
from backdrop.stores import ANY, NO_ITEM, Bucket, BucketStore
from tests.fakes import MemoryBuckets, MemoryJobs

STORES = ["memory", "dynamodb"]
Jobs = JobStore | MemoryJobs
RESULT = ResultImage(index=0, key="results/x/0.png", content_type="image/png", size=3, seed=4)
FIRST = JobError(code="provider_auth", message="first")


@pytest.fixture(scope="module")
def _tables() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as env, mock_aws():
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        aws.reset()
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        for table, key in (("jobs", "id"), ("governor", "provider")):
            dynamodb.create_table(
                TableName=table,
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
            )
        yield
        aws.reset()


@pytest.fixture(params=STORES)
def jobs(request: pytest.FixtureRequest) -> Jobs:
    if request.param == "memory":
        return MemoryJobs()
    request.getfixturevalue("_tables")
    return JobStore(JobSettings(jobs_table="jobs", batches_table="batches"))


@pytest.fixture(params=STORES)
def buckets(request: pytest.FixtureRequest) -> BucketStore:
    if request.param == "memory":
        return MemoryBuckets()
    request.getfixturevalue("_tables")
    return DynamoBuckets("governor")


def _new(webhook_url: str | None = None) -> NewJob:
    return NewJob(
        id=new_job_id(),
        trigger="inbox",
        provider="picsart",
        source=ImageSource(bucket="in", key="inbox/mug.png"),
        options=GenerationOptions(prompt="p", count=1),
        webhook_url=webhook_url,
    )


def _create(jobs: Jobs, webhook_url: str | None = None) -> str:
    job, created = jobs.create(_new(webhook_url))
    assert created
    assert jobs.get(job.id) == job  # read back as it was made
    return job.id


# -- jobs ----------------------------------------------------------------------------------


def test_creating_again_returns_the_first_job(jobs: Jobs) -> None:
    new = _new()
    first, _ = jobs.create(new)
    jobs.mark_running(new.id, "inf-1")
    again, created = jobs.create(new)
    assert created is False
    assert (again.status, again.created_at) == (JobStatus.RUNNING, first.created_at)


def test_a_submit_is_marked_once_until_cleared_and_only_while_queued(jobs: Jobs) -> None:
    job_id = _create(jobs)
    assert jobs.mark_submitting(job_id) is True
    assert jobs.get(job_id).submitting_since is not None
    assert jobs.mark_submitting(job_id) is False
    jobs.clear_submitting(job_id)
    assert jobs.get(job_id).submitting_since is None
    assert jobs.mark_submitting(job_id) is True
    jobs.mark_running(job_id, "inf-1")
    jobs.clear_submitting(job_id)
    assert jobs.mark_submitting(job_id) is False  # running: nothing more to send
    assert jobs.mark_submitting(new_job_id()) is False


def test_a_job_starts_once_and_only_from_queued(jobs: Jobs) -> None:
    job_id = _create(jobs)
    jobs.mark_running(job_id, "inf-1", ("https://cdn/a.png",))
    jobs.mark_running(job_id, "inf-1", ("https://cdn/a.png",))  # the same again: harmless
    with pytest.raises(JobConflict, match="is running, cannot become running"):
        jobs.mark_running(job_id, "inf-2")
    job = jobs.get(job_id)
    assert (job.status, job.provider_job_id, job.provider_urls) == (
        JobStatus.RUNNING,
        "inf-1",
        ["https://cdn/a.png"],
    )
    with pytest.raises(JobNotFound):
        jobs.mark_running(new_job_id(), "inf-1")


def test_a_job_succeeds_only_from_running_and_then_stays(jobs: Jobs) -> None:
    job_id = _create(jobs)
    with pytest.raises(JobConflict, match="is queued"):
        jobs.mark_succeeded(job_id, [RESULT])
    jobs.mark_running(job_id, None)
    jobs.mark_succeeded(job_id, [RESULT])
    jobs.mark_succeeded(job_id, [RESULT])  # a retried Store
    with pytest.raises(JobConflict):
        jobs.mark_succeeded(job_id, [])
    with pytest.raises(JobConflict):
        jobs.mark_failed(job_id, FIRST)
    job = jobs.get(job_id)
    assert (job.status, job.results) == (JobStatus.SUCCEEDED, [RESULT])


def test_a_review_decision_is_recorded_only_over_the_review_it_was_made_on(jobs: Jobs) -> None:
    at = datetime(2026, 12, 4, tzinfo=UTC)
    held, never_held = _create(jobs), _create(jobs)
    for job_id, mode in ((held, "required"), (never_held, "none")):
        jobs.mark_running(job_id, None)
        jobs.mark_succeeded(job_id, [RESULT], review.on_success(mode))
    assert jobs.get(never_held).review is None  # ReviewMode=none: the record as before
    job = jobs.get(held)
    assert job.review == review.pending()

    approved = review.approve(job, job.review, index=0, at=at, reviewer="ana")
    rejected = review.reject(job, job.review, at=at, reason="no", reviewer="bo")
    jobs.record_review(held, review.version(job.review), approved)
    # The second reviewer read the same pending review: theirs is refused, nothing lost.
    with pytest.raises(DecisionChanged):
        jobs.record_review(held, review.version(job.review), rejected)
    assert jobs.get(held).review == approved
    again = review.reject(job, approved, at=at, reason="on second thought", reviewer="ana")
    jobs.record_review(held, review.version(approved), again)
    assert jobs.get(held).review == again

    with pytest.raises(DecisionChanged):  # never held for review
        jobs.record_review(never_held, 0, approved)
    with pytest.raises(JobNotFound):
        jobs.record_review(new_job_id(), 0, approved)


def test_a_failure_is_recorded_once_and_a_canceled_job_stays_canceled(
    jobs: Jobs,
) -> None:
    failed, canceled = _create(jobs), _create(jobs)
    assert jobs.mark_failed(failed, FIRST).error == FIRST
    second = JobError(code="internal_error", message="second")
    assert jobs.mark_failed(failed, second).error == FIRST

    jobs.mark_canceled(canceled, JobError(code="canceled", message="by its caller"))
    job = jobs.mark_failed(canceled, FIRST)
    assert (job.status, job.error) == (
        JobStatus.CANCELED,
        JobError(code="canceled", message="by its caller"),
    )
    with pytest.raises(JobConflict):
        jobs.mark_running(canceled, "inf-1")
    with pytest.raises(JobConflict):
        jobs.mark_canceled(failed, FIRST)


def test_a_webhook_state_of_fewer_attempts_is_dropped_and_delivered_is_final(
    jobs: Jobs,
) -> None:
    job_id = _create(jobs, webhook_url="https://hooks.example.com/x")
    assert jobs.get(job_id).webhook == WebhookState()
    jobs.record_webhook(job_id, WebhookState(status="failed", attempts=3, last_status_code=500))
    jobs.record_webhook(job_id, WebhookState(status="failed", attempts=2))
    assert jobs.get(job_id).webhook == WebhookState(
        status="failed", attempts=3, last_status_code=500
    )
    jobs.record_webhook(job_id, WebhookState(status="delivered", attempts=1))
    jobs.record_webhook(job_id, WebhookState(status="failed", attempts=9))
    assert jobs.get(job_id).webhook == WebhookState(status="delivered", attempts=1)


def test_many_jobs_are_read_by_id(jobs: Jobs) -> None:
    first, second = _create(jobs), _create(jobs)
    found = jobs.get_many([first, new_job_id(), second, first])
    assert sorted(found) == sorted([first, second])
    assert found[first] == jobs.get(first)


# -- buckets -------------------------------------------------------------------------------


def _bucket(version: int, *, tokens: float = 1.5) -> Bucket:
    return Bucket(tokens, 10.0, 0.0, 12.5, 0.75, version, recent=[1.25, 3.0])


def test_a_bucket_is_written_only_over_the_version_read(buckets: BucketStore) -> None:
    provider = new_job_id()  # a provider of its own: the table is the module's
    assert buckets.read(provider) == (None, NO_ITEM)
    assert buckets.recent(provider) == []
    assert buckets.write(provider, _bucket(0), NO_ITEM) is True
    assert buckets.write(provider, _bucket(0), NO_ITEM) is False  # someone wrote first

    bucket, expected = buckets.read(provider)
    assert (bucket, expected) == (_bucket(1), 1)
    assert buckets.write(provider, _bucket(1, tokens=0.5), 1) is True
    assert buckets.write(provider, _bucket(1, tokens=9.0), 1) is False  # a stale read
    assert buckets.read(provider) == (_bucket(2, tokens=0.5), 2)

    assert buckets.write(provider, _bucket(0, tokens=2.0), ANY) is True  # whatever is there
    assert buckets.read(provider) == (_bucket(1, tokens=2.0), 1)
    assert buckets.recent(provider) == [1.25, 3.0]


def test_a_bucket_read_is_a_copy(buckets: BucketStore) -> None:
    provider = new_job_id()
    buckets.write(provider, _bucket(0), NO_ITEM)
    bucket, _ = buckets.read(provider)
    assert bucket is not None
    bucket.tokens = 99.0
    bucket.recent.append(7.0)
    assert buckets.read(provider) == (_bucket(1), 1)


def test_writers_in_threads_never_take_more_than_the_bucket_holds() -> None:
    limit = Limit(per_minute=60, burst=10)
    buckets = MemoryBuckets()
    governor = Governor(buckets, clock=lambda: 1_800_000_000.0)  # nothing refills
    with ThreadPoolExecutor(max_workers=8) as pool:
        grants = list(pool.map(lambda _: governor.take_new("p", limit), range(40)))
    assert sum(grant.granted for grant in grants) == limit.burst
    bucket, _ = buckets.read("p")
    assert bucket is not None
    assert bucket.tokens == 0.0
