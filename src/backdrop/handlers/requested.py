"""`Generation Requested` events, from the bus through SQS: one job per event (requested.py).
A message is failed back to the queue only for what a retry can fix (AWS errors)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from backdrop import requested
from backdrop.config import get_settings
from backdrop.jobs import JobStore
from backdrop.observability import logger

if TYPE_CHECKING:  # typing only: the module costs a cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

settings = get_settings()
jobs = JobStore(settings)
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    try:
        event = json.loads(record.body)
    except json.JSONDecodeError:
        event = None
    if not isinstance(event, dict):
        # Not an event at all (only the rule sends here): a failed job says so, by message.
        event = {"id": record.message_id, "source": "unknown", "detail": None}
    requested.handle(event, settings=settings, jobs=jobs)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
