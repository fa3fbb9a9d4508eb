"""The workflow tasks that call a provider: Submit and Poll (asynchronous providers),
Generate (synchronous ones), and Store, which downloads what a provider made.

Every call to a provider takes its turn from the rate governor first. A task that must
wait returns how long (the workflow's Wait state sleeps it; under a second, the task does);
a 429 pauses the provider's whole bucket and is a wait too, never an error, and so is a
402: the account out of credits stops new work until credits return. Only the job's
deadlines end the waiting.
"""

from __future__ import annotations

import math
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from typing import TypeVar

from backdrop import error_codes, review, storage, telemetry, thumbnails
from backdrop.batches.store import review_moved
from backdrop.domain import (
    MAX_IMAGE_URL_LENGTH,
    MAX_SEED,
    ImageSource,
    Job,
    JobStatus,
    ResultImage,
)
from backdrop.governor import Limit, QueueDeadlinePassed
from backdrop.jobs import JobConflict
from backdrop.observability import logger
from backdrop.providers import errors, registry
from backdrop.providers.base import ProviderRequest, ProviderSpec
from backdrop.workflow import schedule
from backdrop.workflow.deps import Deps
from backdrop.workflow.messages import Step, StepInput, Stored, StoreInput

# How long the provider may take to start fetching a photo from the input bucket.
SOURCE_URL_SECONDS = 3600
# A provider that is down (5xx, no connection) before it took the job is tried this many
# more times, with exponential backoff and full jitter. Counted in the Step, not by a
# state's Retry: a retry that must then wait for its turn would reset a Retry's count.
PROVIDER_RETRIES = error_codes.WORKFLOW_RETRIES
RETRY_INTERVAL_SECONDS = 2.0
RETRY_MAX_DELAY_SECONDS = 30.0

# A wait for a turn or a token shorter than this is slept in the task, not by the Wait
# state: a Wait takes whole seconds, so it would make a turn 0.2 s away 0.8 s late and
# bunch turns on whole seconds (some then find no token, and the bucket overflows between
# bunches, so a batch at the limit runs below it); and a Wait costs two state transitions
# and another invocation, more than a second of the task.
SLEEP_BELOW_SECONDS = 1.0
Seconds = TypeVar("Seconds", int, float)

# Provider clients come from deps.clients, which imports them (httpx, Secrets Manager) only
# when a task calls out.


def _seconds(wait: float) -> int:
    # Wait states take whole seconds: round up, so a turn is never taken early.
    return max(1, math.ceil(wait))


def submit(task: StepInput, deps: Deps) -> Step:
    """Hand the job to its provider, once and in its turn. A retried Submit finds the
    provider's id on the job and goes on from there instead of paying twice."""
    job = deps.jobs.get(task.job_id)
    if job.provider_job_id:
        logger.info("job already submitted")
        return _accepted(job.provider_job_id, tuple(job.provider_urls), deps, job.provider)
    if job.status is not JobStatus.QUEUED:
        raise JobConflict(f"job {job.id} is {job.status.value}, not queued")
    spec = registry.get(job.provider)
    turn = _turn(task.step, job, spec, deps, count=1)
    if isinstance(turn, Step):
        return turn

    client = deps.clients.async_client(job.provider, timeout=deps.settings.provider_timeout_seconds)
    request = _request(job)
    if not deps.jobs.mark_submitting(job.id):
        raise errors.ProviderOutcomeUnknown(
            "an earlier attempt sent this job to the provider and its answer was never "
            "recorded; not sent again, so it is not paid for twice",
            provider=job.provider,
        )
    started = time.time()
    try:
        submitted = client.submit(request, wait_seconds=spec.settings().submit_wait_seconds)
    except errors.ProviderThrottled as exc:
        # Not accepted, so not paid: the whole provider pauses, this job keeps its turn.
        deps.jobs.clear_submitting(job.id)
        pause = _throttled(deps, job.provider, spec, exc)
        return _queued(task.step, _seconds(pause), turn=True)
    except errors.ProviderQuotaExceeded:
        deps.jobs.clear_submitting(job.id)  # refused, so not paid
        return _out_of_credits(deps, task.step, job.provider, spec, needed=job.options.count)
    except errors.ProviderOutcomeUnknown:
        raise  # maybe paid: the mark stays, so no retry sends it again
    except errors.ProviderUnavailable as exc:
        deps.jobs.clear_submitting(job.id)  # not taken: it may be sent again, later
        return _retry_later(task.step, job.provider, exc)
    except errors.ProviderError:
        deps.jobs.clear_submitting(job.id)  # refused, or never sent: a retry may send it
        raise
    finally:
        _observe(client, job.provider, spec, deps)
        _observe_credits(client, job.provider, spec, deps)
    deps.jobs.mark_running(job.id, submitted.provider_job_id, submitted.urls)
    logger.info("job submitted", extra={"provider_job_id": submitted.provider_job_id})
    if submitted.urls:
        elapsed = time.time() - started
        deps.governor.record_job(job.provider, Limit.of(spec), elapsed, polls=0)
        telemetry.emit("PollsPerJob", 0, provider=job.provider)
        telemetry.emit("ProviderSeconds", elapsed, "Seconds", provider=job.provider)
    return _accepted(submitted.provider_job_id, submitted.urls, deps, job.provider, started)


