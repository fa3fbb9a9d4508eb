"""A `Generation Requested` event put on the local stack's bus with boto3, as a PIM would:
it ends as a succeeded job whose outcome events carry the request's metadata, and a bad one
as a failed job saying which field is at fault."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.e2e.conftest import Local, sample


def _put(stack: Local, detail: dict[str, Any]) -> None:
    answer = stack.client("events").put_events(
        Entries=[
            {
                "EventBusName": stack.ready["event_bus"],
                "Source": "pim.example",
                "DetailType": "Generation Requested",
                "Detail": json.dumps(detail),
            }
        ]
    )
    assert answer["FailedEntryCount"] == 0


def _outcome_for(stack: Local, sku: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in stack.events():
            if event["detail"].get("metadata", {}).get("sku") == sku:
                return event
        time.sleep(0.25)
    raise AssertionError(f"no outcome for {sku}")


def _photo_url(stack: Local) -> str:
    stack.upload("public/requested.png", sample("mug"))
    return str(
        stack.client("s3").generate_presigned_url(
            "get_object",
            Params={"Bucket": stack.ready["input_bucket"], "Key": "public/requested.png"},
        )
    )


def test_a_requested_generation_succeeds_and_its_events_carry_the_metadata(stack: Local) -> None:
    _put(stack, {"image_url": _photo_url(stack), "count": 1, "metadata": {"sku": "EVT-1"}})

    event = _outcome_for(stack, "EVT-1")

    assert event["detail-type"] == "Generation Succeeded"
    assert event["detail"]["trigger"] == "event"
    job = stack.api.get(f"/v1/generations/{event['detail']['job_id']}").json()
    assert job["status"] == "succeeded"
    assert job["metadata"] == {"sku": "EVT-1"}
    assert len(job["results"]) == 1


def test_a_bad_requested_generation_is_a_failed_job_naming_the_field(stack: Local) -> None:
    _put(stack, {"image_url": _photo_url(stack), "count": 0, "metadata": {"sku": "EVT-BAD"}})

    event = _outcome_for(stack, "EVT-BAD")

    assert event["detail-type"] == "Generation Failed"
    assert event["detail"]["error"]["code"] == "invalid_request"
    assert "count" in event["detail"]["error"]["message"]
