"""S3 `inbox/` notifications, delivered through SQS: one job per new image version."""

from __future__ import annotations

# Powertools' batch processing before anything imports pydantic: imported after it, it
# loads every parser model (Kafka, Kinesis, DynamoDB ...) for its type hints.
from backdrop.handlers.sqs import RecordHandler, Starter, sqs_function, starter

# isort: split
from backdrop import inbox
from backdrop.config import InboxSettings
from backdrop.envelopes import InboxMessage
from backdrop.observability import logger
from backdrop.runtime import Wiring


def record_handler(container: Starter[InboxSettings]) -> RecordHandler:
    def handle(record: InboxMessage) -> None:
        notification = record.body
        if notification.Event == "s3:TestEvent":
            logger.info("S3 test event ignored")
            return
        for item in notification.Records:
            obj = item.s3.object
            inbox.handle(
                bucket=item.s3.bucket.name,
                key=obj.decoded_key,
                version_id=obj.versionId,
                etag=obj.eTag,
                size=obj.size,
                settings=container.settings,
                jobs=container.jobs,
            )

    return handle


handler = sqs_function(Wiring(InboxSettings, starter), record_handler, model=InboxMessage)
