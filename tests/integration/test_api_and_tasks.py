"""The API function and the workflow tasks, invoked with the sample events in events/."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest
import respx

from backdrop import config, executions
from backdrop.domain import GenerationOptions, ImageSource, JobError, NewJob
from backdrop.jobs import JobStore, source_job_id
from backdrop.workflow import provider_tasks
from backdrop_local import lambdas
from backdrop_local.cloud import REGION
from tests.conftest import load_event
from tests.integration.conftest import PICSART, PNG, Stack, submitted


def _api(stack: Stack, event: dict[str, object]) -> tuple[int, dict[str, object]]:
    payload, error = stack.invoke("ApiFunction", event)
    assert error is None, payload
    return payload["statusCode"], json.loads(payload["body"])


def test_invalid_bodies_get_422_with_one_entry_per_field(stack: Stack) -> None:
    event = load_event("api-create-generation")
    event["body"] = json.dumps(
        {"image_url": "https://example.com/a.png", "count": 11, "format": "GIF"}
    )

    status, body = _api(stack, event)

    assert status == 422
    error = body["error"]
    assert isinstance(error, dict)
    assert error["code"] == "invalid_request"
    assert {d["field"] for d in error["details"]} == {"count", "format"}
    assert stack.executions() == []


def test_malformed_json_is_400(stack: Stack) -> None:
    event = load_event("api-create-generation")
    event["body"] = '{"image_url": '

    status, body = _api(stack, event)

    assert status == 400
    assert body["error"] == {
        "code": "malformed_json",
        "message": "the body is not valid JSON",
        "details": [],
        "request_id": event["requestContext"]["requestId"],
    }


def test_exactly_one_image_is_enforced(stack: Stack) -> None:
    event = load_event("api-create-generation")
    event["body"] = json.dumps({"prompt": "beach"})

    status, body = _api(stack, event)

    assert status == 422
    assert "exactly one of image_url, image_key, image_base64, image" in json.dumps(body)


def test_unknown_and_malformed_ids_are_404(stack: Stack) -> None:
    for job_id in ("0f8fad5bd9cb469fa16570867728950e", "not-an-id", "..%2F.."):
        event = load_event("api-get-generation")
        event["path"] = f"/v1/generations/{job_id}"
        event["pathParameters"] = {"id": job_id}
        status, body = _api(stack, event)
        assert status == 404
        assert body["error"]["code"] == "not_found"
        assert body["error"]["message"] == "no generation has this id"


def test_sample_request_creates_a_queued_job(stack: Stack, picsart: respx.MockRouter) -> None:
    picsart.post(f"{PICSART}/painting/replace-background").mock(return_value=submitted())
    picsart.get(f"{PICSART}/painting/inf-1").respond(202, json={"status": "processing"})

    status, body = _api(stack, load_event("api-create-generation"))

    assert status == 202
    assert body["status"] == "queued"
    job = stack.job(str(body["id"]))
    assert (
        job["options"]
        | {
            "prompt": "a marble kitchen counter in morning light",
            "negative_prompt": None,
            "count": 3,
            "format": "PNG",
        }
        == job["options"]
    )
    assert job["source"]["url"] == "https://images.example.com/products/mug.png"


def test_a_retried_submit_does_not_pay_twice(stack: Stack, picsart: respx.MockRouter) -> None:
    # Given a job whose workflow is not running (made through the API, then its execution
    # left to fail on a provider that never answers the poll)
    submit = picsart.post(f"{PICSART}/painting/replace-background").mock(return_value=submitted())
    picsart.get(f"{PICSART}/painting/inf-1").respond(401)
    _, body = _api(stack, load_event("api-create-generation"))
    job_id = str(body["id"])
    stack.wait_for_execution(job_id)
    assert submit.call_count == 1

    # When Step Functions runs the Submit task again for it (a retry after a lost answer)
    task = load_event("workflow-submit")
    task["job_id"] = job_id
    payload, error = stack.invoke("SubmitFunction", task)

    # Then it answers with the provider job it already has, without a second submission
    assert error is None
    assert payload["provider_job_id"] == "inf-1"
    assert submit.call_count == 1


def test_task_input_is_validated(stack: Stack) -> None:
    payload, error = stack.invoke("SubmitFunction", {"job_id": "../../etc/passwd"})
    assert error == "Unhandled"
    assert payload["errorType"] == "ValidationError"


def test_images_in_the_bucket_go_to_the_provider_as_a_short_lived_url(
    stack: Stack, picsart: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    submit = picsart.post(f"{PICSART}/painting/replace-background").mock(return_value=submitted())
    picsart.get(f"{PICSART}/painting/inf-1").respond(202, json={"status": "processing"})
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=stack.cloud.input_bucket, Key="uploads/a.png", Body=PNG
    )
    event = load_event("api-create-generation")

    # A URL Picsart accepts is sent as image_url...
    event["body"] = json.dumps({"image_key": "uploads/a.png"})
    _api(stack, event)
    _wait_for(lambda: submit.call_count == 1)
    sent = submit.calls[0].request.content
    assert b'name="image_url"' in sent
    assert b"X-Amz-Signature" in sent
    assert PNG not in sent

    # ...one longer than Picsart's limit (long session tokens) sends the bytes instead
    monkeypatch.setattr(provider_tasks, "MAX_IMAGE_URL_LENGTH", 10)
    _api(stack, event)
    _wait_for(lambda: submit.call_count == 2)
    sent = submit.calls[1].request.content
    assert b'name="image_url"' not in sent
    assert b'name="image"; filename=' in sent
    assert PNG in sent


def _wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_job_fetches_the_version_it_was_created_for(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    # Given two versions of one inbox image, and a job for the first
    submit = picsart.post(f"{PICSART}/painting/replace-background").mock(return_value=submitted())
    picsart.get(f"{PICSART}/painting/inf-1").respond(202, json={"status": "processing"})
    s3 = boto3.client("s3", region_name=REGION)
    bucket = stack.cloud.input_bucket
    first = s3.put_object(Bucket=bucket, Key="inbox/a.png", Body=PNG)["VersionId"]
    s3.put_object(Bucket=bucket, Key="inbox/a.png", Body=PNG + b"newer")
    settings = config.read(config.StartSettings, os.environ)
    new = NewJob(
        id=source_job_id(bucket, "inbox/a.png", first),
        trigger="inbox",
        provider="picsart",
        source=ImageSource(bucket=bucket, key="inbox/a.png", version_id=first),
        options=GenerationOptions(prompt="p"),
    )
    executions.start(new, settings=settings, jobs=JobStore(settings))

    # Then the provider is sent a URL for that version, not the newest
    _wait_for(lambda: submit.call_count == 1)
    url = _multipart_field(submit.calls[0].request, "image_url")
    assert parse_qs(urlsplit(url).query)["versionId"] == [first]


def _multipart_field(request: httpx.Request, name: str) -> str:
    body = request.content.decode()
    marker = f'name="{name}"\r\n\r\n'
    start = body.index(marker) + len(marker)
    return body[start : body.index("\r\n", start)]


def test_a_failed_start_is_answered_503_and_announced(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATE_MACHINE_ARN", stack.cloud.state_machine_arn + "-gone")
    lambdas.reset()

    status, body = _api(stack, load_event("api-create-generation"))

    assert status == 503
    error = body["error"]
    assert isinstance(error, dict)
    assert error["code"] == "start_failed"
    job_id = error["details"][0]["id"]
    assert stack.job(job_id)["error"]["code"] == "start_failed"
    (event,) = stack.published_events()
    assert event["detail-type"] == "Generation Failed"
    assert event["detail"]["job_id"] == job_id


def _unstarted_submit(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, request: dict[str, object] | None = None
) -> dict[str, object]:
    """A queued job whose execution never started (its Submit is left to the test): the
    Submit task's input for it."""
    monkeypatch.setenv("STATE_MACHINE_ARN", stack.cloud.state_machine_arn + "-gone")
    lambdas.reset()
    event = load_event("api-create-generation")
    if request is not None:
        event["body"] = json.dumps(request)
    _, body = _api(stack, event)
    job_id = str(body["error"]["details"][0]["id"])  # failed to start: 503 with the job id
    # ... made queued again, as a job whose Submit is about to run
    boto3.client("dynamodb", region_name=REGION).update_item(
        TableName=stack.cloud.jobs_table,
        Key={"id": {"S": job_id}},
        UpdateExpression="SET #s = :q REMOVE #e",
        ExpressionAttributeNames={"#s": "status", "#e": "error"},
        ExpressionAttributeValues={":q": {"S": "queued"}},
    )
    return load_event("workflow-submit") | {"job_id": job_id}


