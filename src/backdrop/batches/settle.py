"""Batch workflow task: count how one item's job ended."""

from __future__ import annotations

from botocore.exceptions import ClientError
from pydantic import BaseModel, Field

from backdrop import aws, executions
from backdrop.batches.deps import BatchDeps
from backdrop.batches.store import ItemOutcome
from backdrop.config import BatchSettleSettings
from backdrop.domain import FINISHED, JOB_ID_PATTERN, JobError, JobStatus


class SettleInput(BaseModel):
    batch_id: str = Field(pattern=JOB_ID_PATTERN)
    index: int = Field(ge=0)
    job_id: str = Field(pattern=JOB_ID_PATTERN)


class JobNotFinished(Exception):
    """The item's job is still under way (its workflow outlived the Map's wait for it): the
    workflow asks again later."""


def settle_item(task: SettleInput, deps: BatchDeps[BatchSettleSettings]) -> None:
    """Count how the item's job ended. A job whose workflow never ran, or ended without
    recording it, is failed here (and announced), so every item ends."""
    settings, jobs, batches = deps.settings, deps.jobs, deps.batches
    job = jobs.get(task.job_id)
    if job.status not in FINISHED:
        status = _execution_status(settings, job.id)
        if status == "RUNNING":
            raise JobNotFinished(job.id)
        code, why = (
            ("start_failed", "the batch could not start the job's workflow")
            if status is None
            else ("workflow_failed", f"the job's workflow ended {status.lower()}")
        )
        job = executions.fail(
            job.id, JobError(code=code, message=why), settings=settings, jobs=jobs
        )
    outcome: ItemOutcome = "succeeded" if job.status is JobStatus.SUCCEEDED else "failed"
    batches.settle_item(task.batch_id, task.index, outcome)


def _execution_status(settings: BatchSettleSettings, job_id: str) -> str | None:
    try:
        answer = aws.client("stepfunctions").describe_execution(
            executionArn=executions.execution_arn(settings.state_machine_arn, job_id)
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ExecutionDoesNotExist":
            return None
        raise
    return str(answer["status"])
