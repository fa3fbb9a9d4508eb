"""Starting a batch: check everything that can be checked before anything starts (the
options, the prefix or every row of the manifest), record the batch, hand the Map its
items, start the batch workflow (its execution named by the batch id). A retry is a new
batch over the failed items of a finished one."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from backdrop import aws, executions, storage
from backdrop.batches import manifest
from backdrop.batches.manifest import ManifestRow
from backdrop.batches.store import Batch, BatchSource, BatchStatus, BatchStore
from backdrop.config import BatchStartSettings
from backdrop.contracts.options import OptionLayer
from backdrop.domain import JobError, Problem, Refused
from backdrop.observability import logger
from backdrop.plan import Layer, check_options, check_upload_key, uploaded_size

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
RETRIED = frozenset({"failed", "canceled"})


class StartFailed(Exception):
    """The batch workflow could not be started; the batch is recorded as failed."""


def items_key(batch_id: str) -> str:
    return f"batches/{batch_id}/items.csv"


def start(
    batch_id: str,
    *,
    owner: str,
    prefix: str | None,
    manifest_key: str | None,
    options: dict[str, Any],
    metadata: dict[str, str],
    settings: BatchStartSettings,
    batches: BatchStore,
    max_images: int | None = None,
    max_cost_usd: float | None = None,
) -> Batch:
    """Refused for anything at fault (nothing is recorded then); StartFailed if the
    workflow could not be started. With a budget, items past it end not started."""
    defaults = Layer(options, lambda name: name)
    check_options((defaults,), settings)
    rows = check_source(prefix, manifest_key, defaults, settings)
    source = BatchSource(prefix=prefix, manifest_key=manifest_key)
    batch = batches.new(
        batch_id,
        owner=owner,
        source=source,
        options=OptionLayer.model_validate(options),
        metadata=metadata,
        max_images=max_images,
        max_cost_usd=max_cost_usd,
    )
    return _launch(batch, rows, settings=settings, batches=batches)


def check_source(
    prefix: str | None, manifest_key: str | None, defaults: Layer, settings: BatchStartSettings
) -> list[dict[str, str]] | None:
    """Refused unless the prefix holds images, or every row of the manifest can run; the
    manifest's rows as items.csv holds them (None for a prefix: the Map lists it)."""
    if prefix is not None:
        _check_prefix(prefix, settings)
        return None
    assert manifest_key is not None
    return _manifest_rows(manifest_key, defaults, settings)


def retry(
    failed: Batch,
    batch_id: str,
    *,
    settings: BatchStartSettings,
    batches: BatchStore,
    budget: tuple[int | None, float | None] | None = None,
) -> Batch:
    """A new batch over the items of `failed` that did not succeed (per its report): those
    whose jobs failed or were canceled, and those a cancel or its budget kept from
    starting. Its budget is `failed`'s unless `budget` (max images, max cost) is given; it
    counts afresh. Refused if there are none."""
    report = storage.read_object(settings.results_bucket, failed.report_key or "")
    chosen = [
        row
        for row in manifest.read_items_csv(report)
        if row["status"] in ("failed", "not_started") or row["job_status"] in RETRIED
    ]
    if not chosen:
        raise Refused(
            "nothing_to_retry",
            f"batch {failed.id} has no failed or unstarted items to retry",
            (Problem("id", "no item failed"),),
        )
    if failed.items_key is not None:
        source_rows = manifest.read_items_csv(
            storage.read_object(settings.results_bucket, failed.items_key)
        )
        rows = [source_rows[int(row["item"])] for row in chosen]
    else:
        rows = [
            {name: "" for name in manifest.ITEM_COLUMNS} | {"key": row["key"]} for row in chosen
        ]
    max_images, max_cost_usd = budget or (failed.max_images, failed.max_cost_usd)
    batch = batches.new(
        batch_id,
        owner=failed.owner,
        source=BatchSource(retry_of=failed.id),
        options=failed.options,
        metadata=failed.metadata,
        max_images=max_images,
        max_cost_usd=max_cost_usd,
    )
    return _launch(batch, rows, settings=settings, batches=batches)


def _launch(
    batch: Batch,
    rows: list[dict[str, str]] | None,
    *,
    settings: BatchStartSettings,
    batches: BatchStore,
) -> Batch:
    if rows is not None:
        key = items_key(batch.id)
        storage.put_bytes(settings.results_bucket, key, manifest.items_csv(rows), "text/csv")
        batch = batch.model_copy(update={"items_key": key, "total": len(rows)})
    batch, created = batches.create(batch)
    if not created:
        return batch
    workflow_input = {
        "batch_id": batch.id,
        "prefix": batch.source.prefix,
        "items_key": batch.items_key,
        "max_concurrency": settings.batch_max_concurrency,
        "error": None,  # a failed Map's, caught (batch.asl.json)
    }
    try:
        executions.start_once(settings.batch_state_machine_arn, batch.id, workflow_input)
    except ClientError as exc:
        logger.exception("the batch workflow could not be started", extra={"batch_id": batch.id})
        error = JobError(code="start_failed", message="the batch workflow could not be started")
        batches.finish(batch.id, status=BatchStatus.FAILED, counts={}, report_key=None, error=error)
        raise StartFailed(batch.id) from exc
    return batch


def _check_prefix(prefix: str, settings: BatchStartSettings) -> None:
    reason = manifest.folder_refusal(prefix)
    if reason is not None:
        raise Refused.field("prefix", reason)
    answer = aws.client("s3").list_objects_v2(
        Bucket=settings.input_bucket, Prefix=prefix, MaxKeys=1000
    )
    keys = [item["Key"] for item in answer.get("Contents", [])]
    if not keys:
        raise Refused.field("prefix", f"no objects under {prefix} in the input bucket")
    if not answer.get("IsTruncated") and not any(k.lower().endswith(IMAGE_SUFFIXES) for k in keys):
        raise Refused.field(
            "prefix",
            f"no images under {prefix} (none of its {len(keys)} objects is a "
            f"{', '.join(IMAGE_SUFFIXES)} file)",
        )


def _manifest_rows(key: str, defaults: Layer, settings: BatchStartSettings) -> list[dict[str, str]]:
    kind = key.rpartition(".")[2].lower()
    check_upload_key(key, "manifest_key")
    if kind not in manifest.MANIFEST_TYPES:
        raise Refused.field(
            "manifest_key",
            "a manifest is a CSV (.csv) or JSON Lines (.jsonl) file: upload it with "
            "POST /v1/uploads as text/csv or application/x-ndjson",
        )
    size = uploaded_size(key, "manifest_key", settings)
    if size > manifest.MAX_MANIFEST_BYTES:
        raise Refused(
            "invalid_manifest",
            f"the manifest is larger than {manifest.MAX_MANIFEST_BYTES // 2**20} MB",
            (Problem("manifest_key", "too large"),),
        )

    def check(row: ManifestRow) -> None:
        # Its problems are named by line where they are reported (read_manifest).
        check_options((Layer(row.options()), defaults), settings)

    data = storage.read_object(settings.input_bucket, key)
    rows = manifest.read_manifest(data, kind, check=check)
    return [row.cells(line) for line, row in rows]
