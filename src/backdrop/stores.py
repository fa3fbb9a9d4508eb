"""What the logic sees of its data: the rate governor's buckets and the workflow's job
records, each a Protocol with two implementations: DynamoDB (governor.py, jobs.py), and
memory (tests/fakes.py, for tests of the logic that run in milliseconds)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

from backdrop.domain import Cost, Job, JobError, ResultImage, Review


class StoreBusy(Exception):
    """The store could not take the change now (throttled, or too many writers at once):
    the caller comes back shortly."""


# What a conditional write expects to find: no bucket yet, any bucket (one that could not
# be read is replaced whatever it holds), or the version it read.
NO_ITEM: Final = "none"
ANY: Final = "any"
Expected = int | Literal["none", "any"]


@dataclass
class Bucket:
    """One provider's token bucket as stored. `version` is the one read: a write stores
    `version + 1`."""

    tokens: float
    updated: float
    paused_until: float
    next_turn: float
    polls_per_job: float
    version: int
    recent: list[float] = field(default_factory=list)  # job durations, oldest first
    # The provider's account ran out of credits at this time (0: it has credits), and the
    # fewest credits a call it refused needed: the balance check resumes at that balance.
    credits_out_since: float = 0.0
    credits_needed: float = 0.0


class BucketStore(Protocol):
    """One bucket per provider, written only if nobody else wrote it since it was read.
    May raise StoreBusy."""

    def read(self, provider: str) -> tuple[Bucket | None, Expected]:
        """The bucket (None if there is none, or it cannot be read), and what a write of it
        must find."""
        ...

    def write(self, provider: str, bucket: Bucket, expected: Expected) -> bool:
        """Store `bucket` if the stored one is still `expected`; False if another writer
        came first."""
        ...

    def recent(self, provider: str) -> list[float]:
        """The bucket's job durations, oldest first (empty without a bucket). Need not be
        the latest write: the poll schedule does with a slightly older list."""
        ...


class JobDurations(Protocol):
    """What the poll schedule needs: how long a provider's latest jobs took."""

    def recent(self, provider: str) -> list[float]: ...


class WorkflowJobs(Protocol):
    """The job records as the workflow tasks change them. Every change is conditional on
    the status it finds: a job only moves forward, and a retried task changes nothing."""

    def get(self, job_id: str) -> Job:
        """The job; JobNotFound for an unknown id."""
        ...

    def mark_submitting(self, job_id: str) -> bool:
        """Mark a queued job's paid submit as about to be sent; False if it already is."""
        ...

    def clear_submitting(self, job_id: str) -> None:
        """The provider surely did not take the submit: another may be sent."""
        ...

    def mark_running(
        self, job_id: str, provider_job_id: str | None, provider_urls: tuple[str, ...] = ()
    ) -> None:
        """Queued to running (JobConflict otherwise, unless it is the same change again)."""
        ...

    def mark_succeeded(
        self,
        job_id: str,
        results: list[ResultImage],
        review: Review | None = None,
        source_thumbnail: str | None = None,
        also: Sequence[dict[str, Any]] = (),
        cost: Cost | None = None,
    ) -> None:
        """Running to succeeded, held for review when `review` is given, with the photo's
        preview, what its images cost, and `also` in the same transaction (JobConflict
        otherwise, unless it is the same change again)."""
        ...

    def record_review(
        self,
        job_id: str,
        expected: int,
        review: Review,
        child: str | None = None,
        also: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Record a review decision if the review still holds `expected` decisions
        (DecisionChanged otherwise)."""
        ...

    def mark_failed(self, job_id: str, error: JobError) -> Job:
        """Fail a job that has not finished; a failed or canceled one stays as it is, a
        succeeded one is a JobConflict."""
        ...
