"""What the state machine hands each task and takes back (its `Parameters` and
`ResultPath`s in statemachine/generation.asl.json)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from backdrop.domain import JOB_ID_PATTERN, JobError, ProviderName, ResultImage


class PollState(BaseModel):
    """What the workflow carries between Submit, Wait and Poll (`$.poll` in the ASL)."""

    provider_job_id: str
    attempt: int = 0
    wait_seconds: int
    status: Literal["processing", "done"] = "processing"
    urls: list[str] = Field(default_factory=list)


class TaskInput(BaseModel):
    """Every workflow task gets the job id; the ASL's Parameters add what a task needs."""

    job_id: str = Field(pattern=JOB_ID_PATTERN)


class PollInput(TaskInput):
    provider: ProviderName
    poll: PollState


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
