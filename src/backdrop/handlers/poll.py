"""Workflow task: ask the provider whether a submitted job has finished."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from backdrop import workflow
from backdrop.config import get_settings
from backdrop.models import PollInput
from backdrop.observability import logger, tracer

settings = get_settings()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_parser(model=PollInput)
def handler(event: PollInput, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id)
    client = workflow.picsart(settings)
    return workflow.poll(event.poll, settings=settings, client=client).model_dump()
