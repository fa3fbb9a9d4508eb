"""One item of a batch: what the Map's StartItem and SettleItem tasks do.

StartItem turns an item (an object the Map listed, or a row of items.csv) into a job
through the one plan, named as the inbox names the same image (jobs.source_job_id of
bucket, key and version; a URL by itself), so reruns and overlaps with the inbox never pay
twice: a job for the image that succeeded or is under way makes the item `skipped`; one
that failed makes a new attempt (the same identity plus the attempt number). An image that
cannot work fails as its own job before any provider call. The Map then runs the job's
workflow to its end (states:startExecution.sync) and SettleItem counts how it ended.

Every step is safe to repeat: the item's record is written once, with its count, and a job
this item made before a crash is found again by its batch and place (and planned again if
it never ran)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from backdrop import allowances, executions, storage, telemetry
from backdrop.batches.deps import BatchDeps
from backdrop.batches.manifest import ManifestRow
from backdrop.batches.store import Batch, BatchItem, BatchStore
from backdrop.config import BatchTaskSettings
from backdrop.domain import (
    FINISHED,
    JOB_ID_PATTERN,
    ImageSource,
    Job,
    JobError,
    JobStatus,
)
from backdrop.jobs import AllowanceRefused, JobNotFound, JobStore, source_job_id
from backdrop.observability import logger
from backdrop.plan import Ask, Layer, Photo, PlanRefused, plan
from backdrop.providers import registry

# After this many failed attempts at one image, a batch stops trying it again.
MAX_ATTEMPTS = 20
# Where a job still counts as under way: a batch points at it rather than start another.
UNDER_WAY = frozenset({JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED})


class ItemInput(BaseModel):
    """What the Map's ItemSelector hands StartItem: an object listed under the prefix
    (`key`, `size`), or a row of items.csv (`row`, every cell a string)."""

    batch_id: str = Field(pattern=JOB_ID_PATTERN)
    index: int = Field(ge=0)
    key: str | None = None
    size: int | None = None
    row: dict[str, str] | None = None


class ItemRun(BaseModel):
    """StartItem's answer: `run` the job's workflow (its execution's name and input), or
    the item is `done` already."""

    action: Literal["run", "done"]
    job_id: str | None = None
    input: dict[str, Any] | None = None


@dataclass(frozen=True)
class Attempt:
    """Where an image stands for a batch: `new` (no job under way: a job at `job_id`;
    `job`, if this very item made it before a crash), `skipped` (a job for it succeeded or
    is under way: `job_id`), or `exhausted` (MAX_ATTEMPTS jobs for it failed)."""

    kind: Literal["new", "skipped", "exhausted"]
    job_id: str = ""
    job: Job | None = None


def walk_attempts(
    identity: tuple[str, str, str],
    lookup: Callable[[str], Job | None],
    mine: Callable[[Job], bool] = lambda job: False,
) -> Attempt:
    """The one rule for whether an image runs again (StartItem, and a batch's quote): its
    attempts' jobs in order, each looked up, until one is free or under way."""
    for attempt in range(MAX_ATTEMPTS):
        job_id = attempt_id(identity, attempt)
        found = lookup(job_id)
        if found is None:
            return Attempt("new", job_id)
        if mine(found):
            return Attempt("new", job_id, found)
        if found.status in UNDER_WAY:
            return Attempt("skipped", job_id)
    return Attempt("exhausted")


def attempt_id(identity: tuple[str, str, str], attempt: int) -> str:
    """The job id of one attempt at an image. The first is the inbox's own id for it."""
    bucket, key, version = identity
    return source_job_id(bucket, key, version if attempt == 0 else f"{version}#{attempt}")


def start_item(item: ItemInput, deps: BatchDeps[BatchTaskSettings]) -> ItemRun:
    settings, jobs, batches = deps.settings, deps.jobs, deps.batches
    recorded = batches.item(item.batch_id, item.index)
    if recorded is None:
        recorded = _record(item, settings=settings, jobs=jobs, batches=batches)
    if recorded.outcome != "running" or recorded.job_id is None:
        return ItemRun(action="done", job_id=recorded.job_id)
    job = jobs.get(recorded.job_id)
    return ItemRun(action="run", job_id=job.id, input=executions.workflow_input(job))


def _record(
    item: ItemInput, *, settings: BatchTaskSettings, jobs: JobStore, batches: BatchStore
) -> BatchItem:
    batch = batches.get(item.batch_id)
    row, line = _row(item)
    base = BatchItem(
        batch_id=batch.id,
        index=item.index,
        outcome="not_started",
        key=row.key,
        image_url=None if row.image_url is None else str(row.image_url),
        line=line,
    )
    if batch.cancel_requested:
        return _write(batches, base)
    if row.key is not None and (row.key.endswith("/") or item.size == 0):
        return _write(batches, base.model_copy(update={"outcome": "ignored"}))
    photo, identity = _photo(row, settings)

    def lookup(job_id: str) -> Job | None:
        try:
            return jobs.get(job_id)
        except JobNotFound:
            return None

    def mine(found: Job) -> bool:
        return found.batch_id == batch.id and found.batch_item == item.index

    attempt = walk_attempts(identity, lookup, mine)
    if attempt.kind == "skipped":
        return _write(
            batches, base.model_copy(update={"outcome": "skipped", "job_id": attempt.job_id})
        )
    if attempt.kind == "exhausted":
        error = JobError(
            code="too_many_attempts",
            message=f"{MAX_ATTEMPTS} jobs for this image failed; no batch tries it again",
        )
        return _write(batches, base.model_copy(update={"outcome": "failed", "error": error}))
    job_id = attempt.job_id
    # Made by this item before a crash: still queued, it never ran (the Map starts a job
    # only once its item is recorded), so it is planned again, and a refusal cut short
    # ends refused, never sent to the provider.
    job = None if attempt.job is None or attempt.job.status is JobStatus.QUEUED else attempt.job
    if job is None:
        try:
            job = _new_job(
                batch, row, photo, job_id, item.index, settings=settings, jobs=jobs, batches=batches
            )
        except _NotStarted as exc:
            return _write(batches, base.model_copy(update={"error": exc.error}))
    if job.status in FINISHED:  # refused before any provider call
        outcome = "succeeded" if job.status is JobStatus.SUCCEEDED else "failed"
        return _write(
            batches,
            base.model_copy(update={"outcome": outcome, "job_id": job.id, "error": job.error}),
        )
    if job.trigger != "batch" or job.batch_id != batch.id:  # another batch made it first
        return _write(batches, base.model_copy(update={"outcome": "skipped", "job_id": job.id}))
    return _write(batches, base.model_copy(update={"outcome": "running", "job_id": job.id}))


def _new_job(
    batch: Batch,
    row: ManifestRow,
    photo: Photo,
    job_id: str,
    index: int,
    *,
    settings: BatchTaskSettings,
    jobs: JobStore,
    batches: BatchStore,
) -> Job:
    """The item's job, planned, and charged to the batch's budget and its owner's daily
    allowance in the same write (_NotStarted if either has no room: nothing recorded)."""
    metadata = dict(batch.metadata) | ({"sku": row.sku} if row.sku else {})
    ask = Ask(
        trigger="batch",
        photo=photo,
        layers=(
            Layer(row.options()),
            Layer(batch.options.model_dump(exclude_none=True), _batch_origin),
        ),
        metadata=metadata,
        job_id=job_id,
        batch_id=batch.id,
        batch_item=index,
        publish_key=row.publish_key,
    )
    try:
        new = plan(ask, settings)
    except PlanRefused as exc:
        logger.info("batch item refused", extra={"job_id": job_id, "code": exc.code})
        return executions.refuse(exc.job, exc.error, settings=settings, jobs=jobs)
    images = new.options.count
    usd = registry.get(new.provider).cost(images).estimated_usd
    try:
        job, created = executions.create(
            new,
            settings=settings,
            jobs=jobs,
            per_key=settings.images_per_key_per_day,
            charged_to=batch.owner,
            also=[batches.charge(batch, images, usd)],
        )
    except allowances.Exhausted as exc:
        raise _NotStarted(exc.error) from None
    except AllowanceRefused:
        raise _NotStarted(_budget_reached(batch, images, usd)) from None
    if created:
        telemetry.emit("JobsStarted", 1, provider=job.provider)
    return job


class _NotStarted(Exception):
    """The item's job would pass a budget or an allowance: the item ends not started."""

    def __init__(self, error: JobError) -> None:
        super().__init__(error.message)
        self.error = error


def _budget_reached(batch: Batch, images: int, usd: float) -> JobError:
    limits = []
    if batch.max_images is not None:
        limits.append(f"max_images {batch.max_images}")
    if batch.max_cost_usd is not None:
        limits.append(f"max_cost_usd {batch.max_cost_usd:g}")
    return JobError(
        code="budget_reached",
        message=f"not started: its {images} images (${usd:g} estimated) would pass the "
        f"batch's budget ({', '.join(limits)}); retry the batch with a higher one to run it",
    )


def _batch_origin(name: str) -> str:
    return f"the batch's {name}"


def _row(item: ItemInput) -> tuple[ManifestRow, int | None]:
    if item.row is not None:
        cells = dict(item.row)
        line = int(cells.pop("line", "") or 0) or None
        return ManifestRow.model_validate(cells), line
    return ManifestRow.model_construct(key=item.key), None


def _photo(row: ManifestRow, settings: BatchTaskSettings) -> tuple[Photo, tuple[str, str, str]]:
    """The image, and what names it: the bucket, key and version the inbox would name it
    by (the version now current), or the URL."""
    if row.image_url is not None:
        url = str(row.image_url)
        return Photo(url=url, field="image_url"), ("url", url, "")
    assert row.key is not None
    bucket = settings.input_bucket
    head = storage.head_object(bucket, row.key)
    if head is None:  # gone since it was listed: a failed job, named by this item alone
        version = "missing"
        source = ImageSource(bucket=bucket, key=row.key)
    else:
        version = head.get("VersionId") or head["ETag"].strip('"')
        source = ImageSource(bucket=bucket, key=row.key, version_id=head.get("VersionId"))
    return Photo(stored=source, field="key"), (bucket, row.key, version)


def _write(batches: BatchStore, item: BatchItem) -> BatchItem:
    if not batches.record_item(item):  # recorded by an earlier try of this task
        found = batches.item(item.batch_id, item.index)
        assert found is not None
        return found
    return item
