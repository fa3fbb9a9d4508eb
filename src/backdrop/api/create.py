"""POST /v1/generations: validate a request, record the job, start the workflow."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from botocore.exceptions import ClientError
from pydantic import AnyHttpUrl

from backdrop import executions
from backdrop.api.errors import ApiError
from backdrop.config import get_settings
from backdrop.jobs import JobStore, new_job_id
from backdrop.models import (
    GenerationOptions,
    GenerationRequest,
    GuidanceSource,
    ImageSource,
    JobError,
)
from backdrop.observability import logger
from backdrop.providers import capabilities

router = APIGatewayRouter()  # type: ignore[no-untyped-call]
settings = get_settings()
jobs = JobStore(settings)


def _source(url: AnyHttpUrl | None, key: str | None) -> ImageSource:
    if url is not None:
        return ImageSource(url=str(url))
    return ImageSource(bucket=settings.input_bucket, key=key)


@router.post("/v1/generations")
def create_generation(request: GenerationRequest) -> Response[Any]:
    provider = request.provider or settings.default_provider
    problems = capabilities.unsupported(provider, request, photoroom_model=settings.photoroom_model)
    if problems:
        raise ApiError(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            "unsupported_option",
            "the provider cannot honour every option asked for",
            [{"field": p.field, "reason": p.reason} for p in problems],
        )
    guidance = None
    if request.guidance is not None:
        image = _source(request.guidance.image_url, request.guidance.image_key)
        guidance = GuidanceSource(image=image, scale=request.guidance.scale)
    options = GenerationOptions(
        prompt=request.prompt or settings.default_prompt,
        negative_prompt=request.negative_prompt,
        count=request.count or settings.default_count,
        format=request.format,
        seed=request.seed,
        expand_prompt=request.expand_prompt,
        guidance=guidance,
        model=request.model,
        reference_box=request.reference_box,
        output_size=request.output_size,
    )
    job_id = new_job_id()
    try:
        job = executions.start_job(
            settings=settings,
            jobs=jobs,
            job_id=job_id,
            trigger="api",
            provider=provider,
            source=_source(request.image_url, request.image_key),
            options=options,
        )
    except ClientError:
        logger.exception("the workflow could not be started", extra={"job_id": job_id})
        message = "the workflow could not be started; try again"
        executions.fail_job(
            settings=settings,
            jobs=jobs,
            job_id=job_id,
            error=JobError(code="start_failed", message=message),
        )
        raise ApiError(
            HTTPStatus.SERVICE_UNAVAILABLE, "start_failed", message, [{"id": job_id}]
        ) from None
    return Response(
        status_code=HTTPStatus.ACCEPTED.value,
        content_type=content_types.APPLICATION_JSON,
        body={"id": job.id, "status": job.status.value},
        headers={"Location": f"/v1/generations/{job.id}"},
    )
