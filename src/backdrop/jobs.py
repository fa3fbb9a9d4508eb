"""Job records in DynamoDB. Every status change is a conditional write, so a job
only moves forward (queued -> running -> succeeded | failed) and retries are harmless."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from backdrop import aws
from backdrop.config import Settings
from backdrop.domain import Job, JobError, JobStatus, NewJob, ResultImage

# Listing: two global secondary indexes on the jobs table (template.yaml), both sorted by
# LIST_KEY. Every job carries the constant LIST_PARTITION, so one index holds all jobs in
# creation order; the other is partitioned by status, which the transitions already keep
# current. LIST_KEY never changes after create, so no transition has to maintain it.
BY_CREATED_INDEX = "by-created"
BY_STATUS_INDEX = "by-status"
LIST_PARTITION = ("kind", "job")
LIST_KEY = "created_key"
# Fixed width (always microseconds, always UTC), so text order is time order; the id
# breaks ties and makes every key unique, so a key is an exact position in a listing.
LIST_KEY_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z#[0-9a-f]{32}$"


def list_key(created_at: datetime, job_id: str) -> str:
    return f"{created_at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{job_id}"


@dataclass(frozen=True)
class JobPage:
    """Jobs newest first, and the position to continue after (None on the last page)."""

    jobs: list[Job]
    after: str | None


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

    def create(self, new: NewJob) -> tuple[Job, bool]:
        """Record a queued job. Returns the job and whether this call created it; a job
        that already exists is returned as it is (the caller is a redelivery)."""
        now = _now()
        job_id = new.id
        planned = {f.name: getattr(new, f.name) for f in fields(new)}
        job = Job(
            **planned,
            status=JobStatus.QUEUED,
            created_at=now,
            updated_at=now,
            expires_at=int((now + self._ttl).timestamp()),
        )
        listing = {LIST_PARTITION[0]: LIST_PARTITION[1], LIST_KEY: list_key(now, job_id)}
        try:
            aws.client("dynamodb").put_item(
                TableName=self._table_name,
                Item=_to_item(job.model_dump(mode="json", exclude_none=True) | listing),
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

    def list_page(self, *, status: JobStatus | None, limit: int, after: str | None) -> JobPage:
        """Up to `limit` jobs newest first, optionally of one status, created before the
        position `after` (a LIST_KEY from a previous page). A Query on an index keyed by
        exactly what is asked needs no FilterExpression, so no page comes back short."""
        partition = LIST_PARTITION if status is None else ("status", status.value)
        names = {"#p": partition[0]}
        values = {":p": {"S": partition[1]}}
        condition = "#p = :p"
        if after is not None:
            names["#k"] = LIST_KEY
            values[":after"] = {"S": after}
            condition += " AND #k < :after"
        items: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        # One more than the page tells whether another page exists, so the last page
        # never hands out a cursor to an empty one. Query may also stop early (1 MB).
        while len(items) <= limit:
            answer = aws.client("dynamodb").query(
                TableName=self._table_name,
                IndexName=BY_CREATED_INDEX if status is None else BY_STATUS_INDEX,
                KeyConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ScanIndexForward=False,
                Limit=limit + 1 - len(items),
                **({"ExclusiveStartKey": start} if start else {}),
            )
            items += answer["Items"]
            start = answer.get("LastEvaluatedKey")
            if start is None:
                break
        page = items[:limit]
        return JobPage(
            jobs=[Job.model_validate(_from_item(item)) for item in page],
            after=page[-1][LIST_KEY]["S"] if len(items) > limit else None,
        )

    def mark_running(
        self, job_id: str, provider_job_id: str | None, provider_urls: tuple[str, ...] = ()
    ) -> None:
        """Record the provider's id for the job (None for a synchronous provider), and its
        results if it answered them at once; only a queued job can start."""
        self._transition(
            job_id,
            allowed_from=(JobStatus.QUEUED,),
            to=JobStatus.RUNNING,
            values={"provider_job_id": provider_job_id, "provider_urls": list(provider_urls)},
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
