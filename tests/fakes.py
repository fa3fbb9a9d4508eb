"""The stores of stores.py in memory, with the conditional writes of their DynamoDB
counterparts, for tests of the logic that run in milliseconds. Safe across threads, so a
test's threads can race as concurrent Lambdas race on DynamoDB."""

from __future__ import annotations

import copy
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from backdrop.domain import Job, JobStatus, NewJob, WebhookState
from backdrop.jobs import Also, JobNotFound, JobTransitions
from backdrop.stores import ANY, NO_ITEM, Bucket, Expected

if TYPE_CHECKING:
    from backdrop.stores import BucketStore, WorkflowJobs


class MemoryBuckets:
    """The rate governor's buckets in a dict (a BucketStore), each write conditional on the
    version read, as DynamoBuckets'."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, Bucket] = {}

    def read(self, provider: str) -> tuple[Bucket | None, Expected]:
        with self._lock:
            stored = self._buckets.get(provider)
            if stored is None:
                return None, NO_ITEM
            return _copy(stored), stored.version

    def write(self, provider: str, bucket: Bucket, expected: Expected) -> bool:
        with self._lock:
            stored = self._buckets.get(provider)
            if expected == NO_ITEM:
                fits = stored is None
            else:
                fits = expected == ANY or (stored is not None and stored.version == expected)
            if not fits:
                return False  # someone else wrote first
            self._buckets[provider] = replace(_copy(bucket), version=bucket.version + 1)
            return True

    def recent(self, provider: str) -> list[float]:
        with self._lock:
            stored = self._buckets.get(provider)
            return [] if stored is None else list(stored.recent)


def _copy(bucket: Bucket) -> Bucket:
    return replace(bucket, recent=list(bucket.recent))


class MemoryJobs(JobTransitions):
    """Job records in a dict, kept as JobStore keeps them (their JSON), with its
    transitions and conditions. Not the listing (JobStore.list_page): only the API lists."""

    def __init__(self, *, ttl_days: int = 90) -> None:
        super().__init__(ttl=timedelta(days=ttl_days))
        self._lock = threading.Lock()
        self._records: dict[str, dict[str, Any]] = {}
        # The writes each transition carried along (a batch's counts), in order.
        self.written_with: list[dict[str, Any]] = []

    def create(self, new: NewJob) -> tuple[Job, bool]:
        """As JobStore.create: a job that exists already is returned as it is."""
        job = self._queued(new)
        with self._lock:
            if new.id in self._records:
                created = False
            else:
                self._records[new.id] = job.model_dump(mode="json", exclude_none=True)
                created = True
        return (job, True) if created else (self.get(new.id), False)

    def get(self, job_id: str) -> Job:
        with self._lock:
            record = copy.deepcopy(self._records.get(job_id))
        if record is None:
            raise JobNotFound(job_id)
        return Job.model_validate(record)

    def get_many(self, job_ids: list[str]) -> dict[str, Job]:
        with self._lock:
            records = [copy.deepcopy(self._records[i]) for i in job_ids if i in self._records]
        jobs = (Job.model_validate(record) for record in records)
        return {job.id: job for job in jobs}

    def mark_submitting(self, job_id: str) -> bool:
        """As JobStore.mark_submitting: only a queued job not marked already."""
        with self._lock:
            record = self._records.get(job_id)
            if (
                record is None
                or record.get("status") != JobStatus.QUEUED.value
                or "submitting_since" in record
            ):
                return False
            record["submitting_since"] = datetime.now(UTC).isoformat()
            return True

    def clear_submitting(self, job_id: str) -> None:
        """As JobStore.clear_submitting, an unconditional update: like DynamoDB's, it leaves
        a record of the id alone when there is none."""
        with self._lock:
            self._records.setdefault(job_id, {"id": job_id}).pop("submitting_since", None)

    def record_webhook(self, job_id: str, state: WebhookState) -> None:
        """As JobStore.record_webhook: delivered is final; otherwise the state of the most
        attempts wins."""
        with self._lock:
            record = self._records.get(job_id)
            if record is None:
                return
            current = record.get("webhook") or {}
            if current.get("status") == "delivered":
                return
            known = current.get("attempts")
            if known is not None and known > state.attempts and state.status != "delivered":
                return
            record["webhook"] = state.model_dump(mode="json")

    def _set_review_if(
        self, job_id: str, expected: int, review: dict[str, Any], child: str | None, also: Also
    ) -> bool:
        """As JobStore's: only a succeeded job whose review holds `expected` decisions."""
        with self._lock:
            record = self._records.get(job_id)
            held = (record or {}).get("review")
            if (
                record is None
                or record.get("status") != JobStatus.SUCCEEDED.value
                or held is None
                or len(held.get("history", [])) != expected
            ):
                return False
            record["review"] = copy.deepcopy(review)
            if child is not None:
                record["children"] = [*record.get("children", []), child]
            record["updated_at"] = datetime.now(UTC).isoformat()
            self.written_with += also
            return True

    def _set_status_if(
        self,
        job_id: str,
        allowed_from: tuple[JobStatus, ...],
        values: dict[str, Any],
        also: Also = (),
    ) -> bool:
        with self._lock:
            record = self._records.get(job_id)
            if record is None or record.get("status") not in {s.value for s in allowed_from}:
                return False
            record.update(copy.deepcopy(values))
            self.written_with += also
            return True


if TYPE_CHECKING:  # mypy holds the fakes to the Protocols the logic takes
    _fakes: tuple[BucketStore, WorkflowJobs] = (MemoryBuckets(), MemoryJobs())
