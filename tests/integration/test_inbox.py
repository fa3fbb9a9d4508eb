"""S3 inbox -> SQS -> inbox function -> one job per image version, on moto."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from email.header import Header
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

import boto3
import httpx
import pytest
import respx

from backdrop.jobs import source_job_id
from backdrop_local import lambdas
from backdrop_local.cloud import REGION
from backdrop_local.pollers import batch_failures, sqs_event
from tests.conftest import image_bytes, load_event, png_claiming
from tests.integration.conftest import PICSART, PNG, Stack, done, submitted

EDIT = "https://image-api.photoroom.com/v2/edit"
PRESETS = json.dumps(
    {
        "spring": {"prompt": "a spring meadow", "count": 1, "format": "WEBP"},
        "seeded": {"seed": 7},
    }
)


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


def _drop(stack: Stack, key: str, body: bytes = PNG, **metadata: str) -> list[dict[str, Any]]:
    """Upload an image under inbox/ and hand its notification to the inbox function."""
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=stack.cloud.input_bucket, Key=key, Body=body, Metadata=metadata
    )
    messages = _notifications(stack)
    assert _deliver(stack, messages) == set()
    return messages


def _picsart_answers(picsart: respx.MockRouter, count: int = 2) -> respx.Route:
    picsart.get(f"{PICSART}/painting/inf-1").mock(return_value=done(count, "jpg"))
    return picsart.post(f"{PICSART}/painting/replace-background").mock(return_value=submitted())


def _photoroom(picsart: respx.MockRouter) -> respx.Route:
    def edited(request: httpx.Request) -> httpx.Response:
        seed = parse_qs(urlsplit(str(request.url)).query)["background.seed"][0]
        return httpx.Response(
            200, content=PNG, headers={"content-type": "image/jpeg", "pr-ai-background-seed": seed}
        )

    return picsart.get(EDIT).mock(side_effect=edited)


def _only_job(stack: Stack) -> dict[str, Any]:
    (job_id,) = stack.job_ids()
    return stack.job(job_id)


def _finished(stack: Stack) -> list[dict[str, Any]]:
    """Every job, once its execution (if it has one) has ended."""
    for execution in stack.executions():
        stack.wait_for_execution(execution["name"])
    return [stack.job(job_id) for job_id in stack.job_ids()]


def test_duplicate_notification_starts_one_execution(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    submit = _picsart_answers(picsart)
    s3 = boto3.client("s3", region_name=REGION)

    # Given an image uploaded under inbox/, with a space and non-ASCII in its name
    key = "inbox/summer sale/tasse café.png"
    put = s3.put_object(Bucket=stack.cloud.input_bucket, Key=key, Body=PNG)
    messages = _notifications(stack)
    assert len(messages) == 1

    # When the same notification is delivered twice (SQS is at-least-once), in one batch
    # and again in a later one (a Lambda retry of the whole batch)
    assert _deliver(stack, messages + messages) == set()
    assert _deliver(stack, messages) == set()

    # Then exactly one execution ran, named by the job id derived from the object's version
    s3_object = json.loads(messages[0]["Body"])["Records"][0]["s3"]["object"]
    assert s3_object["versionId"] == put["VersionId"]
    job_id = source_job_id(stack.cloud.input_bucket, key, put["VersionId"])
    assert [e["name"] for e in stack.executions()] == [job_id]
    assert stack.wait_for_execution(job_id)["status"] == "SUCCEEDED"

    # And a redelivery after the job finished starts nothing and announces nothing again
    assert _deliver(stack, messages) == set()
    assert [e["name"] for e in stack.executions()] == [job_id]
    assert submit.call_count == 1
    assert stack.job_ids() == [job_id]
    assert [e["detail"]["job_id"] for e in stack.published_events()] == [job_id]
    job = stack.job(job_id)
    assert job["trigger"] == "inbox"
    assert job["source"]["key"] == key  # decoded from the notification's URL encoding
    assert job["options"]["prompt"] == stack.cloud.environment["DEFAULT_PROMPT"]
    prefix = "outbox/summer sale/tasse café.png/"
    assert sorted(stack.result_keys(prefix)) == [f"{prefix}{n}.jpg" for n in (0, 1)] + [
        f"{prefix}manifest.json"
    ]


def test_url_encoded_keys_are_decoded(stack: Stack, picsart: respx.MockRouter) -> None:
    _picsart_answers(picsart, count=1)
    key = "inbox/summer sale/a+b tasse café.png"
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=stack.cloud.input_bucket, Key=key, Body=PNG
    )
    (message,) = _notifications(stack)

    # Given the key encoded as S3 encodes it: spaces as '+', the rest percent-encoded
    body = json.loads(message["Body"])
    encoded = body["Records"][0]["s3"]["object"]["key"] = quote_plus(key, safe="/")
    assert encoded == "inbox/summer+sale/a%2Bb+tasse+caf%C3%A9.png"
    message["Body"] = json.dumps(body)

    assert _deliver(stack, [message]) == set()

    (job,) = _finished(stack)
    assert job["status"] == "succeeded", job
    assert job["source"]["key"] == key
    assert [r["key"] for r in job["results"]] == ["outbox/summer sale/a+b tasse café.png/0.jpg"]


def test_results_land_beside_their_source_with_a_manifest(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    _picsart_answers(picsart, count=2)

    _drop(stack, "inbox/spring/mug.png")

    (job,) = _finished(stack)
    assert job["status"] == "succeeded", job
    prefix = "outbox/spring/mug.png/"
    keys = [r["key"] for r in job["results"]]
    assert keys == [f"{prefix}0.jpg", f"{prefix}1.jpg"]
    assert sorted(stack.result_keys(prefix)) == [*keys, f"{prefix}manifest.json"]
    manifest = stack.manifest(prefix)
    assert manifest["job_id"] == job["id"]
    assert manifest["status"] == "succeeded"
    assert manifest["source"] == job["source"]
    assert manifest["source"]["bucket"] == stack.cloud.input_bucket
    assert manifest["options"] == job["options"]
    assert [(r["key"], r["size"], r["content_type"]) for r in manifest["results"]] == [
        (r["key"], r["size"], r["content_type"]) for r in job["results"]
    ]
    assert manifest["error"] is None
    assert manifest["created_at"] == job["created_at"]
    assert manifest["updated_at"] == job["updated_at"]


def test_metadata_options_are_decoded_and_win_over_the_preset(
    make_stack: Callable[..., Stack], picsart: respx.MockRouter
) -> None:
    stack = make_stack(InboxPresets=PRESETS)
    edit = _photoroom(picsart)
    prompt = "une tasse sur une table en chêne"

    # Given an image in the "spring" preset's folder whose metadata sets most options,
    # the prompt RFC 2047-encoded as S3 hands back non-ASCII values, and a key we don't know
    _drop(
        stack,
        "inbox/spring/cup.png",
        prompt=Header(prompt, "utf-8").encode(),
        count="3",
        format="png",
        provider="photoroom",
        seed="42",
        colour="blue",
    )

    # Then the metadata wins field by field, and the unknown key is ignored
    (cup,) = _finished(stack)
    assert cup["status"] == "succeeded", cup
    assert cup["provider"] == "photoroom"
    assert cup["options"]["prompt"] == prompt
    assert cup["options"]["count"] == 3
    assert cup["options"]["format"] == "PNG"  # the preset's WEBP lost to the metadata
    assert cup["options"]["seed"] == 42
    sent = [parse_qs(urlsplit(str(call.request.url)).query) for call in edit.calls]
    assert sorted(q["background.seed"][0] for q in sent) == ["42", "43", "44"]
    assert {q["background.prompt"][0] for q in sent} == {prompt}
    assert [r["key"] for r in cup["results"]] == [
        f"outbox/spring/cup.png/{n}.png" for n in range(3)
    ]


def test_a_preset_folder_fills_what_the_metadata_leaves(
    make_stack: Callable[..., Stack], picsart: respx.MockRouter
) -> None:
    stack = make_stack(InboxPresets=PRESETS)
    _picsart_answers(picsart, count=1)

    _drop(stack, "inbox/spring/a.png", count="2")  # preset folder, count from metadata
    _drop(stack, "inbox/summer/b.png")  # a folder that is no preset
    _drop(stack, "inbox/spring.png")  # named like a preset, but no folder

    jobs = {job["source"]["key"]: job["options"] for job in _finished(stack)}
    defaults = {
        "prompt": stack.cloud.environment["DEFAULT_PROMPT"],
        "count": int(stack.cloud.environment["DEFAULT_COUNT"]),
        "format": "JPG",
    }
    assert {k: jobs["inbox/spring/a.png"][k] for k in defaults} == {
        "prompt": "a spring meadow",
        "count": 2,
        "format": "WEBP",
    }
    assert {k: jobs["inbox/summer/b.png"][k] for k in defaults} == defaults
    assert {k: jobs["inbox/spring.png"][k] for k in defaults} == defaults


@pytest.mark.parametrize(
    ("metadata", "named"),
    [
        ({"count": "11"}, "x-amz-meta-count '11'"),
        ({"count": "three"}, "x-amz-meta-count 'three'"),
        ({"format": "gif"}, "x-amz-meta-format 'gif'"),
        ({"provider": "dalle"}, "x-amz-meta-provider 'dalle'"),
        ({"seed": "-1", "provider": "photoroom"}, "x-amz-meta-seed '-1'"),
        ({"prompt": ""}, "x-amz-meta-prompt ''"),
    ],
)
def test_invalid_metadata_fails_the_job_visibly(
    stack: Stack, picsart: respx.MockRouter, metadata: dict[str, str], named: str
) -> None:
    messages = _drop(stack, "inbox/cup.png", **metadata)
    assert _deliver(stack, messages) == set()  # redelivered: still one job

    assert stack.executions() == []
    assert picsart.calls.call_count == 0
    job = _only_job(stack)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "invalid_option"
    assert named in job["error"]["message"]
    events = stack.published_events()
    assert {e["detail-type"] for e in events} == {"Generation Failed"}
    assert {e["detail"]["job_id"] for e in events} == {job["id"]}
    manifest = stack.manifest("outbox/cup.png/")
    assert (manifest["job_id"], manifest["status"]) == (job["id"], "failed")
    assert manifest["error"] == job["error"]


@pytest.mark.parametrize(
    ("key", "metadata", "expected"),
    [
        ("inbox/cup.png", {"seed": "7"}, "x-amz-meta-seed: picsart does not support seed"),
        (
            "inbox/seeded/cup.png",
            {},
            "preset 'seeded' (folder inbox/seeded/): picsart does not support seed",
        ),
        (
            "inbox/cup.png",
            {"provider": "photoroom", "negative-prompt": "people"},
            "x-amz-meta-negative-prompt: photoroom ignores negative_prompt with model 3",
        ),
    ],
)
def test_options_the_provider_cannot_honour_are_refused(
    make_stack: Callable[..., Stack],
    picsart: respx.MockRouter,
    key: str,
    metadata: dict[str, str],
    expected: str,
) -> None:
    stack = make_stack(InboxPresets=PRESETS)

    _drop(stack, key, **metadata)

    assert stack.executions() == []
    assert picsart.calls.call_count == 0
    job = _only_job(stack)
    assert job["error"]["code"] == "unsupported_option"
    assert expected in job["error"]["message"]


@pytest.mark.parametrize(
    ("body", "metadata", "code"),
    [
        (b"these are not pixels", {}, "invalid_image"),
        (image_bytes("GIF"), {}, "invalid_image"),
        (png_claiming(40_000, 40_000), {}, "image_too_large"),  # a decompression bomb
        (PNG + bytes(30 * 1000 * 1000), {"provider": "photoroom"}, "image_too_large"),
    ],
    ids=["not-an-image", "gif", "too-many-pixels", "over-photoroom-30MB"],
)
def test_images_the_provider_would_refuse_fail_before_any_call(
    stack: Stack, picsart: respx.MockRouter, body: bytes, metadata: dict[str, str], code: str
) -> None:
    _drop(stack, "inbox/shelf/cup.png", body, **metadata)

    assert stack.executions() == []
    assert picsart.calls.call_count == 0
    job = _only_job(stack)
    assert job["status"] == "failed"
    assert job["error"]["code"] == code
    assert job["provider"] == metadata.get("provider", "picsart")
    (event,) = stack.published_events()
    assert event["detail"]["error"]["code"] == code
    assert stack.manifest("outbox/shelf/cup.png/")["error"] == job["error"]


def test_sources_that_differ_only_by_extension_get_their_own_folders(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    _picsart_answers(picsart, count=1)

    # Given mug.png and mug.jpg dropped in one folder
    _drop(stack, "inbox/spring/mug.png")
    _drop(stack, "inbox/spring/mug.jpg", image_bytes("JPEG"))

    # Then each has its own folder, named for its whole file name, and neither's results or
    # manifest overwrote the other's
    jobs = {job["source"]["key"]: job for job in _finished(stack)}
    assert {job["status"] for job in jobs.values()} == {"succeeded"}
    for name in ("mug.png", "mug.jpg"):
        prefix = f"outbox/spring/{name}/"
        job = jobs[f"inbox/spring/{name}"]
        assert [r["key"] for r in job["results"]] == [f"{prefix}0.jpg"]
        assert sorted(stack.result_keys(prefix)) == [f"{prefix}0.jpg", f"{prefix}manifest.json"]
        assert stack.manifest(prefix)["job_id"] == job["id"]
    assert stack.result_keys("outbox/spring/mug/") == []


def _key_of(size: int) -> str:
    """An inbox key of exactly `size` bytes in UTF-8 (non-ASCII, so bytes are not characters)."""
    head, tail = "inbox/long names/tasse café ", ".png"
    room = size - len(head.encode()) - len(tail)
    key = f"{head}{'é' * (room // 2)}{'x' * (room % 2)}{tail}"
    assert len(key.encode()) == size
    return key


def test_a_key_too_long_for_its_outbox_folder_fails_as_invalid_key(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    _picsart_answers(picsart)

    # Given an image whose key S3 takes (1015 bytes), but whose outbox manifest key would be
    # 1030 bytes: over S3's limit of 1024
    key = _key_of(1015)
    messages = _drop(stack, key, provider="photoroom")
    assert _deliver(stack, messages) == set()  # redelivered: still one job, no DLQ

    # Then it is a failed job, decided before any provider call or workflow execution
    assert stack.executions() == []
    assert picsart.calls.call_count == 0
    job = _only_job(stack)
    assert job["status"] == "failed"
    assert job["source"]["key"] == key
    assert job["provider"] == "photoroom"  # the options were read; the key is at fault
    assert job["error"]["code"] == "invalid_key"
    assert job["error"]["message"].startswith(
        "the key is 1015 bytes; the longest that fits is 1009 bytes"
    )
    events = stack.published_events()
    assert {e["detail-type"] for e in events} == {"Generation Failed"}
    assert {e["detail"]["job_id"] for e in events} == {job["id"]}
    assert {e["detail"]["error"]["code"] for e in events} == {"invalid_key"}

    # And its manifest is under the job id, nothing under outbox/, and every key written fits
    manifest = stack.manifest(f"results/{job['id']}/")
    assert (manifest["job_id"], manifest["status"]) == (job["id"], "failed")
    assert manifest["source"]["key"] == key
    assert manifest["error"] == job["error"]
    assert stack.result_keys("outbox/") == []
    assert stack.result_keys() == [f"results/{job['id']}/manifest.json"]


def test_the_longest_key_that_fits_keeps_its_results_beside_it(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    _picsart_answers(picsart, count=2)
    key = _key_of(1009)

    _drop(stack, key)

    (job,) = _finished(stack)
    assert job["status"] == "succeeded", job
    prefix = f"outbox/{key.removeprefix('inbox/')}/"
    assert sorted(stack.result_keys(prefix)) == [f"{prefix}{n}.jpg" for n in (0, 1)] + [
        f"{prefix}manifest.json"
    ]
    assert max(len(k.encode()) for k in stack.result_keys()) == 1024


def test_a_reupload_replaces_the_earlier_results(stack: Stack, picsart: respx.MockRouter) -> None:
    edit = _photoroom(picsart)
    s3 = boto3.client("s3", region_name=REGION)

    # Given a first version made three images
    _drop(stack, "inbox/mug.png", count="3", provider="photoroom")
    (first,) = _finished(stack)
    assert first["status"] == "succeeded", first
    assert edit.call_count == 3

    # When a changed version asks for one
    _drop(stack, "inbox/mug.png", PNG + b"v2", count="1", provider="photoroom")

    # Then its image is generated anew (the first version's 0.jpg is not "already stored"),
    # the first version's other images are gone, and the manifest is the new job's
    (second,) = [job for job in _finished(stack) if job["id"] != first["id"]]
    assert second["status"] == "succeeded", second
    assert edit.call_count == 4
    assert sorted(stack.result_keys("outbox/mug.png/")) == [
        "outbox/mug.png/0.jpg",
        "outbox/mug.png/manifest.json",
    ]
    head = s3.head_object(Bucket=stack.cloud.results_bucket, Key="outbox/mug.png/0.jpg")
    assert head["Metadata"]["job-id"] == second["id"]
    assert stack.manifest("outbox/mug.png/")["job_id"] == second["id"]


def test_a_job_failed_in_the_workflow_leaves_a_failed_manifest_and_no_old_images(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    submit = _picsart_answers(picsart, count=2)
    _drop(stack, "inbox/mug.png")
    assert _finished(stack)[0]["status"] == "succeeded"

    submit.mock(return_value=httpx.Response(400, json={"detail": "image is broken"}))
    _drop(stack, "inbox/mug.png", PNG + b"v2")

    (second,) = [job for job in _finished(stack) if job["status"] == "failed"]
    assert second["error"]["code"] == "provider_rejected"
    assert stack.result_keys("outbox/mug.png/") == ["outbox/mug.png/manifest.json"]
    manifest = stack.manifest("outbox/mug.png/")
    assert (manifest["job_id"], manifest["status"]) == (second["id"], "failed")
    assert manifest["error"] == second["error"]
    assert manifest["results"] == []


def test_results_never_trigger_generation(stack: Stack, picsart: respx.MockRouter) -> None:
    _picsart_answers(picsart, count=2)
    s3 = boto3.client("s3", region_name=REGION)

    # The results bucket notifies nobody
    config = s3.get_bucket_notification_configuration(Bucket=stack.cloud.results_bucket)
    assert not any(k.endswith("Configurations") and v for k, v in config.items())

    _drop(stack, "inbox/mug.png")
    (job,) = _finished(stack)
    assert job["status"] == "succeeded"
    assert stack.result_keys("outbox/mug.png/")

    # Writing the results and the manifest put nothing on the inbox queue
    assert _notifications(stack) == []
    assert stack.job_ids() == [job["id"]]


def test_reupload_is_a_new_job(stack: Stack, picsart: respx.MockRouter) -> None:
    _picsart_answers(picsart, count=1)
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
    assert stack.job_ids() == []


def test_a_bad_record_fails_alone(stack: Stack, picsart: respx.MockRouter) -> None:
    _picsart_answers(picsart)
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
    edit = _photoroom(picsart)

    _drop(stack, "inbox/cup.png", provider="photoroom")

    (job,) = _finished(stack)
    assert job["status"] == "succeeded", job
    assert job["provider"] == "photoroom"
    assert edit.call_count == 2


def test_a_failed_start_is_retried_by_redelivery(
    stack: Stack, picsart: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    _picsart_answers(picsart, count=1)
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


def test_a_canceled_inbox_job_leaves_a_canceled_manifest(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    picsart.post(f"{PICSART}/painting/replace-background").mock(return_value=submitted())
    picsart.get(f"{PICSART}/painting/inf-1").respond(200, json={"status": "processing"})
    _drop(stack, "inbox/spring/vase.png")
    job_id = _only_job(stack)["id"]
    deadline = time.monotonic() + 20
    while stack.job(job_id)["provider_job_id"] is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)

    # Any API key may cancel the stack's own jobs, as it may read them.
    status, body = stack.cancel_generation(job_id, api_key_id="anotherkey")

    assert status == 200
    manifest = stack.manifest("outbox/spring/vase.png/")
    assert (manifest["job_id"], manifest["status"]) == (job_id, "canceled")
    assert manifest["error"]["code"] == "canceled"
    assert body["status"] == "canceled"
