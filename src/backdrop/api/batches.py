"""/v1/batches: start a batch over a prefix or a manifest, read one (counts, estimate, the
report when done), list them, cancel one, retry its failures. A batch is the API key's that
started it; its jobs are the stack's, like the inbox's (another key's batch over the same
images points at them)."""

from __future__ import annotations

import re
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any, Self

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from backdrop.api import cursor as cursors
from backdrop.api.caller import caller
from backdrop.api.container import current
from backdrop.api.errors import ApiError
from backdrop.api.idempotency import IdempotencyKey
from backdrop.api.schemas import ErrorBody, error_responses, location
from backdrop.batches import progress
from backdrop.batches import start as batch_start
from backdrop.batches.quote import BatchQuote, quote
from backdrop.batches.store import (
    Batch,
    BatchConflict,
    BatchNotFound,
    BatchSource,
    BatchStatus,
)
from backdrop.contracts.exclusive import exactly_one_of
from backdrop.contracts.options import OptionLayer
from backdrop.domain import (
    JOB_ID_PATTERN,
    MAX_METADATA_ENTRIES,
    Cost,
    JobError,
    Metadata,
    Refused,
    exactly_one,
)
from backdrop.jobs import new_job_id

router = APIGatewayRouter()  # type: ignore[no-untyped-call]

MAX_PAGE = 100
MaxImages = Annotated[
    StrictInt | None,
    Field(
        default=None,
        ge=1,
        description="A budget: once its jobs have asked for this many images, the items not "
        "started yet end not_started (budget_reached). Jobs already started always finish.",
    ),
]
MaxCostUsd = Annotated[
    float | None,
    Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        strict=True,
        description="A budget in dollars, at the stack's prices (as `cost.estimated_usd`): "
        "once reached, the items not started yet end not_started (budget_reached).",
    ),
]


class BatchRequest(OptionLayer):
    """Body of POST /v1/batches: what to run over (exactly one of `prefix` or
    `manifest_key`), the generation options every item gets unless its manifest row sets
    its own, and your labels."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra=exactly_one_of("prefix", "manifest_key")
    )

    prefix: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="Every object under this prefix of the input bucket (catalog/ or inbox/).",
    )
    manifest_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="A CSV or JSON Lines manifest uploaded with POST /v1/uploads.",
    )
    metadata: Metadata = Field(
        default_factory=dict,
        # One entry is kept for a manifest row's `sku`, added to its job's.
        max_length=MAX_METADATA_ENTRIES - 1,
        description="Your labels, on every job of the batch and on Batch Completed (a "
        "manifest row's sku is added to its job's).",
    )
    max_images: MaxImages = None
    max_cost_usd: MaxCostUsd = None
    dry_run: StrictBool = Field(
        default=False,
        description="Answer 200 with what the batch would do (items, skips, refusals, "
        "images, estimated cost and duration) and start nothing.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        exactly_one(prefix=self.prefix, manifest_key=self.manifest_key)
        return self

    def options(self) -> dict[str, Any]:
        return self.model_dump(include=set(OptionLayer.model_fields), exclude_none=True)

    def work(self) -> dict[str, Any]:
        """What the batch runs over, with which options, within which budget: as starting
        it and quoting it both take them."""
        return {
            "prefix": self.prefix,
            "manifest_key": self.manifest_key,
            "options": self.options(),
            "max_images": self.max_images,
            "max_cost_usd": self.max_cost_usd,
        }


class BatchRetryRequest(BaseModel):
    """Body of POST /v1/batches/{id}/retry (optional): a budget for the retry instead of
    its batch's."""

    model_config = ConfigDict(extra="forbid")

    max_images: MaxImages = None
    max_cost_usd: MaxCostUsd = None


class BatchBudget(BaseModel):
    max_images: int | None
    max_cost_usd: float | None
    images_started: int = Field(description="Images asked of the jobs it started so far.")
    estimated_usd_started: float = Field(description="Their cost at the stack's prices.")


class BatchCounts(BaseModel):
    total: int | None = Field(
        description="Items. A prefix's grows while the Map lists it; null before that."
    )
    queued: int | None = Field(
        description="Not started yet (or never: canceled, or past its budget or the day's "
        "allowance; the report says which)."
    )
    running: int
    succeeded: int
    failed: int
    skipped: int = Field(description="Already done or under way by another job: not paid again.")


