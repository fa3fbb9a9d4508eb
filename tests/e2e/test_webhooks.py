"""Webhooks through the local stack, as a receiver sees them: the outcome signed by the
Standard Webhooks spec (verified with its reference library), retried with the same id,
dead-lettered when the receiver never answers 2xx, and the job untouched by any of it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from standardwebhooks import Webhook

from tests.e2e.conftest import Local, sample
from tests.receivers import receiver


def _until(check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _photo_url(stack: Local) -> str:
    stack.upload("public/hook.png", sample("mug"))
    return str(
        stack.client("s3").generate_presigned_url(
            "get_object", Params={"Bucket": stack.ready["input_bucket"], "Key": "public/hook.png"}
        )
    )


def test_a_signed_delivery_verifies_with_the_reference_library(stack: Local) -> None:
    with receiver() as hook:
        job_id = stack.generate(image_url=_photo_url(stack), webhook_url=hook.url)
        assert stack.wait_for_job(job_id)["status"] == "succeeded"
        _until(lambda: len(hook.requests) == 1)

    (request,) = hook.requests
    payload = Webhook(stack.ready["webhook_secret"]).verify(request.body, request.headers)
    assert payload["type"] == "generation.succeeded"
    assert payload["data"]["id"] == job_id
    assert [r["index"] for r in payload["data"]["results"]] == [0, 1]
    _until(lambda: stack.api.get(f"/v1/generations/{job_id}").json()["webhook"] is not None)
    assert stack.api.get(f"/v1/generations/{job_id}").json()["webhook"]["status"] == "delivered"


def test_a_retry_resends_the_same_message_and_a_dead_receiver_ends_in_the_dead_letters(
    stack: Local,
) -> None:
    # Both at once (each waits for the same 5 s retry): one receiver answers 500 then 200,
    # the other 503 every time.
    with receiver(500) as flaky, receiver(503, 503, 503) as dead:
        recovered = stack.generate(image_url=_photo_url(stack), webhook_url=flaky.url)
        lost = stack.generate(image_url=_photo_url(stack), webhook_url=dead.url)
        _until(lambda: len(flaky.requests) == 2 and len(dead.requests) == 2, timeout=90)

    first, second = flaky.requests
    assert (
        first.headers["webhook-id"] == second.headers["webhook-id"] == f"msg_{recovered}_succeeded"
    )
    assert first.body == second.body
    Webhook(stack.ready["webhook_secret"]).verify(second.body, second.headers)

    sqs = stack.client("sqs")
    url = stack.ready["webhook_dead_letter_queue_url"]
    found: list[dict[str, object]] = []

    def dead_lettered() -> bool:
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        found.extend(json.loads(m["Body"]) for m in answer.get("Messages", []))
        return any(d["delivery"]["job_id"] == lost for d in found)  # type: ignore[index]

    _until(dead_lettered, timeout=30)
    job = stack.api.get(f"/v1/generations/{lost}").json()
    assert job["status"] == "succeeded"
    assert job["webhook"]["status"] == "failed"
    assert job["webhook"]["attempts"] == 2


def test_a_webhook_url_on_a_private_host_is_422(stack: Local) -> None:
    for url in ("https://10.0.0.1/hook", "http://hooks.example.com/x", "https://localhost/x"):
        answer = stack.api.post(
            "/v1/generations", json={"image_url": _photo_url(stack), "webhook_url": url}
        )
        assert answer.status_code == 422, url
        (detail,) = answer.json()["error"]["details"]
        assert detail["field"] == "webhook_url"
