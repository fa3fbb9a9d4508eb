"""Webhook deliveries, from their SQS queue (webhooks/dispatch.py): a message that fails,
or is not due yet, stays on the queue (partial batch failure)."""

from __future__ import annotations

# Powertools' batch processing before anything imports pydantic: imported after it, it
# loads every parser model (Kafka, Kinesis, DynamoDB ...) for its type hints.
from backdrop.handlers.sqs import RecordHandler, sqs_function

# isort: split
import json
from typing import TYPE_CHECKING

from backdrop.config import WebhookSettings
from backdrop.jobs import JobStore
from backdrop.runtime import Wiring
from backdrop.webhooks.dispatch import Dispatcher

if TYPE_CHECKING:  # typing only: the module costs a cold start
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Room one more attempt needs (its 15 s, the record keeping): a record that would not
# have it goes back to the queue rather than being cut off by the function's timeout.
RESERVE_MS = 25_000


def dispatcher(settings: WebhookSettings) -> Dispatcher:
    return Dispatcher(settings, JobStore(settings))


def record_handler(dispatcher: Dispatcher) -> RecordHandler:
    def handle(record: SQSRecord, lambda_context: LambdaContext) -> None:
        if lambda_context.get_remaining_time_in_millis() < RESERVE_MS:
            raise TimeoutError("not enough time left in this invocation; the message returns")
        dispatcher.handle(json.loads(record.body), record.receipt_handle)

    return handle


# A batch of retries all coming back early is a normal batch, not a failed invocation.
handler = sqs_function(
    Wiring(WebhookSettings, dispatcher), record_handler, raise_on_entire_batch_failure=False
)
