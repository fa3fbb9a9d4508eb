"""What each workflow task does. The handlers only parse the task input and call these;
the state machine (statemachine/generation.asl.json) decides the order, waits and retries."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import cache
from typing import Any

import httpx
from aws_lambda_powertools.utilities import parameters

from backdrop import outcomes, storage
from backdrop.config import Settings
from backdrop.jobs import JobConflict, JobStore
from backdrop.models import (
    MAX_IMAGE_URL_LENGTH,
    MAX_SEED,
    ImageSource,
    Job,
    JobError,
    JobStatus,
    PollState,
    ResultImage,
)
from backdrop.observability import logger
from backdrop.providers import errors
from backdrop.providers.photoroom import EditOptions, PhotoroomClient
from backdrop.providers.picsart import PicsartClient

# How long the provider may take to start fetching a photo from the input bucket.
SOURCE_URL_SECONDS = 3600


@cache
def http_client(timeout: float) -> httpx.Client:
    """One connection pool per container for provider calls and result downloads. No
    redirects: httpx would carry the provider's key header to wherever one points."""
    return httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0))


def _secret(name: str) -> str:
    # Powertools caches the secret for five minutes, so a rotated key is picked up soon.
    return str(parameters.get_secret(name, max_age=300))


def picsart(settings: Settings) -> PicsartClient:
    return PicsartClient(
        _secret(settings.picsart_secret_name),
        base_url=settings.picsart_api_url,
        http=http_client(settings.provider_timeout_seconds),
    )


def photoroom(settings: Settings) -> PhotoroomClient:
    return PhotoroomClient(
        _secret(settings.photoroom_secret_name),
        base_url=settings.photoroom_api_url,
        http=http_client(settings.provider_timeout_seconds),
        default_model=settings.photoroom_model,
    )


def submit(job_id: str, *, settings: Settings, jobs: JobStore, client: PicsartClient) -> PollState:
    """Hand the job to the provider, once: a retried Submit finds the provider's id on
    the job and returns it instead of paying for a second generation."""
    job = jobs.get(job_id)
    first_wait = settings.poll_first_wait_seconds
    if job.provider_job_id:
        logger.info("job already submitted", extra={"job_id": job_id})
        return PollState(provider_job_id=job.provider_job_id, wait_seconds=first_wait)
    if job.status is not JobStatus.QUEUED:
        raise JobConflict(f"job {job_id} is {job.status.value}, not queued")
    provider_job_id = client.submit(
        prompt=job.options.prompt,
        negative_prompt=job.options.negative_prompt,
        count=job.options.count,
        format=job.options.format,
        **_image(job.source),
    )
    jobs.mark_running(job_id, provider_job_id)
    logger.info("job submitted", extra={"job_id": job_id, "provider_job_id": provider_job_id})
    return PollState(provider_job_id=provider_job_id, wait_seconds=first_wait)


def _image(source: ImageSource) -> dict[str, Any]:
    """Ask the provider to fetch the image rather than passing bytes through the Lambda;
    only a presigned URL longer than Picsart accepts (long session tokens) sends the bytes."""
    url = _url(source)
    if len(url) <= MAX_IMAGE_URL_LENGTH:
        return {"image_url": url}
    assert source.bucket is not None
    assert source.key is not None
    return {"image": storage.read_object(source.bucket, source.key, source.version_id)}


def _url(source: ImageSource) -> str:
    if source.url is not None:
        return source.url
    assert source.bucket is not None
    assert source.key is not None
    return storage.presigned_get(
        source.bucket, source.key, SOURCE_URL_SECONDS, version_id=source.version_id
    )


def poll(state: PollState, *, settings: Settings, client: PicsartClient) -> PollState:
    outcome = client.poll(state.provider_job_id)
    attempt = state.attempt + 1
    if outcome.status == "done":
        return PollState(
            provider_job_id=state.provider_job_id,
            attempt=attempt,
            wait_seconds=0,
            status="done",
            urls=list(outcome.urls),
        )
    if attempt >= settings.poll_max_attempts:
        raise errors.ProviderTimeout(
            f"the provider had no result after {attempt} polls", provider=client.name
        )
    return PollState(
        provider_job_id=state.provider_job_id,
        attempt=attempt,
        wait_seconds=settings.poll_interval_seconds,
    )