def _retry_later(step: Step, provider: str, exc: errors.ProviderUnavailable) -> Step:
    """The provider could not take the call: the same job tries again after a backoff,
    keeping its turn, until PROVIDER_RETRIES are spent; then the error is the job's."""
    failures = step.failures + 1
    if failures > PROVIDER_RETRIES:
        raise exc
    ceiling = min(RETRY_MAX_DELAY_SECONDS, RETRY_INTERVAL_SECONDS * 2 ** (failures - 1))
    logger.info("provider unavailable; trying again", extra={"failures": failures})
    telemetry.provider_error(provider, exc.code)
    wait = _seconds(random.uniform(0, ceiling))  # jitter, not a secret
    return Step(status="queued", wait_seconds=wait, turn=True, failures=failures)


def _throttled(
    deps: Deps, provider: str, spec: ProviderSpec, exc: errors.ProviderThrottled
) -> float:
    """A 429: the provider's whole bucket pauses until its reset time; returns the pause."""
    telemetry.emit("ProviderThrottled", 1, provider=provider)
    return deps.governor.pause(provider, Limit.of(spec), exc.retry_after)


def _out_of_credits(
    deps: Deps, step: Step, provider: str, spec: ProviderSpec, *, needed: float
) -> Step:
    """A 402: the provider's account cannot pay. New work stops until credits return; this
    job queues again (the governor says when to look), within its deadline."""
    telemetry.emit("ProviderOutOfCredits", 1, provider=provider)
    deps.governor.out_of_credits(provider, Limit.of(spec), needed)
    return _queued(step, 1, turn=False)


def _observe_credits(client: object, provider: str, spec: ProviderSpec, deps: Deps) -> None:
    # Clients that read the account's balance from their answers expose it (optional): a
    # figure for the low-balance alarm, and 0 stops new work before a 402 would.
    credits = getattr(client, "last_credits", None)
    if not isinstance(credits, int):
        return
    telemetry.emit("ProviderCreditsAvailable", credits, provider=provider)
    if credits <= 0:
        telemetry.emit("ProviderOutOfCredits", 1, provider=provider)
        deps.governor.out_of_credits(provider, Limit.of(spec), 1)


def _waited(provider: str, seconds: Seconds) -> Seconds:
    telemetry.emit("RateLimitWaitSeconds", seconds, "Seconds", provider=provider)
    return seconds


def _sleep(deps: Deps, provider: str, seconds: float) -> None:
    deps.sleep(_waited(provider, seconds))


def _observe(client: object, provider: str, spec: ProviderSpec, deps: Deps) -> None:
    # Clients that read the provider's remaining-requests header expose it (optional).
    available = getattr(client, "last_available", None)
    if isinstance(available, int):
        deps.governor.observe(provider, Limit.of(spec), available)


def _accepted(
    provider_job_id: str,
    urls: tuple[str, ...],
    deps: Deps,
    provider: str,
    submitted_at: float | None = None,
) -> Step:
    if urls:
        return Step(status="done", provider_job_id=provider_job_id, urls=list(urls))
    submitted_at = submitted_at or time.time()
    first = schedule.next_wait(deps.governor, provider, deps.settings, elapsed=0.0, attempt=0)
    return Step(
        status="processing",
        provider_job_id=provider_job_id,
        wait_seconds=first,
        submitted_at=submitted_at,
    )


