"""EventBridge events from source `backdrop`: `Generation Succeeded` / `Generation Failed` /
`Generation Canceled`, and `Batch Completed` (batches/report.py)."""

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
