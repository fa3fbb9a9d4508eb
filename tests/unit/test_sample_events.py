"""The sample events in events/ are what each function's parser accepts, so
`sam local invoke -e events/<name>.json` exercises real code paths."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from backdrop.contracts.requests import GenerationRequest
from backdrop.envelopes import S3Notification
from backdrop.workflow.messages import MarkFailedInput, StepInput, StoreInput, TaskInput
from tests.conftest import EVENTS, load_event


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("workflow-submit", StepInput),
        ("workflow-generate", StepInput),
        ("workflow-poll", StepInput),
        ("workflow-store", StoreInput),
        ("workflow-mark-failed", MarkFailedInput),
        ("workflow-publish", TaskInput),
    ],
)
def test_workflow_task_events_parse(name: str, model: type[BaseModel]) -> None:
    model.model_validate(load_event(name))


def test_api_event_body_is_a_valid_request() -> None:
    event = load_event("api-create-generation")
    assert event["httpMethod"] == "POST"
    assert event["resource"] == "/v1/generations"
    GenerationRequest.model_validate_json(event["body"])


def test_inbox_event_wraps_an_s3_notification_with_an_encoded_key() -> None:
    (record,) = load_event("inbox-sqs-s3")["Records"]
    assert record["eventSource"] == "aws:sqs"
    notification = S3Notification.model_validate_json(record["body"])
    (item,) = notification.Records
    assert item.s3.object.key == "inbox/summer+sale/red+mug.png"
    assert item.s3.object.decoded_key == "inbox/summer sale/red mug.png"


def test_every_sample_event_is_used() -> None:
    names = {path.stem for path in EVENTS.glob("*.json")}
    assert names == {
        "api-create-generation",
        "api-get-generation",
        "api-list-generations",
        "inbox-sqs-s3",
        "inbox-sqs-s3-test-event",
        "workflow-submit",
        "workflow-generate",
        "workflow-poll",
        "workflow-store",
        "workflow-mark-failed",
        "workflow-publish",
        "balance-check-scheduled",
    }
    for path in EVENTS.glob("*.json"):
        json.loads(path.read_text())


def test_the_balance_checks_event_is_a_scheduled_event() -> None:
    from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

    event = EventBridgeModel.model_validate(load_event("balance-check-scheduled"))
    assert (event.source, event.detail_type) == ("aws.events", "Scheduled Event")
