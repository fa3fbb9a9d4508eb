"""HTTPS API: POST /v1/generations, GET /v1/generations/{id}."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from backdrop import executions
from backdrop.config import get_settings
from backdrop.jobs import JOB_ID_PATTERN, JobNotFound, JobStore, new_job_id
from backdrop.models import GenerationOptions, GenerationRequest, ImageSource
from backdrop.observability import logger, tracer

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


@app.post("/v1/generations")
def create_generation(request: GenerationRequest) -> Response[Any]:
    if request.image_url is not None:
        source = ImageSource(url=str(request.image_url))
    else:
        source = ImageSource(bucket=settings.input_bucket, key=request.image_key)
    options = GenerationOptions(
        prompt=request.prompt or settings.default_prompt,
        negative_prompt=request.negative_prompt,
        count=request.count or settings.default_count,
        format=request.format,
    )
    job = executions.start_job(
        settings=settings,
        jobs=jobs,
        job_id=new_job_id(),
        trigger="api",
        provider=settings.default_provider,
        source=source,
        options=options,
    )
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
