"""EventBridge events from source `backdrop`: `Generation Succeeded` / `Generation Failed` /
`Generation Canceled`, a reviewer's `Generation Approved` / `Generation Rejected`
(ReviewMode=required), and `Batch Completed` (batches/report.py)."""

from __future__ import annotations

import json
from typing import Any

from backdrop import aws
from backdrop.domain import Job, JobStatus

SOURCE = "backdrop"
DETAIL_TYPES = {
    JobStatus.SUCCEEDED: "Generation Succeeded",
    JobStatus.FAILED: "Generation Failed",
    JobStatus.CANCELED: "Generation Canceled",
}

REVIEW_DETAIL_TYPES = {"approved": "Generation Approved", "rejected": "Generation Rejected"}


class EventNotPublished(Exception):
    """EventBridge refused the entry; the workflow retries the task."""


def detail(job: Job, results_bucket: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "job_id": job.id,
        "status": job.status.value,
        "trigger": job.trigger,
        "provider": job.provider,
        "source": job.source.model_dump(exclude_none=True),
    }
    if job.metadata:
        body["metadata"] = job.metadata
    if job.batch_id is not None:
        body["batch_id"] = job.batch_id
    if job.status is JobStatus.SUCCEEDED:
        body["results"] = {"bucket": results_bucket, "keys": [r.key for r in job.results]}
    if job.error is not None:
        body["error"] = job.error.model_dump()
    return body


def publish_outcome(job: Job, *, bus_name: str, results_bucket: str) -> dict[str, Any]:
    """Announce how a finished job ended. Returns the entry sent."""
    if job.status not in DETAIL_TYPES:
        raise ValueError(f"job {job.id} has not finished ({job.status.value})")
    return put(bus_name, DETAIL_TYPES[job.status], detail(job, results_bucket))


def publish_review(
    job: Job, *, bus_name: str, results_bucket: str, published_bucket: str
) -> dict[str, Any]:
    """Announce a reviewer's decision on `job` (its review approved or rejected): what was
    published where, the chosen result and its seed, who decided. Sent again when the same
    approval is repeated; `review_version` tells decisions apart (and repeats alike)."""
    review = job.review
    if review is None or review.status not in REVIEW_DETAIL_TYPES:
        raise ValueError(f"job {job.id} has no decision to announce")
    body = detail(job, results_bucket)
    body["review"] = {
        "status": review.status,
        "decided_at": review.decided_at.isoformat() if review.decided_at else None,
        "reviewer": review.history[-1].reviewer if review.history else None,
        "reason": review.reason,
    }
    body["review_version"] = len(review.history)
    if review.status == "approved":
        chosen = next(r for r in job.results if r.index == review.chosen)
        body["chosen"] = {"index": chosen.index, "seed": chosen.seed, "key": chosen.key}
        body["published"] = {"bucket": published_bucket, "key": review.published_key}
    return put(bus_name, REVIEW_DETAIL_TYPES[review.status], body)


def put(bus_name: str, detail_type: str, body: dict[str, Any]) -> dict[str, Any]:
    """One event from the stack on its bus; EventNotPublished if EventBridge refuses it."""
    entry = {
        "EventBusName": bus_name,
        "Source": SOURCE,
        "DetailType": detail_type,
        "Resources": [],
        "Detail": json.dumps(body),
    }
    answer = aws.client("events").put_events(Entries=[entry])
    if answer.get("FailedEntryCount"):
        raise EventNotPublished(str(answer["Entries"][0].get("ErrorMessage", "unknown reason")))
    return entry
