"""A batch's quote (`"dry_run": true`): what the batch would do, decided as its StartItem
tasks would decide it (the one rule: items.walk_attempts), and what it would cost and how
long it would take at the providers' rate limits given the turns already given out. It
starts nothing and writes nothing.

The photos are judged by their names and sizes (listed, not read): a file that is not the
image its name says is refused when its item starts, as in any batch."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from backdrop import aws, storage
from backdrop.batches.items import attempt_id, walk_attempts
from backdrop.batches.manifest import ManifestRow
from backdrop.batches.start import IMAGE_SUFFIXES, check_source
from backdrop.config import BatchStartSettings
from backdrop.domain import Cost, GenerationOptions, Job, Refused
from backdrop.governor import Governor, Limit
from backdrop.jobs import JobNotFound, JobStore
from backdrop.plan import Layer, check_options, choose
from backdrop.providers import registry
from backdrop.providers.base import Mode, ProviderSpec

MAX_PROBLEMS = 10  # refused items shown, the first ones in the batch's order


class QuotedProblem(BaseModel):
    item: int = Field(description="The item's place in the batch (0 is the first).")
    key: str | None = None
    image_url: str | None = None
    line: int | None = Field(default=None, description="Its manifest line, for a manifest.")
    code: str
    reason: str


class ProviderQuote(BaseModel):
    provider: str
    jobs: int
    images: int
    cost: Cost
    queued_ahead_seconds: float = Field(
        description="Turns already given out to other work at this provider's rate limit."
    )
    estimated_seconds: float = Field(
        description="Until this provider's last job would end: the turns ahead, this "
        "batch's calls at its rate limit, and a typical job's time."
    )
    out_of_credits: bool = Field(
        description="The account is out of credits now: nothing starts until it is topped up."
    )


class QuoteBudget(BaseModel):
    max_images: int | None
    max_cost_usd: float | None
    within: int = Field(description="Items that would start before the budget is reached.")
    past: int = Field(description="Items that would end not_started, budget_reached.")


class BatchQuote(BaseModel):
    """What POST /v1/batches with `"dry_run": true` answers: nothing was started."""

    dry_run: bool = True
    items: int = Field(description="Items found: objects under the prefix, or manifest rows.")
    ignored: int = Field(description="Folder markers and empty objects: not items.")
    skipped: int = Field(
        description="Already done or under way (a rerun skips them): not paid again."
    )
    refused: int = Field(description="Would fail before any provider call.")
    problems: list[QuotedProblem] = Field(description=f"The first {MAX_PROBLEMS} refused.")
    jobs: int = Field(description="Jobs it would start.")
    images: int = Field(description="Images those jobs would generate.")
    estimated_cost_usd: float
    estimated_seconds: float = Field(description="Until its last job would end.")
    providers: list[ProviderQuote]
    budget: QuoteBudget | None = None


@dataclass(frozen=True)
class _Item:
    index: int
    identity: tuple[str, str, str]
    key: str | None = None
    image_url: str | None = None
    line: int | None = None
    size: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


def quote(
    *,
    prefix: str | None,
    manifest_key: str | None,
    options: dict[str, Any],
    max_images: int | None,
    max_cost_usd: float | None,
    settings: BatchStartSettings,
    jobs: JobStore,
    governor: Governor,
) -> BatchQuote:
    """Refused, as `start` would be, for a request at fault."""
    defaults = Layer(options, lambda name: name)
    check_options((defaults,), settings)
    rows = check_source(prefix, manifest_key, defaults, settings)
    items, ignored = _listed(prefix, settings) if rows is None else (_rows(rows, settings), 0)
    first = [attempt_id(item.identity, 0) for item in items]
    known, read = jobs.get_many(first), set(first)

    def lookup(job_id: str) -> Job | None:
        if job_id in read:  # every first attempt is read at once, above
            return known.get(job_id)
        try:
            return jobs.get(job_id)  # a later attempt: only for images that failed before
        except JobNotFound:
            return None

    tally = _Tally(max_images, max_cost_usd)
    # Items with the same options (all of a prefix's) come to the same provider and options.
    choices: dict[str, tuple[ProviderSpec, GenerationOptions] | Refused] = {}
    for item in items:
        wanted = json.dumps(item.options, sort_keys=True)
        if wanted not in choices:
            try:
                choices[wanted] = choose((Layer(item.options), defaults), settings)
            except Refused as exc:
                choices[wanted] = exc
        choice = choices[wanted]
        if isinstance(choice, Refused):
            tally.refuse(item, choice.code, "; ".join(p.reason for p in choice.problems))
            continue
        spec, chosen = choice
        problem = _by_name(item, spec.limits.max_bytes)
        if problem is not None:
            tally.refuse(item, *problem)
            continue
        attempt = walk_attempts(item.identity, lookup)
        if attempt.kind == "skipped":
            tally.skipped += 1
        elif attempt.kind == "exhausted":
            tally.refuse(item, "too_many_attempts", "too many jobs for this image failed")
        else:
            tally.start(spec.name, chosen.count, spec.cost(chosen.count))
    return tally.quote(len(items), ignored, governor, settings)


def _by_name(item: _Item, max_bytes: int) -> tuple[str, str] | None:
    if item.key is None:
        return None
    if not item.key.lower().endswith(IMAGE_SUFFIXES):
        return "invalid_image", f"not a {', '.join(IMAGE_SUFFIXES)} file by its name"
    misfit = storage.outbox_misfit(item.key)
    if misfit is not None:
        return "invalid_key", misfit
    if item.size is not None and item.size > max_bytes:
        return "image_too_large", f"{item.size} bytes: more than the provider takes ({max_bytes})"
    return None


def _listed(prefix: str | None, settings: BatchStartSettings) -> tuple[list[_Item], int]:
    """The objects under the prefix in the Map's order (the keys' order), each named as
    StartItem names it (its version, else its ETag); folder markers and empty objects are
    not items."""
    assert prefix is not None
    bucket = settings.input_bucket
    pages = (
        aws.client("s3")
        .get_paginator("list_object_versions")
        .paginate(Bucket=bucket, Prefix=prefix)
    )
    latest: dict[str, dict[str, Any]] = {}
    for page in pages:
        for version in page.get("Versions", []):
            if version.get("IsLatest"):
                latest[version["Key"]] = version
        for marker in page.get("DeleteMarkers", []):
            if marker.get("IsLatest"):
                latest.pop(marker["Key"], None)
    items: list[_Item] = []
    ignored = 0
    for key in sorted(latest):
        version = latest[key]
        size = int(version.get("Size", 0))
        if key.endswith("/") or size == 0:
            ignored += 1
            continue
        version_id = version.get("VersionId")
        name = version_id if version_id and version_id != "null" else version["ETag"].strip('"')
        items.append(_Item(len(items) + ignored, (bucket, key, name), key=key, size=size))
    return items, ignored


def _rows(rows: list[dict[str, str]], settings: BatchStartSettings) -> list[_Item]:
    items = []
    for index, cells in enumerate(rows):
        cells = dict(cells)
        line = int(cells.pop("line", "") or 0) or None
        row = ManifestRow.model_validate(cells)
        options = row.options()
        if row.image_url is not None:
            url = str(row.image_url)
            items.append(_Item(index, ("url", url, ""), image_url=url, line=line, options=options))
            continue
        assert row.key is not None
        head = storage.head_object(settings.input_bucket, row.key)
        version = "missing" if head is None else head.get("VersionId") or head["ETag"].strip('"')
        size = None if head is None else int(head.get("ContentLength", 0))
        identity = (settings.input_bucket, row.key, version)
        items.append(_Item(index, identity, key=row.key, line=line, size=size, options=options))
    return items


class _Tally:
    def __init__(self, max_images: int | None, max_cost_usd: float | None) -> None:
        self.max_images, self.max_cost_usd = max_images, max_cost_usd
        self.skipped = self.refused = self.past = 0
        self.problems: list[QuotedProblem] = []
        self.by_provider: dict[str, tuple[int, int, Cost]] = {}
        self.images, self.usd = 0, 0.0

    def refuse(self, item: _Item, code: str, reason: str) -> None:
        self.refused += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(
                QuotedProblem(
                    item=item.index,
                    key=item.key,
                    image_url=item.image_url,
                    line=item.line,
                    code=code,
                    reason=reason,
                )
            )

    def start(self, provider: str, images: int, cost: Cost) -> None:
        # In the batch's order, as its items would be charged against its budget.
        over_images = self.max_images is not None and self.images + images > self.max_images
        usd = self.usd + cost.estimated_usd
        over_usd = self.max_cost_usd is not None and usd > self.max_cost_usd + 1e-9
        if over_images or over_usd:
            self.past += 1
            return
        self.images, self.usd = self.images + images, usd
        jobs, count, total = self.by_provider.get(
            provider, (0, 0, Cost(units=0, unit=cost.unit, estimated_usd=0))
        )
        self.by_provider[provider] = (jobs + 1, count + images, total + cost)

    def quote(
        self, found: int, ignored: int, governor: Governor, settings: BatchStartSettings
    ) -> BatchQuote:
        providers = [
            _estimate(name, jobs, images, cost, governor, settings)
            for name, (jobs, images, cost) in sorted(self.by_provider.items())
        ]
        budgeted = self.max_images is not None or self.max_cost_usd is not None
        return BatchQuote(
            items=found,
            ignored=ignored,
            skipped=self.skipped,
            refused=self.refused,
            problems=self.problems,
            jobs=sum(p.jobs for p in providers),
            images=sum(p.images for p in providers),
            estimated_cost_usd=round(sum(p.cost.estimated_usd for p in providers), 6),
            estimated_seconds=max((p.estimated_seconds for p in providers), default=0.0),
            providers=providers,
            budget=QuoteBudget(
                max_images=self.max_images,
                max_cost_usd=self.max_cost_usd,
                within=sum(p.jobs for p in providers),
                past=self.past,
            )
            if budgeted
            else None,
        )


def _estimate(
    name: str, jobs: int, images: int, cost: Cost, governor: Governor, settings: BatchStartSettings
) -> ProviderQuote:
    spec = registry.get(name)
    calls = jobs if spec.mode is Mode.ASYNC else images  # a Photoroom call makes one image
    forecast = governor.forecast(name, Limit.of(spec), calls)
    recent = governor.recent(name)
    typical = statistics.median(recent) if recent else 0.0
    # The Map runs BatchMaxConcurrency items at once: that bounds it too.
    running = jobs * typical / settings.batch_max_concurrency
    return ProviderQuote(
        provider=name,
        jobs=jobs,
        images=images,
        cost=cost,
        queued_ahead_seconds=round(forecast.ahead_seconds, 1),
        estimated_seconds=round(max(forecast.seconds + typical, running), 1),
        out_of_credits=forecast.out_of_credits,
    )
