"""Job records in DynamoDB. Every status change is a conditional write, so a job
only moves forward (queued -> running -> succeeded | failed) and retries are harmless."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from backdrop import aws
from backdrop.config import ProviderName, Settings
from backdrop.models import (
    GenerationOptions,
    ImageSource,
    Job,
    JobError,
    JobStatus,
    ResultImage,
    Trigger,
)


class JobNotFound(Exception):
    """No job has this id."""


class JobConflict(Exception):
    """The job is not in a state that allows this change (e.g. already finished)."""


def new_job_id() -> str:
    return uuid.uuid4().hex


def source_job_id(bucket: str, key: str, version: str) -> str:
    """The id of the job for one version of one object: the same notification delivered
    twice gives the same id, so it can only ever start one execution."""
    identity = "\n".join((bucket, key, version)).encode()
    return hashlib.sha256(identity).hexdigest()[:32]


def _now() -> datetime:
    return datetime.now(UTC)


class JobStore:
    def __init__(self, settings: Settings) -> None:
        self._table_name = settings.jobs_table
        self._ttl = timedelta(days=settings.job_ttl_days)

    def create(
        self,
        *,
        job_id: str,
        trigger: Trigger,
        provider: ProviderName,
        source: ImageSource,
        options: GenerationOptions,
        metadata: dict[str, str] | None = None,
    ) -> tuple[Job, bool]:
        """Record a queued job. Returns the job and whether this call created it; a job
        that already exists is returned as it is (the caller is a redelivery)."""
        now = _now()
        job = Job(
            id=job_id,
            status=JobStatus.QUEUED,
            trigger=trigger,
            provider=provider,
            source=source,
            options=options,
            metadata=metadata or {},
            created_at=now,
            updated_at=now,
            expires_at=int((now + self._ttl).timestamp()),
        )
        try:
            aws.client("dynamodb").put_item(
                TableName=self._table_name,
                Item=_to_item(job.model_dump(mode="json", exclude_none=True)),
                ConditionExpression="attribute_not_exists(id)",
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return self.get(job_id), False
            raise
        return job, True

    def get(self, job_id: str) -> Job:
        answer = aws.client("dynamodb").get_item(
            TableName=self._table_name, Key={"id": {"S": job_id}}, ConsistentRead=True
        )
        if "Item" not in answer:
            raise JobNotFound(job_id)
        return Job.model_validate(_from_item(answer["Item"]))

    def mark_running(self, job_id: str, provider_job_id: str | None) -> None:
        """Record the provider's id for the job (None for a synchronous provider); only a
        queued job can start."""
        self._transition(
            job_id,
            allowed_from=(JobStatus.QUEUED,),
            to=JobStatus.RUNNING,
            values={"provider_job_id": provider_job_id},
        )

    def mark_succeeded(self, job_id: str, results: list[ResultImage]) -> None:
        self._transition(
            job_id,
            allowed_from=(JobStatus.RUNNING,),
            to=JobStatus.SUCCEEDED,
            values={"results": [r.model_dump(mode="json") for r in results]},
        )

    def mark_failed(self, job_id: str, error: JobError) -> Job:
        """Fail a job that has not finished. Failing a failed job again changes nothing;
        a succeeded job stays succeeded (JobConflict)."""
        try:
            self._transition(
                job_id,
                allowed_from=(JobStatus.QUEUED, JobStatus.RUNNING),
                to=JobStatus.FAILED,
                values={"error": error.model_dump(mode="json")},
            )
        except JobConflict:
            job = self.get(job_id)
            if job.status is not JobStatus.FAILED:
                raise
            return job
        return self.get(job_id)

    def _transition(
        self,
        job_id: str,
        *,
        allowed_from: tuple[JobStatus, ...],
        to: JobStatus,
        values: dict[str, Any],
    ) -> None:
        values = {**values, "status": to.value, "updated_at": _now().isoformat()}
        names = {f"#{field}": field for field in values}
        placeholders = {f":{field}": _to_attr(value) for field, value in values.items()}
        allowed = {f":from{i}": {"S": status.value} for i, status in enumerate(allowed_from)}
        try:
            aws.client("dynamodb").update_item(
                TableName=self._table_name,
                Key={"id": {"S": job_id}},
                UpdateExpression="SET " + ", ".join(f"#{f} = :{f}" for f in values),
                ConditionExpression=f"attribute_exists(id) AND #status IN ({', '.join(allowed)})",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={**placeholders, **allowed},
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            current = self.get(job_id)  # raises JobNotFound for an unknown id
            if current.status is to and _matches(current, values):
                return  # the same change again: a retried task, nothing to do
            raise JobConflict(
                f"job {job_id} is {current.status.value}, cannot become {to.value}"
            ) from exc


def _matches(job: Job, values: dict[str, Any]) -> bool:
    dumped = job.model_dump(mode="json")
    return all(dumped.get(k) == v for k, v in values.items() if k not in ("updated_at", "status"))


def _is_condition_failure(exc: ClientError) -> bool:
    return bool(exc.response["Error"]["Code"] == "ConditionalCheckFailedException")


_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_attr(value: Any) -> dict[str, Any]:
    # DynamoDB numbers are Decimals; a JSON round trip turns every float into one.
    exact = json.loads(json.dumps(value), parse_float=Decimal)
    return _serializer.serialize(exact)  # type: ignore[no-any-return]


def _to_item(data: dict[str, Any]) -> dict[str, Any]:
    return {key: _to_attr(value) for key, value in data.items()}


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    # Numbers come back as Decimal; pydantic turns them into the model's ints.
    return {key: _deserializer.deserialize(value) for key, value in item.items()}
