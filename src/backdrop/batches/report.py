"""The end of a batch: its report (one CSV row per item: what it was, the job it became,
how that ended), its final counts from those rows, its status, and `Batch Completed` on the
bus. Safe to repeat: a finished batch is announced again, as it is."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, Field

from backdrop import events, storage
from backdrop.batches.deps import BatchDeps
from backdrop.batches.manifest import csv_bytes
from backdrop.batches.store import Batch, BatchItem, BatchStatus
from backdrop.config import BatchTaskSettings, OutcomeSettings
from backdrop.domain import JOB_ID_PATTERN, Cost, Job, JobError, JobStatus
from backdrop.workflow.messages import CaughtError

BATCH_COMPLETED = "Batch Completed"
REPORT_COLUMNS = (
    "item",
    "line",
    "key",
    "image_url",
    "job_id",
    "status",
    "job_status",
    "error_code",
    "error_message",
    "result_keys",
    "seeds",
)


def report_key(batch_id: str) -> str:
    return f"batches/{batch_id}/report.csv"


class FinishInput(BaseModel):
    """What the batch workflow hands FinishBatch: the batch, and the Map's error if it
    failed as a whole (a Catch's `$.error`)."""

    batch_id: str = Field(pattern=JOB_ID_PATTERN)
    error: CaughtError | None = None


def finish_batch(task: FinishInput, deps: BatchDeps[BatchTaskSettings]) -> Batch:
    settings, jobs, batches = deps.settings, deps.jobs, deps.batches
    batch_id = task.batch_id
    error = None
    if task.error is not None:
        error = JobError(
            code="batch_failed", message=f"{task.error.error}: {task.error.cause or ''}"[:1000]
        )
    batch = batches.get(batch_id)
    if not batch.finished:
        # Folder markers are not items: they are in no count and no report.
        items = [item for item in batches.items(batch_id) if item.outcome != "ignored"]
        found = jobs.get_many([item.job_id for item in items if item.job_id])
        rows = [_row(item, found.get(item.job_id or "")) for item in items]
        key = report_key(batch_id)
        storage.put_bytes(settings.results_bucket, key, csv_bytes(rows, REPORT_COLUMNS), "text/csv")
        counts = _counts(batch, rows)
        batch = batches.finish(
            batch_id,
            status=_status(batch, counts, error),
            counts=counts,
            report_key=key,
            error=error,
            cost=_cost(batch_id, found.values()),
        )
    _announce(batch, settings)
    return batch


def _row(item: BatchItem, job: Job | None) -> dict[str, Any]:
    status = item.outcome
    if (
        status == "running"
        and job is not None
        and job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)
    ):
        status = "succeeded" if job.status is JobStatus.SUCCEEDED else "failed"
    error = job.error if job is not None and job.error is not None else item.error
    return {
        "item": item.index,
        "line": item.line or "",
        "key": item.key or "",
        "image_url": item.image_url or "",
        "job_id": item.job_id or "",
        "status": status,
        "job_status": job.status.value if job is not None else "",
        "error_code": error.code if error is not None and status != "succeeded" else "",
        "error_message": error.message if error is not None and status != "succeeded" else "",
        "result_keys": " ".join(r.key for r in job.results) if job is not None else "",
        "seeds": " ".join(str(r.seed) for r in job.results if r.seed is not None)
        if job is not None
        else "",
    }


def _counts(batch: Batch, rows: list[dict[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(("running", "succeeded", "failed", "skipped", "not_started"), 0)
    for row in rows:
        counts[row["status"]] += 1
    # A manifest's rows are known up front (some may never have been reached, if the batch
    # failed); a prefix's are what the Map listed.
    total = max(batch.total or 0, len(rows))
    return counts | {"total": total, "not_started": counts["not_started"] + total - len(rows)}


def _cost(batch_id: str, jobs: Iterable[Job]) -> Cost | None:
    """What the images of the jobs this batch started cost (those it skipped were paid for
    by whatever started them)."""
    costs = [job.cost for job in jobs if job.batch_id == batch_id and job.cost is not None]
    return sum(costs[1:], costs[0]) if costs else None


def _status(batch: Batch, counts: dict[str, int], error: JobError | None) -> BatchStatus:
    if error is not None:
        return BatchStatus.FAILED
    if batch.cancel_requested and counts["not_started"]:  # a cancel that kept items back
        return BatchStatus.CANCELED
    # Items its budget (or the day's allowance) kept from starting are not done either.
    if counts["failed"] or counts["running"] or counts["not_started"]:
        return BatchStatus.COMPLETED_WITH_FAILURES
    return BatchStatus.SUCCEEDED


def _announce(batch: Batch, settings: OutcomeSettings) -> None:
    detail: dict[str, Any] = {
        "batch_id": batch.id,
        "status": batch.status.value,
        "counts": batch.counts(),
        "started_at": batch.started_at.isoformat(),
        "finished_at": batch.finished_at.isoformat() if batch.finished_at else None,
        "report": {"bucket": settings.results_bucket, "key": batch.report_key},
    }
    if batch.metadata:
        detail["metadata"] = batch.metadata
    if batch.error is not None:
        detail["error"] = batch.error.model_dump()
    events.put(settings.event_bus_name, BATCH_COMPLETED, detail)
