"""The workflow tasks that call a provider: Submit and Poll (asynchronous providers),
Generate (synchronous ones), and Store, which downloads what a provider made."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from backdrop import storage
from backdrop.domain import MAX_IMAGE_URL_LENGTH, MAX_SEED, ImageSource, Job, JobStatus, ResultImage
from backdrop.jobs import JobConflict
from backdrop.observability import logger
from backdrop.providers import errors, registry
from backdrop.providers.base import ProviderRequest
from backdrop.workflow.deps import Deps
from backdrop.workflow.messages import PollInput, PollState, Stored, StoreInput, TaskInput

# How long the provider may take to start fetching a photo from the input bucket.
SOURCE_URL_SECONDS = 3600
# Provider clients, httpx and Secrets Manager are imported by the task that calls out, when
# it does (a cold start of the other tasks does not pay for them).


def submit(task: TaskInput, deps: Deps) -> PollState:
    """Hand the job to its provider, once: a retried Submit finds the provider's id on
    the job and returns it instead of paying for a second generation."""
    job = deps.jobs.get(task.job_id)
    first_wait = deps.settings.poll_first_wait_seconds
    if job.provider_job_id:
        logger.info("job already submitted")
        return PollState(provider_job_id=job.provider_job_id, wait_seconds=first_wait)
    if job.status is not JobStatus.QUEUED:
        raise JobConflict(f"job {job.id} is {job.status.value}, not queued")
    from backdrop.providers.clients import async_client

    client = async_client(job.provider, timeout=deps.settings.provider_timeout_seconds)
    provider_job_id = client.submit(_request(job))
    deps.jobs.mark_running(job.id, provider_job_id)
    logger.info("job submitted", extra={"provider_job_id": provider_job_id})
    return PollState(provider_job_id=provider_job_id, wait_seconds=first_wait)


def _request(job: Job) -> ProviderRequest:
    """Ask the provider to fetch the photo rather than passing bytes through the Lambda;
    only a presigned URL longer than a provider takes (long session tokens) sends bytes."""
    url = _url(job.source)
    guidance = job.options.guidance
    return ProviderRequest(
        options=job.options,
        image_url=url if len(url) <= MAX_IMAGE_URL_LENGTH else None,
        image=None if len(url) <= MAX_IMAGE_URL_LENGTH else _read(job.source),
        guidance_url=_url(guidance.image) if guidance else None,
    )


def _read(source: ImageSource) -> bytes:
    assert source.bucket is not None
    assert source.key is not None
    return storage.read_object(source.bucket, source.key, source.version_id)


def _url(source: ImageSource) -> str:
    if source.url is not None:
        return source.url
    assert source.bucket is not None
    assert source.key is not None
    return storage.presigned_get(
        source.bucket, source.key, SOURCE_URL_SECONDS, version_id=source.version_id
    )


def poll(task: PollInput, deps: Deps) -> PollState:
    state, provider = task.poll, task.provider
    from backdrop.providers.clients import async_client

    client = async_client(provider, timeout=deps.settings.provider_timeout_seconds)
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
    if attempt >= deps.settings.poll_max_attempts:
        raise errors.ProviderTimeout(
            f"the provider had no result after {attempt} polls", provider=provider
        )
    return PollState(
        provider_job_id=state.provider_job_id,
        attempt=attempt,
        wait_seconds=deps.settings.poll_interval_seconds,
    )


def store(task: StoreInput, deps: Deps) -> Stored:
    """Copy every result into the results bucket, then mark the job succeeded."""
    from backdrop.workflow.downloads import copy_url_to_s3

    job = deps.jobs.get(task.job_id)
    if job.status is JobStatus.SUCCEEDED:
        return Stored(results=job.results)
    from backdrop.providers.clients import http_client

    http = http_client(deps.settings.provider_timeout_seconds)
    results = [
        copy_url_to_s3(
            http,
            url=url,
            bucket=deps.settings.results_bucket,
            key=storage.result_key(job, index),
            image_format=job.options.format,
            provider=job.provider,
            metadata={storage.JOB_ID_METADATA: job.id},
        )
        for index, url in enumerate(task.urls)
    ]
    deps.jobs.mark_succeeded(job.id, results)
    return Stored(results=results)


def generate(task: TaskInput, deps: Deps) -> Stored:
    """The synchronous path: one call per image, a few at a time, each streamed into the
    results bucket. A retried task regenerates only the images not stored yet, with the
    same seeds, so no image is paid for twice."""
    settings, jobs = deps.settings, deps.jobs
    job = jobs.get(task.job_id)
    if job.status is JobStatus.SUCCEEDED:
        return Stored(results=job.results)
    if job.status is JobStatus.QUEUED:
        jobs.mark_running(job.id, None)
    from backdrop.providers.clients import sync_client

    client = sync_client(job.provider, timeout=settings.provider_timeout_seconds)
    count = job.options.count
    seeds = _seeds(job)
    keys = [storage.result_key(job, i) for i in range(count)]
    prefix = storage.results_prefix(job)
    done = storage.stored_by_job(settings.results_bucket, prefix, keys, job.id)
    base = _request(job) if len(done) < count else None

    def make(index: int) -> ResultImage:
        if keys[index] not in done:
            assert base is not None
            with client.generate(replace(base, seed=seeds[index])) as image:
                seed = image.seed if image.seed is not None else seeds[index]
                storage.upload_stream(
                    image.chunks,
                    bucket=settings.results_bucket,
                    key=keys[index],
                    content_type=image.content_type,
                    metadata={"seed": str(seed), storage.JOB_ID_METADATA: job.id},
                )
        return storage.describe_result(settings.results_bucket, keys[index], index)

    concurrency = registry.get(job.provider).settings().concurrency
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(make, range(count)))
    jobs.mark_succeeded(job.id, results)
    return Stored(results=results)


def _seeds(job: Job) -> list[int]:
    """Distinct seeds, one per image: from the caller's seed, else from the job id, so a
    retry asks for exactly the images it asked for before."""
    base = job.options.seed if job.options.seed is not None else int(job.id[:8], 16)
    return [(base + i) % (MAX_SEED + 1) for i in range(job.options.count)]
