"""Review before publish through `backdrop local` with ReviewMode=required, by the API: a
batch ends with every job pending review; approving each publishes its image under
published/ with its event; a regeneration makes a linked job that supersedes its parent.
(tests/browser/test_console_e2e.py approves a 20-image batch through the console.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import image_bytes
from tests.e2e.conftest import Local, running_local

PREFIX = "catalog/review/"
IMAGES = 8


@pytest.fixture(scope="module")
def reviewing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    with running_local(
        tmp_path_factory.mktemp("review"),
        "--param", "ReviewMode=required",
        "--param", "PollFirstWaitSeconds=1",
        "--param", "PollIntervalSeconds=1",
        "--emulate", "processing_seconds=1",
    ) as stack:  # fmt: skip
        yield stack


def _until(check: Any, what: str, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _queue(local: Local, batch_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"review": "pending", "batch_id": batch_id, "limit": "7"}
        page = local.api.get(
            "/v1/generations", params=params | ({"cursor": cursor} if cursor else {})
        )
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def test_a_reviewed_batch_publishes_what_is_approved(reviewing: Local) -> None:
    local = reviewing
    photo = image_bytes("PNG", (64, 48))
    for index in range(IMAGES):
        local.upload(f"{PREFIX}sku-{index:02d}.png", photo)
    answer = local.api.post("/v1/batches", json={"prefix": PREFIX, "count": 2})
    assert answer.status_code == 202, answer.text
    batch_id = answer.json()["id"]

    def finished() -> dict[str, Any] | None:
        batch: dict[str, Any] = local.api.get(f"/v1/batches/{batch_id}").json()
        return batch if batch["status"] != "running" else None

    batch = _until(finished, "the batch")
    assert batch["status"] == "succeeded", batch
    assert batch["review"] == {"pending": IMAGES, "approved": 0, "rejected": 0, "superseded": 0}

    queue = _queue(local, batch_id)
    assert len(queue) == IMAGES
    assert [job["created_at"] for job in queue] == sorted(job["created_at"] for job in queue)
    first = queue[0]
    assert first["review"]["status"] == "pending"
    assert len(first["results"]) == 2
    # Previews: small, and the photo itself to compare with.
    preview = httpx.get(first["results"][0]["thumbnail_url"])
    assert preview.headers["content-type"] == "image/webp"
    assert httpx.get(first["source_url"]).content == photo
    assert httpx.get(first["source_thumbnail_url"]).headers["content-type"] == "image/webp"

    # One regeneration, the others approved.
    regenerated, approved = queue[0], queue[1:]
    answer = local.api.post(
        f"/v1/generations/{regenerated['id']}/review",
        json={
            "decision": "regenerate",
            "prompt": "on slate",
            "reviewer": "e2e",
            "review_version": 0,
        },
    )
    assert answer.status_code == 202, answer.text
    child = answer.json()
    assert child["parent_id"] == regenerated["id"]
    for job in approved:
        answer = local.api.post(
            f"/v1/generations/{job['id']}/review",
            json={"decision": "approve", "index": 1, "reviewer": "e2e"},
        )
        assert answer.status_code == 200, answer.text

    s3 = local.client("s3")
    bucket = local.ready["published_bucket"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="published/")
    keys = sorted(item["Key"] for item in listed.get("Contents", []))
    # Each published where its source is, under published/, in the result's format.
    assert keys == sorted(
        f"published/catalog/review/{Path(job['request']['image_key']).stem}.jpg" for job in approved
    )
    # The events reach the log a moment after the answers (the stack polls its queue).
    announced = _until(
        lambda: (
            found
            if len(
                found := [e for e in local.events() if e["detail-type"] == "Generation Approved"]
            )
            >= len(approved)
            else None
        ),
        "the approvals' events",
        timeout=30,
    )
    assert {event["detail"]["job_id"] for event in announced} == {job["id"] for job in approved}
    assert {event["detail"]["published"]["key"] for event in announced} == set(keys)

    # The regeneration succeeds: it waits in the queue and its parent is superseded.
    done = local.wait_for_job(child["id"])
    assert done["status"] == "succeeded"
    _until(
        lambda: (
            local.api.get(f"/v1/generations/{regenerated['id']}").json()["review"]["status"]
            == "superseded"
        ),
        "the parent superseded",
    )
    parent = local.api.get(f"/v1/generations/{regenerated['id']}").json()
    assert parent["children"] == [child["id"]]
    assert [job["id"] for job in _queue(local, batch_id)] == [child["id"]]
    batch = local.api.get(f"/v1/batches/{batch_id}").json()
    assert batch["review"] == {
        "pending": 1, "approved": IMAGES - 1, "rejected": 0, "superseded": 1,
    }  # fmt: skip

    # Another product's published key in the same batch is refused, naming its job; the
    # regeneration's own default is its parent's place.
    taken = keys[0].removeprefix("published/")
    answer = local.api.post(
        f"/v1/generations/{child['id']}/review",
        json={"decision": "approve", "index": 0, "publish_key": taken},
    )
    assert answer.status_code == 422, answer.text
    (problem,) = answer.json()["error"]["details"]
    assert problem["field"] == "publish_key"
    holder = next(
        job["id"]
        for job in approved
        if keys[0].endswith(Path(job["request"]["image_key"]).stem + ".jpg")
    )
    assert holder in problem["reason"]
    answer = local.api.post(
        f"/v1/generations/{child['id']}/review", json={"decision": "approve", "index": 0}
    )
    assert answer.status_code == 200, answer.text
    stem = Path(regenerated["request"]["image_key"]).stem
    assert answer.json()["review"]["published_key"] == f"published/catalog/review/{stem}.jpg"


def test_a_reshot_photo_republishes_and_rejecting_the_old_job_keeps_the_new_image(
    reviewing: Local,
) -> None:
    local = reviewing
    key = "inbox/reshoot/mug.png"
    local.upload(key, image_bytes("PNG", (40, 30)))
    old = local.wait_for_event(key)["detail"]["job_id"]
    assert (
        local.api.post(
            f"/v1/generations/{old}/review", json={"decision": "approve", "index": 0}
        ).status_code
        == 200
    )

    local.upload(key, image_bytes("PNG", (48, 36)))  # the product photographed again
    new = _until(
        lambda: next(
            (e["detail"]["job_id"] for e in local.events()
             if e["detail"].get("source", {}).get("key") == key
             and e["detail-type"] == "Generation Succeeded"
             and e["detail"]["job_id"] != old),
            None,
        ),
        "the re-upload's job",
    )  # fmt: skip
    answer = local.api.post(
        f"/v1/generations/{new}/review", json={"decision": "approve", "index": 1}
    )
    assert answer.status_code == 200, answer.text  # the same product: its key, taken over
    published = answer.json()["review"]["published_key"]
    assert published == "published/reshoot/mug.jpg"

    # The old job's images were replaced by the new one's (one folder a photo): it cannot
    # be approved again, and is superseded by the new one.
    answer = local.api.post(
        f"/v1/generations/{old}/review", json={"decision": "approve", "index": 1}
    )
    assert answer.status_code == 409, answer.text
    assert new in answer.json()["error"]["message"]
    assert local.api.get(f"/v1/generations/{old}").json()["review"]["status"] == "superseded"

    answer = local.api.post(f"/v1/generations/{old}/review", json={"decision": "reject"})
    assert answer.status_code == 200, answer.text
    head = local.client("s3").head_object(Bucket=local.ready["published_bucket"], Key=published)
    assert head["Metadata"]["job-id"] == new  # the new job's image stays
