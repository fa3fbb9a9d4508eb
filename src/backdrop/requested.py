"""`Generation Requested` events: what one event on the stack's bus becomes. A started job,
or a failed job that says why (`invalid_request` naming the field, with the request's
metadata on its `Generation Failed` event): never an exception a retry cannot fix, so a bad
event never loops or floods the dead letters.

The detail holds the fields of POST /v1/generations (the photo as `image_url`, or as
`image_key` from POST /v1/uploads: events are too small for the photo itself), `metadata`,
and optionally `webhook_url` and `idempotency_key`. Event jobs are the stack's, like the
inbox's: every API key reads them. The job id comes from the event's source and its
idempotency key (else the event's id): a redelivered or repeated event is the same job."""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import (
    BaseModel,
    ValidationError,
)

from backdrop import executions
from backdrop.config import StartSettings
from backdrop.contracts.requests import RequestedGeneration
from backdrop.domain import (
    MAX_IMAGE_URL_LENGTH,
    STACK_OWNER,
    Job,
    JobError,
    Metadata,
    Problem,
    Refused,
)
from backdrop.jobs import JobStore
from backdrop.observability import logger
from backdrop.plan import Ask, Photo, PlanRefused, asked, plan, refusal


def event_job_id(source: str, identity: str) -> str:
    return hashlib.sha256("\n".join(("event", source, identity)).encode()).hexdigest()[:32]


def handle(event: dict[str, Any], *, settings: StartSettings, jobs: JobStore) -> Job:
    detail = event.get("detail")
    fields = detail if isinstance(detail, dict) else {}
    key = fields.get("idempotency_key")
    identity = key if isinstance(key, str) and key else str(event.get("id", ""))
    job_id = event_job_id(str(event.get("source", "")), identity)
    try:
        request = RequestedGeneration.model_validate(detail)
    except ValidationError as exc:
        problems = tuple(
            Problem(".".join(str(p) for p in e["loc"]) or "detail", e["msg"])
            for e in exc.errors(include_url=False)
        )
        refused = refusal(
            _as_given(fields, job_id),
            Refused("invalid_request", "the request is invalid", problems),
            settings,
        )
        return _refuse(refused, settings=settings, jobs=jobs)
    ask = asked(request, trigger="event", owner=STACK_OWNER, job_id=job_id)
    try:
        new = plan(ask, settings)
    except PlanRefused as exc:
        return _refuse(exc, settings=settings, jobs=jobs)
    job = executions.start_or_refuse(new, settings=settings, jobs=jobs)
    logger.info("requested generation started", extra={"job_id": job.id})
    return job


def _refuse(refused: PlanRefused, *, settings: StartSettings, jobs: JobStore) -> Job:
    """Record and announce the refusal; its message names each field at fault (the event's
    sender has no HTTP answer to read them from)."""
    said = "; ".join(f"{p.field}: {p.reason}" for p in refused.problems)
    error = JobError(
        code=refused.code, message=f"{refused.message} ({said})" if said else refused.message
    )
    logger.info("requested generation refused", extra={"job_id": refused.job.id, "error": said})
    return executions.refuse(refused.job, error, settings=settings, jobs=jobs)


def _as_given(fields: dict[str, Any], job_id: str) -> Ask:
    """What a request that could not be read asked for, as far as it can be told: its
    photo if it named one plainly, and its metadata if that is valid (the failure's event
    carries it, so the sender can match its own ids)."""
    url, image_key = fields.get("image_url"), fields.get("image_key")
    plain = isinstance(url, str) and 0 < len(url) <= MAX_IMAGE_URL_LENGTH
    photo = Photo(url=url) if plain else Photo()
    if photo.url is None and isinstance(image_key, str) and image_key:
        photo = Photo(upload_key=image_key)
    try:
        metadata = _Labels.model_validate({"metadata": fields.get("metadata") or {}}).metadata
    except ValidationError:
        metadata = {}
    return Ask(trigger="event", photo=photo, metadata=metadata, job_id=job_id, owner=STACK_OWNER)


class _Labels(BaseModel):
    metadata: Metadata
