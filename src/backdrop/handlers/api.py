"""HTTPS API: POST /v1/generations, GET /v1/generations/{id}."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import AnyHttpUrl

from backdrop import executions
from backdrop.config import get_settings
from backdrop.jobs import JobNotFound, JobStore, new_job_id
from backdrop.models import (
    JOB_ID_PATTERN,
    GenerationOptions,
    GenerationRequest,
    GuidanceSource,
    ImageSource,
    JobError,
)
from backdrop.observability import logger, tracer
from backdrop.providers import capabilities

settings = get_settings()
jobs = JobStore(settings)
app = APIGatewayRestResolver(enable_validation=True)


def _error(status: HTTPStatus, code: str, message: str, details: Any = None) -> Response[Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body={"error": body},
    )


@app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
def _invalid_request(exc: RequestValidationError) -> Response[Any]:
    if any(e["type"] == "json_invalid" for e in exc.errors()):
        return _error(HTTPStatus.BAD_REQUEST, "malformed_json", "the body is not valid JSON")
    details = [
        {"field": ".".join(str(p) for p in e["loc"][1:]) or "body", "reason": e["msg"]}
        for e in exc.errors()
    ]
    return _error(
        HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_request", "the request is invalid", details
    )


@app.exception_handler(JobNotFound)  # type: ignore[untyped-decorator]
def _not_found(exc: JobNotFound) -> Response[Any]:
    return _error(HTTPStatus.NOT_FOUND, "not_found", "no generation has this id")


class UnsupportedOptions(Exception):
    def __init__(self, problems: list[capabilities.Unsupported]) -> None:
        super().__init__("unsupported options")
        self.problems = problems


@app.exception_handler(UnsupportedOptions)  # type: ignore[untyped-decorator]
def _unsupported(exc: UnsupportedOptions) -> Response[Any]:
    details = [{"field": p.field, "reason": p.reason} for p in exc.problems]
    message = "the provider cannot honour every option asked for"
    return _error(HTTPStatus.UNPROCESSABLE_ENTITY, "unsupported_option", message, details)


def _source(url: AnyHttpUrl | None, key: str | None) -> ImageSource:
    if url is not None:
        return ImageSource(url=str(url))
    return ImageSource(bucket=settings.input_bucket, key=key)


@app.post("/v1/generations")
def create_generation(request: GenerationRequest) -> Response[Any]:
    provider = request.provider or settings.default_provider
    problems = capabilities.unsupported(provider, request, photoroom_model=settings.photoroom_model)
    if problems:
        raise UnsupportedOptions(problems)
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
        return _error(HTTPStatus.SERVICE_UNAVAILABLE, "start_failed", message, {"id": job_id})
    return Response(
        status_code=HTTPStatus.ACCEPTED.value,
        content_type=content_types.APPLICATION_JSON,
        body={"id": job.id, "status": job.status.value},
        headers={"Location": f"/v1/generations/{job.id}"},
    )


@app.get("/v1/generations/<job_id>")
def get_generation(job_id: str) -> dict[str, Any]:
    if not re.fullmatch(JOB_ID_PATTERN, job_id):
        raise JobNotFound(job_id)
    return jobs.get(job_id).model_dump(mode="json", exclude={"expires_at"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