def store(
    job_id: str, urls: list[str], *, settings: Settings, jobs: JobStore, http: httpx.Client
) -> list[ResultImage]:
    """Copy every result into the results bucket, then mark the job succeeded."""
    job = jobs.get(job_id)
    if job.status is JobStatus.SUCCEEDED:
        return job.results
    results = [
        storage.copy_url_to_s3(
            http,
            url=url,
            bucket=settings.results_bucket,
            key=storage.result_key(job, index),
            image_format=job.options.format,
            provider=job.provider,
            metadata={storage.JOB_ID_METADATA: job_id},
        )
        for index, url in enumerate(urls)
    ]
    jobs.mark_succeeded(job_id, results)
    return results


def generate(
    job_id: str, *, settings: Settings, jobs: JobStore, client: PhotoroomClient
) -> list[ResultImage]:
    """The synchronous path: one call per image, a few at a time, each streamed into the
    results bucket. A retried task regenerates only the images not stored yet, with the
    same seeds, so no image is paid for twice."""
    job = jobs.get(job_id)
    if job.status is JobStatus.SUCCEEDED:
        return job.results
    if job.status is JobStatus.QUEUED:
        jobs.mark_running(job_id, None)
    options = job.options
    seeds = _seeds(job)
    keys = [storage.result_key(job, i) for i in range(options.count)]
    prefix = storage.results_prefix(job)
    done = storage.stored_by_job(settings.results_bucket, prefix, keys, job_id)
    image_url = _url(job.source)
    edit = EditOptions(
        prompt=options.prompt,
        expand_prompt=options.expand_prompt,
        negative_prompt=options.negative_prompt,
        guidance_image_url=_url(options.guidance.image) if options.guidance else None,
        guidance_scale=options.guidance.scale if options.guidance else None,
        reference_box=options.reference_box,
        output_size=options.output_size,
        format=options.format,
        model=options.model,
    )

    def make(index: int) -> ResultImage:
        if keys[index] not in done:
            with client.edit(
                image_url=image_url, options=replace(edit, seed=seeds[index])
            ) as image:
                seed = image.seed if image.seed is not None else seeds[index]
                storage.upload_stream(
                    image.chunks,
                    bucket=settings.results_bucket,
                    key=keys[index],
                    content_type=image.content_type,
                    metadata={"seed": str(seed), storage.JOB_ID_METADATA: job_id},
                )
        return storage.describe_result(settings.results_bucket, keys[index], index)

    with ThreadPoolExecutor(max_workers=settings.photoroom_concurrency) as pool:
        results = list(pool.map(make, range(options.count)))
    jobs.mark_succeeded(job_id, results)
    return results


def _seeds(job: Job) -> list[int]:
    """Distinct seeds, one per image: from the caller's seed, else from the job id, so a
    retry asks for exactly the images it asked for before."""
    base = job.options.seed if job.options.seed is not None else int(job.id[:8], 16)
    return [(base + i) % (MAX_SEED + 1) for i in range(job.options.count)]


# Errors raised by the state machine itself rather than by our code.
_STATES_ERRORS = {
    "States.Timeout": ("timeout", "a workflow step ran past its time limit"),
}
_KNOWN = {cls.__name__: cls.code for cls in errors.ProviderError.__subclasses__()}


def error_from_failure(error: str, cause: str | None) -> JobError:
    """Turn the `Error`/`Cause` that a Catch hands over into the job's code and message.
    Only our own errors' messages are shown; anything else is logged, not leaked."""
    if error in _KNOWN:
        message = _cause_message(cause) or error
        return JobError(code=_KNOWN[error], message=message)
    if error in _STATES_ERRORS:
        code, message = _STATES_ERRORS[error]
        return JobError(code=code, message=message)
    logger.error("unexpected workflow failure", extra={"error": error, "cause": cause})
    return JobError(code="internal_error", message="the generation failed for an internal reason")


def _cause_message(cause: str | None) -> str | None:
    if not cause:
        return None
    try:
        payload = json.loads(cause)
    except ValueError:
        return cause[:500]
    message = payload.get("errorMessage") if isinstance(payload, dict) else None
    return str(message)[:500] if message else None


def mark_failed(job_id: str, error: str, cause: str | None, *, jobs: JobStore) -> Job:
    return jobs.mark_failed(job_id, error_from_failure(error, cause))


def publish(job_id: str, *, settings: Settings, jobs: JobStore) -> Job:
    job = jobs.get(job_id)
    outcomes.announce(job, settings)
    return job