def _turn(step: Step, job: Job, spec: ProviderSpec, deps: Deps, *, count: int) -> Step | int:
    """New work waits for its turn on the provider's lane, then for tokens. Returns the
    Step to wait with, or how many of `count` calls may go now (at least one). Fails the
    job with `queue_timeout` when its turn would come after its deadline."""
    limit = Limit.of(spec)
    if not step.turn:
        deadline = job.created_at.timestamp() + deps.settings.queue_deadline_seconds
        try:
            turn = deps.governor.queue(job.provider, limit, count, deadline)
        except QueueDeadlinePassed as exc:
            raise errors.QueueTimeout(
                _queue_timeout(job.provider, exc, deps), provider=job.provider
            ) from None
        if turn.reserved and 0 < turn.wait < SLEEP_BELOW_SECONDS:
            _sleep(deps, job.provider, turn.wait)
        elif turn.wait > 0:
            wait = _waited(job.provider, _seconds(turn.wait))
            return _queued(step, wait, turn=turn.reserved)
    grant = deps.governor.take_new(job.provider, limit, count)
    if grant.granted == 0 and 0 < grant.wait < SLEEP_BELOW_SECONDS and not grant.requeue:
        _sleep(deps, job.provider, grant.wait)
        grant = deps.governor.take_new(job.provider, limit, count)
    if grant.granted == 0:
        # Its turn came but no token: polls of accepted jobs went first. It keeps its turn,
        # unless the account ran out of credits: then it queues again, within its deadline.
        wait = _waited(job.provider, _seconds(grant.wait))
        return _queued(step, wait, turn=not grant.requeue)
    return grant.granted


