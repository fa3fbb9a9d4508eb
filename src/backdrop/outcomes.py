"""How a finished job is made known, whether the workflow ran it or it was refused before:
an inbox job's folder shows only its own results, then its manifest, then its event."""

from __future__ import annotations

from backdrop import events, manifests, storage, telemetry
from backdrop.config import OutcomeSettings
from backdrop.domain import Job, JobStatus
from backdrop.observability import logger


def announce(job: Job, settings: OutcomeSettings) -> None:
    """Safe to repeat (a retried task, a redelivered notification): the same files are
    written again, and the event is sent again (events are at-least-once)."""
    if job.trigger in ("inbox", "batch") and job.source.key is not None:
        prefix = storage.results_prefix(job)
        # A re-upload replaces what its earlier version left: images it did not write go,
        # before the manifest says what is there. Only a folder beside the source is shared
        # by versions; one under the job id (a key too long for outbox/) holds this job's alone.
        # A canceled job ended by its caller's choice: what it or an earlier version stored
        # stays.
        if storage.mirrors_source(job) and job.status is not JobStatus.CANCELED:
            removed = storage.remove_other_results(
                settings.results_bucket, prefix, keep={result.key for result in job.results}
            )
            if removed:
                logger.info("earlier results removed", extra={"job_id": job.id, "keys": removed})
        manifests.write(job, settings.results_bucket)
    events.publish_outcome(
        job, bus_name=settings.event_bus_name, results_bucket=settings.results_bucket
    )
    # Every ended job is counted here, the workflow's and the refused ones alike (after the
    # event: a retried announcement counts again only if the event failed the first time).
    code = job.error.code if job.error else None
    telemetry.emit(f"Jobs{job.status.value.title()}", 1, provider=job.provider, code=code)
