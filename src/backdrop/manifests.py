"""The manifest of an inbox job: a small JSON file beside its results
(`outbox/<folder>/<file name>/manifest.json`) that says how the job ended, so whoever
uploaded the image can see a failure where the results would be. A source whose key is too
long for that folder has its manifest under `results/<job id>/` (storage.results_prefix)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from backdrop import storage
from backdrop.domain import (
    GenerationOptions,
    ImageSource,
    Job,
    JobError,
    JobStatus,
    ProviderName,
    ResultImage,
)


class Manifest(BaseModel):
    job_id: str
    status: JobStatus
    provider: ProviderName
    source: ImageSource
    options: GenerationOptions
    results: list[ResultImage]
    error: JobError | None
    created_at: datetime
    updated_at: datetime


def of(job: Job) -> Manifest:
    return Manifest(
        job_id=job.id,
        status=job.status,
        provider=job.provider,
        source=job.source,
        options=job.options,
        results=job.results,
        error=job.error,
        created_at=job.created_at,
        updated_at=job.updated_at,
    )


def write(job: Job, bucket: str) -> str:
    """Write the job's manifest (replacing an earlier version's); returns its key."""
    key = storage.manifest_key(job)
    storage.put_json(bucket, key, of(job).model_dump_json(indent=2))
    return key
