"""Starting work: a job record plus one Step Functions execution named by the job id,
so a repeated start (a retried request, a redelivered notification) starts nothing new.
Work refused before it starts is recorded and announced as a failed job."""

from __future__ import annotations

import json

from botocore.exceptions import ClientError

from backdrop import aws, outcomes
from backdrop.config import Settings
from backdrop.domain import Job, JobError, JobStatus, NewJob
from backdrop.jobs import JobStore
from backdrop.observability import logger
from backdrop.providers import registry


def start(new: NewJob, *, settings: Settings, jobs: JobStore) -> Job:
    job, created = jobs.create(new)
    if not created and job.status is not JobStatus.QUEUED:
        logger.info("job already started", extra={"job_id": job.id, "status": job.status.value})
        return job
    # A queued job that exists already is one whose start failed half-way: start it again
    # (the execution name makes a second start a no-op). Any other failure is raised with
    # the job left queued, so a redelivery starts it; the API fails it (`fail`).
    mode = registry.get(job.provider).mode
    try:
        aws.client("stepfunctions").start_execution(
            stateMachineArn=settings.state_machine_arn,
            name=job.id,
            # The provider's mode picks the workflow's path: submit-and-poll or generate.
            input=json.dumps(
                {
                    "job_id": job.id,
                    "provider": job.provider,
                    "mode": mode.value,
                    "step": {"status": "new"},  # where it stands (workflow/messages.py Step)
                }
            ),
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ExecutionAlreadyExists":
            logger.info("execution already exists", extra={"job_id": job.id})
            return job
        raise
    return job


def fail(job_id: str, error: JobError, *, settings: Settings, jobs: JobStore) -> Job:
    """Fail a job that never reached the workflow, and announce it as the workflow would.
    Calling it again announces again: events are at-least-once, a lost one is worse."""
    job = jobs.mark_failed(job_id, error)
    outcomes.announce(job, settings)
    return job


def refuse(new: NewJob, error: JobError, *, settings: Settings, jobs: JobStore) -> Job:
    """Record a job that cannot start (bad options, an image the provider would refuse) as
    failed, and announce it like any other failure. A redelivery announces it again, in
    case the first announcement failed."""
    job, _ = jobs.create(new)
    if job.status not in (JobStatus.QUEUED, JobStatus.FAILED):
        return job
    return fail(job.id, error, settings=settings, jobs=jobs)
