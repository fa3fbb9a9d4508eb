"""What the state machine hands each task and takes back (its `Parameters` and
`ResultPath`s in statemachine/generation.asl.json)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from backdrop.domain import JOB_ID_PATTERN, JobError, ProviderName, ResultImage


class Step(BaseModel):
    """Where a job stands between the provider tasks (`$.step` in the ASL): the Choice
    after each task reads `status`, and the Wait before the next one `wait_seconds`.

    - `new`: not submitted yet (the execution's input).
    - `queued`: waiting for its turn at the provider's rate limit (`turn`: reserved).
    - `processing`: the provider has the job; poll it (`token`: a poll's token is taken).
    - `done`: finished; `urls` are the provider's results to store.
    """

    status: Literal["new", "queued", "processing", "done"] = "new"
    wait_seconds: int = Field(default=0, ge=0)
    provider_job_id: str | None = None
    attempt: int = 0  # polls made (waits for a token are not polls)
    failures: int = Field(default=0, ge=0)  # provider calls that failed and may be retried
    urls: list[str] = Field(default_factory=list)
    turn: bool = False  # queued: the governor reserved this job's turn
    token: bool = False  # the governor granted the next call's token already
    submitted_at: float | None = None  # epoch seconds the provider accepted the job
    polled_after: float = 0.0  # seconds from submit to the latest poll that found it not done


class TaskInput(BaseModel):
    """Every workflow task gets the job id; the ASL's Parameters add what a task needs."""

    job_id: str = Field(pattern=JOB_ID_PATTERN)


class StepInput(TaskInput):
    """What Submit, Poll and Generate get: the job, its provider, and where it stands."""

    provider: ProviderName
    step: Step = Field(default_factory=Step)


class StoreInput(TaskInput):
    urls: list[str] = Field(min_length=1)


class CaughtError(BaseModel):
    """What a Catch with ResultPath `$.error` puts in the state."""

    model_config = ConfigDict(populate_by_name=True)

    error: str = Field(alias="Error")
    cause: str | None = Field(default=None, alias="Cause")


class MarkFailedInput(TaskInput):
    error: CaughtError


class Stored(BaseModel):
    """What Store and Generate answer (`$.stored`)."""

    results: list[ResultImage]


Failure = JobError  # what RecordFailure answers (`$.failure`): the job's code and message
