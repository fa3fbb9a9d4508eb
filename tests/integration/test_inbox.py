"""S3 inbox -> SQS -> inbox function -> one job per image version, on moto."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
import respx

from backdrop.jobs import source_job_id
from backdrop.local import lambdas
from backdrop.local.cloud import REGION
from backdrop.local.pollers import batch_failures, sqs_event
from tests.conftest import load_event
from tests.integration.conftest import PICSART, PNG, Stack, done, submitted


def _notifications(stack: Stack) -> list[dict[str, Any]]:
    """What S3 put on the inbox queue (moto delivers bucket notifications for real)."""
    answer = boto3.client("sqs", region_name=REGION).receive_message(
        QueueUrl=stack.cloud.inbox_queue_url, MaxNumberOfMessages=10
    )
    return [m for m in answer.get("Messages", []) if "s3:TestEvent" not in m["Body"]]


def _deliver(stack: Stack, messages: list[dict[str, Any]]) -> set[str]:
    event = sqs_event(messages, "arn:aws:sqs:us-east-1:123456789012:inbox", REGION)
    payload, error = stack.invoke("InboxFunction", event)
    return batch_failures(payload, error, messages)


def test_duplicate_notification_starts_one_execution(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    submit = picsart.post(f"{PICSART}/painting/replace-background").mock(return_value=submitted())
    picsart.get(f"{PICSART}/painting/inf-1").mock(return_value=done(2, "jpg"))
    s3 = boto3.client("s3", region_name=REGION)

    # Given an image uploaded under inbox/, with a space and non-ASCII in its name
    key = "inbox/summer sale/tasse café.png"
    put = s3.put_object(Bucket=stack.cloud.input_bucket, Key=key, Body=PNG)
    messages = _notifications(stack)
    assert len(messages) == 1

    # When the same notification is delivered twice (SQS is at-least-once), in one batch
    # and again in a later one
    assert _deliver(stack, messages + messages) == set()
    assert _deliver(stack, messages) == set()

    # Then exactly one execution ran, named by the job id derived from the object's
    # version (or its ETag where the notification has no version, as moto's has none)
    s3_object = json.loads(messages[0]["Body"])["Records"][0]["s3"]["object"]
    assert s3_object.get("versionId", put["VersionId"]) == put["VersionId"]
    version = s3_object.get("versionId") or s3_object["eTag"]
    job_id = source_job_id(stack.cloud.input_bucket, key, version)
    assert [e["name"] for e in stack.executions()] == [job_id]
    assert stack.wait_for_execution(job_id)["status"] == "SUCCEEDED"
    assert submit.call_count == 1
    job = stack.job(job_id)
    assert job["trigger"] == "inbox"
    assert job["source"]["key"] == key  # decoded from the notification's URL encoding
    assert job["options"]["prompt"] == stack.cloud.environment["DEFAULT_PROMPT"]
    assert len(stack.result_keys(f"results/{job_id}/")) == 2


def test_reupload_is_a_new_job(stack: Stack, picsart: respx.MockRouter) -> None:
    picsart.post(f"{PICSART}/painting/replace-background").mock(return_value=submitted())
    picsart.get(f"{PICSART}/painting/inf-1").mock(return_value=done(1))
    s3 = boto3.client("s3", region_name=REGION)

    s3.put_object(Bucket=stack.cloud.input_bucket, Key="inbox/a.png", Body=PNG)
    s3.put_object(Bucket=stack.cloud.input_bucket, Key="inbox/a.png", Body=PNG + b"changed")
    messages = _notifications(stack)
    _deliver(stack, messages)

    assert len(messages) == 2
    assert len({e["name"] for e in stack.executions()}) == 2


def test_uploads_outside_inbox_start_nothing(stack: Stack) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=stack.cloud.input_bucket, Key="uploads/a.png", Body=PNG)
    s3.put_object(Bucket=stack.cloud.results_bucket, Key="inbox/a.png", Body=PNG)

    assert _notifications(stack) == []


def test_test_events_folder_markers_and_empty_objects_start_nothing(stack: Stack) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=stack.cloud.input_bucket, Key="inbox/new-folder/", Body=b"")
    s3.put_object(Bucket=stack.cloud.input_bucket, Key="inbox/empty.png", Body=b"")
    test_event = load_event("inbox-sqs-s3-test-event")

    payload, error = stack.invoke("InboxFunction", test_event)
    assert error is None
    assert payload == {"batchItemFailures": []}
    assert _deliver(stack, _notifications(stack)) == set()
    assert stack.executions() == []


def test_a_bad_record_fails_alone(stack: Stack, picsart: respx.MockRouter) -> None:
    # Given a batch with one good notification and one that is not JSON
    event = load_event("inbox-sqs-s3")
    put = boto3.client("s3", region_name=REGION).put_object(
        Bucket=stack.cloud.input_bucket, Key="inbox/summer sale/red mug.png", Body=PNG
    )
    good = event["Records"][0]
    body = json.loads(good["body"])
    body["Records"][0]["s3"]["bucket"]["name"] = stack.cloud.input_bucket
    body["Records"][0]["s3"]["object"]["versionId"] = put["VersionId"]
    good["body"] = json.dumps(body)
    bad = {**good, "messageId": "bad-1", "body": "not json"}
    event["Records"] = [good, bad]

    payload, error = stack.invoke("InboxFunction", event)

    # Then only the bad one is reported for redelivery, and the good one started a job
    assert error is None
    assert payload == {"batchItemFailures": [{"itemIdentifier": "bad-1"}]}
    assert len(stack.executions()) == 1


def test_metadata_picks_the_provider_per_image(stack: Stack, picsart: respx.MockRouter) -> None:
    edit = picsart.get("https://image-api.photoroom.com/v2/edit").respond(
        200, content=PNG, headers={"content-type": "image/jpeg", "pr-ai-background-seed": "1"}
    )
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(
        Bucket=stack.cloud.input_bucket,
        Key="inbox/cup.png",
        Body=PNG,
        Metadata={"provider": "photoroom"},
    )

    _deliver(stack, _notifications(stack))

    (execution,) = stack.executions()
    assert stack.wait_for_execution(execution["name"])["status"] == "SUCCEEDED"
    job = stack.job(execution["name"])
    assert job["provider"] == "photoroom"
    assert edit.call_count == 2


def test_an_unknown_provider_fails_the_job_visibly(stack: Stack) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(
        Bucket=stack.cloud.input_bucket,
        Key="inbox/cup.png",
        Body=PNG,
        Metadata={"provider": "dalle"},
    )
    messages = _notifications(stack)

    assert _deliver(stack, messages) == set()
    assert _deliver(stack, messages) == set()  # redelivered: still one job

    assert stack.executions() == []
    events = stack.published_events()
    assert {e["detail-type"] for e in events} == {"Generation Failed"}
    (job_id,) = {e["detail"]["job_id"] for e in events}
    job = stack.job(job_id)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "invalid_option"
    assert "'dalle'" in job["error"]["message"]


def test_a_failed_start_is_retried_by_redelivery(
    stack: Stack, picsart: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    picsart.post(f"{PICSART}/painting/replace-background").mock(return_value=submitted())
    picsart.get(f"{PICSART}/painting/inf-1").mock(return_value=done(1))
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=stack.cloud.input_bucket, Key="inbox/a.png", Body=PNG
    )
    messages = _notifications(stack)

    # Given Step Functions refuses the start once
    monkeypatch.setenv("STATE_MACHINE_ARN", stack.cloud.state_machine_arn + "-gone")
    lambdas.reset()
    assert _deliver(stack, messages) == {messages[0]["MessageId"]}
    assert stack.executions() == []

    # When SQS delivers the message again, after Step Functions recovered
    monkeypatch.setenv("STATE_MACHINE_ARN", stack.cloud.state_machine_arn)
    lambdas.reset()
    assert _deliver(stack, messages) == set()

    # Then the job runs: it was left queued, not failed
    (execution,) = stack.executions()
    assert stack.wait_for_execution(execution["name"])["status"] == "SUCCEEDED"
