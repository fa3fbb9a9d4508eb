"""The provider tasks (Submit, Poll, Generate, Store) on the in-memory stores, calling the
real provider clients over httpx's MockTransport: every branch, with no AWS, no network
and no sleeping (the governor's clock and the task's sleep belong to the test)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest

from backdrop import storage, thumbnails
from backdrop.config import WorkflowSettings
from backdrop.domain import GenerationOptions, ImageSource, JobError, JobStatus, NewJob, ResultImage
from backdrop.governor import Governor, Limit
from backdrop.jobs import JobConflict, new_job_id
from backdrop.providers import errors, registry
from backdrop.providers.base import AsyncProvider, SyncProvider
from backdrop.stores import Bucket
from backdrop.workflow import downloads, provider_tasks
from backdrop.workflow.deps import Deps
from backdrop.workflow.messages import Step, StepInput, StoreInput
from tests.fakes import MemoryBuckets, MemoryJobs

PHOTO = "https://images.example.com/mug.png"
PICSART_URL = "https://picsart.test/v1"
PHOTOROOM_URL = "https://photoroom.test"
# What both providers are given below: one request a second, two at once. Before any job
# has finished, new work's lane is half of it (a job is expected to need one poll).
LIMIT = Limit(per_minute=60, burst=2)
LANE_SECONDS = 2.0  # between two turns of one call each
FIRST_POLL = 8  # poll_first_wait_seconds: no history, so the fixed schedule
NEXT_POLL = 3  # poll_interval_seconds


def _settings(**overrides: Any) -> WorkflowSettings:
    """The one place these tests make the workflow's settings."""
    values: dict[str, Any] = {
        "jobs_table": "jobs",
        "batches_table": "batches",
        "governor_table": "governor",
        "input_bucket": "in",
        "results_bucket": "out",
        "event_bus_name": "bus",
        "poll_first_wait_seconds": FIRST_POLL,
        "poll_interval_seconds": NEXT_POLL,
        "poll_max_attempts": 5,
    }
    return WorkflowSettings.model_validate(values | overrides)


