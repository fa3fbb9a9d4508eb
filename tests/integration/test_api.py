"""The HTTPS API function, invoked through Lambda with API Gateway events: one test per rule."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest
import respx

from backdrop import executions
from backdrop.contracts.requests import MAX_INLINE_IMAGE_BYTES
from backdrop_local.cloud import REGION
from tests.conftest import load_event
from tests.integration.conftest import PICSART, PNG, Stack, processing, submitted

BOUNDARY = "----backdrop-test-boundary"


def _call(
    stack: Stack,
    body: dict[str, Any] | str | bytes | None = None,
    *,
    path: str = "/v1/generations",
    method: str = "POST",
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    content_type: str = "application/json",
    api_key_id: str = "k1l2m3n4o5",
) -> tuple[int, dict[str, str], Any]:
    event = load_event("api-create-generation")
    event["path"] = event["resource"] = event["requestContext"]["resourcePath"] = path
    event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    all_headers = {"Content-Type": content_type, "x-api-key": "k", **(headers or {})}
    event["headers"] = all_headers
    event["multiValueHeaders"] = {k: [v] for k, v in all_headers.items()}
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in (query or {}).items()} or None
    event["requestContext"]["identity"]["apiKeyId"] = api_key_id
    if isinstance(body, bytes):
        event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    elif isinstance(body, dict):
        event["body"] = json.dumps(body)
    else:
        event["body"] = body
    payload, error = stack.invoke("ApiFunction", event)
    assert error is None, payload
    answer_headers = {k: v[0] for k, v in (payload.get("multiValueHeaders") or {}).items()}
    answer_headers |= payload.get("headers") or {}
    text = payload.get("body") or "null"
    is_json = answer_headers.get("Content-Type", "").endswith("json")
    return payload["statusCode"], answer_headers, json.loads(text) if is_json else text


def _multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    for name, (filename, data, kind) in files.items():
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: {kind}\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


@pytest.fixture
def provider(picsart: respx.MockRouter) -> respx.MockRouter:
    picsart.post(f"{PICSART}/painting/replace-background").mock(return_value=submitted())
    picsart.get(f"{PICSART}/painting/inf-1").mock(return_value=processing())
    return picsart


def _uploads(stack: Stack) -> dict[str, bytes]:
    s3 = boto3.client("s3", region_name=REGION)
    listed = s3.list_objects_v2(Bucket=stack.cloud.input_bucket, Prefix="uploads/")
    return {
        item["Key"]: s3.get_object(Bucket=stack.cloud.input_bucket, Key=item["Key"])["Body"].read()
        for item in listed.get("Contents", [])
    }


def _error(answer: Any) -> dict[str, Any]:
    assert set(answer) == {"error"}
    error = answer["error"]
    assert set(error) == {"code", "message", "details", "request_id"}
    return error  # type: ignore[no-any-return]


# ---- the image: exactly one of url, key, inline -------------------------------------------


def test_an_inline_base64_photo_is_stored_and_pinned(stack: Stack, provider: Any) -> None:
    status, headers, answer = _call(stack, {"image_base64": base64.b64encode(PNG).decode()})

    assert status == 202
    assert headers["Location"] == f"/v1/generations/{answer['id']}"
    job = stack.job(answer["id"])
    (stored,) = _uploads(stack).items()
    assert stored == (job["source"]["key"], PNG)
    assert job["source"]["key"].endswith(".png")
    assert job["source"]["version_id"]


def test_a_multipart_photo_and_text_fields_make_a_job(stack: Stack, provider: Any) -> None:
    body = _multipart(
        {"count": "3", "format": "WEBP", "metadata": json.dumps({"sku": "MUG-1"})},
        {"image": ("mug.png", PNG, "image/png")},
    )

    status, _, answer = _call(stack, body, content_type=MULTIPART)

    assert status == 202, answer
    job = stack.job(answer["id"])
    assert (job["options"]["count"], job["options"]["format"]) == (3, "WEBP")
    assert job["metadata"] == {"sku": "MUG-1"}
    assert list(_uploads(stack).values()) == [PNG]


def test_bytes_that_are_not_an_image_are_refused_before_anything_is_stored(stack: Stack) -> None:
    body = _multipart({}, {"image": ("mug.png", b"%PDF-1.7 not a photo", "image/png")})

    status, _, answer = _call(stack, body, content_type=MULTIPART)

    assert status == 422
    error = _error(answer)
    assert error["code"] == "invalid_image"
    assert error["details"][0]["field"] == "image"
    assert _uploads(stack) == {}
    assert stack.executions() == []


def test_an_inline_photo_over_the_limit_is_413_naming_the_upload_route(stack: Stack) -> None:
    too_big = b"\x89PNG" + bytes(MAX_INLINE_IMAGE_BYTES)

    status, _, answer = _call(stack, {"image_base64": base64.b64encode(too_big).decode()})

    assert status == 413
    error = _error(answer)
    assert error["code"] == "payload_too_large"
    assert "POST /v1/uploads" in error["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"image_base64": "not base64!"}, "image_base64"),
        ({"image_url": "ftp://example.com/a.png"}, "image_url"),
        ({"image_url": "https://example.com/" + "a" * 2100}, "body"),
        ({"image_url": "https://example.com/a.png", "image_key": "uploads/a.png"}, "body"),
        ({"image_url": "https://example.com/a.png", "colour": "red"}, "colour"),
        ({"image_url": "https://example.com/a.png", "count": 0}, "count"),
        ({"image_url": "https://example.com/a.png", "metadata": {"bad key": "x"}}, "metadata"),
        ({"image_url": "https://example.com/a.png", "metadata": "{not json"}, "metadata"),
    ],
)
def test_each_invalid_field_is_named(stack: Stack, body: dict[str, Any], field: str) -> None:
    status, _, answer = _call(stack, body)

    assert status == 422
    error = _error(answer)
    assert error["code"] == "invalid_request"
    assert any(d["field"].startswith(field) for d in error["details"]), error
    assert all(d["reason"] for d in error["details"])
    assert stack.executions() == []


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("text/plain", "image_url=https://example.com/a.png"), ("image/png", PNG)],
)
def test_other_content_types_are_415(stack: Stack, content_type: str, body: Any) -> None:
    status, _, answer = _call(stack, body, content_type=content_type)

    assert status == 415
    assert _error(answer)["code"] == "unsupported_media_type"


def test_a_multipart_body_without_a_boundary_is_400(stack: Stack) -> None:
    status, _, answer = _call(stack, b"garbage", content_type="multipart/form-data")

    assert status == 400
    assert _error(answer)["code"] == "malformed_body"


def test_a_multipart_body_without_parts_names_the_missing_image(stack: Stack) -> None:
    status, _, answer = _call(stack, b"garbage", content_type=MULTIPART)

    assert status == 422
    assert "exactly one of" in _error(answer)["details"][0]["reason"]


# ---- uploads --------------------------------------------------------------------------------


def test_an_upload_form_is_limited_to_the_type_the_size_and_uploads(stack: Stack) -> None:
    status, _, ticket = _call(stack, {"content_type": "image/png"}, path="/v1/uploads")

    assert status == 201
    assert ticket["image_key"].startswith("uploads/")
    assert ticket["image_key"].endswith(".png")
    fields = ticket["upload"]["fields"]
    assert fields["key"] == ticket["image_key"]
    policy = json.loads(base64.b64decode(fields["policy"]))
    conditions = policy["conditions"]
    assert {"Content-Type": "image/png"} in conditions
    assert ["content-length-range", 1, 30 * 1024 * 1024] in conditions
    assert ticket["max_bytes"] == 30 * 1024 * 1024


def test_an_announced_size_is_the_only_size_the_form_takes(stack: Stack) -> None:
    _, _, ticket = _call(
        stack, {"content_type": "image/jpeg", "content_length": 1234}, path="/v1/uploads"
    )
    policy = json.loads(base64.b64decode(ticket["upload"]["fields"]["policy"]))
    assert ["content-length-range", 1234, 1234] in policy["conditions"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"content_type": "image/gif"}, "content_type"),
        ({"content_type": "image/png", "content_length": 31 * 1024 * 1024}, "content_length"),
        ({}, "content_type"),
    ],
)
def test_bad_upload_requests_are_422(stack: Stack, body: dict[str, Any], field: str) -> None:
    status, _, answer = _call(stack, body, path="/v1/uploads")

    assert status == 422
    assert [d["field"] for d in _error(answer)["details"]] == [field]


def test_an_uploaded_photo_is_used_by_its_key(stack: Stack, provider: Any) -> None:
    _, _, ticket = _call(stack, {"content_type": "image/png"}, path="/v1/uploads")
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=stack.cloud.input_bucket, Key=ticket["image_key"], Body=PNG
    )

    status, _, answer = _call(stack, {"image_key": ticket["image_key"]})

    assert status == 202
    assert stack.job(answer["id"])["source"]["key"] == ticket["image_key"]


@pytest.mark.parametrize(
    ("key", "content", "code", "reason"),
    [
        ("inbox/mug.png", PNG, "invalid_request", "POST /v1/uploads"),
        ("uploads/never-sent.png", None, "invalid_request", "nothing has been uploaded"),
        ("uploads/notes.png", b"just some text", "invalid_image", ""),
    ],
)
def test_bad_image_keys_are_422(
    stack: Stack, key: str, content: bytes | None, code: str, reason: str
) -> None:
    if content is not None:
        boto3.client("s3", region_name=REGION).put_object(
            Bucket=stack.cloud.input_bucket, Key=key, Body=content
        )

    status, _, answer = _call(stack, {"image_key": key})

    assert status == 422
    error = _error(answer)
    assert error["code"] == code
    assert error["details"][0]["field"] == "image_key"
    assert reason in error["details"][0]["reason"]
    assert stack.executions() == []


def test_uploads_never_start_an_inbox_job(stack: Stack) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)

    before = _queued(sqs, stack.cloud.inbox_queue_url)  # S3's test event, when configured

    s3.put_object(Bucket=stack.cloud.input_bucket, Key="uploads/a.png", Body=PNG)
    assert _queued(sqs, stack.cloud.inbox_queue_url) == before

    # The same write under inbox/ is noticed: the check above could have failed.
    s3.put_object(Bucket=stack.cloud.input_bucket, Key="inbox/a.png", Body=PNG)
    assert _queued(sqs, stack.cloud.inbox_queue_url) == before + 1


def _queued(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


# ---- Idempotency-Key ------------------------------------------------------------------------


def test_a_retry_with_the_same_key_answers_the_first_job(
    stack: Stack, provider: respx.MockRouter
) -> None:
    body = {"image_url": "https://example.com/a.png", "metadata": {"order": "42"}}
    key = {"Idempotency-Key": "order-42"}

    first = _call(stack, body, headers=key)
    again = _call(stack, body, headers=key)

    assert first[0] == again[0] == 202
    assert first[2]["id"] == again[2]["id"]
    assert len(stack.executions()) == 1
    # A different caller's identical key is its own request.
    other = _call(stack, body, headers=key, api_key_id="another-key")
    assert other[2]["id"] != first[2]["id"]
    assert len(stack.executions()) == 2


def test_the_same_key_with_another_body_is_refused(stack: Stack, provider: Any) -> None:
    key = {"Idempotency-Key": "order-43"}
    _call(stack, {"image_url": "https://example.com/a.png"}, headers=key)

    status, _, answer = _call(stack, {"image_url": "https://example.com/b.png"}, headers=key)

    assert status == 422
    assert _error(answer)["code"] == "idempotency_key_reused"
    assert len(stack.executions()) == 1


def test_without_a_key_every_request_is_a_new_job(stack: Stack, provider: Any) -> None:
    body = {"image_url": "https://example.com/a.png"}
    assert _call(stack, body)[2]["id"] != _call(stack, body)[2]["id"]


# ---- errors, CORS, documents ------------------------------------------------------------------


def test_an_unexpected_failure_is_500_without_internals(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("connection string postgres://admin:hunter2@db")

    monkeypatch.setattr(executions, "start", broken)

    status, _, answer = _call(stack, {"image_url": "https://example.com/a.png"})

    assert status == 500
    assert _error(answer)["code"] == "internal_error"
    assert "hunter2" not in json.dumps(answer)


def test_an_unknown_route_is_404_in_the_error_shape(stack: Stack) -> None:
    status, _, answer = _call(stack, None, path="/v1/nothing", method="GET")
    assert status == 404
    assert _error(answer)["code"] == "not_found"


def test_the_openapi_document_and_docs_are_served(stack: Stack) -> None:
    status, _, document = _call(stack, None, path="/v1/openapi.json", method="GET")
    assert status == 200
    assert set(document["paths"]) >= {"/v1/generations", "/v1/uploads"}

    status, headers, page = _call(stack, None, path="/v1/docs", method="GET")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert "swagger" in page.lower()


# Found by the schemathesis run (tests/e2e/test_api_schema.py); kept as plain regressions.


def test_a_body_that_is_not_utf8_is_400(stack: Stack) -> None:
    status, _, answer = _call(stack, b"F\xff\xfe", path="/v1/uploads")

    assert status == 400
    assert _error(answer)["code"] == "malformed_json"


def test_a_cursor_outside_ascii_is_422(stack: Stack) -> None:
    status, _, answer = _call(
        stack, None, path="/v1/generations", method="GET", query={"cursor": "¶Þ\U0010105c"}
    )

    assert status == 422
    assert [d["field"] for d in _error(answer)["details"]] == ["cursor"]