def test_a_submit_retried_after_a_crash_before_the_record_does_not_submit_again(
    make_stack: Callable[..., Stack], picsart: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a job queued but not started (its start is left to this test) ...
    stack = make_stack()
    submit = picsart.post(f"{PICSART}/painting/replace-background").mock(return_value=submitted())
    task = _unstarted_submit(stack, monkeypatch)

    # When the provider accepts the submit but the function dies before recording it ...
    def crash(*_: object, **__: object) -> None:
        raise RuntimeError("the function was killed")

    original = JobStore.mark_running
    monkeypatch.setattr(JobStore, "mark_running", crash)
    _, error = stack.invoke("SubmitFunction", task)
    assert error == "Unhandled"
    assert submit.call_count == 1
    monkeypatch.setattr(JobStore, "mark_running", original)

    # ... and Step Functions runs Submit again (after its turn at the rate limit, if any)
    payload, error = stack.invoke("SubmitFunction", task)
    while error is None and payload["status"] == "queued":
        time.sleep(payload["wait_seconds"])
        payload, error = stack.invoke("SubmitFunction", task | {"step": payload})

    # Then it is not sent again: the outcome of the first is unknown, and says so
    assert error == "Unhandled"
    assert payload["errorType"] == "ProviderOutcomeUnknown"
    assert "not sent again" in payload["errorMessage"]
    assert submit.call_count == 1


def test_a_submit_the_provider_refused_may_be_sent_again(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    # A 503 is an answer: the provider did not take the job, so a retry may send it.
    submit = picsart.post(f"{PICSART}/painting/replace-background").mock(
        side_effect=[httpx.Response(503, json={"detail": "busy"}), submitted()]
    )
    picsart.get(f"{PICSART}/painting/inf-1").respond(200, json={"status": "processing"})
    _, body = _api(stack, load_event("api-create-generation"))

    job_id = str(body["id"])
    _wait_for(lambda: stack.job(job_id)["provider_job_id"] == "inf-1")
    assert submit.call_count == 2


def test_a_provider_that_is_down_is_tried_three_more_times_however_long_the_waits(
    make_stack: Callable[..., Stack], picsart: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = make_stack()
    submit = picsart.post(f"{PICSART}/painting/replace-background").respond(
        503, json={"detail": "busy"}
    )
    task = _unstarted_submit(stack, monkeypatch)

    # Each failed call comes back as a wait that keeps the job's turn and counts the try ...
    step, error = stack.invoke("SubmitFunction", task)
    assert error is None
    assert (step["status"], step["turn"], step["failures"]) == ("queued", True, 1)
    assert 1 <= step["wait_seconds"] <= 2

    # ... and the count survives any wait for a turn in between: the fourth failure is the job's
    payload, error = stack.invoke(
        "SubmitFunction", task | {"step": {"status": "queued", "turn": True, "failures": 3}}
    )
    assert error == "Unhandled"
    assert payload["errorType"] == "ProviderUnavailable"
    assert submit.call_count == 2
    # Never taken, so the mark is cleared: nothing says a paid call may be lost
    assert (
        JobStore(config.read(config.JobSettings, os.environ))
        .get(str(task["job_id"]))
        .submitting_since
        is None
    )


def _figures(out: str) -> list[tuple[str, dict[str, str]]]:
    """(metric, dimensions) of each embedded-metric line written."""
    found = []
    for line in out.splitlines():
        if '"_aws"' not in line:
            continue
        record = json.loads(line)
        (directive,) = record["_aws"]["CloudWatchMetrics"]
        names = {name for dims in directive["Dimensions"] for name in dims}
        for metric in directive["Metrics"]:
            found.append((metric["Name"], {name: record[name] for name in names}))
    return found


def test_jobs_are_counted_when_they_start_and_when_they_end_by_provider_and_code(
    stack: Stack,
    picsart: respx.MockRouter,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    picsart.post(f"{PICSART}/painting/replace-background").respond(401, json={"detail": "bad key"})

    _, body = _api(stack, load_event("api-create-generation"))
    stack.wait_for_execution(str(body["id"]))

    figures = _figures(capsys.readouterr().out)
    assert ("JobsStarted", {"service": "backdrop", "provider": "picsart"}) in figures
    assert (
        "JobsFailed",
        {"service": "backdrop", "provider": "picsart", "code": "provider_auth"},
    ) in figures
    assert (
        "ProviderErrors",
        {"service": "backdrop", "provider": "picsart", "code": "provider_auth"},
    ) in figures
    assert not any(name == "JobsSucceeded" for name, _ in figures)


def test_a_generate_of_a_canceled_job_asks_the_provider_for_nothing(
    make_stack: Callable[..., Stack], picsart: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cancel whose StopExecution failed leaves the workflow running: its next Generate
    # must not pay for images nobody wants.
    stack = make_stack()
    edit = picsart.get("https://image-api.photoroom.com/v2/edit").respond(200, content=PNG)
    request = {"image_url": "https://images.example.com/a.png", "provider": "photoroom"}
    task = _unstarted_submit(stack, monkeypatch, request)
    job_id = str(task["job_id"])
    stack.store().mark_canceled(job_id, JobError(code="canceled", message="canceled"))

    payload, error = stack.invoke(
        "GenerateFunction", load_event("workflow-generate") | {"job_id": job_id}
    )

    assert error == "Unhandled"
    assert payload["errorType"] == "JobConflict"
    assert edit.call_count == 0
    assert stack.job(job_id)["status"] == "canceled"
