"""Webhook deliveries, from their SQS queue (webhooks/dispatch.py): a message that fails,
or is not due yet, stays on the queue (partial batch failure)."""

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

from backdrop.config import get_settings
from backdrop.jobs import JobStore
from backdrop.observability import logger
from backdrop.webhooks.dispatch import Dispatcher

if TYPE_CHECKING:  # typing only: the module costs a cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

dispatcher = Dispatcher(get_settings(), JobStore(get_settings()))
# A batch of retries all coming back early is a normal batch, not a failed invocation.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
# Room one more attempt needs (its 15 s, the record keeping): a record that would not
# have it goes back to the queue rather than being cut off by the function's timeout.
RESERVE_MS = 25_000


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    if lambda_context.get_remaining_time_in_millis() < RESERVE_MS:
        raise TimeoutError("not enough time left in this invocation; the message returns")
    dispatcher.handle(json.loads(record.body), record.receipt_handle)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
