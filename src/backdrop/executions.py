"""Starting work: a job record plus one Step Functions execution named by the job id,
so a repeated start (a retried request, a redelivered notification) starts nothing new."""

from __future__ import annotations

import json

from botocore.exceptions import ClientError

from backdrop import aws, outcomes
from backdrop.config import ProviderName, Settings
from backdrop.jobs import JobStore
from backdrop.models import GenerationOptions, ImageSource, Job, JobError, JobStatus, Trigger
from backdrop.observability import logger


def start_job(
    *,
    settings: Settings,
    jobs: JobStore,
    job_id: str,
    trigger: Trigger,
    provider: ProviderName,
    source: ImageSource,
    options: GenerationOptions,
    metadata: dict[str, str] | None = None,
) -> Job:
    job, created = jobs.create(
        job_id=job_id,
        trigger=trigger,
        provider=provider,
        source=source,
        options=options,
        metadata=metadata or {},
    )
    if not created and job.status is not JobStatus.QUEUED:
        logger.info("job already started", extra={"job_id": job_id, "status": job.status.value})
        return job
    # A queued job that exists already is one whose start failed half-way: start it again
    # (the execution name makes a second start a no-op). Any other failure is raised with
    # the job left queued, so a redelivery starts it; the API fails it (fail_job).
    try:
        aws.client("stepfunctions").start_execution(
            stateMachineArn=settings.state_machine_arn,
            name=job_id,
            # The provider picks the workflow's path: submit-and-poll or generate at once.
            input=json.dumps({"job_id": job_id, "provider": job.provider}),
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ExecutionAlreadyExists":
            logger.info("execution already exists", extra={"job_id": job_id})
            return job
        raise
    return job


def fail_job(*, settings: Settings, jobs: JobStore, job_id: str, error: JobError) -> Job:
    """Fail a job that never reached the workflow, and announce it as the workflow would.
    Calling it again announces again: events are at-least-once, a lost one is worse."""
    job = jobs.mark_failed(job_id, error)
    outcomes.announce(job, settings)
    return job


def reject_job(
    *,
    settings: Settings,
    jobs: JobStore,
    job_id: str,
    trigger: Trigger,
    source: ImageSource,
    options: GenerationOptions,
    error: JobError,
    provider: ProviderName | None = None,
) -> Job:
    """Record a job that cannot start (bad options, an image the provider would refuse) as
    failed, and announce it like any other failure. A redelivery announces it again, in
    case the first announcement failed."""
    job, _ = jobs.create(
        job_id=job_id,
        trigger=trigger,
        provider=provider or settings.default_provider,
        source=source,
        options=options,
    )
    if job.status not in (JobStatus.QUEUED, JobStatus.FAILED):
        return job
    return fail_job(settings=settings, jobs=jobs, job_id=job_id, error=error)
