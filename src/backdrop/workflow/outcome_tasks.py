"""The workflow tasks that end a job: RecordFailure and Publish (both paths, every job)."""

from __future__ import annotations

from backdrop import outcomes
from backdrop.workflow.deps import OutcomeDeps
from backdrop.workflow.failures import error_from_failure
from backdrop.workflow.messages import Failure, MarkFailedInput, TaskInput


def mark_failed(task: MarkFailedInput, deps: OutcomeDeps) -> Failure:
    error = error_from_failure(task.error.error, task.error.cause)
    job = deps.jobs.mark_failed(task.job_id, error)
    assert job.error is not None
    return job.error


def publish(task: TaskInput, deps: OutcomeDeps) -> None:
    job = deps.jobs.get(task.job_id)
    outcomes.announce(job, deps.settings)
