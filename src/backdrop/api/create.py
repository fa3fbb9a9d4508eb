"""POST /v1/generations and POST /v1/uploads: validate, record the job, start the workflow."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from botocore.exceptions import ClientError

from backdrop import allowances, executions, storage
from backdrop.api.caller import caller
from backdrop.api.container import current
from backdrop.api.errors import ApiError
from backdrop.api.idempotency import IdempotencyKey
from backdrop.api.schemas import (
    UploadForm,
    UploadRequest,
    UploadTicket,
    error_responses,
    location,
)
from backdrop.contracts.requests import MAX_INLINE_IMAGE_BYTES, GenerationRequest
from backdrop.contracts.views import GenerationView, generation_view
from backdrop.domain import Job, JobError, NewJob, Refused
from backdrop.observability import logger
from backdrop.plan import (
    UPLOAD_TYPES,
    UPLOADS_PREFIX,
    PlanRefused,
    asked,
    plan,
)

router = APIGatewayRouter()  # type: ignore[no-untyped-call]


def _too_large(what: str) -> ApiError:
    return ApiError(
        "payload_too_large",
        f"{what}; upload the photo with POST /v1/uploads and pass its image_key",
    )


@router.post(
    "/v1/generations",
    operation_id="createGeneration",
    tags=["generations"],
    summary="Generate backgrounds for a product photo",
    responses={
        202: {
            "description": "The job, queued; poll the Location.",
            "headers": location("/v1/generations/{id}"),
        },
        **error_responses(400, 403, 409, 413, 415, 422, 429, 500, 503),
    },
)
def create_generation(
    request: Annotated[GenerationRequest, Body()], idempotency_key: IdempotencyKey = None
) -> Response[GenerationView]:
    api = current()
    owner = caller(router.current_event)
    inline = request.inline_image
    if inline is not None and len(inline) > MAX_INLINE_IMAGE_BYTES:
        raise _too_large(f"inline photos are limited to {MAX_INLINE_IMAGE_BYTES // 2**20} MB")
    if idempotency_key is None:
        job = _start(request, owner)
    else:
        job = _start_once(idempotency_key, owner, request)
    return Response(
        status_code=HTTPStatus.ACCEPTED.value,
        content_type=content_types.APPLICATION_JSON,
        body=generation_view(job, api.urls),
        headers={"Location": f"/v1/generations/{job.id}"},
    )


def _start_once(key: str, owner: str, request: GenerationRequest) -> Job:
    # What identifies a retry: the request, with inline photos by digest so the record
    # stays small.
    body = request.model_dump(mode="json", exclude={"image", "image_base64"})
    inline = request.inline_image
    if inline is not None:
        body["image_sha256"] = hashlib.sha256(inline).hexdigest()
    return current().idempotency.once(
        key=key,
        scope="generations",
        owner=owner,
        request=body,
        model=Job,
        start=lambda: _start(request, owner),
        context=router.lambda_context,
    )


def _start(request: GenerationRequest, owner: str) -> Job:
    """Plan the job (a refusal is a 422 naming the fields), record it as `owner`'s, start
    it."""
    api = current()
    ask = asked(request, trigger="api", owner=owner)
    try:
        new = plan(ask, api.settings)
    except PlanRefused as exc:
        raise ApiError.refused(exc) from None
    return start(new)


def start(new: NewJob) -> Job:
    """Record a planned job and start its workflow; a workflow that cannot start fails the
    job (announced) and answers 503 `start_failed`."""
    api = current()
    try:
        return executions.start(new, settings=api.settings, jobs=api.jobs)
    except allowances.Exhausted as exc:
        raise ApiError.refused(exc) from None  # 429: nothing recorded, nothing started
    except ClientError:
        logger.exception("the workflow could not be started", extra={"job_id": new.id})
        message = "the workflow could not be started; try again"
        error = JobError(code="start_failed", message=message)
        executions.fail(new.id, error, settings=api.settings, jobs=api.jobs)
        raise ApiError("start_failed", message, [{"id": new.id}]) from None


@router.post(
    "/v1/uploads",
    operation_id="createUpload",
    tags=["uploads"],
    summary="Get a form to upload a photo, for files too large to send inline",
    responses={
        201: {"description": "Where and how to upload."},
        **error_responses(400, 403, 415, 422, 429, 500),
    },
)
def create_upload(request: Annotated[UploadRequest, Body()]) -> Response[UploadTicket]:
    api = current()
    limit = api.settings.upload_max_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError.refused(
            Refused.field("content_length", f"files are limited to {limit} bytes")
        )
    key = f"{UPLOADS_PREFIX}{uuid.uuid4().hex}.{UPLOAD_TYPES[request.content_type]}"
    smallest, largest = (request.content_length or 1), (request.content_length or limit)
    url, fields = storage.presigned_post(
        api.settings.input_bucket,
        key,
        content_type=request.content_type,
        sizes=(smallest, largest),
        expires_in=api.settings.upload_url_seconds,
    )
    ticket = UploadTicket(
        image_key=key,
        upload=UploadForm(url=url, fields=fields),
        expires_at=datetime.now(UTC) + timedelta(seconds=api.settings.upload_url_seconds),
        max_bytes=largest,
    )
    return Response(
        status_code=HTTPStatus.CREATED.value,
        content_type=content_types.APPLICATION_JSON,
        body=ticket,
    )
