"""What one new object under inbox/ becomes: a started job, or a failed job that says why
(options that cannot be honoured, a file the provider would refuse), decided before any
provider call. Never an exception for what a retry cannot fix."""

from __future__ import annotations

from backdrop import executions, images, inbox_options, storage
from backdrop.config import Settings
from backdrop.jobs import JobNotFound, JobStore, source_job_id
from backdrop.models import ImageSource, Job, JobError, JobStatus
from backdrop.observability import logger


def handle(
    *,
    bucket: str,
    key: str,
    version_id: str | None,
    etag: str,
    size: int | None,
    settings: Settings,
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
    source = ImageSource(bucket=bucket, key=key, version_id=version_id)

    def reject(error: JobError, chosen: inbox_options.InboxOptions | None = None) -> Job:
        logger.info("inbox image refused", extra={"job_id": job_id, "code": error.code})
        return executions.reject_job(
            settings=settings,
            jobs=jobs,
            job_id=job_id,
            trigger="inbox",
            source=source,
            options=chosen.options if chosen else inbox_options.defaults(settings),
            provider=chosen.provider if chosen else None,
            error=error,
        )

    try:
        chosen = inbox_options.resolve(key, metadata, settings)
    except inbox_options.OptionRejected as exc:
        return reject(exc.error)
    try:
        images.inspect_object(bucket, key, version_id, provider=chosen.provider)
    except images.ImageRejected as exc:
        return reject(exc.error, chosen)
    job = executions.start_job(
        settings=settings,
        jobs=jobs,
        job_id=job_id,
        trigger="inbox",
        provider=chosen.provider,
        source=source,
        options=chosen.options,
    )
    logger.info("inbox image started", extra={"job_id": job_id, "preset": chosen.preset})
    return job