def _queue_timeout(provider: str, exc: QueueDeadlinePassed, deps: Deps) -> str:
    deadline = deps.settings.queue_deadline_seconds
    if exc.credits_out_since is not None:
        since = datetime.fromtimestamp(exc.credits_out_since, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return (
            f"not sent to {provider}: its account has been out of credits since {since}, and "
            f"no credits came back within {deadline} s of the job's creation "
            "(QueueDeadlineSeconds)"
        )
    return (
        f"not sent to {provider}: its rate limit left no turn within {deadline} s of the "
        f"job's creation (QueueDeadlineSeconds; the next turn came "
        f"{exc.turn_at - exc.deadline:.0f} s too late)"
    )


def _queued(step: Step, wait: int, *, turn: bool) -> Step:
    # Waiting keeps the count of failed calls: waits and retries do not reset each other.
    return Step(status="queued", wait_seconds=wait, turn=turn, failures=step.failures)


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


def poll(task: StepInput, deps: Deps) -> Step:
    """Ask the provider whether the job is done. The job is paid for: its poll always gets
    a token, if need be after a wait, and a 429 is a wait, never a failure."""
    step, provider = task.step, task.provider
    assert step.provider_job_id is not None
    spec = registry.get(provider)
    limit = Limit.of(spec)
    if not step.token:
        grant = deps.governor.take_paid(provider, limit)
        if grant.wait > 0:
            # The token is ours (or the provider is paused): wait, then poll without asking.
            token = grant.granted > 0
            wait = _waited(provider, _seconds(grant.wait))
            return step.model_copy(update={"wait_seconds": wait, "token": token})

    client = deps.clients.async_client(provider, timeout=deps.settings.provider_timeout_seconds)
    try:
        outcome = client.poll(step.provider_job_id)
    except errors.ProviderThrottled as exc:
        pause = _throttled(deps, provider, spec, exc)
        return step.model_copy(update={"wait_seconds": _seconds(pause), "token": False})
    finally:
        _observe(client, provider, spec, deps)
    attempt = step.attempt + 1
    elapsed = time.time() - (step.submitted_at or time.time())
    if outcome.status == "done":
        # It finished between the last poll that found it processing and this one: the
        # middle is the estimate (this poll's time alone would teach the schedule its lag).
        took = (step.polled_after + elapsed) / 2
        deps.governor.record_job(provider, limit, took, polls=attempt)
        telemetry.emit("PollsPerJob", attempt, provider=provider)
        telemetry.emit("ProviderSeconds", elapsed, "Seconds", provider=provider)
        return Step(
            status="done",
            provider_job_id=step.provider_job_id,
            attempt=attempt,
            urls=list(outcome.urls),
        )
    if attempt >= deps.settings.poll_max_attempts:
        raise errors.ProviderTimeout(
            f"the provider had no result after {attempt} polls", provider=provider
        )
    wait = schedule.next_wait(
        deps.governor, provider, deps.settings, elapsed=elapsed, attempt=attempt
    )
    return step.model_copy(
        update={"attempt": attempt, "wait_seconds": wait, "token": False, "polled_after": elapsed}
    )


def store(task: StoreInput, deps: Deps) -> Stored:
    """Copy every result into the results bucket, then mark the job succeeded."""
    from backdrop.workflow.downloads import copy_results_to_s3

    job = deps.jobs.get(task.job_id)
    if job.status is JobStatus.SUCCEEDED:
        return Stored(results=job.results)
    if job.status is not JobStatus.RUNNING:
        raise JobConflict(f"job {job.id} is {job.status.value}: its results are not stored")
    results = copy_results_to_s3(task.urls, job=job, settings=deps.settings)
    return Stored(results=_succeed(job, results, deps))


def _succeed(job: Job, results: list[ResultImage], deps: Deps) -> list[ResultImage]:
    """The job's results and photo previewed (thumbnails.py), then the job succeeded: held
    for review where the stack's ReviewMode asks. Returns the results as recorded."""
    settings = deps.settings
    results = thumbnails.add(settings.results_bucket, job.id, results)
    held = review.on_success(settings.review_mode)
    # The photo's preview serves the review console: only a job held for review reads it.
    preview = thumbnails.of_source(settings.results_bucket, job) if held else None
    counted = review_moved(
        settings.batches_table, job.batch_id, None, held.status if held else None
    )
    cost = registry.get(job.provider).cost(len(results))
    deps.jobs.mark_succeeded(job.id, results, held, preview, counted, cost)
    telemetry.emit("CostUsd", cost.estimated_usd, provider=job.provider)
    telemetry.emit("ProviderUnits", cost.units, provider=job.provider)
    return results


def generate(task: StepInput, deps: Deps) -> Step:
    """The synchronous path: one call per image, a few at a time, each streamed into the
    results bucket, each in its turn at the provider's limit. A retried or resumed task
    regenerates only the images not stored yet, with the same seeds, so no image is paid
    for twice."""
    settings, jobs = deps.settings, deps.jobs
    job = jobs.get(task.job_id)
    if job.status is JobStatus.SUCCEEDED:
        return Step(status="done")
    if job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
        # Canceled (its execution not stopped yet): nothing more is asked, or paid for.
        raise JobConflict(f"job {job.id} is {job.status.value}, not generated")
    count = job.options.count
    seeds = _seeds(job)
    keys = [storage.result_key(job, i) for i in range(count)]
    prefix = storage.results_prefix(job)
    done = storage.stored_by_job(settings.results_bucket, prefix, keys, job.id)
    missing = [i for i in range(count) if keys[i] not in done]
    spec = registry.get(job.provider)
    now: list[int] = []
    if missing:
        turn = _turn(task.step, job, spec, deps, count=len(missing))
        if isinstance(turn, Step):
            return turn
        now = missing[:turn]  # the calls the governor let go; the rest take another turn
    if job.status is JobStatus.QUEUED:
        jobs.mark_running(job.id, None)

    client = deps.clients.sync_client(job.provider, timeout=settings.provider_timeout_seconds)
    base = _request(job) if now else None

    def make(index: int) -> None:
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

    with ThreadPoolExecutor(max_workers=spec.settings().concurrency) as pool:
        try:
            list(pool.map(make, now))
        except errors.ProviderThrottled as exc:
            # Images stored so far stay; the rest wait for the provider, in a new turn.
            pause = _throttled(deps, job.provider, spec, exc)
            return _queued(task.step, _seconds(pause), turn=False)
        except errors.ProviderQuotaExceeded:
            # Images stored so far stay (paid once); the rest wait for credits.
            return _out_of_credits(deps, task.step, job.provider, spec, needed=1)
        except errors.ProviderUnavailable as exc:
            return _retry_later(task.step, job.provider, exc)  # stored images stay
    if len(now) < len(missing):
        # The rest in the same turn, as the next tokens come (about one per 1/rate s).
        wait = (len(missing) - len(now)) / Limit.of(spec).per_second
        return _queued(task.step, _seconds(wait), turn=True)
    results = [storage.describe_result(settings.results_bucket, k, i) for i, k in enumerate(keys)]
    _succeed(job, results, deps)
    return Step(status="done")


def _seeds(job: Job) -> list[int]:
    """Distinct seeds, one per image: from the caller's seed, else from the job id, so a
    retry asks for exactly the images it asked for before."""
    base = job.options.seed if job.options.seed is not None else int(job.id[:8], 16)
    return [(base + i) % (MAX_SEED + 1) for i in range(job.options.count)]
