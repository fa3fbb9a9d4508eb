"""How S3 notifications reach the inbox: an SQS record (Powertools' model) whose body is
an S3 event notification. Only the notification's fields we use are modelled, so that every
producer's variant parses (S3 adds fields over time); a test event has no Records."""

from __future__ import annotations

from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import BaseModel, Field, Json


class S3ObjectRef(BaseModel):
    key: str
    size: int | None = None
    eTag: str = ""
    versionId: str | None = None

    @property
    def decoded_key(self) -> str:
        # Keys arrive URL-encoded, with spaces as '+'.
        return unquote_plus(self.key)


class S3BucketRef(BaseModel):
    name: str


class S3Entity(BaseModel):
    bucket: S3BucketRef
    object: S3ObjectRef


class S3EventRecord(BaseModel):
    eventName: str
    s3: S3Entity


class S3Notification(BaseModel):
    Records: list[S3EventRecord] = Field(default_factory=list)
    Event: str | None = None


class InboxMessage(SqsRecordModel):
    body: Json[S3Notification]
