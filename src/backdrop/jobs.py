"""Job records in DynamoDB. Every status change is a conditional write, so a job
only moves forward (queued -> running -> succeeded | failed; canceled before it ends) and
retries are harmless.
The transitions (JobTransitions) are shared with the in-memory records of tests/fakes.py."""

from __future__ import annotations

import hashlib
import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from backdrop import aws
from backdrop.config import JobSettings
from backdrop.domain import (
    STACK_OWNER,
    Cost,
    Job,
    JobError,
    JobStatus,
    NewJob,
    ResultImage,
    Review,
    ReviewStatus,
    WebhookState,
)

# Listing: two global secondary indexes on the jobs table (template.yaml), each keeping
# every owner's jobs (domain.Owner) apart and in creation order, so what a key may list (its
# own jobs and the stack's) is one Query per owner, merged: never a scan, never a filter.
#   by-created: partitioned by owner (LIST_PARTITION), sorted by LIST_KEY.
#   by-status:  partitioned by status, sorted by LIST_KEY; one owner's jobs are one
#               contiguous range of it, as LIST_KEY starts with the owner.
# LIST_KEY is "<owner>#<position>", a position being the creation time and the job id
# (`position`). Neither attribute changes after create, so no transition maintains them
# (by-status follows `status`, which every transition sets anyway). The two attributes'
# names are the indexes' keys in template.yaml: renaming one would rebuild its index.
# by-batch: partitioned by batch_id (only jobs a batch made have one), sorted by LIST_KEY:
#            a batch's jobs, in creation order (GET /v1/generations?batch_id=).
# by-review: partitioned by REVIEW_STATUS (only jobs held for review have one, so the index
#            holds nothing under ReviewMode=none), sorted by LIST_KEY: the review queue
#            (GET /v1/generations?review=pending), oldest first. Every decision sets it.
BY_CREATED_INDEX = "by-created"
BY_STATUS_INDEX = "by-status"
BY_BATCH_INDEX = "by-batch"
BY_REVIEW_INDEX = "by-review"
REVIEW_STATUS = "review_status"
# A published key's claim (claim_published): an item of the jobs table under an id no job
# has, with none of the indexes' keys, so no listing ever reads it.
_CLAIM = "published#"
LIST_PARTITION = "kind"
LIST_KEY = "created_key"
# Fixed width (always microseconds, always UTC), so text order is time order; the id
# breaks ties and makes every position unique, so a position is an exact place in any
# listing, whichever owners' jobs it merges.
POSITION_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z#[0-9a-f]{32}$"


def position(created_at: datetime, job_id: str) -> str:
    return f"{created_at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{job_id}"


@dataclass(frozen=True)
class JobPage:
    """Jobs newest first, and the position to continue after (None on the last page)."""

    jobs: list[Job]
    after: str | None


class AllowanceRefused(Exception):
    """A job was not created: what it was charged against (`also[index]`) had no room."""

    def __init__(self, index: int) -> None:
        super().__init__(f"charge {index} refused")
        self.index = index


class JobNotFound(Exception):
    """No job has this id (or none the one asking may read: the same answer)."""


class JobConflict(Exception):
    """The job is not in a state that allows this change (e.g. already finished)."""


class DecisionChanged(Exception):
    """Another decision was recorded on the job's review since it was read."""


class KeyTaken(Exception):
    """A published key holds another product's image (claim_published): `job_id` names
    its job, or is None when it is another owner's."""

    def __init__(self, key: str, job_id: str | None) -> None:
        holder = f"generation {job_id}" if job_id else "another API key's generation"
        super().__init__(f"{key} holds the image of {holder}")
        self.key = key
        self.job_id = job_id


# Writes that go in the same transaction as a job's (a batch's review counts:
# batches/store.review_moved): DynamoDB TransactWriteItems entries.
Also = Sequence[dict[str, Any]]


def new_job_id() -> str:
    return uuid.uuid4().hex


