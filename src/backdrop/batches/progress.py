"""How far a batch has come: its counts (a prefix's total from its Map run, until the
batch knows it) and an estimate of the time left."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from backdrop import aws, executions
from backdrop.batches.store import Batch
from backdrop.config import BatchStartSettings


@dataclass(frozen=True)
class Progress:
    counts: dict[str, int | None]
    eta_seconds: int | None


def of(batch: Batch, settings: BatchStartSettings) -> Progress:
    listed = None
    if batch.total is None and not batch.finished:
        listed = _listed(batch.id, settings)
    counts = batch.counts(None if listed is None else max(listed - batch.ignored, 0))
    return Progress(counts, None if batch.finished else _eta(batch, counts["total"]))


def _eta(batch: Batch, total: int | None) -> int | None:
    """Time left at the pace so far (items settled per second since the start)."""
    done = batch.succeeded + batch.failed + batch.skipped
    if total is None or done == 0:
        return None
    elapsed = (datetime.now(UTC) - batch.started_at).total_seconds()
    return round(elapsed * max(total - done, 0) / done)


def _listed(batch_id: str, settings: BatchStartSettings) -> int | None:
    """How many objects the Map run has listed so far (a prefix's total, until the end)."""
    execution = executions.execution_arn(settings.batch_state_machine_arn, batch_id)
    sfn = aws.client("stepfunctions")
    try:
        runs = sfn.list_map_runs(executionArn=execution).get("mapRuns", [])
        if not runs:
            return None
        return int(sfn.describe_map_run(mapRunArn=runs[0]["mapRunArn"])["itemCounts"]["total"])
    except (ClientError, KeyError):
        return None
