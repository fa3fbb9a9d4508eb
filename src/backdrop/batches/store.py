"""Batch records in DynamoDB: one record per batch (its request, status and live counts) and
one per item (the job it became, or why none), in one table keyed by batch id and a sort
key. Counts move in the same transaction as the item record they describe, so a retried
task never counts an item twice."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, Field

from backdrop import aws
from backdrop.config import BatchSettings
from backdrop.contracts.options import OptionLayer
from backdrop.domain import Cost, JobError
from backdrop.jobs import (
    LIST_KEY,
    from_item,
    is_condition_failure,
    position,
    to_attr,
    to_item,
    transact_if,
)

BATCH_SORT = "batch"
ITEM_SORT_PREFIX = "item#"
BY_OWNER_INDEX = "by-owner"  # batch records only: partition owner, sort LIST_KEY
MAX_ITEM_INDEX = 10**8  # sort keys hold the index in 8 digits


class BatchStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    COMPLETED_WITH_FAILURES = "completed_with_failures"
    CANCELED = "canceled"
    FAILED = "failed"


# What became of one item. `running`: its job was started by this batch (and is settled to
# `succeeded` or `failed` when it ends); `skipped`: a job for the same image already
# succeeded or is under way; `failed`: its job ended failed, or was refused before any
# provider call; `not_started`: the batch was canceled first; `ignored`: not an image at all
# (a folder marker).
ItemOutcome = Literal["running", "succeeded", "failed", "skipped", "not_started", "ignored"]


class BatchNotFound(Exception):
    """No batch has this id (or none the one asking may read: the same answer)."""


class BatchConflict(Exception):
    """The batch is not in a state that allows this (it has finished)."""


class BatchSource(BaseModel):
    """What the batch runs over: objects under a prefix of the input bucket, or the rows of
    a manifest (a retry's manifest is its source batch's failed rows)."""

    prefix: str | None = None
    manifest_key: str | None = None
    retry_of: str | None = None


class Batch(BaseModel):
    id: str
    owner: str
    status: BatchStatus = BatchStatus.RUNNING
    source: BatchSource
    # The item list the Map reads for a manifest or a retry (CSV, manifest.py); None for a
    # prefix, whose objects the Map lists itself.
    items_key: str | None = None
    options: OptionLayer = Field(default_factory=OptionLayer)  # every item's, unless its row sets
    metadata: dict[str, str] = Field(default_factory=dict)
    total: int | None = None  # known up front for a manifest; counted at the end otherwise
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    not_started: int = 0
    ignored: int = 0
    cancel_requested: bool = False
    # Its jobs (and their regenerations) by review status (ReviewMode=required), moved in
    # the same transaction as each job's (review_moved).
    review_pending: int = 0
    review_approved: int = 0
    review_rejected: int = 0
    review_superseded: int = 0
    # Its budget, if it has one (items past it end not_started, budget_reached), and what
    # the jobs it started were charged against it: images asked for, their estimated cost.
    max_images: int | None = None
    max_cost_usd: float | None = None
    images_started: int = 0
    estimated_usd_started: float = 0.0
    # What the images its jobs made cost (summed when it finishes).
    cost: Cost | None = None
    started_at: datetime
    finished_at: datetime | None = None
    report_key: str | None = None
    error: JobError | None = None
    expires_at: int

    @property
    def finished(self) -> bool:
        return self.status is not BatchStatus.RUNNING

    @property
    def done(self) -> int:
        """Items settled for good: their job ended, or there is none to wait for."""
        return self.succeeded + self.failed + self.skipped + self.not_started

    def counts(self, total: int | None = None) -> dict[str, int | None]:
        """The counts callers see: every item is queued (not reached, or never started),
        running, succeeded, failed or skipped. `total` stands in for a total not known yet."""
        total = self.total if self.total is not None else total
        settled = self.running + self.succeeded + self.failed + self.skipped
        return {
            "total": total,
            "queued": None if total is None else max(total - settled, 0),
            "running": self.running,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "skipped": self.skipped,
        }


class BatchItem(BaseModel):
    """One item as the batch recorded it. `index` is its place in the Map (a manifest's
    line is in `line`)."""

    batch_id: str
    index: int = Field(ge=0, lt=MAX_ITEM_INDEX)
    outcome: ItemOutcome
    job_id: str | None = None
    key: str | None = None
    image_url: str | None = None
    line: int | None = None
    error: JobError | None = None


class BatchPage(BaseModel):
    batches: list[Batch]
    after: str | None


def _now() -> datetime:
    return datetime.now(UTC)


def _item_sort(index: int) -> str:
    return f"{ITEM_SORT_PREFIX}{index:08d}"


def review_moved(
    table: str, batch_id: str | None, before: str | None, after: str | None
) -> list[dict[str, Any]]:
    """The write that moves one job of `batch_id` from review status `before` to `after`
    in its batch's counts (none outside a batch, or where nothing moves): for the same
    transaction as the job's own write (jobs.py's `also`), so a retry never counts twice."""
    if batch_id is None or before == after:
        return []
    moves = {status: step for status, step in ((before, -1), (after, 1)) if status is not None}
    names = {f"#c{i}": f"review_{status}" for i, status in enumerate(moves)}
    values = {f":c{i}": {"N": str(step)} for i, step in enumerate(moves.values())}
    return [
        {
            "Update": {
                "TableName": table,
                "Key": _key(batch_id, BATCH_SORT),
                "UpdateExpression": "ADD "
                + ", ".join(f"{n} {v}" for n, v in zip(names, values, strict=True)),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }
    ]


class BatchStore:
    def __init__(self, settings: BatchSettings) -> None:
        self._table = settings.batches_table
        self._ttl = timedelta(days=settings.job_ttl_days)

    def new(self, batch_id: str, *, owner: str, **fields: Any) -> Batch:
        now = _now()
        expires = int((now + self._ttl).timestamp())
        return Batch(id=batch_id, owner=owner, started_at=now, expires_at=expires, **fields)

    def create(self, batch: Batch) -> tuple[Batch, bool]:
        """Record a new batch; an existing one (a retried request) is returned as it is."""
        listing = {"owner": batch.owner, LIST_KEY: position(batch.started_at, batch.id)}
        item = to_item(batch.model_dump(mode="json", exclude_none=True) | listing)
        try:
            aws.client("dynamodb").put_item(
                TableName=self._table,
                Item={"pk": {"S": batch.id}, "sk": {"S": BATCH_SORT}} | item,
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            return self.get(batch.id), False
        return batch, True

    def get(self, batch_id: str) -> Batch:
        answer = aws.client("dynamodb").get_item(
            TableName=self._table, Key=_key(batch_id, BATCH_SORT), ConsistentRead=True
        )
        # Only counts (review_moved on a batch whose record has expired): no batch.
        if "Item" not in answer or "owner" not in answer["Item"]:
            raise BatchNotFound(batch_id)
        return Batch.model_validate(from_item(answer["Item"]))

    def get_for(self, batch_id: str, reader: str) -> Batch:
        """The batch, if `reader` (an owner) started it; BatchNotFound otherwise."""
        batch = self.get(batch_id)
        if batch.owner != reader:
            raise BatchNotFound(batch_id)
        return batch

    def list_page(self, *, reader: str, limit: int, after: str | None) -> BatchPage:
        """Up to `limit` of `reader`'s batches newest first, started before the position
        `after` (jobs.position, as generations' cursors name)."""
        condition = "#o = :o" + ("" if after is None else " AND #k < :after")
        values = {":o": {"S": reader}} | ({} if after is None else {":after": {"S": after}})
        found: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while len(found) <= limit:
            answer = aws.client("dynamodb").query(
                TableName=self._table,
                IndexName=BY_OWNER_INDEX,
                KeyConditionExpression=condition,
                ExpressionAttributeNames={"#o": "owner"}
                | ({} if after is None else {"#k": LIST_KEY}),
                ExpressionAttributeValues=values,
                ScanIndexForward=False,
                Limit=limit + 1 - len(found),
                **({"ExclusiveStartKey": start} if start else {}),
            )
            found += answer["Items"]
            start = answer.get("LastEvaluatedKey")
            if start is None:
                break
        page = found[:limit]
        return BatchPage(
            batches=[Batch.model_validate(from_item(item)) for item in page],
            after=page[-1][LIST_KEY]["S"] if len(found) > limit else None,
        )

    def started_between(self, owner: str, start: datetime, end: datetime) -> Iterator[Batch]:
        """An owner's batches started in [start, end), newest first."""
        pages = (
            aws.client("dynamodb")
            .get_paginator("query")
            .paginate(
                TableName=self._table,
                IndexName=BY_OWNER_INDEX,
                KeyConditionExpression="#o = :o AND #k BETWEEN :low AND :high",
                ExpressionAttributeNames={"#o": "owner", "#k": LIST_KEY},
                ExpressionAttributeValues={
                    ":o": {"S": owner},
                    ":low": {"S": position(start, "")},
                    ":high": {"S": position(end, "")},
                },
                ScanIndexForward=False,
            )
        )
        for page in pages:
            for item in page["Items"]:
                yield Batch.model_validate(from_item(item))

    def request_cancel(self, batch_id: str) -> Batch:
        """Ask a running batch to start no more items; BatchConflict if it has finished."""
        if not self._update(
            batch_id,
            "SET cancel_requested = :yes",
            "attribute_exists(pk) AND #status = :running",
            {":yes": {"BOOL": True}, ":running": {"S": BatchStatus.RUNNING.value}},
        ):
            self.get(batch_id)  # BatchNotFound for an unknown id
            raise BatchConflict(batch_id)
        return self.get(batch_id)

    def item(self, batch_id: str, index: int) -> BatchItem | None:
        answer = aws.client("dynamodb").get_item(
            TableName=self._table, Key=_key(batch_id, _item_sort(index)), ConsistentRead=True
        )
        return None if "Item" not in answer else BatchItem.model_validate(from_item(answer["Item"]))

    def record_item(self, item: BatchItem) -> bool:
        """Record what an item became and count it, at once; False (nothing written) if it
        was recorded before (a retried task)."""
        body = to_item(item.model_dump(mode="json", exclude_none=True))
        return transact_if(
            [
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": _key(item.batch_id, _item_sort(item.index)) | body,
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                self._count(item.batch_id, {item.outcome: 1}),
            ]
        )

    def settle_item(self, batch_id: str, index: int, outcome: ItemOutcome) -> bool:
        """A running item's job ended (`succeeded` or `failed`): move it, and its count,
        once; False if it was settled before."""
        return transact_if(
            [
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": _key(batch_id, _item_sort(index)),
                        "UpdateExpression": "SET #outcome = :to",
                        "ConditionExpression": "#outcome = :running",
                        "ExpressionAttributeNames": {"#outcome": "outcome"},
                        "ExpressionAttributeValues": {
                            ":to": {"S": outcome},
                            ":running": {"S": "running"},
                        },
                    }
                },
                self._count(batch_id, {"running": -1, outcome: 1}),
            ]
        )

    def items(self, batch_id: str) -> Iterator[BatchItem]:
        """Every item recorded, in Map order."""
        start: dict[str, Any] | None = None
        while True:
            answer = aws.client("dynamodb").query(
                TableName=self._table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :item)",
                ExpressionAttributeValues={
                    ":pk": {"S": batch_id},
                    ":item": {"S": ITEM_SORT_PREFIX},
                },
                **({"ExclusiveStartKey": start} if start else {}),
            )
            for record in answer["Items"]:
                yield BatchItem.model_validate(from_item(record))
            start = answer.get("LastEvaluatedKey")
            if start is None:
                return

    def finish(
        self,
        batch_id: str,
        *,
        status: BatchStatus,
        counts: dict[str, int],
        report_key: str | None,
        error: JobError | None,
        cost: Cost | None = None,
    ) -> Batch:
        """End a running batch with its final counts (and what its images cost); ending it
        again changes nothing."""
        values: dict[str, Any] = {
            ":status": {"S": status.value},
            ":running": {"S": BatchStatus.RUNNING.value},
            ":finished": {"S": _now().isoformat()},
            ":report": to_attr(report_key),
            ":error": to_attr(None if error is None else error.model_dump(mode="json")),
            ":cost": to_attr(None if cost is None else cost.model_dump(mode="json")),
        }
        sets = [
            "#status = :status",
            "finished_at = :finished",
            "report_key = :report",
            "#error = :error",
            "#cost = :cost",
        ]
        for name, value in counts.items():
            sets.append(f"#{name} = :n_{name}")
            values[f":n_{name}"] = {"N": str(value)}
        self._update(
            batch_id,
            "SET " + ", ".join(sets),
            "#status = :running",
            values,
            names={f"#{name}": name for name in counts} | {"#error": "error", "#cost": "cost"},
        )
        return self.get(batch_id)

    def charge(self, batch: Batch, images: int, usd: float) -> dict[str, Any]:
        """The transaction item that counts a new job's images and estimated cost against
        its batch (jobs.create's `also`), on condition that they fit the batch's budget."""
        conditions = ["attribute_exists(pk)"]
        values: dict[str, Any] = {":n": {"N": str(images)}, ":usd": {"N": _decimal(usd)}}
        if batch.max_images is not None:
            conditions.append("images_started <= :images_room")
            values[":images_room"] = {"N": str(batch.max_images - images)}
        if batch.max_cost_usd is not None:
            conditions.append("estimated_usd_started <= :usd_room")
            values[":usd_room"] = {"N": _decimal(batch.max_cost_usd - usd)}
        return {
            "Update": {
                "TableName": self._table,
                "Key": _key(batch.id, BATCH_SORT),
                "UpdateExpression": "ADD images_started :n, estimated_usd_started :usd",
                "ConditionExpression": " AND ".join(conditions),
                "ExpressionAttributeValues": values,
            }
        }

    def _count(self, batch_id: str, changes: dict[str, int]) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self._table,
                "Key": _key(batch_id, BATCH_SORT),
                "UpdateExpression": "ADD " + ", ".join(f"#{name} :{name}" for name in changes),
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeNames": {f"#{name}": name for name in changes},
                "ExpressionAttributeValues": {f":{n}": {"N": str(v)} for n, v in changes.items()},
            }
        }

    def _update(
        self,
        batch_id: str,
        update: str,
        condition: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
    ) -> bool:
        try:
            aws.client("dynamodb").update_item(
                TableName=self._table,
                Key=_key(batch_id, BATCH_SORT),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status"} | (names or {}),
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            return False
        return True


def _decimal(value: float) -> str:
    return f"{value:.6f}"  # dollars to the millionth, never in exponent form


def _key(batch_id: str, sort: str) -> dict[str, Any]:
    return {"pk": {"S": batch_id}, "sk": {"S": sort}}