class ReviewCounts(BaseModel):
    pending: int = 0
    approved: int = 0
    rejected: int = 0
    superseded: int = 0


class BatchView(BaseModel):
    """A batch as GET /v1/batches/{id} shows it."""

    id: str
    status: BatchStatus
    source: BatchSource
    options: dict[str, Any]
    metadata: dict[str, str]
    counts: BatchCounts
    cancel_requested: bool
    started_at: datetime
    finished_at: datetime | None
    eta_seconds: int | None = Field(description="While running: an estimate of time left.")
    report_url: str | None = Field(description="When done: a presigned URL to the CSV report.")
    error: JobError | None = Field(description="Why the batch itself failed; null otherwise.")
    review: ReviewCounts | None = Field(
        default=None,
        description="With ReviewMode=required: its jobs (and their regenerations) by review "
        "status. Null otherwise.",
    )
    budget: BatchBudget = Field(
        description="Its budget (null limits: none) and what its jobs were charged so far."
    )
    cost: Cost | None = Field(
        default=None,
        description="When done: what the images its jobs made cost (its skipped items were "
        "paid for by whatever made them).",
    )


class BatchPage(BaseModel):
    items: list[BatchView]
    next_cursor: str | None


def batch_view(batch: Batch) -> BatchView:
    api = current()
    state = progress.of(batch, api.settings)
    reviewed = api.settings.review_mode == "required"
    return BatchView(
        review=ReviewCounts(
            pending=batch.review_pending,
            approved=batch.review_approved,
            rejected=batch.review_rejected,
            superseded=batch.review_superseded,
        )
        if reviewed
        else None,
        id=batch.id,
        status=batch.status,
        source=batch.source,
        options=batch.options.model_dump(mode="json", exclude_none=True),
        metadata=batch.metadata,
        counts=BatchCounts.model_validate(state.counts),
        cancel_requested=batch.cancel_requested,
        started_at=batch.started_at,
        finished_at=batch.finished_at,
        eta_seconds=state.eta_seconds,
        report_url=api.result_url(batch.report_key) if batch.report_key else None,
        error=batch.error,
        budget=BatchBudget(
            max_images=batch.max_images,
            max_cost_usd=batch.max_cost_usd,
            images_started=batch.images_started,
            estimated_usd_started=round(batch.estimated_usd_started, 6),
        ),
        cost=batch.cost,
    )


def _accepted(batch: Batch) -> Response[Any]:
    return Response(
        status_code=HTTPStatus.ACCEPTED.value,
        content_type=content_types.APPLICATION_JSON,
        body=batch_view(batch),
        headers={"Location": f"/v1/batches/{batch.id}"},
    )


def _start_failed() -> ApiError:
    return ApiError(
        "start_failed",
        "the batch workflow could not be started; try again",
    )


def _read(batch_id: str) -> Batch:
    api = current()
    if not re.fullmatch(JOB_ID_PATTERN, batch_id):
        raise BatchNotFound(batch_id)
    return api.batches.get_for(batch_id, caller(router.current_event))


@router.post(
    "/v1/batches",
    operation_id="createBatch",
    tags=["batches"],
    summary="Start a batch: every image under a prefix, or every row of a manifest",
    responses={
        200: {
            "description": "`dry_run`: what the batch would do; nothing was started.",
            "content": {"application/json": {"model": BatchQuote}},
        },
        202: {
            "description": "The batch, running; poll the Location.",
            "headers": location("/v1/batches/{id}"),
            "content": {"application/json": {"model": BatchView}},
        },
        **error_responses(400, 403, 409, 415, 422, 429, 500, 503),
    },
)
def create_batch(
    request: Annotated[BatchRequest, Body()], idempotency_key: IdempotencyKey = None
) -> Response[Any]:
    api = current()
    owner = caller(router.current_event)
    if request.dry_run:
        try:
            quoted = quote(
                **request.work(), settings=api.settings, jobs=api.jobs, governor=api.governor
            )
        except Refused as exc:
            raise ApiError.refused(exc) from None
        return Response(
            status_code=HTTPStatus.OK.value,
            content_type=content_types.APPLICATION_JSON,
            body=quoted,
        )

    def begin() -> Batch:
        try:
            return batch_start.start(
                new_job_id(),
                owner=owner,
                metadata=request.metadata,
                settings=api.settings,
                batches=api.batches,
                **request.work(),
            )
        except Refused as exc:
            raise ApiError.refused(exc) from None
        except batch_start.StartFailed:
            raise _start_failed() from None

    if idempotency_key is None:
        batch = begin()
    else:
        batch = api.idempotency.once(
            key=idempotency_key,
            scope="batches",
            owner=owner,
            request=request.model_dump(mode="json"),
            model=Batch,
            start=begin,
            context=router.lambda_context,
        )
        batch = api.batches.get(batch.id)  # as it stands now, not as first answered
    return _accepted(batch)


