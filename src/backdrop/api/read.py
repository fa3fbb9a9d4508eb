"""GET /v1/generations/{id} and GET /v1/generations: jobs as callers see them (views.py),
and only those an API key may read: its own and the stack's (jobs.py). Another key's job
answers exactly as an id no job has."""

from __future__ import annotations

import re
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from backdrop.api import cursor as cursors
from backdrop.api.caller import caller, readable_job
from backdrop.api.container import current
from backdrop.api.schemas import error_responses
from backdrop.batches.store import BatchNotFound
from backdrop.contracts.views import GenerationPage, GenerationView, generation_view
from backdrop.domain import JOB_ID_PATTERN, JobStatus, ReviewStatus

router = APIGatewayRouter()  # type: ignore[no-untyped-call]

MAX_PAGE = 100


@router.get(
    "/v1/generations/<job_id>",
    operation_id="getGeneration",
    tags=["generations"],
    summary="A generation: status, request, results with download URLs, error",
    responses={200: {"description": "The generation."}, **error_responses(403, 404, 422, 429, 500)},
)
def get_generation(job_id: str) -> GenerationView:
    return generation_view(readable_job(router.current_event, job_id), current().urls)


@router.get(
    "/v1/generations",
    operation_id="listGenerations",
    tags=["generations"],
    summary="Generations, newest first (the review queue oldest first), a page at a time",
    responses={
        200: {"description": "A page of generations."},
        **error_responses(403, 404, 422, 429, 500),
    },
)
def list_generations(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Jobs per page.")] = 20,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this status.")] = None,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
    ] = None,
    batch_id: Annotated[
        str | None, Query(max_length=64, description="Only the jobs this batch started.")
    ] = None,
    review: Annotated[
        ReviewStatus | None,
        Query(
            description="Only jobs in this review status, oldest first: `pending` is the "
            "review queue (ReviewMode=required)."
        ),
    ] = None,
) -> GenerationPage:
    api = current()
    reader = caller(router.current_event)
    if batch_id is not None:
        if not re.fullmatch(JOB_ID_PATTERN, batch_id):
            raise BatchNotFound(batch_id)
        api.batches.get_for(batch_id, reader)  # another key's batch is 404, as an unknown one
    after = cursors.position_of(cursor)
    page = api.jobs.list_page(
        reader=reader, status=status, limit=limit, after=after, batch_id=batch_id, review=review
    )
    return GenerationPage(
        items=[generation_view(job, api.urls) for job in page.jobs],
        next_cursor=None if page.after is None else cursors.encode(page.after),
    )
