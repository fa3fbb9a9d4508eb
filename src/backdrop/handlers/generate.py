"""Workflow task: generate a job's images with a synchronous provider (Photoroom)."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from backdrop import workflow
from backdrop.config import get_settings
from backdrop.jobs import JobStore
from backdrop.models import TaskInput
from backdrop.observability import logger, tracer

settings = get_settings()
jobs = JobStore(settings)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_parser(model=TaskInput)
def handler(event: TaskInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id)
    client = workflow.photoroom(settings)
    results = workflow.generate(event.job_id, settings=settings, jobs=jobs, client=client)
    return {"results": [result.model_dump() for result in results]}
