"""The HTTPS API over HTTP, as a client with curl would use it: the upload flow end to end,
and the gateway's own answers (key, routes, sizes, CORS) in the one error shape."""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.conftest import Local, sample


def _error(answer: httpx.Response) -> dict[str, Any]:
    error = answer.json()["error"]
    assert set(error) == {"code", "message", "details", "request_id"}
    # The id in the body is the one in the header, so either can be quoted.
    assert error["request_id"] == answer.headers["x-amzn-RequestId"]
    return error  # type: ignore[no-any-return]


def test_upload_then_generate_by_key_then_download(stack: Local) -> None:
    photo = sample("sneaker")
    # 1. Ask for an upload form.
    ticket = stack.api.post(
        "/v1/uploads", json={"content_type": "image/png", "content_length": len(photo)}
    )
    assert ticket.status_code == 201, ticket.text
    form = ticket.json()

    # 2. Send the file straight to S3 (no API key: the form is the permission).
    sent = httpx.post(
        form["upload"]["url"],
        data=form["upload"]["fields"],
        files={"file": ("sneaker.png", photo, "image/png")},
    )
    assert sent.status_code in (200, 201, 204), sent.text

    # 3. Generate from it, 4. poll, 5. download.
    created = stack.api.post(
        "/v1/generations", json={"image_key": form["image_key"], "count": 2, "format": "PNG"}
    )
    assert created.status_code == 202, created.text
    assert created.headers["Location"] == f"/v1/generations/{created.json()['id']}"
    job = stack.wait_for_job(created.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["request"]["image_key"] == form["image_key"]
    images = stack.download(job)
    assert len(images) == 2
    assert all(image.startswith(b"\x89PNG") for image in images)


def test_a_photo_sent_inline_as_multipart(stack: Local) -> None:
    created = stack.api.post(
        "/v1/generations",
        data={"count": "1", "metadata": '{"sku": "BOTTLE-7"}'},
        files={"image": ("bottle.png", sample("bottle"), "image/png")},
    )
    assert created.status_code == 202, created.text
    job = stack.wait_for_job(created.json()["id"])
    assert job["status"] == "succeeded"
    assert job["metadata"] == {"sku": "BOTTLE-7"}
    event = next(e for e in stack.events() if e["detail"].get("job_id") == job["id"])
    assert event["detail"]["metadata"] == {"sku": "BOTTLE-7"}


def test_an_idempotent_retry_makes_no_second_provider_call(stack: Local) -> None:
    body = {"image_url": _public_url(stack), "count": 1}
    headers = {"Idempotency-Key": "e2e-retry-1"}

    first = stack.api.post("/v1/generations", json=body, headers=headers)
    stack.wait_for_job(first.json()["id"])
    again = stack.api.post("/v1/generations", json=body, headers=headers)

    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert stack.stats()["picsart"]["submissions"] == 1


def test_the_gateway_answers_in_the_error_shape(stack: Local) -> None:
    base = stack.ready["api_url"]

    no_key = httpx.post(f"{base}/v1/generations", json={})
    assert no_key.status_code == 403
    assert _error(no_key)["code"] == "forbidden"

    no_route = stack.api.get("/v2/anything")
    assert no_route.status_code == 404
    assert _error(no_route)["code"] == "not_found"

    too_large = stack.api.post(
        "/v1/generations",
        content=b"x" * (10 * 1024 * 1024 + 1),
        headers={"Content-Type": "application/json"},
    )
    assert too_large.status_code == 413
    assert "POST /v1/uploads" in _error(too_large)["message"]

    invalid = stack.api.post("/v1/generations", json={"count": 99})
    assert invalid.status_code == 422
    assert {d["field"] for d in _error(invalid)["details"]} >= {"count"}


def test_every_answer_names_its_request(stack: Local) -> None:
    for answer in (
        stack.api.get("/v1/generations"),
        stack.api.get("/v1/openapi.json"),
        httpx.get(f"{stack.ready['api_url']}/v1/generations"),
    ):
        assert answer.headers["x-amzn-RequestId"]


def test_a_browser_preflight_needs_no_key(stack: Local) -> None:
    answer = httpx.options(
        f"{stack.ready['api_url']}/v1/generations",
        headers={"Origin": "https://shop.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Origin"] == "*"


def test_docs_are_served(stack: Local) -> None:
    page = stack.api.get("/v1/docs")
    assert page.status_code == 200
    assert "swagger-ui" in page.text.lower()


def _public_url(stack: Local) -> str:
    stack.upload("public/flow.png", sample("mug"))
    return str(
        stack.client("s3").generate_presigned_url(
            "get_object", Params={"Bucket": stack.ready["input_bucket"], "Key": "public/flow.png"}
        )
    )