@router.get(
    "/v1/batches/<batch_id>",
    operation_id="getBatch",
    tags=["batches"],
    summary="A batch: status, counts, estimate of time left, the report when done",
    responses={200: {"description": "The batch."}, **error_responses(403, 404, 422, 429, 500)},
)
def get_batch(batch_id: str) -> BatchView:
    return batch_view(_read(batch_id))


@router.get(
    "/v1/batches",
    operation_id="listBatches",
    tags=["batches"],
    summary="Batches, newest first, a page at a time",
    responses={200: {"description": "A page of batches."}, **error_responses(403, 422, 429, 500)},
)
def list_batches(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Batches per page.")] = 20,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
    ] = None,
) -> BatchPage:
    api = current()
    reader = caller(router.current_event)
    after = cursors.position_of(cursor)
    page = api.batches.list_page(reader=reader, limit=limit, after=after)
    return BatchPage(
        items=[batch_view(batch) for batch in page.batches],
        next_cursor=None if page.after is None else cursors.encode(page.after),
    )


_CONFLICT: OpenAPIResponse = {
    "description": "The batch has already finished (cancel) or is still running (retry), "
    "or has nothing to retry.",
    "content": {"application/json": {"model": ErrorBody}},
}


@router.post(
    "/v1/batches/<batch_id>/cancel",
    operation_id="cancelBatch",
    tags=["batches"],
    summary="Cancel a batch: no new items start; jobs already started finish",
    responses={
        200: {"description": "The batch, canceling (its status becomes canceled at its end)."},
        409: _CONFLICT,
        **error_responses(403, 404, 422, 429, 500),
    },
)
def cancel_batch(batch_id: str) -> BatchView:
    api = current()
    batch = _read(batch_id)
    try:
        batch = api.batches.request_cancel(batch.id)
    except BatchConflict:
        status = api.batches.get(batch.id).status.value
        raise ApiError(
            "already_finished",
            f"the batch has already finished ({status}); only a running one can be canceled",
        ) from None
    return batch_view(batch)


@router.post(
    "/v1/batches/<batch_id>/retry",
    operation_id="retryBatch",
    tags=["batches"],
    summary="Start a new batch over the items of a finished one that did not succeed",
    description=(
        "The items whose jobs failed or were canceled, and those a cancel kept from "
        "starting, each with its own manifest options again."
    ),
    responses={
        202: {
            "description": "The new batch, running.",
            "headers": location("/v1/batches/{id}"),
        },
        409: _CONFLICT,
        **error_responses(400, 403, 404, 415, 422, 429, 500, 503),
    },
)
def retry_batch(
    batch_id: str,
    request: Annotated[BatchRetryRequest | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response[BatchView]:
    api = current()
    batch = _read(batch_id)
    budget = None
    if request is not None and request.model_fields_set:
        budget = (request.max_images, request.max_cost_usd)
    if idempotency_key is not None:
        retried = api.idempotency.once(
            key=idempotency_key,
            scope="batch-retries",
            owner=batch.owner,
            request={"batch_id": batch.id, "budget": budget},
            model=Batch,
            start=lambda: _retry(batch, budget),
            context=router.lambda_context,
        )
        return _accepted(api.batches.get(retried.id))
    return _accepted(_retry(batch, budget))


def _retry(batch: Batch, budget: tuple[int | None, float | None] | None) -> Batch:
    api = current()
    if not batch.finished:
        raise ApiError(
            "still_running",
            "the batch is still running; retry its failures once it has finished",
        )
    if batch.report_key is None:
        raise ApiError("nothing_to_retry", "the batch never started; start it again")
    try:
        return batch_start.retry(
            batch, new_job_id(), settings=api.settings, batches=api.batches, budget=budget
        )
    except Refused as exc:
        raise ApiError.refused(exc) from None
    except batch_start.StartFailed:
        raise _start_failed() from None
