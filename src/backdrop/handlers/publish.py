"""Workflow task: announce a finished job on the event bus."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from backdrop import workflow
from backdrop.config import get_settings
from backdrop.jobs import JobStore
from backdrop.models import TaskInput
from backdrop.observability import logger, metrics, tracer

settings = get_settings()
jobs = JobStore(settings)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=TaskInput)
def handler(event: TaskInput, context: LambdaContext) -> None:
    logger.append_keys(job_id=event.job_id)
    job = workflow.publish(event.job_id, settings=settings, jobs=jobs)
    metrics.add_metric(name=f"Jobs{job.status.value.title()}", unit=MetricUnit.Count, value=1)
