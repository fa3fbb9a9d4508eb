"""`Generation Requested` events, from the bus through SQS: one job per event (requested.py).
A message is failed back to the queue only for what a retry can fix (AWS errors)."""

from __future__ import annotations

# Powertools' batch processing before anything imports pydantic: imported after it, it
# loads every parser model (Kafka, Kinesis, DynamoDB ...) for its type hints.
from backdrop.handlers.sqs import RecordHandler, Starter, sqs_function, starter

# isort: split
import json
from typing import TYPE_CHECKING

from backdrop import requested
from backdrop.config import RequestSettings
from backdrop.runtime import Wiring

if TYPE_CHECKING:  # typing only: the module costs a cold start
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord


def record_handler(container: Starter[RequestSettings]) -> RecordHandler:
    def handle(record: SQSRecord) -> None:
        try:
            event = json.loads(record.body)
        except json.JSONDecodeError:
            event = None
        if not isinstance(event, dict):
            # Not an event at all (only the rule sends here): a failed job says so, by message.
            event = {"id": record.message_id, "source": "unknown", "detail": None}
        requested.handle(event, settings=container.settings, jobs=container.jobs)

    return handle


handler = sqs_function(Wiring(RequestSettings, starter), record_handler)
