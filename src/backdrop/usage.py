"""What an API key's work cost over some days (GET /v1/usage): its own jobs (requests,
regenerations) and the jobs of the batches it started, by the day each was created (UTC)
and by provider. The figures are the jobs' own: a job's images and cost once it succeeded
(domain.Cost), nothing for one that made nothing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from pydantic import BaseModel, Field

from backdrop.batches.store import BatchStore
from backdrop.domain import STACK_OWNER, Job, JobStatus, Refused
from backdrop.jobs import JobStore

MAX_DAYS = 93  # a quarter, and a little more: the report reads every job of the range
DEFAULT_DAYS = 30


class UsageDay(BaseModel):
    date: date
    provider: str
    jobs: int = Field(description="Jobs created that day.")
    succeeded: int
    images: int = Field(description="Images those jobs made.")
    units: float = Field(description="What they cost, in the provider's unit.")
    unit: str
    estimated_usd: float


class UsageTotals(BaseModel):
    jobs: int
    succeeded: int
    images: int
    estimated_usd: float


class Usage(BaseModel):
    """GET /v1/usage: one row per day and provider with any job, oldest first."""

    start: date = Field(serialization_alias="from", description="The first day, UTC.")
    end: date = Field(serialization_alias="to", description="The last day, UTC (included).")
    totals: UsageTotals
    days: list[UsageDay]


@dataclass(frozen=True)
class Range:
    start: date
    end: date  # included


def days(start: date | None, end: date | None, today: date) -> Range:
    """The days asked for: `DEFAULT_DAYS` up to today by default; Refused (naming the
    field) for a range that ends before it starts or is longer than MAX_DAYS."""
    end = end or today
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    if end < start:
        raise Refused.field("to", f"{end} is before from ({start})")
    if (end - start).days + 1 > MAX_DAYS:
        raise Refused.field("to", f"at most {MAX_DAYS} days at once ({start} to {end} is more)")
    return Range(start, end)


def usage(owner: str, asked: Range, *, jobs: JobStore, batches: BatchStore) -> Usage:
    start = datetime.combine(asked.start, time(), UTC)
    end = datetime.combine(asked.end + timedelta(days=1), time(), UTC)
    found = list(jobs.created_between(owner, start, end))
    # A batch's jobs are the stack's: read those of the owner's batches that ran then (a
    # batch started up to MAX_DAYS before the range may still have been starting jobs).
    for batch in batches.started_between(owner, start - timedelta(days=MAX_DAYS), end):
        if batch.finished_at is None or batch.finished_at >= start:
            found += jobs.created_between(STACK_OWNER, start, end, batch_id=batch.id)
    return _tally(asked, found)


def _tally(asked: Range, found: Iterable[Job]) -> Usage:
    rows: dict[tuple[date, str], UsageDay] = {}
    for job in found:
        day = job.created_at.astimezone(UTC).date()
        row = rows.setdefault(
            (day, job.provider),
            UsageDay(
                date=day,
                provider=job.provider,
                jobs=0,
                succeeded=0,
                images=0,
                units=0,
                unit=job.cost.unit if job.cost else "",
                estimated_usd=0,
            ),
        )
        row.jobs += 1
        if job.status is JobStatus.SUCCEEDED:
            row.succeeded += 1
            row.images += len(job.results)
        if job.cost is not None:
            row.units += job.cost.units
            row.unit = job.cost.unit
            row.estimated_usd = round(row.estimated_usd + job.cost.estimated_usd, 6)
    listed = [rows[key] for key in sorted(rows)]
    return Usage(
        start=asked.start,
        end=asked.end,
        totals=UsageTotals(
            jobs=sum(r.jobs for r in listed),
            succeeded=sum(r.succeeded for r in listed),
            images=sum(r.images for r in listed),
            estimated_usd=round(sum(r.estimated_usd for r in listed), 6),
        ),
        days=listed,
    )