def source_job_id(bucket: str, key: str, version: str) -> str:
    """The id of the job for one version of one object: the same notification delivered
    twice gives the same id, so it can only ever start one execution."""
    identity = "\n".join((bucket, key, version)).encode()
    return hashlib.sha256(identity).hexdigest()[:32]


def _now() -> datetime:
    return datetime.now(UTC)


class JobTransitions(ABC):
    """How a job's record changes, wherever it is kept: each status change is conditional
    on the status it finds (`_set_status_if`), and repeating one is harmless."""

    def __init__(self, *, ttl: timedelta) -> None:
        self._ttl = ttl

    @abstractmethod
    def get(self, job_id: str) -> Job:
        """The job; JobNotFound for an unknown id."""

    @abstractmethod
    def _set_status_if(
        self,
        job_id: str,
        allowed_from: tuple[JobStatus, ...],
        values: dict[str, Any],
        also: Also = (),
    ) -> bool:
        """Set `values` (JSON values by field) on the job if its status is one of
        `allowed_from`, with the writes `also` in the same transaction; False, writing
        nothing, if it is not or no job has this id."""

    def _queued(self, new: NewJob) -> Job:
        """The record a new job starts with."""
        now = _now()
        planned = {f.name: getattr(new, f.name) for f in fields(new)}
        return Job(
            **planned,
            webhook=WebhookState() if new.webhook_url else None,
            status=JobStatus.QUEUED,
            created_at=now,
            updated_at=now,
            expires_at=int((now + self._ttl).timestamp()),
        )

    def get_for(self, job_id: str, reader: str) -> Job:
        """The job, if `reader` (an owner) may read it (Job.readable_by); JobNotFound
        otherwise, exactly as for an id no job has."""
        job = self.get(job_id)
        if not job.readable_by(reader):
            raise JobNotFound(job_id)
        return job

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

    def mark_succeeded(
        self,
        job_id: str,
        results: list[ResultImage],
        review: Review | None = None,
        source_thumbnail: str | None = None,
        also: Also = (),
        cost: Cost | None = None,
    ) -> None:
        """Running to succeeded, held for review when `review` is given (review.on_success),
        with the photo's preview if one was made, what its images cost, and `also` (its
        batch's review count) in the same transaction: a retry that finds it done writes
        nothing again."""
        values: dict[str, Any] = {"results": [r.model_dump(mode="json") for r in results]}
        if cost is not None:
            values["cost"] = cost.model_dump(mode="json")
        if source_thumbnail is not None:
            values["source_thumbnail_key"] = source_thumbnail
        if review is not None:
            values |= {"review": review.model_dump(mode="json"), REVIEW_STATUS: review.status}
        self._transition(
            job_id,
            allowed_from=(JobStatus.RUNNING,),
            to=JobStatus.SUCCEEDED,
            values=values,
            also=also,
        )

    def record_review(
        self,
        job_id: str,
        expected: int,
        review: Review,
        child: str | None = None,
        also: Also = (),
    ) -> None:
        """Record a decision on a succeeded job's review (and the regeneration it started,
        `child`; and `also`, its batch's counts, in the same transaction), if the review
        still holds `expected` decisions (review.version): of two reviewers deciding at
        once, one wins and the other gets DecisionChanged."""
        dumped = review.model_dump(mode="json")
        if not self._set_review_if(job_id, expected, dumped, child, also):
            self.get(job_id)  # raises JobNotFound for an unknown id
            raise DecisionChanged(job_id)

    @abstractmethod
    def _set_review_if(
        self, job_id: str, expected: int, review: dict[str, Any], child: str | None, also: Also
    ) -> bool:
        """Set the job's review (and add `child` to its children) if it is succeeded and
        its review holds `expected` decisions; False, writing nothing, otherwise."""

    def mark_failed(self, job_id: str, error: JobError) -> Job:
        """Fail a job that has not finished. Failing a failed job again changes nothing,
        nor does failing a canceled one (its workflow, stopped, may still be finishing a
        task); a succeeded job stays succeeded (JobConflict)."""
        try:
            self._transition(
                job_id,
                allowed_from=(JobStatus.QUEUED, JobStatus.RUNNING),
                to=JobStatus.FAILED,
                values={"error": error.model_dump(mode="json")},
            )
        except JobConflict:
            job = self.get(job_id)
            if job.status not in (JobStatus.FAILED, JobStatus.CANCELED):
                raise
            return job
        return self.get(job_id)

    def mark_canceled(self, job_id: str, reason: JobError) -> Job:
        """Cancel a job that has not finished (JobConflict otherwise). Once canceled, no
        task's later write (running, succeeded, failed) can change it."""
        self._transition(
            job_id,
            allowed_from=(JobStatus.QUEUED, JobStatus.RUNNING),
            to=JobStatus.CANCELED,
            values={"error": reason.model_dump(mode="json")},
        )
        return self.get(job_id)

    def _transition(
        self,
        job_id: str,
        *,
        allowed_from: tuple[JobStatus, ...],
        to: JobStatus,
        values: dict[str, Any],
        also: Also = (),
    ) -> None:
        values = {**values, "status": to.value, "updated_at": _now().isoformat()}
        if self._set_status_if(job_id, allowed_from, values, also):
            return
        current = self.get(job_id)  # raises JobNotFound for an unknown id
        if current.status is to and _matches(current, values):
            return  # the same change again: a retried task, nothing to do
        raise JobConflict(f"job {job_id} is {current.status.value}, cannot become {to.value}")


