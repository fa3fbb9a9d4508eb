"""Workflow task: record why a job failed (reached from every Catch)."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from backdrop import workflow
from backdrop.config import get_settings
from backdrop.jobs import JobStore
from backdrop.models import MarkFailedInput
from backdrop.observability import logger, tracer

settings = get_settings()
jobs = JobStore(settings)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_parser(model=MarkFailedInput)
def handler(event: MarkFailedInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id)
    job = workflow.mark_failed(event.job_id, event.error.error, event.error.cause, jobs=jobs)
    assert job.error is not None
    return job.error.model_dump()
