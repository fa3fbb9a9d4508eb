"""Batches through the API function and the real batch ASL on moto's Distributed Map: each
item a job through the real generation workflow (Picsart faked by respx)."""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any

import boto3
import httpx
import pytest
import respx

from backdrop.jobs import source_job_id
from backdrop_local.cloud import REGION
from tests.conftest import image_bytes
from tests.integration.conftest import PICSART, Stack, done, submitted

PNG_PHOTO = image_bytes("PNG")


def _picsart(picsart: respx.MockRouter) -> respx.Route:
    picsart.get(f"{PICSART}/painting/inf-1").mock(return_value=done(1, "jpg"))
    return picsart.post(f"{PICSART}/painting/replace-background").mock(return_value=submitted())


def _put(stack: Stack, key: str, body: bytes = PNG_PHOTO, bucket: str | None = None) -> None:
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=bucket or stack.cloud.input_bucket, Key=key, Body=body
    )


def _start(stack: Stack, body: dict[str, Any], **kwargs: Any) -> tuple[int, dict[str, Any]]:
    status, answer, _ = stack.call("POST", "/v1/batches", body, **kwargs)
    return status, answer


def _wait(stack: Stack, batch_id: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, batch, _ = stack.call("GET", f"/v1/batches/{batch_id}")
        assert status == 200, batch
        if batch["status"] != "running":
            return batch
        time.sleep(0.2)
    raise AssertionError(f"batch {batch_id} still running: {batch}")


def _report(batch: dict[str, Any]) -> list[dict[str, str]]:
    text = httpx.get(batch["report_url"]).text if batch["report_url"].startswith("http://127") else None
    if text is None:
        s3 = boto3.client("s3", region_name=REGION)
        key = batch["report_url"].split("?")[0].split(".amazonaws.com/")[-1].split("/", 1)[-1]
        text = s3.get_object(Bucket=key.split("/")[0], Key=key)["Body"].read().decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_a_prefix_becomes_one_job_per_image_and_a_report(stack: Stack, picsart: respx.MockRouter) -> None:
    submit = _picsart(picsart)
    for name in ("a.png", "b.png", "c.png"):
        _put(stack, f"catalog/shoes/{name}")
    _put(stack, "catalog/shoes/notes.txt", b"not an image at all")

    status, batch = _start(stack, {"prefix": "catalog/shoes/", "prompt": "marble", "count": 1})

    assert status == 202, batch
    done_batch = _wait(stack, batch["id"])
    print(json.dumps(done_batch, indent=1))
    assert done_batch["status"] == "completed_with_failures"
    assert done_batch["counts"] == {"total": 4, "queued": 0, "running": 0, "succeeded": 3, "failed": 1, "skipped": 0}
    assert submit.call_count == 3