class JobStore(JobTransitions):
    """The job records in DynamoDB, one item per job, listed by the indexes above."""

    def __init__(self, settings: JobSettings) -> None:
        super().__init__(ttl=timedelta(days=settings.job_ttl_days))
        self._table_name = settings.jobs_table

    @property
    def table_name(self) -> str:
        return self._table_name

    def create(self, new: NewJob, also: Also = ()) -> tuple[Job, bool]:
        """Record a queued job. Returns the job and whether this call created it; a job
        that already exists is returned as it is (the caller is a redelivery). With `also`
        (what it is charged against: a daily allowance, a batch's budget), the job is
        recorded only if every one of them is written too, in the same transaction:
        AllowanceRefused names the first whose condition failed."""
        job = self._queued(new)
        job_id = job.id
        listing = {
            LIST_PARTITION: new.owner,
            LIST_KEY: f"{new.owner}#{position(job.created_at, job_id)}",
        }
        put = {
            "TableName": self._table_name,
            "Item": to_item(job.model_dump(mode="json", exclude_none=True) | listing),
            "ConditionExpression": "attribute_not_exists(id)",
        }
        dynamodb = aws.client("dynamodb")
        try:
            if not also:
                dynamodb.put_item(**put)
            else:
                dynamodb.transact_write_items(TransactItems=[{"Put": put}, *also])
        except dynamodb.exceptions.TransactionCanceledException as exc:
            codes = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if codes and codes[0] == "ConditionalCheckFailed":
                return self.get(job_id), False
            if "ConditionalCheckFailed" in codes:
                raise AllowanceRefused(codes.index("ConditionalCheckFailed") - 1) from None
            raise
        except ClientError as exc:
            if is_condition_failure(exc):
                return self.get(job_id), False
            raise
        return job, True

    def get(self, job_id: str) -> Job:
        answer = aws.client("dynamodb").get_item(
            TableName=self._table_name, Key={"id": {"S": job_id}}, ConsistentRead=True
        )
        if "Item" not in answer:
            raise JobNotFound(job_id)
        return Job.model_validate(from_item(answer["Item"]))

    def created_between(
        self, owner: str, start: datetime, end: datetime, *, batch_id: str | None = None
    ) -> Iterator[Job]:
        """An owner's jobs created in [start, end) (of one batch, if given), oldest first:
        one Query on the index keyed by exactly that, read to its end."""
        index, partition = (
            (BY_CREATED_INDEX, (LIST_PARTITION, owner))
            if batch_id is None
            else (BY_BATCH_INDEX, ("batch_id", batch_id))
        )
        low = f"{owner}#{start.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}"
        high = f"{owner}#{end.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}"
        query: dict[str, Any] = {
            "TableName": self._table_name,
            "IndexName": index,
            "KeyConditionExpression": "#p = :p AND #k BETWEEN :low AND :high",
            "ExpressionAttributeNames": {"#p": partition[0], "#k": LIST_KEY},
            "ExpressionAttributeValues": {
                ":p": {"S": partition[1]},
                ":low": {"S": low},
                ":high": {"S": high},
            },
        }
        pages = aws.client("dynamodb").get_paginator("query").paginate(**query)
        for page in pages:
            for item in page["Items"]:
                if item[LIST_KEY]["S"] < high:  # BETWEEN includes its end: [start, end)
                    yield Job.model_validate(from_item(item))

    def get_many(self, job_ids: list[str]) -> dict[str, Job]:
        """The jobs of these ids that exist, by id (a batch's report)."""
        found: dict[str, Job] = {}
        unique = list(dict.fromkeys(job_ids))
        for start in range(0, len(unique), 100):  # BatchGetItem takes 100 keys at a time
            keys: list[dict[str, Any]] = [
                {"id": {"S": job_id}} for job_id in unique[start : start + 100]
            ]
            while keys:
                answer = aws.client("dynamodb").batch_get_item(
                    RequestItems={self._table_name: {"Keys": keys, "ConsistentRead": True}}
                )
                for item in answer["Responses"].get(self._table_name, []):
                    job = Job.model_validate(from_item(item))
                    found[job.id] = job
                keys = answer.get("UnprocessedKeys", {}).get(self._table_name, {}).get("Keys", [])
        return found

    def list_page(
        self,
        *,
        reader: str,
        status: JobStatus | None,
        limit: int,
        after: str | None,
        batch_id: str | None = None,
        review: ReviewStatus | None = None,
    ) -> JobPage:
        """Up to `limit` of the jobs `reader` may read (its own and the stack's) newest
        first, optionally of one status, created before the position `after` (a `position`
        from a previous page). Each owner's are read on an index keyed by exactly what is
        asked, up to one more than the page, and merged: the newest `limit` of the two reads
        are the newest `limit` of all, with no filter to leave a page short; the one more
        tells whether another page exists, so the last never hands out a cursor to an empty
        one. A position is a place in the merged order as much as in each owner's, so the
        cursor needs no more. With `batch_id`, only that batch's jobs (the caller checks that
        `reader` may read the batch; its jobs are the stack's). With `review`, only jobs in
        that review status, oldest first (the review queue): `after` then reads on later."""
        found: list[tuple[str, dict[str, Any]]] = []
        for owner in sorted({reader, STACK_OWNER}):
            found += self._newest(
                owner,
                status=status,
                count=limit + 1,
                after=after,
                batch_id=batch_id,
                review=review,
            )
        found.sort(key=lambda pair: pair[0], reverse=review is None)
        page = found[:limit]
        return JobPage(
            jobs=[Job.model_validate(from_item(item)) for _, item in page],
            after=page[-1][0] if len(found) > limit else None,
        )

    def _newest(
        self,
        owner: str,
        *,
        status: JobStatus | None,
        count: int,
        after: str | None,
        batch_id: str | None = None,
        review: ReviewStatus | None = None,
    ) -> list[tuple[str, dict[str, Any]]]:
        """Up to `count` of one owner's jobs newest first (of one status, of one batch, in
        one review status, if given), created before `after`, each with its position; with
        `review`, oldest first, created after `after`."""
        prefix = f"{owner}#"
        bound = None if after is None else prefix + after
        oldest_first = review is not None
        # by-status, by-batch and by-review partitions hold every owner's jobs, so the key
        # condition names this owner's range ("<owner>#" up to "<owner>$", '$' following
        # '#'). BETWEEN includes its ends, `after` itself, which is skipped below: at most
        # one item more is read.
        if bound is None:
            ranged = "begins_with(#k, :prefix)"
        elif oldest_first:
            ranged = "#k BETWEEN :bound AND :end"
        else:
            ranged = "#k BETWEEN :prefix AND :bound"
        within: str | None = ranged
        filters: dict[str, str] = {}
        if batch_id is not None:
            # by-batch: one batch's jobs; a status is a filter (a page may take more reads).
            index, partition = BY_BATCH_INDEX, ("batch_id", batch_id)
            if status is not None:
                filters["status"] = status.value
            if review is not None:
                filters[REVIEW_STATUS] = review
        elif review is not None:
            index, partition = BY_REVIEW_INDEX, (REVIEW_STATUS, review)
            if status is not None:
                filters["status"] = status.value
        elif status is None:
            # by-created: the partition is this owner's alone, in creation order.
            index, partition = BY_CREATED_INDEX, (LIST_PARTITION, owner)
            within = None if bound is None else "#k < :bound"
        else:
            index, partition = BY_STATUS_INDEX, ("status", status.value)
        condition = "#p = :p" if within is None else f"#p = :p AND {within}"
        names = {"#p": partition[0]} | ({"#k": LIST_KEY} if within else {})
        given = {":p": partition[1], ":prefix": prefix, ":bound": bound, ":end": f"{owner}$"}
        values = {k: {"S": v} for k, v in given.items() if v is not None and k in condition}
        status_filter: dict[str, Any] = {}
        if filters:
            status_filter["FilterExpression"] = " AND ".join(
                f"#f{i} = :f{i}" for i in range(len(filters))
            )
            names |= {f"#f{i}": name for i, name in enumerate(filters)}
            values |= {f":f{i}": {"S": value} for i, value in enumerate(filters.values())}
        ranged_partition = status is not None or batch_id is not None or review is not None
        spare = 1 if ranged_partition and bound is not None else 0
        found: list[tuple[str, dict[str, Any]]] = []
        start: dict[str, Any] | None = None
        # Query may stop early (1 MB, or the one item skipped): read on until enough.
        while len(found) < count:
            answer = aws.client("dynamodb").query(
                TableName=self._table_name,
                IndexName=index,
                KeyConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ScanIndexForward=oldest_first,
                Limit=count - len(found) + spare,
                **({"ExclusiveStartKey": start} if start else {}),
                **status_filter,
            )
            found += [
                (item[LIST_KEY]["S"].removeprefix(prefix), item)
                for item in answer["Items"]
                if item[LIST_KEY]["S"] != bound
            ]
            start = answer.get("LastEvaluatedKey")
            if start is None:
                break
        return found[:count]

    def claim_published(self, key: str, job: Job) -> bool:
        """Take the published key `key` for `job` (whose image goes there now). Refused
        (KeyTaken) where publishing would overwrite another owner's image, or another
        product's of the same batch; a product's later job, or the same owner's job outside
        that batch (a SKU photographed again), takes it over. True if no claim was there (the
        caller gives it up again if it then publishes nothing). A claim lives beside the jobs
        under an id no job can have."""
        condition = "attribute_not_exists(id) OR (#owner = :owner"
        names = {"#owner": "owner"}
        values = {":owner": {"S": job.owner}}
        if job.batch_id is not None:
            condition += " AND (#lineage = :lineage OR NOT (#batch = :batch))"
            names |= {"#lineage": "lineage", "#batch": "batch_id"}
            values |= {":lineage": {"S": job.lineage}, ":batch": {"S": job.batch_id}}
        claim = {"id": f"{_CLAIM}{key}", "owner": job.owner, "lineage": job.lineage}
        claim |= {"job_id": job.id} | ({"batch_id": job.batch_id} if job.batch_id else {})
        try:
            answer = aws.client("dynamodb").put_item(
                TableName=self._table_name,
                Item=to_item(claim),
                ConditionExpression=condition + ")",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            held = self._claim(key) or {}
            same_owner = held.get("owner") == job.owner
            raise KeyTaken(key, str(held.get("job_id")) if same_owner else None) from None
        return not answer.get("Attributes")

    def published_by(self, key: str) -> str | None:
        """The job whose image the published key `key` holds, as its claim says."""
        held = self._claim(key)
        return None if held is None else str(held["job_id"])

    def _claim(self, key: str) -> dict[str, Any] | None:
        answer = aws.client("dynamodb").get_item(
            TableName=self._table_name, Key={"id": {"S": f"{_CLAIM}{key}"}}, ConsistentRead=True
        )
        return from_item(answer["Item"]) if "Item" in answer else None

    def release_published(self, key: str, job: Job) -> bool:
        """Give up `key` if the image there is `job`'s (not a later job's of the same
        product): True if it was, and the caller removes it."""
        try:
            aws.client("dynamodb").delete_item(
                TableName=self._table_name,
                Key={"id": {"S": f"{_CLAIM}{key}"}},
                ConditionExpression="#job = :job",
                ExpressionAttributeNames={"#job": "job_id"},
                ExpressionAttributeValues={":job": {"S": job.id}},
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            return False
        return True

    def mark_submitting(self, job_id: str) -> bool:
        """Record that a paid submit is about to be sent. False if one already was, and its
        outcome was never recorded (a crash between the provider's answer and the record):
        the caller must not send another."""
        return self._set_if(
            job_id,
            "SET #s = :now",
            "attribute_exists(id) AND #status = :queued AND attribute_not_exists(#s)",
            names={"#s": "submitting_since", "#status": "status"},
            values={":now": {"S": _now().isoformat()}, ":queued": {"S": JobStatus.QUEUED.value}},
        )

    def clear_submitting(self, job_id: str) -> None:
        """The provider surely did not take the submit (it refused it, or it never left):
        another may be sent."""
        aws.client("dynamodb").update_item(
            TableName=self._table_name,
            Key={"id": {"S": job_id}},
            UpdateExpression="REMOVE #s",
            ExpressionAttributeNames={"#s": "submitting_since"},
        )

    def record_webhook(self, job_id: str, state: WebhookState) -> None:
        """Record how the job's own webhook went. Once delivered it stays so; otherwise a
        state from fewer attempts than the one recorded is stale (a repeated announcement
        runs a second chain of attempts) and is dropped."""
        self._set_if(
            job_id,
            "SET #w = :w",
            # Delivered is final; otherwise the state of the most attempts wins.
            "attribute_exists(id) AND (attribute_not_exists(#w.#s) OR #w.#s <> :delivered)"
            " AND (attribute_not_exists(#w.#a) OR #w.#a <= :n OR :new = :delivered)",
            names={"#w": "webhook", "#a": "attempts", "#s": "status"},
            values={
                ":w": to_attr(state.model_dump(mode="json")),
                ":n": {"N": str(state.attempts)},
                ":new": {"S": state.status},
                ":delivered": {"S": "delivered"},
            },
        )

    def _set_if(
        self,
        job_id: str,
        update: str,
        condition: str,
        *,
        names: dict[str, str],
        values: dict[str, Any],
    ) -> bool:
        """One conditional update; False (nothing written) when the condition fails."""
        try:
            aws.client("dynamodb").update_item(
                TableName=self._table_name,
                Key={"id": {"S": job_id}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def _set_review_if(
        self, job_id: str, expected: int, review: dict[str, Any], child: str | None, also: Also
    ) -> bool:
        update = "SET #review = :review, #review_status = :review_status, #updated_at = :at"
        names = {"#review_status": REVIEW_STATUS}
        values: dict[str, Any] = {":review_status": {"S": str(review["status"])}}
        if child is not None:
            update += ", #children = list_append(if_not_exists(#children, :none), :child)"
            names["#children"] = "children"
            values |= {":none": {"L": []}, ":child": {"L": [{"S": child}]}}
        return self._update_if(
            {
                "TableName": self._table_name,
                "Key": {"id": {"S": job_id}},
                "UpdateExpression": update,
                # A job never held for review has no history to count: it never matches.
                "ConditionExpression": (
                    "#status = :succeeded AND attribute_exists(#review.#history)"
                    " AND size(#review.#history) = :expected"
                ),
                "ExpressionAttributeNames": {
                    "#status": "status",
                    "#review": "review",
                    "#history": "history",
                    "#updated_at": "updated_at",
                    **names,
                },
                "ExpressionAttributeValues": {
                    ":succeeded": {"S": JobStatus.SUCCEEDED.value},
                    ":expected": {"N": str(expected)},
                    ":review": to_attr(review),
                    ":at": {"S": _now().isoformat()},
                    **values,
                },
            },
            also,
        )

    def _set_status_if(
        self,
        job_id: str,
        allowed_from: tuple[JobStatus, ...],
        values: dict[str, Any],
        also: Also = (),
    ) -> bool:
        names = {f"#{field}": field for field in values}
        placeholders = {f":{field}": to_attr(value) for field, value in values.items()}
        allowed = {f":from{i}": {"S": status.value} for i, status in enumerate(allowed_from)}
        return self._update_if(
            {
                "TableName": self._table_name,
                "Key": {"id": {"S": job_id}},
                "UpdateExpression": "SET " + ", ".join(f"#{f} = :{f}" for f in values),
                "ConditionExpression": (
                    f"attribute_exists(id) AND #status IN ({', '.join(allowed)})"
                ),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {**placeholders, **allowed},
            },
            also,
        )

    @staticmethod
    def _update_if(update: dict[str, Any], also: Also) -> bool:
        """One conditional UpdateItem, or with `also` one transaction of it and them; False
        if the update's condition fails (then nothing is written)."""
        if also:
            return transact_if([{"Update": update}, *also])
        try:
            aws.client("dynamodb").update_item(**update)
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            return False
        return True


def transact_if(writes: list[dict[str, Any]]) -> bool:
    """One DynamoDB transaction whose first write holds its condition: False (nothing
    written) if that condition failed; any other cancellation is raised."""
    dynamodb = aws.client("dynamodb")
    try:
        dynamodb.transact_write_items(TransactItems=writes)
    except dynamodb.exceptions.TransactionCanceledException as exc:
        reasons = exc.response.get("CancellationReasons", [])
        if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
            return False
        raise
    return True


# What a transition repeated by a retried task may find changed since: a review decided in
# between is not a different outcome of the task.
_NOT_COMPARED = ("updated_at", "status", "review", REVIEW_STATUS)


def _matches(job: Job, values: dict[str, Any]) -> bool:
    dumped = job.model_dump(mode="json")
    return all(dumped.get(k) == v for k, v in values.items() if k not in _NOT_COMPARED)


def is_condition_failure(exc: ClientError) -> bool:
    return bool(exc.response["Error"]["Code"] == "ConditionalCheckFailedException")


_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_attr(value: Any) -> dict[str, Any]:
    # DynamoDB numbers are Decimals; a JSON round trip turns every float into one.
    exact = json.loads(json.dumps(value), parse_float=Decimal)
    return _serializer.serialize(exact)  # type: ignore[no-any-return]


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    return {key: to_attr(value) for key, value in data.items()}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    # Numbers come back as Decimal; pydantic turns them into the model's ints.
    return {key: _deserializer.deserialize(value) for key, value in item.items()}
