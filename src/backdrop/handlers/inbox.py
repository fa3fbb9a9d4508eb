"""S3 `inbox/` notifications, delivered through SQS: one job per new image version."""

from __future__ import annotations

from typing import Any, cast, get_args

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from backdrop import executions, storage
from backdrop.config import ProviderName, get_settings
from backdrop.jobs import JobStore, source_job_id
from backdrop.models import GenerationOptions, ImageSource, JobError, S3Notification
from backdrop.observability import logger, tracer

settings = get_settings()
jobs = JobStore(settings)
processor = BatchProcessor(event_type=EventType.SQS)
PROVIDERS: tuple[str, ...] = get_args(ProviderName)


def record_handler(record: SQSRecord) -> None:
    notification = S3Notification.model_validate_json(record.body)
    if notification.Event == "s3:TestEvent":
        logger.info("S3 test event ignored")
        return
    for item in notification.Records:
        obj = item.s3.object
        key = obj.decoded_key
        if key.endswith("/") or obj.size == 0:
            logger.info("folder marker or empty object ignored", extra={"key": key})
            continue
        bucket = item.s3.bucket.name
        metadata = storage.object_metadata(bucket, key, obj.versionId)
        if metadata is None:
            logger.info("object deleted before it was handled", extra={"key": key})
            continue
        job_id = source_job_id(bucket, key, obj.versionId or obj.eTag)
        source = ImageSource(bucket=bucket, key=key, version_id=obj.versionId)
        options = GenerationOptions(prompt=settings.default_prompt, count=settings.default_count)
        provider = metadata.get("provider", settings.default_provider)
        if provider in PROVIDERS:
            executions.start_job(
                settings=settings,
                jobs=jobs,
                job_id=job_id,
                trigger="inbox",
                provider=cast(ProviderName, provider),
                source=source,
                options=options,
            )
        else:
            # A bad option is a failed job the uploader can see, never a silent drop.
            executions.reject_job(
                settings=settings,
                jobs=jobs,
                job_id=job_id,
                trigger="inbox",
                source=source,
                options=options,
                error=JobError(
                    code="invalid_option",
                    message=f"x-amz-meta-provider {provider!r} is not one of "
                    + ", ".join(PROVIDERS),
                ),
            )
        logger.info("inbox image handled", extra={"job_id": job_id, "key": key})


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
