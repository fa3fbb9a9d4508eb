"""The fetch guards in the deployed shape: a Picsart job (faked by respx) whose result URLs
redirect where we never fetch from, grow past ResultMaxBytes, outnumber the images asked
for, or are not images, fails with nothing in the results bucket; and image URLs that a
provider must not be sent are a 422 naming the field."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import httpx
import pytest
import respx

from backdrop import fetch_guard
from backdrop_local.cloud import REGION
from tests.integration.conftest import CDN, PICSART, PNG, Stack, submitted

SUBMIT = f"{PICSART}/painting/replace-background"
POLL = f"{PICSART}/painting/inf-1"
BODY = {"image_url": "https://images.example.com/mug.png", "prompt": "marble counter"}
# A result URL as Picsart's CDN signs them: the query string must never reach the job.
SIGNED = "https://hop.picsart.test/inf-1/0.png?Signature=SECRET-SIGNATURE"


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://127.0.0.1:8080/x.png", "127.0.0.1 is a loopback address"),
        ("https://127.0.0.1/x.png", "127.0.0.1 is a loopback address"),
        ("https://[::1]/x.png", "::1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is the cloud metadata"),
        ("https://169.254.169.254/latest/", "169.254.169.254 is the cloud metadata address"),
        ("https://[fd00:ec2::254]/latest/", "fd00:ec2::254 is the cloud metadata address"),
        ("https://10.0.0.1/x.png", "10.0.0.1 is a private address"),
        ("http://cdn.picsart.test/inf-1/0.png", "http scheme (https only)"),
        ("https://metadata.google.internal/x", "metadata.google.internal is a local name"),
    ],
)
def test_a_redirect_where_we_never_fetch_fails_the_job(
    stack: Stack, picsart: respx.MockRouter, location: str, reason: str
) -> None:
    redirect = picsart.get(SIGNED).respond(302, headers={"location": location})

    job = _run(stack, picsart, [SIGNED], count=1)

    assert redirect.call_count == 1
    _assert_failed(
        stack, job, "result_blocked", f"result 0 was not downloaded: redirect 1: {reason}"
    )


def test_a_name_that_resolves_to_loopback_is_refused_when_connecting(
    stack: Stack, picsart: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a redirect to a name that passes every check on its face, but resolves to
    # loopback; respx lets that request through to the real connection pool
    monkeypatch.setattr(fetch_guard, "resolve", _dns({"evil.test": ["127.0.0.1"]}))
    picsart.route(host="evil.test").pass_through()
    picsart.get(SIGNED).respond(302, headers={"location": "https://evil.test/x.png"})

    job = _run(stack, picsart, [SIGNED], count=1)

    # Then the pool's network backend refused it before dialling
    _assert_failed(
        stack,
        job,
        "result_blocked",
        "result 0 was not downloaded: redirect 1: "
        "evil.test resolves to 127.0.0.1, which is a loopback address",
    )


def test_three_redirects_are_followed_and_a_fourth_is_not(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    # Result 0 reaches the CDN after three redirects, result 1 would need four
    for n in range(1, 4):
        target = f"https://hop.picsart.test/a/{n + 1}" if n < 3 else f"{CDN}/inf-1/0.png"
        picsart.get(f"https://hop.picsart.test/a/{n}").respond(302, headers={"location": target})
    for n in range(1, 5):
        target = f"https://hop.picsart.test/b/{n + 1}" if n < 4 else f"{CDN}/inf-1/1.png"
        picsart.get(f"https://hop.picsart.test/b/{n}").respond(307, headers={"location": target})

    three = _run(stack, picsart, ["https://hop.picsart.test/a/1"], count=1)
    assert stack.job(three)["status"] == "succeeded"
    assert stack.result_keys() == [f"results/{three}/0.jpg"]

    four = _run(stack, picsart, ["https://hop.picsart.test/b/1"], count=1)
    _assert_failed(
        stack, four, "result_blocked", "result 0 was not downloaded: more than 3 redirects"
    )
    assert stack.result_keys(f"results/{four}/") == []


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
def test_a_result_over_the_byte_cap_fails_the_job(
    make_stack: Callable[..., Stack], picsart: respx.MockRouter, declared: bool
) -> None:
    stack = make_stack(ResultMaxBytes="1000")
    body = PNG + bytes(5000)
    content: bytes | Iterator[bytes] = body if declared else _chunks(body, 256)
    picsart.get(SIGNED).respond(200, headers={"content-type": "image/png"}, content=content)

    job = _run(stack, picsart, [SIGNED], count=1)

    reason = "larger than 1000 bytes" + (f" ({len(body)})" if declared else "")
    _assert_failed(stack, job, "result_blocked", f"result 0 was not downloaded: {reason}")


def test_a_multipart_upload_past_the_cap_is_aborted(
    make_stack: Callable[..., Stack], picsart: respx.MockRouter
) -> None:
    # Given a cap above S3 multipart's threshold (8 MB) and a result streamed past it,
    # with no Content-Length to refuse it by
    stack = make_stack(ResultMaxBytes=str(9 * 1024 * 1024))
    big = PNG + bytes(12 * 1024 * 1024)
    picsart.get(SIGNED).mock(
        side_effect=lambda request: httpx.Response(
            200, headers={"content-type": "image/png"}, content=_chunks(big, 64 * 1024)
        )
    )

    job = _run(stack, picsart, [SIGNED], count=1)

    _assert_failed(
        stack, job, "result_blocked", f"result 0 was not downloaded: larger than {9 * 2**20} bytes"
    )
    # And the multipart upload begun for it was aborted: no parts left behind
    s3 = boto3.client("s3", region_name=REGION)
    assert s3.list_multipart_uploads(Bucket=stack.cloud.results_bucket).get("Uploads") is None


def test_more_result_urls_than_images_fails_without_downloading(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    files = picsart.route(host="extra.picsart.test").respond(
        200, headers={"content-type": "image/png"}, content=PNG
    )
    urls = [f"https://extra.picsart.test/inf-1/{i}.png" for i in range(3)]

    job = _run(stack, picsart, urls, count=2)

    _assert_failed(
        stack,
        job,
        "provider_protocol",
        "picsart answered 3 result URLs for 2 images; none was downloaded",
    )
    assert files.call_count == 0


@pytest.mark.parametrize(
    ("headers", "content", "message"),
    [
        (
            {"content-type": "text/html; charset=utf-8"},
            b"<html>login</html>",
            "result 0 is not an image (content-type text/html)",
        ),
        ({}, PNG, "result 0 is not an image (content-type missing)"),
        (
            {"content-type": "image/png"},
            b"<html>login</html>",
            "result 0 is not a JPEG, PNG or WEBP image (its bytes)",
        ),
        ({"content-type": "image/png"}, b"", "result 0 is not a JPEG, PNG or WEBP image"),
    ],
)
def test_a_result_that_is_not_an_image_fails_the_job(
    stack: Stack,
    picsart: respx.MockRouter,
    headers: dict[str, str],
    content: bytes,
    message: str,
) -> None:
    picsart.get(SIGNED).respond(200, headers=headers, content=content)

    job = _run(stack, picsart, [SIGNED], count=1)

    _assert_failed(stack, job, "provider_protocol", message)


def test_the_local_stack_fetches_from_loopback_but_never_metadata(
    make_stack: Callable[..., Stack], picsart: respx.MockRouter
) -> None:
    # Given the local stack's setting: its emulator serves results over http on loopback
    stack = make_stack(AllowLoopbackFetch="true")
    emulator = "http://127.0.0.1:4010/picsart/results/inf-1"
    picsart.get(f"{emulator}/0.png").respond(
        200, headers={"content-type": "image/png"}, content=PNG
    )
    picsart.get(f"{emulator}/1.png").respond(
        302, headers={"location": "http://169.254.169.254/latest/meta-data/"}
    )
    # And a presigned URL of the local AWS endpoint is a valid image_url there
    local_photo = "http://127.0.0.1:4566/inputs/mug.png?X-Amz-Signature=abc"

    ok = _run(stack, picsart, [f"{emulator}/0.png"], count=1, image_url=local_photo)
    metadata = _run(stack, picsart, [f"{emulator}/1.png"], count=1, image_url=local_photo)

    assert stack.job(ok)["status"] == "succeeded"
    _assert_failed(
        stack,
        metadata,
        "result_blocked",
        "result 0 was not downloaded: redirect 1: 169.254.169.254 is the cloud metadata address",
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://10.0.0.1/x.png", "must name a host, not an IP address"),
        ("https://localhost/x.png", "must name a public host: localhost is a local name"),
        ("http://example.com/x.png", "must be an https URL"),
        ("https://169.254.169.254/x", "must name a host, not an IP address"),
        ("http://169.254.169.254/latest/meta-data/", "must be an https URL"),
        ("https://[::1]/x.png", "must name a host, not an IP address"),
        ("http://127.0.0.1:4566/inputs/mug.png", "must be an https URL"),
        ("https://printer.local/x.png", "must name a public host: printer.local is a local"),
    ],
)
@pytest.mark.parametrize("field", ["image_url", "guidance.image_url"])
def test_an_image_url_the_provider_must_not_fetch_is_a_422_naming_the_field(
    stack: Stack, url: str, reason: str, field: str
) -> None:
    if field == "image_url":
        body: dict[str, Any] = {"image_url": url}
    else:
        body = {"image_url": BODY["image_url"], "guidance": {"image_url": url}}
    answer = stack.create_generation({**body, "provider": "photoroom"})

    assert answer["statusCode"] == 422
    error = json.loads(answer["body"])["error"]
    assert error["code"] == "invalid_request"
    assert [d["field"] for d in error["details"]] == [field]
    assert error["details"][0]["reason"].startswith(reason)
    assert stack.executions() == []


# --- helpers -------------------------------------------------------------------------------


def _run(
    stack: Stack,
    picsart: respx.MockRouter,
    urls: list[str],
    *,
    count: int,
    image_url: str = BODY["image_url"],
) -> str:
    """One Picsart job whose results are `urls`; returns its id once the execution ends."""
    picsart.post(SUBMIT).mock(return_value=submitted())
    data = [{"id": f"img-{i}", "url": url} for i, url in enumerate(urls)]
    picsart.get(POLL).respond(200, json={"status": "success", "data": data})
    answer = stack.create_generation({**BODY, "image_url": image_url, "count": count})
    assert answer["statusCode"] == 202, answer
    job_id: str = json.loads(answer["body"])["id"]
    stack.wait_for_execution(job_id)
    return job_id


def _assert_failed(stack: Stack, job_id: str, code: str, message: str) -> None:
    job = stack.job(job_id)
    assert job["status"] == "failed"
    assert job["error"]["code"] == code
    assert job["error"]["message"].startswith(message), job["error"]
    assert "SECRET-SIGNATURE" not in json.dumps(job)
    assert stack.result_keys(f"results/{job_id}/") == []
    events = stack.published_events()
    assert [e["detail"]["error"]["code"] for e in events if e["detail"]["job_id"] == job_id] == [
        code
    ]


def _dns(answers: dict[str, list[str]]) -> Callable[[str, int], list[str]]:
    def resolve(host: str, port: int) -> list[str]:
        return answers[host]

    return resolve


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
