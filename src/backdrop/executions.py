"""Starting work: a job record plus one Step Functions execution named by the job id,
so a repeated start (a retried request, a redelivered notification) starts nothing new.
Work refused before it starts is recorded and announced as a failed job."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from backdrop import allowances, aws, outcomes, telemetry
from backdrop.config import AllowanceSettings, OutcomeSettings, StartSettings
from backdrop.domain import Job, JobError, JobStatus, NewJob
from backdrop.jobs import AllowanceRefused, JobStore
from backdrop.observability import logger
from backdrop.providers import registry
from backdrop.providers.base import Mode


def start(new: NewJob, *, settings: StartSettings, jobs: JobStore) -> Job:
    """Record the job, counted against its daily allowance (allowances.Exhausted, with
    nothing recorded, if it has no room), and start its workflow."""
    per_key = settings.images_per_key_per_day
    job, created = create(new, settings=settings, jobs=jobs, per_key=per_key)
    if not created and job.status is not JobStatus.QUEUED:
        logger.info("job already started", extra={"job_id": job.id, "status": job.status.value})
        return job
    # A queued job that exists already is one whose start failed half-way: start it again
    # (the execution name makes a second start a no-op). Any other failure is raised with
    # the job left queued, so a redelivery starts it; the API fails it (`fail`).
    if not start_once(settings.state_machine_arn, job.id, workflow_input(job)):
        logger.info("execution already exists", extra={"job_id": job.id})
        return job
    telemetry.emit("JobsStarted", 1, provider=job.provider)
    return job


def start_or_refuse(new: NewJob, *, settings: StartSettings, jobs: JobStore) -> Job:
    """`start`, for work no caller waits on (inbox, events): a job its allowance has no room
    for is recorded and announced as failed, `image_quota_exceeded`."""
    try:
        return start(new, settings=settings, jobs=jobs)
    except allowances.Exhausted as exc:
        logger.info("daily allowance used up", extra={"job_id": new.id})
        return refuse(new, exc.error, settings=settings, jobs=jobs)


def create(
    new: NewJob,
    *,
    settings: AllowanceSettings,
    jobs: JobStore,
    per_key: int,
    charged_to: str | None = None,
    also: Sequence[dict[str, Any]] = (),
) -> tuple[Job, bool]:
    """Record a new job, charged to the daily allowance of `charged_to` (its owner unless
    given: `per_key` images a day for an API key, StackImagesPerDay for the stack) and to
    `also` (a batch's budget), all in one transaction. allowances.Exhausted if the allowance
    has no room (nothing is recorded); jobs.AllowanceRefused if one of `also` has none."""
    now = datetime.now(UTC)
    allowance = allowances.of(
        charged_to or new.owner, per_key=per_key, per_stack=settings.stack_images_per_day
    )
    images = new.options.count
    charges = [*also]
    if allowance is not None:
        charges.append(allowances.charge(jobs.table_name, allowance, images, now))
    try:
        return jobs.create(new, charges)
    except AllowanceRefused as exc:
        if allowance is None or exc.index < len(also):
            raise
        used = allowances.used(jobs.table_name, allowance, now)
        raise allowances.exhausted(allowance, used, images, now) from None


def start_once(machine_arn: str, name: str, workflow_input: Mapping[str, Any]) -> bool:
    """Start the execution `name` of a state machine (a job's or a batch's id): False if it
    exists already, so a repeated start starts nothing new. Any other failure is raised."""
    try:
        aws.client("stepfunctions").start_execution(
            stateMachineArn=machine_arn, name=name, input=json.dumps(workflow_input)
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ExecutionAlreadyExists":
            return False
        raise
    return True


def workflow_input(job: Job) -> dict[str, Any]:
    """The generation workflow's input for a job (its execution is named by the job id)."""
    return {
        "job_id": job.id,
        "provider": job.provider,
        # The provider's mode picks the workflow's path: submit-and-poll or generate.
        "mode": registry.get(job.provider).mode.value,
        "step": {"status": "new"},  # where it stands (workflow/messages.py Step)
    }


def execution_arn(machine_arn: str, name: str) -> str:
    """The ARN of a state machine's execution by its name (a job's or a batch's id)."""
    return f"{machine_arn.replace(':stateMachine:', ':execution:')}:{name}"


def fail(job_id: str, error: JobError, *, settings: OutcomeSettings, jobs: JobStore) -> Job:
    """Fail a job that never reached the workflow, and announce it as the workflow would.
    Calling it again announces again: events are at-least-once, a lost one is worse."""
    job = jobs.mark_failed(job_id, error)
    outcomes.announce(job, settings)
    return job


def refuse(new: NewJob, error: JobError, *, settings: OutcomeSettings, jobs: JobStore) -> Job:
    """Record a job that cannot start (bad options, an image the provider would refuse) as
    failed, and announce it like any other failure. A redelivery announces it again, in
    case the first announcement failed."""
    job, _ = jobs.create(new)
    if job.status not in (JobStatus.QUEUED, JobStatus.FAILED):
        return job
    return fail(job.id, error, settings=settings, jobs=jobs)


def cancel(job: Job, *, settings: StartSettings, jobs: JobStore) -> Job:
    """Cancel a job that has not finished: mark it first (from then on no task's write can
    finish it), then stop its execution, then announce it. Canceling it again announces it
    again (a lost announcement is worse than a repeated one). JobConflict if it ended
    otherwise: a job that succeeded keeps its results and its event."""
    if job.status is JobStatus.CANCELED:
        outcomes.announce(job, settings)
        return job
    message = "canceled by its caller"
    # Accepted, or maybe accepted (a submit under way): the provider may bill it.
    sent = job.provider_job_id or job.submitting_since
    if sent and registry.get(job.provider).mode is Mode.ASYNC:
        which = f" (job {job.provider_job_id})" if job.provider_job_id else ""
        message += f"; {job.provider} had already been sent it{which} and may still charge for it"
    canceled = jobs.mark_canceled(job.id, JobError(code="canceled", message=message))
    try:
        aws.client("stepfunctions").stop_execution(
            executionArn=execution_arn(settings.state_machine_arn, job.id), cause=message
        )
    except ClientError as exc:
        # Never started, or not stoppable now: the record is what counts. A workflow left
        # running ends at its next step, whose write the canceled job refuses.
        logger.warning(
            "execution not stopped",
            extra={"job_id": job.id, "error": exc.response["Error"]["Code"]},
        )
    outcomes.announce(canceled, settings)
    return canceled