@pytest.fixture(autouse=True)
def _providers(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, url in (("PICSART", PICSART_URL), ("PHOTOROOM", PHOTOROOM_URL)):
        monkeypatch.setenv(f"{name}_API_URL", url)
        monkeypatch.setenv(f"{name}_REQUESTS_PER_MINUTE", str(LIMIT.per_minute))
        monkeypatch.setenv(f"{name}_BURST", str(LIMIT.burst))
    monkeypatch.delenv("PICSART_SUBMIT_WAIT_SECONDS", raising=False)
    # One Photoroom call at a time: its answers are given in order.
    monkeypatch.setenv("PHOTOROOM_CONCURRENCY", "1")


# -- the world the tasks see -----------------------------------------------------------

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class Provider:
    """The provider's end of the connection: each request gets the next answer given (an
    exception is a transport failure), and every request is kept."""

    def __init__(self) -> None:
        self.answers: list[Answer] = []
        self.requests: list[httpx.Request] = []

    def answer(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        assert self.answers, f"no answer for {request.method} {request.url}"
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer if isinstance(answer, httpx.Response) else answer(request)


class Clients:
    """deps.clients: the registry's own clients, over the test's transport."""

    def __init__(self, provider: Provider) -> None:
        self._http = httpx.Client(transport=httpx.MockTransport(provider))

    def async_client(self, name: str, *, timeout: float) -> AsyncProvider:
        client = self._client(name)
        assert isinstance(client, AsyncProvider)
        return client

    def sync_client(self, name: str, *, timeout: float) -> SyncProvider:
        client = self._client(name)
        assert isinstance(client, SyncProvider)
        return client

    def _client(self, name: str) -> AsyncProvider | SyncProvider:
        spec = registry.get(name)
        return spec.client("test-key", spec.settings(), self._http)


class Results:
    """The results bucket, as far as Generate and Store reach it (storage's functions, and
    thumbnails.add: the thumbnails themselves are tests/unit/test_thumbnails.py's)."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str, dict[str, str]]] = {}
        self.thumbnails: dict[str, str] = {}  # thumbnail key -> the job id it was made for

    def stored_by_job(self, bucket: str, prefix: str, keys: list[str], job_id: str) -> set[str]:
        return {
            key
            for key in keys
            if key in self.objects and self.objects[key][2][storage.JOB_ID_METADATA] == job_id
        }

    def upload_stream(
        self,
        chunks: Iterator[bytes],
        *,
        bucket: str,
        key: str,
        content_type: str,
        metadata: dict[str, str] | None = None,
    ) -> int:
        body = b"".join(chunks)
        self.objects[key] = (body, content_type, dict(metadata or {}))
        return len(body)

    def describe_result(self, bucket: str, key: str, index: int) -> ResultImage:
        body, content_type, metadata = self.objects[key]
        seed = metadata.get("seed")
        return ResultImage(
            index=index,
            key=key,
            content_type=content_type,
            size=len(body),
            seed=int(seed) if seed else None,
        )

    def add(self, bucket: str, job_id: str, results: list[ResultImage]) -> list[ResultImage]:
        described = [
            r.model_copy(update={"thumbnail_key": thumbnails.key(job_id, r.index)}) for r in results
        ]
        self.thumbnails.update({r.thumbnail_key: job_id for r in described if r.thumbnail_key})
        return described


class Clock:
    def __init__(self) -> None:
        self.now = time.time()  # jobs are created at the real time: deadlines count from it

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    deps: Deps
    jobs: MemoryJobs
    buckets: MemoryBuckets
    clock: Clock
    provider: Provider
    results: Results
    slept: list[float]

    def bucket(self, provider: str = "picsart") -> Bucket:
        bucket, _ = self.buckets.read(provider)
        assert bucket is not None
        return bucket

    def job(self, provider: str = "picsart", *, count: int = 1, seed: int | None = None) -> str:
        options = GenerationOptions(prompt="on an oak table", count=count, format="PNG", seed=seed)
        new = NewJob(
            id=new_job_id(),
            trigger="inbox",
            provider=provider,
            source=ImageSource(url=PHOTO),
            options=options,
        )
        job, _ = self.jobs.create(new)
        return job.id


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    clock, slept = Clock(), []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    jobs, buckets, provider, results = MemoryJobs(), MemoryBuckets(), Provider(), Results()
    for name in ("stored_by_job", "upload_stream", "describe_result"):
        monkeypatch.setattr(storage, name, getattr(results, name))
    monkeypatch.setattr(thumbnails, "add", results.add)
    governor = Governor(buckets, clock=clock)
    deps = Deps(_settings(), jobs, governor, clients=Clients(provider), sleep=sleep)
    return World(deps, jobs, buckets, clock, provider, results, slept)


def _step(job_id: str, provider: str = "picsart", **step: Any) -> StepInput:
    return StepInput(job_id=job_id, provider=provider, step=Step(**step))


def _submit(world: World, job_id: str, step: Step | None = None) -> Step:
    task = StepInput(job_id=job_id, provider="picsart", step=step or Step())
    return provider_tasks.submit(task, world.deps)


# -- Picsart's answers -----------------------------------------------------------------


def _accepted(inference_id: str = "inf-1", **headers: str) -> httpx.Response:
    return httpx.Response(
        202, json={"status": "ACCEPTED", "inference_id": inference_id}, headers=headers
    )


def _polled(status: str, *urls: str, detail: str | None = None) -> httpx.Response:
    data = [{"id": str(i), "url": url} for i, url in enumerate(urls)]
    return httpx.Response(200, json={"status": status, "data": data, "detail": detail})


def _throttled(reset: int) -> httpx.Response:
    headers = {"x-picsart-ratelimit-reset-time": str(reset)}
    return httpx.Response(429, json={"detail": "slow down"}, headers=headers)


# -- Submit ------------------------------------------------------------------------------


def test_a_turn_at_once_sends_the_job_and_records_the_providers_id(world: World) -> None:
    job_id = world.job()
    world.provider.answer(_accepted("inf-1"))

    step = _submit(world, job_id)

    assert (step.status, step.provider_job_id, step.wait_seconds) == ("processing", "inf-1", 8)
    assert step.submitted_at is not None
    job = world.jobs.get(job_id)
    assert (job.status, job.provider_job_id) == (JobStatus.RUNNING, "inf-1")
    [request] = world.provider.requests
    assert (request.method, str(request.url)) == (
        "POST",
        f"{PICSART_URL}/painting/replace-background",
    )
    assert request.headers["X-Picsart-API-Key"] == "test-key"
    assert b'name="image_url"' in request.content
    assert PHOTO.encode() in request.content
    bucket = world.bucket()
    assert bucket.tokens == pytest.approx(LIMIT.burst - 1)
    assert bucket.next_turn == pytest.approx(world.clock.now + LANE_SECONDS)


def test_a_submit_answered_with_its_results_is_done_and_counts_no_polls(world: World) -> None:
    job_id = world.job()
    answer = {"status": "success", "inference_id": "inf-2", "data": [{"url": "https://cdn/a.png"}]}
    world.provider.answer(httpx.Response(200, json=answer))

    step = _submit(world, job_id)

    assert (step.status, step.provider_job_id, step.urls) == (
        "done",
        "inf-2",
        ["https://cdn/a.png"],
    )
    job = world.jobs.get(job_id)
    assert (job.status, job.provider_urls) == (JobStatus.RUNNING, ["https://cdn/a.png"])
    bucket = world.bucket()
    assert len(bucket.recent) == 1
    assert bucket.polls_per_job == pytest.approx(0.9)  # one job of no polls, from 1.0


def test_a_retried_submit_goes_on_from_the_providers_id_without_sending(world: World) -> None:
    job_id = world.job()
    world.jobs.mark_running(job_id, "inf-7")

    step = _submit(world, job_id)

    assert (step.status, step.provider_job_id, step.wait_seconds) == ("processing", "inf-7", 8)
    assert world.provider.requests == []
    assert world.buckets.read("picsart") == (None, "none")  # no turn, no token


def test_a_retried_submit_with_the_results_recorded_is_done(world: World) -> None:
    job_id = world.job()
    world.jobs.mark_running(job_id, "inf-7", ("https://cdn/a.png",))

    step = _submit(world, job_id)

    assert (step.status, step.urls) == ("done", ["https://cdn/a.png"])
    assert world.provider.requests == []


@pytest.mark.parametrize("status", [JobStatus.CANCELED, JobStatus.FAILED])
def test_a_job_no_longer_queued_is_not_sent(world: World, status: JobStatus) -> None:
    job_id = world.job()
    reason = JobError(code="canceled", message="by its caller")
    if status is JobStatus.CANCELED:
        world.jobs.mark_canceled(job_id, reason)
    else:
        world.jobs.mark_failed(job_id, reason)

    with pytest.raises(JobConflict, match=f"is {status.value}, not queued"):
        _submit(world, job_id)

    assert world.provider.requests == []
    assert world.jobs.get(job_id).status is status


def test_a_job_waits_for_its_turn_in_the_wait_state_then_goes(world: World) -> None:
    world.deps.governor.queue("picsart", LIMIT, 3, deadline=world.clock.now + 3600)
    turn_at = world.clock.now + 3 * LANE_SECONDS
    job_id = world.job()

    step = _submit(world, job_id)

    assert step == Step(status="queued", wait_seconds=6, turn=True)
    assert world.provider.requests == []
    assert world.slept == []
    assert world.bucket().next_turn == pytest.approx(turn_at + LANE_SECONDS)  # its turn is kept

    world.clock.now = turn_at
    world.provider.answer(_accepted())
    assert _submit(world, job_id, step).status == "processing"
    assert len(world.provider.requests) == 1
    assert world.bucket().next_turn == pytest.approx(turn_at + LANE_SECONDS)  # not queued again


def test_a_turn_under_a_second_away_is_slept_in_the_task(world: World) -> None:
    world.deps.governor.queue("picsart", LIMIT, 1, deadline=world.clock.now + 3600)
    world.clock.now += LANE_SECONDS - 0.5
    job_id = world.job()
    world.provider.answer(_accepted())

    step = _submit(world, job_id)

    assert world.slept == [pytest.approx(0.5)]
    assert step.status == "processing"
    assert len(world.provider.requests) == 1


def test_a_token_under_a_second_away_is_slept_for(world: World) -> None:
    world.deps.governor.take_new("picsart", LIMIT, LIMIT.burst)  # the bucket is empty
    world.clock.now += 0.5  # half a token refilled
    job_id = world.job()
    world.provider.answer(_accepted())

    step = _submit(world, job_id)

    assert world.slept == [pytest.approx(0.5)]
    assert step.status == "processing"
    assert world.bucket().tokens == pytest.approx(0.0)


def test_a_turn_without_a_token_waits_for_one_and_keeps_its_turn(world: World) -> None:
    for _ in range(LIMIT.burst + 1):  # polls went first: one token owed
        world.deps.governor.take_paid("picsart", LIMIT)
    job_id = world.job()

    step = _submit(world, job_id)

    assert step == Step(status="queued", wait_seconds=2, turn=True)
    assert world.provider.requests == []
    assert world.slept == []


def test_a_turn_after_the_queue_deadline_fails_the_job_unsent(world: World) -> None:
    deps = replace(world.deps, settings=_settings(queue_deadline_seconds=60))
    job_id = world.job()
    world.clock.now += 61

    with pytest.raises(errors.QueueTimeout, match="QueueDeadlineSeconds"):
        provider_tasks.submit(_step(job_id), deps)

    assert world.provider.requests == []
    job = world.jobs.get(job_id)
    assert (job.status, job.submitting_since) == (JobStatus.QUEUED, None)
    assert world.buckets.read("picsart") == (None, "none")  # nothing reserved


def test_a_429_pauses_the_provider_and_the_job_keeps_its_turn(world: World) -> None:
    job_id = world.job()
    world.provider.answer(_throttled(7))

    step = _submit(world, job_id)

    assert step == Step(status="queued", wait_seconds=7, turn=True)
    job = world.jobs.get(job_id)
    assert (job.status, job.submitting_since) == (JobStatus.QUEUED, None)
    bucket = world.bucket()
    assert bucket.paused_until == pytest.approx(world.clock.now + 7)
    assert bucket.tokens <= 0
    next_turn = bucket.next_turn

    world.clock.now += 7
    world.provider.answer(_accepted())
    assert _submit(world, job_id, step).status == "processing"
    assert world.bucket().next_turn == next_turn  # the same turn, not a new one
    assert len(world.provider.requests) == 2


@pytest.mark.parametrize(
    "down",
    [
        httpx.Response(503, json={"detail": "maintenance"}),
        httpx.ConnectError("connection refused"),
    ],
    ids=["5xx", "unreachable"],
)
def test_a_provider_that_is_down_is_tried_again_with_backoff_then_fails(
    world: World, down: Answer
) -> None:
    job_id = world.job()
    step = Step()
    for failures in range(1, provider_tasks.PROVIDER_RETRIES + 1):
        world.provider.answer(down)
        step = _submit(world, job_id, step)
        ceiling = provider_tasks.RETRY_INTERVAL_SECONDS * 2 ** (failures - 1)
        assert (step.status, step.failures, step.turn) == ("queued", failures, True)
        assert 1 <= step.wait_seconds <= ceiling
        assert world.jobs.get(job_id).submitting_since is None  # not taken: may be sent again
        world.clock.now += step.wait_seconds

    world.provider.answer(down)
    with pytest.raises(errors.ProviderUnavailable):
        _submit(world, job_id, step)
    assert len(world.provider.requests) == provider_tasks.PROVIDER_RETRIES + 1
    job = world.jobs.get(job_id)
    assert (job.status, job.submitting_since) == (JobStatus.QUEUED, None)


def test_a_lost_answer_keeps_the_mark_and_is_never_sent_again(world: World) -> None:
    job_id = world.job()
    world.provider.answer(httpx.ReadTimeout("no answer"))

    with pytest.raises(errors.ProviderOutcomeUnknown, match="answer was lost"):
        _submit(world, job_id)
    job = world.jobs.get(job_id)
    assert job.status is JobStatus.QUEUED
    assert job.submitting_since is not None

    with pytest.raises(errors.ProviderOutcomeUnknown, match="not sent again"):
        _submit(world, job_id, Step(status="queued", turn=True))
    assert len(world.provider.requests) == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, errors.ProviderRejected), (401, errors.ProviderAuthError)],
)
def test_a_refusal_clears_the_mark_and_fails_the_task(
    world: World, status: int, error: type[errors.ProviderError]
) -> None:
    job_id = world.job()
    world.provider.answer(httpx.Response(status, json={"detail": "no such image"}))

    with pytest.raises(error, match="no such image"):
        _submit(world, job_id)

    job = world.jobs.get(job_id)
    assert (job.status, job.submitting_since) == (JobStatus.QUEUED, None)


def _out_of_credits() -> httpx.Response:
    headers = {"x-picsart-credit-available": "0"}
    return httpx.Response(402, json={"detail": "Not enough credits."}, headers=headers)


def test_a_402_pauses_new_work_until_credits_return_and_the_job_waits_unpaid(
    world: World,
) -> None:
    job_id, other = world.job(count=3), world.job()
    world.provider.answer(_out_of_credits())

    step = _submit(world, job_id)

    # Not sent again at once: it queues again, and finds the account paused.
    assert step == Step(status="queued", wait_seconds=1, turn=False)
    job = world.jobs.get(job_id)
    assert (job.status, job.submitting_since) == (JobStatus.QUEUED, None)
    bucket = world.bucket()
    assert bucket.credits_out_since == pytest.approx(world.clock.now)
    assert bucket.credits_needed == 1  # the header's 0 came with it: any credit will do
    for waiting in (job_id, other):
        world.clock.now += 1
        step = _submit(world, waiting, step)
        # About as often as the balance is checked (the governor's credits_wait), jittered.
        assert step.status == "queued"
        assert not step.turn
        assert 30 <= step.wait_seconds <= 61
    assert len(world.provider.requests) == 1
    assert world.bucket().next_turn == bucket.next_turn  # nothing reserved while paused

    assert world.deps.governor.resume("picsart", LIMIT)
    world.provider.answer(_accepted())
    assert _submit(world, job_id, step).status == "processing"
    assert len(world.provider.requests) == 2


def test_polls_of_accepted_jobs_go_on_while_the_account_is_out_of_credits(world: World) -> None:
    job_id = world.job()
    world.deps.governor.out_of_credits("picsart", LIMIT, 1)
    world.provider.answer(_polled("success", "https://cdn.picsart.test/r0.png"))

    step = provider_tasks.poll(_processing(job_id, seconds_ago=5.0), world.deps)

    assert step.status == "done"


def test_a_job_that_held_its_turn_when_credits_ran_out_queues_again(world: World) -> None:
    job_id = world.job()
    world.deps.governor.out_of_credits("picsart", LIMIT, 2)

    step = _submit(world, job_id, Step(status="queued", turn=True))

    assert step.status == "queued"
    assert not step.turn
    assert world.provider.requests == []


def test_credits_that_never_return_end_the_job_at_its_deadline_unsent(world: World) -> None:
    deps = replace(world.deps, settings=_settings(queue_deadline_seconds=60))
    job_id = world.job()
    world.deps.governor.out_of_credits("picsart", LIMIT, 1)
    world.clock.now += 30
    step = provider_tasks.submit(_step(job_id), deps)
    # Never sleeps past its deadline by more than a second (rounded up to whole seconds).
    assert step.wait_seconds <= 32
    world.clock.now += step.wait_seconds

    with pytest.raises(errors.QueueTimeout, match=r"out of credits since .* no credits came back"):
        provider_tasks.submit(_step(job_id), deps)
    assert world.provider.requests == []


def test_a_balance_of_zero_on_an_accepted_submit_pauses_before_a_402(world: World) -> None:
    job_id = world.job()
    world.provider.answer(_accepted(**{"x-picsart-credit-available": "0"}))

    assert _submit(world, job_id).status == "processing"  # this one was paid: it goes on

    assert world.bucket().credits_out_since == pytest.approx(world.clock.now)
    step = _submit(world, world.job())
    assert step.status == "queued"
    assert not step.turn
    assert len(world.provider.requests) == 1


def test_the_providers_remaining_requests_lower_the_bucket(world: World) -> None:
    job_id = world.job()
    world.provider.answer(_accepted(**{"x-picsart-ratelimit-available": "0"}))

    _submit(world, job_id)

    assert world.bucket().tokens == 0.0


# -- Poll ----------------------------------------------------------------------------------


def _processing(job_id: str, **step: Any) -> StepInput:
    started = time.time() - step.pop("seconds_ago", 5.0)
    return _step(job_id, status="processing", provider_job_id="inf-1", submitted_at=started, **step)


def test_a_poll_takes_a_paid_token_and_finds_the_job_still_running(world: World) -> None:
    job_id = world.job()
    world.provider.answer(_polled("processing"))

    step = provider_tasks.poll(_processing(job_id, seconds_ago=5.0), world.deps)

    assert (step.status, step.attempt, step.wait_seconds, step.token) == (
        "processing",
        1,
        NEXT_POLL,
        False,
    )
    assert step.polled_after == pytest.approx(5.0, abs=0.5)
    [request] = world.provider.requests
    assert (request.method, str(request.url)) == ("GET", f"{PICSART_URL}/painting/inf-1")
    assert world.bucket().tokens == pytest.approx(LIMIT.burst - 1)


def test_a_poll_that_finds_the_results_is_done_and_teaches_the_schedule(world: World) -> None:
    job_id = world.job()
    world.provider.answer(_polled("success", "https://cdn/a.png", "https://cdn/b.png"))
    task = _processing(job_id, seconds_ago=6.0, attempt=1, polled_after=4.0)

    step = provider_tasks.poll(task, world.deps)

    assert step == Step(
        status="done",
        provider_job_id="inf-1",
        attempt=2,
        urls=["https://cdn/a.png", "https://cdn/b.png"],
    )
    bucket = world.bucket()
    assert bucket.recent == [pytest.approx(5.0, abs=0.5)]  # between the last two polls
    assert bucket.polls_per_job == pytest.approx(1.1)  # two polls, from 1.0


def test_a_job_the_provider_failed_fails_the_poll(world: World) -> None:
    job_id = world.job()
    world.provider.answer(_polled("error", detail="no product found"))

    with pytest.raises(errors.ProviderJobFailed, match="no product found"):
        provider_tasks.poll(_processing(job_id), world.deps)


def test_a_poll_without_a_token_waits_with_its_token_taken(world: World) -> None:
    world.deps.governor.take_new("picsart", LIMIT, LIMIT.burst)
    job_id = world.job()

    step = provider_tasks.poll(_processing(job_id), world.deps)

    assert (step.status, step.wait_seconds, step.token, step.attempt) == ("processing", 1, True, 0)
    assert world.provider.requests == []
    version = world.bucket().version

    world.clock.now += 1
    world.provider.answer(_polled("processing"))
    after = provider_tasks.poll(StepInput(job_id=job_id, provider="picsart", step=step), world.deps)
    assert (after.attempt, after.token) == (1, False)
    assert world.bucket().version == version  # it went on the token it had
    assert len(world.provider.requests) == 1


def test_a_paused_provider_is_waited_for_without_a_token(world: World) -> None:
    world.deps.governor.pause("picsart", LIMIT, 10)
    job_id = world.job()

    step = provider_tasks.poll(_processing(job_id), world.deps)

    assert (step.wait_seconds, step.token, step.attempt) == (10, False, 0)
    assert world.provider.requests == []


def test_a_429_on_a_poll_is_a_wait_not_a_failure(world: World) -> None:
    job_id = world.job()
    world.provider.answer(_throttled(5))

    step = provider_tasks.poll(_processing(job_id, attempt=2), world.deps)

    assert (step.status, step.wait_seconds, step.token, step.attempt) == ("processing", 5, False, 2)
    assert world.bucket().paused_until == pytest.approx(world.clock.now + 5)


def test_a_job_still_running_after_the_last_poll_times_out(world: World) -> None:
    job_id = world.job()
    world.provider.answer(_polled("processing"))

    with pytest.raises(errors.ProviderTimeout, match="after 5 polls"):
        provider_tasks.poll(_processing(job_id, attempt=4), world.deps)


# -- Generate (Photoroom) ----------------------------------------------------------------


def _image(request: httpx.Request) -> httpx.Response:
    """Photoroom's answer: the image, with the seed it used."""
    seed = request.url.params["background.seed"]
    headers = {"content-type": "image/png", "pr-ai-background-seed": seed}
    return httpx.Response(200, content=b"\x89PNG\r\n\x1a\n" + seed.encode(), headers=headers)


def _generate(world: World, job_id: str, step: Step | None = None) -> Step:
    task = StepInput(job_id=job_id, provider="photoroom", step=step or Step())
    return provider_tasks.generate(task, world.deps)


def test_generate_makes_every_image_in_one_turn_and_stores_it(world: World) -> None:
    job_id = world.job("photoroom", count=2, seed=100)
    world.provider.answer(_image, _image)

    assert _generate(world, job_id) == Step(status="done")

    seeds = [r.url.params["background.seed"] for r in world.provider.requests]
    assert seeds == ["100", "101"]
    assert {str(r.url.copy_with(query=None)) for r in world.provider.requests} == {
        f"{PHOTOROOM_URL}/v2/edit"
    }
    assert world.provider.requests[0].url.params["imageUrl"] == PHOTO
    job = world.jobs.get(job_id)
    assert job.status is JobStatus.SUCCEEDED
    assert [(r.key, r.seed, r.thumbnail_key) for r in job.results] == [
        (f"results/{job_id}/0.png", 100, f"thumbnails/{job_id}/0.webp"),
        (f"results/{job_id}/1.png", 101, f"thumbnails/{job_id}/1.webp"),
    ]
    assert world.results.thumbnails == {r.thumbnail_key: job_id for r in job.results}
    assert world.bucket("photoroom").tokens == pytest.approx(0.0)


def test_images_beyond_the_tokens_are_made_later_in_the_same_turn(world: World) -> None:
    job_id = world.job("photoroom", count=3, seed=7)
    world.provider.answer(_image, _image)

    step = _generate(world, job_id)

    assert step == Step(status="queued", wait_seconds=1, turn=True)
    assert world.jobs.get(job_id).status is JobStatus.RUNNING
    assert len(world.results.objects) == 2

    world.clock.now += step.wait_seconds
    world.provider.answer(_image)
    assert _generate(world, job_id, step) == Step(status="done")
    seeds = [r.url.params["background.seed"] for r in world.provider.requests]
    assert seeds == ["7", "8", "9"]  # none made, or paid for, twice
    assert len(world.jobs.get(job_id).results) == 3


def test_a_429_while_generating_keeps_the_stored_images_and_queues_anew(world: World) -> None:
    job_id = world.job("photoroom", count=2, seed=1)
    world.provider.answer(_image, httpx.Response(429, headers={"retry-after": "4"}))

    step = _generate(world, job_id)

    assert step == Step(status="queued", wait_seconds=4, turn=False)
    assert list(world.results.objects) == [f"results/{job_id}/0.png"]
    assert world.jobs.get(job_id).status is JobStatus.RUNNING
    assert world.bucket("photoroom").paused_until == pytest.approx(world.clock.now + 4)


def test_a_402_while_generating_keeps_the_stored_images_and_waits_for_credits(
    world: World,
) -> None:
    job_id = world.job("photoroom", count=2, seed=1)
    exhausted = httpx.Response(402, json={"error": {"detail": "You have exhausted your credits."}})
    world.provider.answer(_image, exhausted)

    step = _generate(world, job_id)

    assert step == Step(status="queued", wait_seconds=1, turn=False)
    assert list(world.results.objects) == [f"results/{job_id}/0.png"]
    assert world.bucket("photoroom").credits_out_since > 0
    world.deps.governor.resume("photoroom", LIMIT)
    world.provider.answer(_image)
    while step.status == "queued":  # its new turn on the lane, then the image
        world.clock.now += step.wait_seconds
        step = _generate(world, job_id, step)
    assert step == Step(status="done")
    # The stored image was not asked for again: two images, paid once each.
    assert len(world.provider.requests) == 3


def test_a_provider_down_while_generating_is_tried_again(world: World) -> None:
    job_id = world.job("photoroom", count=1)
    world.provider.answer(httpx.Response(502, json={"error": {"message": "bad gateway"}}))

    step = _generate(world, job_id, Step(status="queued", turn=True, failures=1))

    assert (step.status, step.failures, step.turn) == ("queued", 2, True)
    assert world.results.objects == {}


def test_a_resumed_generate_with_every_image_stored_calls_nobody(world: World) -> None:
    job_id = world.job("photoroom", count=2)
    job = world.jobs.get(job_id)
    for index in range(2):
        world.results.upload_stream(
            iter([b"png"]),
            bucket="out",
            key=storage.result_key(job, index),
            content_type="image/png",
            metadata={"seed": "5", storage.JOB_ID_METADATA: job_id},
        )

    assert _generate(world, job_id) == Step(status="done")

    assert world.provider.requests == []
    assert world.buckets.read("photoroom") == (None, "none")  # no turn taken
    assert len(world.jobs.get(job_id).results) == 2
    assert len(world.results.thumbnails) == 2  # thumbnails are S3's work, not the provider's


def test_generate_of_a_job_that_succeeded_or_was_canceled_calls_nobody(world: World) -> None:
    done, canceled = world.job("photoroom"), world.job("photoroom")
    world.jobs.mark_running(done, None)
    world.jobs.mark_succeeded(done, [])
    world.jobs.mark_canceled(canceled, JobError(code="canceled", message="by its caller"))

    assert _generate(world, done) == Step(status="done")
    with pytest.raises(JobConflict, match="canceled, not generated"):
        _generate(world, canceled)
    assert world.provider.requests == []


# -- Store -------------------------------------------------------------------------------


RESULT = ResultImage(index=0, key="results/x/0.png", content_type="image/png", size=3)


def test_store_copies_the_results_and_marks_the_job_succeeded(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = world.job()
    world.jobs.mark_running(job_id, "inf-1")
    copied: list[list[str]] = []

    def copy(urls: list[str], **_: Any) -> list[ResultImage]:
        copied.append(urls)
        return [RESULT]

    monkeypatch.setattr(downloads, "copy_results_to_s3", copy)

    stored = provider_tasks.store(StoreInput(job_id=job_id, urls=["https://cdn/a.png"]), world.deps)

    thumbnail = thumbnails.key(job_id, 0)
    with_thumbnail = RESULT.model_copy(update={"thumbnail_key": thumbnail})
    assert stored.results == [with_thumbnail]
    assert copied == [["https://cdn/a.png"]]
    assert world.results.thumbnails == {thumbnail: job_id}
    job = world.jobs.get(job_id)
    assert (job.status, job.results) == (JobStatus.SUCCEEDED, [with_thumbnail])


def test_a_retried_store_answers_the_recorded_results(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = world.job()
    world.jobs.mark_running(job_id, "inf-1")
    world.jobs.mark_succeeded(job_id, [RESULT])
    monkeypatch.setattr(downloads, "copy_results_to_s3", None)  # never called

    stored = provider_tasks.store(StoreInput(job_id=job_id, urls=["https://cdn/a.png"]), world.deps)

    assert stored.results == [RESULT]


def test_store_of_a_job_not_running_is_a_conflict(world: World) -> None:
    job_id = world.job()

    with pytest.raises(JobConflict, match="queued: its results are not stored"):
        provider_tasks.store(StoreInput(job_id=job_id, urls=["https://cdn/a.png"]), world.deps)
