"""Workflow task: copy a finished job's images into the results bucket."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from backdrop import workflow
from backdrop.config import get_settings
from backdrop.jobs import JobStore
from backdrop.models import StoreInput
from backdrop.observability import logger, tracer

settings = get_settings()
jobs = JobStore(settings)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_parser(model=StoreInput)
def handler(event: StoreInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id)
    http = workflow.http_client(settings.provider_timeout_seconds)
    results = workflow.store(event.job_id, event.urls, settings=settings, jobs=jobs, http=http)
    return {"results": [result.model_dump() for result in results]}
