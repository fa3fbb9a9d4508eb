"""S3 `inbox/` notifications, delivered through SQS: one job per new image version."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

from backdrop import inbox
from backdrop.config import get_settings
from backdrop.envelopes import InboxMessage
from backdrop.jobs import JobStore
from backdrop.observability import logger

if TYPE_CHECKING:  # typing only: the module costs a cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

settings = get_settings()
jobs = JobStore(settings)
processor = BatchProcessor(event_type=EventType.SQS, model=InboxMessage)


def record_handler(record: InboxMessage) -> None:
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
            settings=settings,
            jobs=jobs,
        )


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
