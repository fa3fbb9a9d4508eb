"""GET /v1/generations/{id}: a job as callers see it."""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from backdrop.config import get_settings
from backdrop.jobs import JobNotFound, JobStore
from backdrop.models import JOB_ID_PATTERN

router = APIGatewayRouter()  # type: ignore[no-untyped-call]
jobs = JobStore(get_settings())


@router.get("/v1/generations/<job_id>")
def get_generation(job_id: str) -> dict[str, Any]:
    if not re.fullmatch(JOB_ID_PATTERN, job_id):
        raise JobNotFound(job_id)
    return jobs.get(job_id).model_dump(mode="json", exclude={"expires_at"})
