"""Batches through `backdrop local`: the API, the batch workflow's Distributed Map on the
embedded AWS, every item a job through the emulated provider."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import httpx

from tests.conftest import image_bytes
from tests.e2e.conftest import Local


def _wait_for_batch(local: Local, batch_id: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = local.api.get(f"/v1/batches/{batch_id}").json()
        if batch["status"] != "running":
            return batch  # type: ignore[no-any-return]
        time.sleep(0.5)
    raise AssertionError(f"batch {batch_id} still running after {timeout}s: {batch}")


def test_forty_images_and_a_non_image_under_a_prefix_then_a_rerun_pays_nothing(
    local: Local,
) -> None:
    photo = image_bytes("PNG", (16, 12))
    for index in range(40):
        local.upload(f"catalog/e2e-batch/p{index:02d}.png", photo)
    local.upload("catalog/e2e-batch/readme.txt", b"not an image")
    before = local.stats()["picsart"]["submissions"]

    answer = local.api.post(
        "/v1/batches",
        json={"prefix": "catalog/e2e-batch/", "count": 1, "metadata": {"run": "e2e"}},
    )
    assert answer.status_code == 202, answer.text
    assert answer.headers["location"] == f"/v1/batches/{answer.json()['id']}"
    batch = _wait_for_batch(local, answer.json()["id"])

    assert batch["status"] == "completed_with_failures"
    assert batch["counts"] == {
        "total": 41, "queued": 0, "running": 0, "succeeded": 40, "failed": 1, "skipped": 0,
    }  # fmt: skip
    report = list(csv.DictReader(io.StringIO(httpx.get(batch["report_url"]).text)))
    assert len(report) == 41
    failed = [row for row in report if row["status"] == "failed"]
    assert [(r["key"], r["error_code"]) for r in failed] == [
        ("catalog/e2e-batch/readme.txt", "invalid_image")
    ]
    done = [row for row in report if row["status"] == "succeeded"]
    assert all(r["result_keys"].startswith(f"outbox/{r['key']}/") for r in done)
    # Every image paid for once; the non-image never reached the provider.
    assert local.stats()["picsart"]["submissions"] - before == 40

    # The same prefix again: every image already done is skipped, nothing is paid.
    again = local.api.post("/v1/batches", json={"prefix": "catalog/e2e-batch/", "count": 1})
    rerun = _wait_for_batch(local, again.json()["id"])
    assert rerun["counts"]["skipped"] == 40
    assert rerun["counts"]["succeeded"] == 0
    assert local.stats()["picsart"]["submissions"] - before == 40
    # Its jobs: only the non-image's new attempt; the first batch's are its forty and one.
    first = local.api.get("/v1/generations", params={"batch_id": batch["id"], "limit": 100})
    assert len(first.json()["items"]) == 41
    second = local.api.get("/v1/generations", params={"batch_id": rerun["id"]}).json()
    assert [job["request"]["image_key"] for job in second["items"]] == [
        "catalog/e2e-batch/readme.txt"
    ]
