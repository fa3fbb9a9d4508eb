"""POST /v1/generations/{id}/cancel: stop a job that has not finished. A key may cancel
what it may read (its own jobs and the stack's); another key's job is 404, as anywhere."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from backdrop import executions
from backdrop.api.caller import readable_job
from backdrop.api.container import current
from backdrop.api.errors import ApiError
from backdrop.api.schemas import ErrorBody, error_responses
from backdrop.contracts.views import GenerationView, generation_view
from backdrop.domain import FINISHED, JobStatus
from backdrop.jobs import JobConflict

router = APIGatewayRouter()  # type: ignore[no-untyped-call]


@router.post(
    "/v1/generations/<job_id>/cancel",
    operation_id="cancelGeneration",
    tags=["generations"],
    summary="Cancel a generation that has not finished",
    description=(
        "Stops the job's workflow and marks it `canceled` (with a `Generation Canceled` "
        "event). Images already stored stay. A job a provider has already accepted may still "
        "be charged for by the provider; the job's message says so. Canceling a canceled job "
        "answers it again (and announces it again)."
    ),
    responses={
        200: {"description": "The canceled generation."},
        409: {
            "description": "The generation has already succeeded or failed.",
            "content": {"application/json": {"model": ErrorBody}},
        },
        **error_responses(403, 404, 422, 429, 500),
    },
)
def cancel_generation(job_id: str) -> GenerationView:
    api = current()
    job = readable_job(router.current_event, job_id)
    try:
        if job.status in FINISHED and job.status is not JobStatus.CANCELED:
            raise JobConflict(job.status.value)
        job = executions.cancel(job, settings=api.settings, jobs=api.jobs)
    except JobConflict:
        status = api.jobs.get(job_id).status.value  # it may have finished a moment ago
        raise ApiError(
            "already_finished",
            f"the generation has already finished ({status}); only a queued or running one "
            "can be canceled",
        ) from None
    return generation_view(job, api.urls)
