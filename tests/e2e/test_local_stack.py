"""End to end through `backdrop local`: HTTPS API, S3 inbox, events, provider emulator."""

from __future__ import annotations

import io
import json
import time
from datetime import datetime
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.e2e.conftest import Local, sample

pytestmark = pytest.mark.e2e


def _results(stack: Local, job: dict[str, Any]) -> list[Image.Image]:
    return [Image.open(io.BytesIO(body)) for body in stack.download(job)]


def test_api_job_with_an_uploaded_image(stack: Local) -> None:
    stack.upload("uploads/e2e/mug.png", sample("mug"))

    job_id = stack.generate(
        image_key="uploads/e2e/mug.png", prompt="a wooden table", count=3, format="PNG"
    )
    job = stack.wait_for_job(job_id)

    assert job["status"] == "succeeded", job
    images = _results(stack, job)
    assert [image.format for image in images] == ["PNG"] * 3
    assert {r["content_type"] for r in job["results"]} == {"image/png"}
    assert stack.stats()["picsart"]["submissions"] == 1


def test_inbox_upload_generates_on_its_own(stack: Local) -> None:
    stack.upload("inbox/e2e/sneaker.png", sample("sneaker"))

    event = stack.wait_for_event("inbox/e2e/sneaker.png")

    assert event["detail-type"] == "Generation Succeeded"
    job = stack.wait_for_job(event["detail"]["job_id"])
    assert job["trigger"] == "inbox"
    assert [image.format for image in _results(stack, job)] == ["JPEG"] * 2


def test_a_burst_of_429s_is_ridden_out(stack: Local) -> None:
    stack.emulator("script", {"picsart_submit": [429, 429, 429]})

    job = stack.wait_for_job(stack.generate(image_url=_public_url(stack)), timeout=90)

    assert job["status"] == "succeeded", job
    # Four submissions reached the provider; only the last was accepted and paid for.
    assert stack.stats()["picsart"]["submissions"] == 4
    assert stack.stats()["picsart"]["images"] == 2


def test_5xx_answers_are_retried(stack: Local) -> None:
    stack.emulator("script", {"picsart_submit": [503], "picsart_poll": [500]})

    job = stack.wait_for_job(stack.generate(image_url=_public_url(stack)), timeout=90)

    assert job["status"] == "succeeded", job


def test_a_stuck_job_fails_as_a_timeout(stack: Local) -> None:
    # A gateway that does not hold submits: the job is polled, and the polls say stuck.
    stack.emulator("settings", {"honour_prefer_wait": False})
    stack.emulator("script", {"picsart_poll": ["stuck"]})

    job = stack.wait_for_job(stack.generate(image_url=_public_url(stack)), timeout=90)

    assert job["status"] == "failed"
    assert job["error"]["code"] == "provider_timeout"
    assert stack.stats()["picsart"]["polls"] == 5


def test_an_error_status_fails_the_job(stack: Local) -> None:
    stack.emulator("settings", {"honour_prefer_wait": False})
    stack.emulator("script", {"picsart_poll": ["error"]})

    job_id = stack.generate(image_url=_public_url(stack))
    job = stack.wait_for_job(job_id)

    assert job["status"] == "failed"
    assert job["error"]["code"] == "provider_failed"
    deadline = time.monotonic() + 10
    while not any(e["detail"].get("job_id") == job_id for e in stack.events()):
        assert time.monotonic() < deadline, "no Generation Failed event"
        time.sleep(0.2)
    (event,) = [e for e in stack.events() if e["detail"].get("job_id") == job_id]
    assert event["detail-type"] == "Generation Failed"
    assert event["detail"]["error"]["code"] == "provider_failed"


def test_a_non_image_upload_fails_clearly_before_any_provider_call(stack: Local) -> None:
    stack.upload("inbox/e2e/notes.png", b"these are not pixels")

    event = stack.wait_for_event("inbox/e2e/notes.png")

    assert event["detail-type"] == "Generation Failed"
    error = event["detail"]["error"]
    assert error["code"] == "invalid_image"
    assert "image" in error["message"].lower()
    assert stack.stats()["picsart"]["submissions"] == 0
    manifest = stack.client("s3").get_object(
        Bucket=stack.ready["results_bucket"], Key="outbox/e2e/notes.png/manifest.json"
    )
    assert json.loads(manifest["Body"].read())["error"] == error


def test_listing_pages_through_every_job_newest_first(stack: Local) -> None:
    stack.upload("inbox/e2e/listed.png", sample("bottle"))
    inbox = stack.wait_for_event("inbox/e2e/listed.png")["detail"]["job_id"]
    first = stack.generate(image_url=_public_url(stack), count=1)
    second = stack.generate(image_url=_public_url(stack), count=1)

    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        answer = stack.api.get("/v1/generations", params=params)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["items"]) <= 2
        seen += answer.json()["items"]
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            break

    ids = [job["id"] for job in seen]
    assert len(ids) == len(set(ids))
    assert ids.index(second) < ids.index(first) < ids.index(inbox)
    created = [datetime.fromisoformat(job["created_at"]) for job in seen]
    assert created == sorted(created, reverse=True)
    succeeded = stack.api.get("/v1/generations", params={"status": "succeeded"}).json()
    assert inbox in [job["id"] for job in succeeded["items"]]
    assert {job["status"] for job in succeeded["items"]} == {"succeeded"}


def test_the_api_key_is_required(stack: Local) -> None:
    url = f"{stack.ready['api_url']}/v1/generations"
    assert httpx.post(url, json={}).status_code == 403
    assert httpx.post(url, json={}, headers={"x-api-key": "wrong"}).status_code == 403
    assert (
        httpx.get(
            f"{url}/0f8fad5bd9cb469fa16570867728950e", headers={"x-api-key": "wrong"}
        ).status_code
        == 403
    )


def _public_url(stack: Local) -> str:
    """A URL the provider can fetch: a presigned GET on the local AWS endpoint."""
    stack.upload("public/mug.png", sample("mug"))
    return str(
        stack.client("s3").generate_presigned_url(
            "get_object", Params={"Bucket": stack.ready["input_bucket"], "Key": "public/mug.png"}
        )
    )
