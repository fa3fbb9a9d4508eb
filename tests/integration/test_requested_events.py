"""`Generation Requested` events put on the stack's bus with boto3: the template's rule takes
them to the request queue (moto), the request function plans and starts the job, and the
job's outcome is announced with the request's metadata. A bad event is a failed job."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
import respx

from backdrop_local.cloud import REGION
from tests.integration.conftest import PICSART, Stack, submitted

IMAGE = "https://images.example.com/mug.png"


def _put(stack: Stack, detail: Any, source: str = "pim.example") -> str:
    answer = boto3.client("events", region_name=REGION).put_events(
        Entries=[
            {
                "EventBusName": stack.cloud.event_bus,
                "Source": source,
                "DetailType": "Generation Requested",
                "Detail": json.dumps(detail),
            }
        ]
    )
    assert answer["FailedEntryCount"] == 0
    return str(answer["Entries"][0]["EventId"])


def _take_requests(stack: Stack) -> int:
    return stack.feed("RequestQueue", "RequestFunction")


def _jobs_of(stack: Stack) -> list[dict[str, Any]]:
    return [stack.job(job_id) for job_id in stack.job_ids()]


def _outcome(stack: Stack, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for event in stack.published_events():
            if event["detail"]["job_id"] == job_id:
                return event
        time.sleep(0.1)
    raise AssertionError("no outcome event")


def test_a_requested_generation_becomes_a_job_that_succeeds_with_its_metadata(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    picsart.post(f"{PICSART}/painting/replace-background").mock(return_value=submitted())
    picsart.get(f"{PICSART}/painting/inf-1").respond(
        200, json={"status": "success", "data": [{"url": "https://cdn.picsart.test/r.png"}]}
    )
    _put(stack, {"image_url": IMAGE, "prompt": "oak", "count": 1, "metadata": {"sku": "MUG-1"}})

    assert _take_requests(stack) == 1
    (job,) = _jobs_of(stack)
    assert job["trigger"] == "event"
    assert job["owner"] == "stack"  # every API key reads it, like the inbox's
    stack.wait_for_execution(job["id"])
    event = _outcome(stack, job["id"])
    assert event["detail-type"] == "Generation Succeeded"
    assert event["detail"]["metadata"] == {"sku": "MUG-1"}
    assert event["detail"]["trigger"] == "event"
    status, page = stack.list_generations()
    assert status == 200
    assert job["id"] in [item["id"] for item in page["items"]]


def test_the_same_idempotency_key_is_one_job_and_a_redelivery_changes_nothing(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    submit = picsart.post(f"{PICSART}/painting/replace-background").mock(return_value=submitted())
    picsart.get(f"{PICSART}/painting/inf-1").respond(200, json={"status": "processing"})
    detail = {"image_url": IMAGE, "idempotency_key": "product-42-v1"}
    _put(stack, detail)
    _put(stack, detail)

    assert _take_requests(stack) == 2
    assert len(_jobs_of(stack)) == 1
    deadline = time.monotonic() + 10
    while submit.call_count == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert submit.call_count == 1
    assert len(stack.executions()) == 1


def test_the_stacks_own_events_never_ask_for_work(stack: Stack) -> None:
    _put(stack, {"image_url": IMAGE}, source="backdrop")

    assert _take_requests(stack) == 0
    assert stack.job_ids() == []


@pytest.mark.parametrize(
    ("detail", "field", "words"),
    [
        ({"image_url": IMAGE, "colour": "red"}, "colour", "Extra inputs"),
        ({"prompt": "oak"}, "detail", "exactly one"),
        ({"image_url": IMAGE, "image_key": "uploads/a.png"}, "detail", "exactly one"),
        ({"image_key": "catalog/a.png"}, "image_key", "POST /v1/uploads"),
        ({"image_url": IMAGE, "count": 11}, "count", "less than or equal to 10"),
        ({"image_url": "http://images.example.com/a.png"}, "image_url", "https"),
        ({"image_url": IMAGE, "webhook_url": "https://10.0.0.1/x"}, "webhook_url", "IP address"),
        ({"image_base64": "aGVsbG8="}, "detail", "cannot carry the photo"),
    ],
)
def test_a_bad_event_is_a_failed_job_naming_the_field_with_its_metadata(
    stack: Stack, detail: Any, field: str, words: str
) -> None:
    if isinstance(detail, dict):
        detail = {**detail, "metadata": {"sku": "BAD-1"}}
    _put(stack, detail)

    assert _take_requests(stack) == 1
    (job,) = _jobs_of(stack)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "invalid_request"
    assert field in job["error"]["message"]
    assert words in job["error"]["message"]
    assert stack.executions() == []  # nothing started, nothing paid
    event = _outcome(stack, job["id"])
    assert event["detail-type"] == "Generation Failed"
    if isinstance(detail, dict):
        assert event["detail"]["metadata"] == {"sku": "BAD-1"}
    # Not a poison message: nothing is left on the queue or in its dead letters.
    assert _take_requests(stack) == 0


def test_a_message_that_is_not_an_event_is_a_failed_job_not_a_poison_message(
    stack: Stack,
) -> None:
    # Only the rule may send to the queue, but whatever arrives is answered, never looped.
    boto3.client("sqs", region_name=REGION).send_message(
        QueueUrl=stack.cloud.queues["RequestQueue"].url, MessageBody="{not json"
    )

    assert _take_requests(stack) == 1
    (job,) = _jobs_of(stack)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "invalid_request"
    assert "detail" in job["error"]["message"]
    assert _take_requests(stack) == 0
