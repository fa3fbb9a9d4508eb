"""The workflow tasks that end a job: RecordFailure and Publish (both paths, every job)."""

from __future__ import annotations

from datetime import UTC, datetime

from backdrop import outcomes, review
from backdrop.batches.store import review_moved
from backdrop.domain import JobStatus
from backdrop.jobs import DecisionChanged, JobNotFound
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
    if job.status is JobStatus.SUCCEEDED and job.parent_id is not None:
        _supersede(job.parent_id, job.id, deps)
    outcomes.announce(job, deps.settings)


def _supersede(parent_id: str, child_id: str, deps: OutcomeDeps) -> None:
    """A regeneration succeeded: the job it regenerates leaves the queue. Safe to repeat;
    a decision recorded on the parent meanwhile is read again and kept in its history."""
    for _ in range(_DECISION_TRIES):
        try:
            parent = deps.jobs.get(parent_id)
        except JobNotFound:  # its record has expired (JobTtlDays): nothing to supersede
            return
        if parent.review is None or review.superseded_by(parent.review) == child_id:
            return
        replaced = review.supersede(parent.review, by_job=child_id, at=datetime.now(UTC))
        counted = review_moved(
            deps.settings.batches_table, parent.batch_id, parent.review.status, replaced.status
        )
        try:
            deps.jobs.record_review(
                parent_id, review.version(parent.review), replaced, also=counted
            )
            return
        except DecisionChanged:
            continue
    raise DecisionChanged(parent_id)  # the task is retried


_DECISION_TRIES = 5
