"""The generation workflow end to end on moto: API -> Step Functions -> Picsart -> S3."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
import respx

from backdrop.workflow import provider_tasks
from tests.integration.conftest import PICSART, Stack, done, processing, submitted

SUBMIT = f"{PICSART}/painting/replace-background"
POLL = f"{PICSART}/painting/inf-1"
BODY = {"image_url": "https://images.example.com/mug.png", "prompt": "marble counter"}


def test_three_images_are_stored_and_announced(stack: Stack, picsart: respx.MockRouter) -> None:
    # Given Picsart accepts the job, is still processing at the first poll, then has 3 images
    submit = picsart.post(SUBMIT).mock(return_value=submitted())
    poll = picsart.get(POLL).mock(side_effect=[processing(), done(3)])

    # When a client asks for three PNGs
    answer = stack.create_generation({**BODY, "count": 3, "format": "PNG"})
    job_id = json.loads(answer["body"])["id"]
    assert answer["statusCode"] == 202
    assert answer["multiValueHeaders"]["Location"] == [f"/v1/generations/{job_id}"]
    execution = stack.wait_for_execution(job_id)

    # Then the workflow succeeded, polled twice, and stored three objects
    assert execution["status"] == "SUCCEEDED"
    assert submit.call_count == 1
    assert poll.call_count == 2
    assert sorted(stack.result_keys()) == [f"results/{job_id}/{i}.png" for i in range(3)]
    job = stack.job(job_id)
    assert job["status"] == "succeeded"
    assert [r["content_type"] for r in job["results"]] == ["image/png"] * 3
    assert job["provider_job_id"] == "inf-1"
    # And the request reached Picsart with the caller's options, in async mode
    sent = submit.calls[0].request.content
    for part in (
        b'name="count"\r\n\r\n3',
        b'name="format"\r\n\r\nPNG',
        b'name="mode"\r\n\r\nasync',
    ):
        assert part in sent
    # And exactly one event says so
    events = stack.published_events()
    assert [e["detail-type"] for e in events] == ["Generation Succeeded"]
    assert events[0]["source"] == "backdrop"
    assert events[0]["detail"]["job_id"] == job_id
    assert events[0]["detail"]["results"]["keys"] == [f"results/{job_id}/{i}.png" for i in range(3)]


def test_throttled_submit_is_retried_and_submitted_once(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    # Given Picsart answers 429 first, then accepts
    throttled = httpx.Response(
        429,
        json={"code": 429, "detail": "Too many requests"},
        headers={"X-Picsart-Ratelimit-Reset-Time": "1"},
    )
    submit = picsart.post(SUBMIT).mock(side_effect=[throttled, submitted()])
    picsart.get(POLL).mock(return_value=done(2))

    job_id = json.loads(stack.create_generation(BODY)["body"])["id"]
    execution = stack.wait_for_execution(job_id)

    # Then the workflow retried the submit and the provider accepted the work once
    assert execution["status"] == "SUCCEEDED"
    assert submit.call_count == 2
    assert [r.status_code for r in (c.response for c in submit.calls)] == [429, 202]
    assert len(stack.result_keys(f"results/{job_id}/")) == 2


def test_provider_error_status_fails_the_job(stack: Stack, picsart: respx.MockRouter) -> None:
    picsart.post(SUBMIT).mock(return_value=submitted())
    picsart.get(POLL).respond(200, json={"status": "error", "detail": "subject not found"})

    job_id = json.loads(stack.create_generation(BODY)["body"])["id"]
    execution = stack.wait_for_execution(job_id)

    assert execution["status"] == "FAILED"
    job = stack.job(job_id)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "provider_failed"
    assert "subject not found" in job["error"]["message"]
    assert stack.result_keys() == []
    events = stack.published_events()
    assert [e["detail-type"] for e in events] == ["Generation Failed"]
    assert events[0]["detail"]["error"]["code"] == "provider_failed"


def test_a_job_that_never_finishes_fails_with_a_timeout(
    make_stack: Callable[..., Stack], picsart: respx.MockRouter
) -> None:
    # Given a stack that allows three polls, and a provider that never finishes
    stack = make_stack(PollMaxAttempts="3")
    picsart.post(SUBMIT).mock(return_value=submitted())
    poll = picsart.get(POLL).mock(return_value=processing())

    job_id = json.loads(stack.create_generation(BODY)["body"])["id"]
    execution = stack.wait_for_execution(job_id)

    # Then it stops after the third poll with a timeout code
    assert execution["status"] == "FAILED"
    assert poll.call_count == 3
    job = stack.job(job_id)
    assert job["error"]["code"] == "provider_timeout"
    assert "3 polls" in job["error"]["message"]


def test_bad_key_fails_without_retrying(stack: Stack, picsart: respx.MockRouter) -> None:
    # (an answer that echoes the key, which must not reach the job)
    submit = picsart.post(SUBMIT).respond(
        401, json={"code": 401, "detail": "Invalid API key local-emulator-key"}
    )

    job_id = json.loads(stack.create_generation(BODY)["body"])["id"]
    execution = stack.wait_for_execution(job_id)

    assert execution["status"] == "FAILED"
    assert submit.call_count == 1
    job = stack.job(job_id)
    assert job["error"]["code"] == "provider_auth"
    # The key never appears in what the job shows
    assert "local-emulator-key" not in json.dumps(job)


def test_unavailable_provider_is_retried_then_fails_clearly(
    stack: Stack, picsart: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Backoff from half a second, not two (Submit runs in this process): a quicker suite.
    monkeypatch.setattr(provider_tasks, "RETRY_INTERVAL_SECONDS", 0.5)
    submit = picsart.post(SUBMIT).respond(503, json={"code": 503, "detail": "Service Unavailable"})

    job_id = json.loads(stack.create_generation(BODY)["body"])["id"]
    execution = stack.wait_for_execution(job_id, timeout=120)

    assert execution["status"] == "FAILED"
    assert submit.call_count == 4  # the first try and three retries
    assert stack.job(job_id)["error"]["code"] == "provider_unavailable"


def test_expired_result_url_fails_the_job(stack: Stack, picsart: respx.MockRouter) -> None:
    picsart.post(SUBMIT).mock(return_value=submitted())
    picsart.get(POLL).respond(
        200,
        json={
            "status": "success",
            "data": [{"id": None, "url": "https://gone.picsart.test/x.jpg"}],
        },
    )
    picsart.get("https://gone.picsart.test/x.jpg").respond(404)

    job_id = json.loads(stack.create_generation(BODY)["body"])["id"]
    stack.wait_for_execution(job_id)

    job = stack.job(job_id)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "result_unavailable"
