"""Who is asking: the owner of the request's API key, and the job it names, if it may
read it."""

from __future__ import annotations

import re

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from backdrop.api.container import current
from backdrop.api.errors import ApiError
from backdrop.domain import JOB_ID_PATTERN, Job, key_owner
from backdrop.jobs import JobNotFound


def caller(event: APIGatewayProxyEvent) -> str:
    """Whose jobs the request may make and see: the owner of its API key (domain.key_owner).
    API Gateway names the key on every route that needs one; a request without (a route
    deployed without the key requirement) is refused rather than shown every key's jobs."""
    key_id = event.request_context.identity.api_key_id
    try:
        return key_owner(key_id or "")
    except ValueError:
        raise ApiError("forbidden", "send a valid API key in the x-api-key header") from None


def readable_job(event: APIGatewayProxyEvent, job_id: str) -> Job:
    """The job `job_id` names, if the caller may read it; JobNotFound (404) otherwise, as
    for an id no job has."""
    if not re.fullmatch(JOB_ID_PATTERN, job_id):
        raise JobNotFound(job_id)
    return current().jobs.get_for(job_id, caller(event))
