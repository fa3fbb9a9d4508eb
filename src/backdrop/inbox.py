"""What one new object under inbox/ becomes: a started job, or a failed job that says why
(options that cannot be honoured, a file the provider would refuse, a key too long for its
outbox folder), decided before any provider call. Never an exception for what a retry
cannot fix."""

from __future__ import annotations

from backdrop import executions, inbox_options, storage
from backdrop.config import InboxSettings
from backdrop.domain import ImageSource, Job, JobStatus
from backdrop.jobs import JobNotFound, JobStore, source_job_id
from backdrop.observability import logger
from backdrop.plan import Ask, Photo, PlanRefused, plan


def handle(
    *,
    bucket: str,
    key: str,
    version_id: str | None,
    etag: str,
    size: int | None,
    settings: InboxSettings,
    jobs: JobStore,
) -> Job | None:
    """Start (or refuse) the job for one version of one object; None if there is nothing to
    do. A repeated notification finds its job and does nothing more."""
    if key.endswith("/") or size == 0:
        logger.info("folder marker or empty object ignored", extra={"key": key})
        return None
    job_id = source_job_id(bucket, key, version_id or etag)
    try:
        existing = jobs.get(job_id)
        if existing.status in (JobStatus.RUNNING, JobStatus.SUCCEEDED):
            logger.info("notification repeated", extra={"job_id": job_id})
            return existing
    except JobNotFound:
        pass
    metadata = storage.object_metadata(bucket, key, version_id)
    if metadata is None:
        logger.info("object deleted before it was handled", extra={"key": key})
        return None
    photo = Photo(stored=ImageSource(bucket=bucket, key=key, version_id=version_id))
    layers = inbox_options.layers(key, metadata, settings)
    try:
        new = plan(Ask(trigger="inbox", photo=photo, layers=layers, job_id=job_id), settings)
    except PlanRefused as exc:
        logger.info("inbox image refused", extra={"job_id": job_id, "code": exc.code})
        return executions.refuse(exc.job, exc.error, settings=settings, jobs=jobs)
    job = executions.start_or_refuse(new, settings=settings, jobs=jobs)
    logger.info("inbox image started", extra={"job_id": job_id, "provider": job.provider})
    return job
