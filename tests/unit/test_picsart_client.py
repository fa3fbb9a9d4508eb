"""PicsartClient against a faked Picsart (respx) through the real httpx client.

What is checked here is what providers.md (Picsart section) promises: the multipart
submit, the poll outcomes, the status-code-to-error mapping, the logged answer headers,
and that the API key never leaks into logs or exception messages.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import respx
from aws_lambda_powertools import Logger
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.formparser import parse_form_data

from backdrop.providers import picsart
from backdrop.providers.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderJobFailed,
    ProviderOutcomeUnknown,
    ProviderProtocolError,
    ProviderQuotaExceeded,
    ProviderRejected,
    ProviderThrottled,
    ProviderUnavailable,
)
from backdrop.providers.picsart import DEFAULT_BASE_URL, PicsartClient, PollOutcome

BASE = "https://picsart.example.test/v1"
SUBMIT_URL = f"{BASE}/painting/replace-background"
INFERENCE_ID = "1116b57cb-1999-4bfd-8c42-c739a006a111"
POLL_URL = f"{BASE}/painting/{INFERENCE_ID}"
BALANCE_URL = f"{BASE}/balance"
# Distinctive, so that finding it anywhere in output is unambiguous.
API_KEY = "pk-TEST-7f3c9e1ad2b84c55-NEVER-LOG-ME"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452")

# Headers Picsart puts on every answer (spec: components.responses.*.headers).
ANSWER_HEADERS = {
    "X-Picsart-Correlation-Id": "corr-5b1d0e",
    "X-Picsart-Ratelimit-Available": "499",
    "X-Picsart-Ratelimit-Limit": "500",
    "X-Picsart-Ratelimit-Reset-Time": "42",
    "X-Picsart-Credit-Available": "1234",
}


# --------------------------------------------------------------------------- helpers


def parse_multipart(request: httpx.Request) -> tuple[MultiDict[str, str], dict[str, bytes]]:
    """Parse a captured multipart/form-data request as a server would (werkzeug)."""
    content_type = request.headers["content-type"]
    assert content_type.startswith("multipart/form-data; boundary="), content_type
    body = request.read()
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    _stream, form, files = parse_form_data(environ, silent=False)
    file_parts: dict[str, bytes] = {}
    for name, storage in files.items(multi=True):
        assert isinstance(storage, FileStorage)
        assert name not in file_parts, f"file part {name!r} sent twice"
        file_parts[name] = storage.read()
    return form, file_parts


def call(client: PicsartClient, operation: str) -> Any:
    """Run one client operation with valid arguments."""
    if operation == "submit":
        return client.replace_background(
            prompt="a marble table", image_url="https://cdn.test/p.png"
        )
    if operation == "poll":
        return client.poll(INFERENCE_ID)
    assert operation == "balance"
    return client.balance()


OPERATIONS = {
    "submit": ("POST", SUBMIT_URL),
    "poll": ("GET", POLL_URL),
    "balance": ("GET", BALANCE_URL),
}


def error_body(status: int) -> dict[str, Any]:
    return {"code": status, "message": f"message {status}", "detail": f"detail for {status}"}


def all_text_of(exc: BaseException) -> str:
    """Everything an exception (and its chain) could show in a log or an errorMessage."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current), repr(current.args)]
        parts += [str(value) for value in vars(current).values()]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


class _CurrentStdout(io.StringIO):
    """A stream that writes to sys.stdout as it is at the time of the write."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    # assert_all_mocked (the default) makes any request we did not expect fail the test.
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    # One real client for the module (building one loads the CA bundle); respx patches
    # the transport underneath it, so each test's mock still applies.
    with httpx.Client() as client:
        yield client


@pytest.fixture
def client(http: httpx.Client) -> PicsartClient:
    return PicsartClient(API_KEY, base_url=BASE, http=http)


@pytest.fixture
def log_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[[], list[dict[str, Any]]]:
    """The client's Powertools log lines, as parsed JSON.

    The module's child logger writes through whatever parent Logger was configured first,
    bound to the sys.stdout of that moment, which capsys never sees. So each test gets its
    own Powertools Logger writing to whatever sys.stdout is at write time (capsys's, in
    the test). A fresh service name stops Powertools reusing a configured logger.
    """
    logger = Logger(
        service=f"picsart-test-{uuid.uuid4().hex}", level="DEBUG", stream=_CurrentStdout()
    )
    monkeypatch.setattr(picsart, "logger", logger)

    def read() -> list[dict[str, Any]]:
        lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
        return [json.loads(line) for line in lines]

    return read


# --------------------------------------------------------------------------- construction


@pytest.mark.parametrize("key", ["", None])
def test_missing_api_key_is_an_auth_error(key: str | None) -> None:
    # Given no configured key / When the client is built / Then it refuses at once
    with pytest.raises(ProviderAuthError) as caught:
        PicsartClient(key)  # type: ignore[arg-type]
    assert caught.value.code == "provider_auth"
    assert caught.value.provider == "picsart"


def test_default_base_url_is_picsarts_genai_api(router: respx.MockRouter) -> None:
    # Given a client with no base_url
    route = router.get("https://genai-api.picsart.io/v1/balance").respond(200, json={"credits": 7})
    with httpx.Client() as http:
        client = PicsartClient(API_KEY, http=http)
        # When it asks for the balance / Then it calls the production host from providers.md
        assert client.balance() == 7
    assert route.call_count == 1
    assert DEFAULT_BASE_URL == "https://genai-api.picsart.io/v1"


def test_trailing_slash_in_base_url_is_tolerated(
    router: respx.MockRouter, http: httpx.Client
) -> None:
    route = router.get(BALANCE_URL).respond(200, json={"credits": 1})
    assert PicsartClient(API_KEY, base_url=BASE + "/", http=http).balance() == 1
    assert route.call_count == 1


# --------------------------------------------------------------------------- submit


def test_submit_with_image_url_sends_every_field_as_multipart(
    router: respx.MockRouter, client: PicsartClient
) -> None:
    # Given Picsart accepts the job
    route = router.post(SUBMIT_URL).respond(
        202, json={"status": "processing", "inference_id": INFERENCE_ID}
    )
    # When we submit with an image URL and every option
    inference_id = client.replace_background(
        prompt="a marble table in soft light",
        image_url="https://cdn.test/products/p-1.png",
        negative_prompt="people, text",
        count=4,
        format="PNG",
    )
    # Then the id comes back and exactly one multipart request carried every field
    assert inference_id == INFERENCE_ID
    assert route.call_count == 1
    request = route.calls.last.request
    assert request.method == "POST"
    assert str(request.url) == SUBMIT_URL
    form, files = parse_multipart(request)
    assert form.to_dict(flat=False) == {
        "prompt": ["a marble table in soft light"],
        "image_url": ["https://cdn.test/products/p-1.png"],
        "negative_prompt": ["people, text"],
        "count": ["4"],
        "format": ["PNG"],
        "mode": ["async"],
    }
    assert files == {}


def test_submit_sends_key_and_async_preference_headers(
    router: respx.MockRouter, client: PicsartClient
) -> None:
    route = router.post(SUBMIT_URL).respond(202, json={"inference_id": INFERENCE_ID})
    client.replace_background(prompt="p", image_url="https://cdn.test/p.png")
    headers = route.calls.last.request.headers
    assert headers["X-Picsart-API-Key"] == API_KEY
    assert headers["Prefer"] == "respond-async"
    assert headers["Accept"] == "application/json"


def test_submit_with_image_bytes_sends_a_file_part_and_defaults(
    router: respx.MockRouter, client: PicsartClient
) -> None:
    route = router.post(SUBMIT_URL).respond(202, json={"inference_id": INFERENCE_ID})
    # When we submit raw bytes and no options
    client.replace_background(prompt="a beach at dusk", image=PNG)
    # Then the bytes travel as the `image` file part, with no image_url and the defaults
    form, files = parse_multipart(route.calls.last.request)
    assert files == {"image": PNG}
    assert form.to_dict(flat=False) == {
        "prompt": ["a beach at dusk"],
        "count": ["2"],
        "format": ["JPG"],
        "mode": ["async"],
    }


@pytest.mark.parametrize("negative_prompt", [None, ""])
def test_submit_omits_negative_prompt_unless_given(
    router: respx.MockRouter, client: PicsartClient, negative_prompt: str | None
) -> None:
    route = router.post(SUBMIT_URL).respond(202, json={"inference_id": INFERENCE_ID})
    client.replace_background(
        prompt="p", image_url="https://cdn.test/p.png", negative_prompt=negative_prompt
    )
    form, _files = parse_multipart(route.calls.last.request)
    assert "negative_prompt" not in form


@pytest.mark.parametrize(
    "sources",
    [
        pytest.param({}, id="neither"),
        pytest.param({"image_url": "https://cdn.test/p.png", "image": PNG}, id="both"),
    ],
)
def test_submit_needs_exactly_one_image_source(
    router: respx.MockRouter, client: PicsartClient, sources: dict[str, Any]
) -> None:
    route = router.post(SUBMIT_URL).respond(202, json={"inference_id": INFERENCE_ID})
    with pytest.raises(ValueError, match="exactly one"):
        client.replace_background(prompt="p", **sources)
    # Nothing was sent: a bad call must not spend credits.
    assert route.call_count == 0


@pytest.mark.parametrize("status", [200, 202])
@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"status": "processing", "inference_id": "inf-1"}, id="inference_id"),
        pytest.param({"status": "processing", "transaction_id": "inf-1"}, id="transaction_id"),
        pytest.param(
            {"status": "processing", "inference_id": "inf-1", "data": []}, id="with-empty-data"
        ),
        pytest.param(
            {"status": "processing", "inference_id": "inf-1", "eta_seconds": 4, "new": {}},
            id="unknown-fields",
        ),
    ],
)
def test_submit_returns_the_id_under_either_name(
    router: respx.MockRouter, client: PicsartClient, status: int, body: dict[str, Any]
) -> None:
    router.post(SUBMIT_URL).respond(status, json=body)
    assert client.replace_background(prompt="p", image_url="https://cdn.test/p.png") == "inf-1"


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"status": "processing"}', id="no-id"),
        pytest.param(b'{"status": "processing", "inference_id": null}', id="null-id"),
        pytest.param(b'{"status": "processing", "inference_id": ""}', id="empty-id"),
        pytest.param(b'{"status": "success", "data": [{"url": "https://x"}]}', id="sync-result"),
        pytest.param(b"<html>accepted</html>", id="not-json"),
        pytest.param(b"", id="empty-body"),
    ],
)
def test_submit_without_an_id_is_a_protocol_error(
    router: respx.MockRouter, client: PicsartClient, content: bytes
) -> None:
    router.post(SUBMIT_URL).respond(202, content=content)
    with pytest.raises(ProviderProtocolError) as caught:
        client.replace_background(prompt="p", image_url="https://cdn.test/p.png")
    assert caught.value.code == "provider_protocol"


# --------------------------------------------------------------------------- poll


def test_poll_while_processing(router: respx.MockRouter, client: PicsartClient) -> None:
    # Given the job is still running (202)
    route = router.get(POLL_URL).respond(
        202, json={"status": "processing", "inference_id": INFERENCE_ID}
    )
    # When polled / Then it says so, with no urls, from a GET on the inference path
    assert client.poll(INFERENCE_ID) == PollOutcome("processing")
    assert client.poll(INFERENCE_ID).urls == ()
    request = route.calls.last.request
    assert request.method == "GET"
    assert request.headers["X-Picsart-API-Key"] == API_KEY


def test_poll_success_returns_urls_in_order(
    router: respx.MockRouter, client: PicsartClient
) -> None:
    router.get(POLL_URL).respond(
        200,
        json={
            "status": "success",
            "data": [
                {"id": "r-1", "url": "https://cdn.picsart.test/3.jpg"},
                {"id": None, "url": "https://cdn.picsart.test/1.jpg"},
                {"url": "https://cdn.picsart.test/2.jpg"},
            ],
        },
    )
    outcome = client.poll(INFERENCE_ID)
    assert outcome == PollOutcome(
        "done",
        (
            "https://cdn.picsart.test/3.jpg",
            "https://cdn.picsart.test/1.jpg",
            "https://cdn.picsart.test/2.jpg",
        ),
    )


def test_poll_ignores_unknown_fields(router: respx.MockRouter, client: PicsartClient) -> None:
    router.get(POLL_URL).respond(
        200,
        json={
            "status": "success",
            "inference_id": INFERENCE_ID,
            "credits_spent": 4,
            "meta": {"model": "v9"},
            "data": [{"id": "a", "url": "https://cdn.picsart.test/a.png", "width": 1024}],
        },
    )
    assert client.poll(INFERENCE_ID).urls == ("https://cdn.picsart.test/a.png",)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"status": "success", "data": []}, id="empty-data"),
        pytest.param({"status": "success"}, id="no-data"),
        pytest.param({"status": "success", "data": None}, id="null-data"),
        pytest.param({"status": "success", "data": [{"id": "a"}]}, id="item-without-url"),
    ],
)
def test_poll_success_without_images_is_a_protocol_error(
    router: respx.MockRouter, client: PicsartClient, body: dict[str, Any]
) -> None:
    router.get(POLL_URL).respond(200, json=body)
    with pytest.raises(ProviderProtocolError):
        client.poll(INFERENCE_ID)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"status": "error", "detail": "The image has no subject"}, "The image has no subject"),
        ({"status": "error", "message": "Internal model failure"}, "Internal model failure"),
        ({"status": "error"}, "no reason given"),
    ],
)
def test_poll_error_status_is_a_failed_job_with_its_reason(
    router: respx.MockRouter, client: PicsartClient, body: dict[str, Any], reason: str
) -> None:
    router.get(POLL_URL).respond(200, json=body)
    with pytest.raises(ProviderJobFailed) as caught:
        client.poll(INFERENCE_ID)
    assert caught.value.detail == reason
    assert reason in str(caught.value)
    assert caught.value.code == "provider_failed"


@pytest.mark.parametrize("word", ["queued", "SUCCESS", "done", ""])
def test_poll_unknown_status_word_is_a_protocol_error(
    router: respx.MockRouter, client: PicsartClient, word: str
) -> None:
    router.get(POLL_URL).respond(200, json={"status": word, "data": [{"url": "https://x/a"}]})
    with pytest.raises(ProviderProtocolError, match="unknown status"):
        client.poll(INFERENCE_ID)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"<html><body>502 Bad Gateway</body></html>", id="html"),
        pytest.param(b"", id="empty"),
        pytest.param(b"[]", id="json-list"),
        pytest.param(b"{}", id="no-status"),
        pytest.param(b'{"status": "success", "data": [', id="truncated"),
    ],
)
def test_poll_unreadable_body_is_a_protocol_error(
    router: respx.MockRouter, client: PicsartClient, content: bytes
) -> None:
    router.get(POLL_URL).respond(200, content=content)
    with pytest.raises(ProviderProtocolError) as caught:
        client.poll(INFERENCE_ID)
    assert caught.value.code == "provider_protocol"


# --------------------------------------------------------------------------- balance


def test_balance_returns_credits(router: respx.MockRouter, client: PicsartClient) -> None:
    route = router.get(BALANCE_URL).respond(200, json={"credits": 1234, "plan": "pro"})
    credits = client.balance()
    assert credits == 1234
    assert isinstance(credits, int)
    assert route.calls.last.request.headers["X-Picsart-API-Key"] == API_KEY


@pytest.mark.parametrize("body", [{}, {"credits": "lots"}, {"credits": 1.5}])
def test_unreadable_balance_is_a_protocol_error(
    router: respx.MockRouter, client: PicsartClient, body: dict[str, Any]
) -> None:
    router.get(BALANCE_URL).respond(200, json=body)
    with pytest.raises(ProviderProtocolError):
        client.balance()


# --------------------------------------------------------------------------- errors

ERROR_MAP: list[tuple[int, type[ProviderError], str]] = [
    (400, ProviderRejected, "provider_rejected"),
    (404, ProviderRejected, "provider_rejected"),
    (405, ProviderRejected, "provider_rejected"),
    (413, ProviderRejected, "provider_rejected"),
    (415, ProviderRejected, "provider_rejected"),
    (422, ProviderRejected, "provider_rejected"),
    (431, ProviderRejected, "provider_rejected"),
    (401, ProviderAuthError, "provider_auth"),
    (403, ProviderAuthError, "provider_auth"),
    (402, ProviderQuotaExceeded, "provider_quota"),
    (429, ProviderThrottled, "provider_throttled"),
    (408, ProviderUnavailable, "provider_unavailable"),
    (500, ProviderUnavailable, "provider_unavailable"),
    (503, ProviderUnavailable, "provider_unavailable"),
]


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize(
    ("status", "error_type", "code"), ERROR_MAP, ids=[str(s) for s, _, _ in ERROR_MAP]
)
def test_documented_status_codes_map_to_typed_errors(
    router: respx.MockRouter,
    client: PicsartClient,
    operation: str,
    status: int,
    error_type: type[ProviderError],
    code: str,
) -> None:
    # Given Picsart answers with a documented error status and its JSON error body
    method, url = OPERATIONS[operation]
    router.route(method=method, url=url).respond(status, json=error_body(status))
    # When the operation runs
    with pytest.raises(ProviderError) as caught:
        call(client, operation)
    # Then it raises exactly the typed error the workflow's Retry/Catch expect
    error = caught.value
    assert type(error) is error_type
    assert error.code == code
    assert error.provider == "picsart"
    assert error.status == status
    assert str(status) in str(error)
    assert f"detail for {status}" in str(error)
    if status != 429:  # ProviderThrottled takes no detail (see test_throttled_keeps_detail)
        assert error.detail == f"detail for {status}"


@pytest.mark.parametrize("status", [409, 302, 418])
def test_undocumented_status_is_a_protocol_error(
    router: respx.MockRouter, client: PicsartClient, status: int
) -> None:
    router.get(POLL_URL).respond(status, json=error_body(status))
    with pytest.raises(ProviderProtocolError) as caught:
        client.poll(INFERENCE_ID)
    assert caught.value.status == status


def test_error_detail_falls_back_to_message(
    router: respx.MockRouter, client: PicsartClient
) -> None:
    router.get(POLL_URL).respond(422, json={"code": 422, "message": "count must be 1..10"})
    with pytest.raises(ProviderRejected) as caught:
        client.poll(INFERENCE_ID)
    assert caught.value.detail == "count must be 1..10"


def test_error_without_json_body_is_still_typed(
    router: respx.MockRouter, client: PicsartClient
) -> None:
    router.get(POLL_URL).respond(503, text="<html>Service Unavailable</html>")
    with pytest.raises(ProviderUnavailable) as caught:
        client.poll(INFERENCE_ID)
    assert caught.value.status == 503
    assert caught.value.detail is None


def test_long_error_detail_is_truncated(router: respx.MockRouter, client: PicsartClient) -> None:
    router.get(POLL_URL).respond(400, json={"detail": "x" * 5000})
    with pytest.raises(ProviderRejected) as caught:
        client.poll(INFERENCE_ID)
    assert caught.value.detail == "x" * 500


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        pytest.param({"X-Picsart-Ratelimit-Reset-Time": "17"}, 17.0, id="picsart-header"),
        pytest.param({"Retry-After": "5"}, 5.0, id="retry-after-only"),
        pytest.param(
            {"X-Picsart-Ratelimit-Reset-Time": "17", "Retry-After": "5"},
            17.0,
            id="picsart-header-wins",
        ),
        pytest.param(
            {"X-Picsart-Ratelimit-Reset-Time": "soon", "Retry-After": "5"},
            5.0,
            id="unreadable-picsart-header",
        ),
        pytest.param({}, None, id="no-header"),
    ],
)
def test_throttled_carries_retry_after(
    router: respx.MockRouter,
    client: PicsartClient,
    headers: dict[str, str],
    retry_after: float | None,
) -> None:
    router.post(SUBMIT_URL).respond(429, json=error_body(429), headers=headers)
    with pytest.raises(ProviderThrottled) as caught:
        client.replace_background(prompt="p", image_url="https://cdn.test/p.png")
    assert caught.value.retry_after == retry_after
    assert caught.value.status == 429


def test_throttled_keeps_detail(router: respx.MockRouter, client: PicsartClient) -> None:
    router.get(POLL_URL).respond(429, json=error_body(429))
    with pytest.raises(ProviderThrottled) as caught:
        client.poll(INFERENCE_ID)
    assert caught.value.detail == "detail for 429"


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.WriteTimeout("write timed out"),
        httpx.PoolTimeout("pool exhausted"),
        httpx.ConnectError("connection refused"),
        httpx.RemoteProtocolError("server hung up"),
        httpx.ReadError("connection reset"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_transport_failures_are_typed(
    router: respx.MockRouter, client: PicsartClient, operation: str, failure: httpx.HTTPError
) -> None:
    method, url = OPERATIONS[operation]
    router.route(method=method, url=url).mock(side_effect=failure)
    # A paid submit whose answer was lost after sending must not be retried (could pay
    # twice); anything that failed before the request was sent, or a free call, may be.
    sent = not isinstance(failure, (httpx.ConnectError, httpx.TimeoutException, httpx.WriteError))
    sent = sent or isinstance(failure, httpx.ReadTimeout)
    expected = ProviderOutcomeUnknown if operation == "submit" and sent else ProviderUnavailable
    with pytest.raises(ProviderError) as caught:
        call(client, operation)
    assert type(caught.value) is expected
    assert caught.value.__cause__ is failure
    assert type(failure).__name__ in str(caught.value)


# --------------------------------------------------------------------------- logging


def test_answer_headers_are_logged(
    router: respx.MockRouter,
    client: PicsartClient,
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given Picsart's usual answer headers
    router.post(SUBMIT_URL).respond(202, json={"inference_id": "i"}, headers=ANSWER_HEADERS)
    # When a call succeeds
    client.replace_background(prompt="p", image_url="https://cdn.test/p.png")
    # Then one JSON line records the correlation id, rate limit and credits
    lines = [line for line in log_lines() if line.get("message") == "picsart answered"]
    assert len(lines) == 1
    line = lines[0]
    assert line["level"] == "INFO"
    assert line["method"] == "POST"
    assert line["status"] == 202
    assert line["correlation_id"] == "corr-5b1d0e"
    assert line["ratelimit_available"] == "499"
    assert line["ratelimit_limit"] == "500"
    assert line["ratelimit_reset_time"] == "42"
    assert line["credit_available"] == "1234"


def test_answer_headers_are_logged_on_errors_too(
    router: respx.MockRouter,
    client: PicsartClient,
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    # The throttled and failed answers are the ones whose headers matter most.
    router.get(POLL_URL).respond(429, json=error_body(429), headers=ANSWER_HEADERS)
    with pytest.raises(ProviderThrottled):
        client.poll(INFERENCE_ID)
    (line,) = [line for line in log_lines() if line.get("message") == "picsart answered"]
    assert line["status"] == 429
    assert line["correlation_id"] == "corr-5b1d0e"
    assert line["ratelimit_available"] == "499"


def test_absent_headers_are_not_logged(
    router: respx.MockRouter,
    client: PicsartClient,
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    router.get(BALANCE_URL).respond(200, json={"credits": 3})
    client.balance()
    (line,) = [line for line in log_lines() if line.get("message") == "picsart answered"]
    assert "correlation_id" not in line
    assert "credit_available" not in line


def test_api_key_never_appears_in_logs_or_errors(
    router: respx.MockRouter,
    client: PicsartClient,
    log_lines: Callable[[], list[dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given every kind of answer, some echoing the key header back as a proxy might
    caplog.set_level(logging.DEBUG)
    echoed = {**ANSWER_HEADERS, "X-Picsart-API-Key": API_KEY}
    errors: list[BaseException] = []
    scenarios: list[tuple[str, Any]] = [
        ("submit", httpx.Response(202, json={"inference_id": "i"}, headers=echoed)),
        ("poll", httpx.Response(200, json={"status": "success", "data": [{"url": "u"}]})),
        ("balance", httpx.Response(200, json={"credits": 1})),
        *[
            (operation, httpx.Response(status, json=error_body(status), headers=echoed))
            for operation in OPERATIONS
            for status in (400, 401, 402, 403, 404, 422, 429, 500, 503)
        ],
        ("poll", httpx.Response(200, json={"status": "error", "detail": "nope"})),
        ("poll", httpx.Response(200, json={"status": "weird"})),
        ("poll", httpx.Response(200, content=b"not json")),
        ("submit", httpx.ConnectError("refused")),
        ("poll", httpx.ReadTimeout("slow")),
    ]
    # When each runs
    for operation, answer in scenarios:
        method, url = OPERATIONS[operation]
        router.routes.clear()
        route = router.route(method=method, url=url)
        if isinstance(answer, Exception):
            route.mock(side_effect=answer)
        else:
            route.mock(return_value=answer)
        try:
            call(client, operation)
        except ProviderError as exc:
            errors.append(exc)
    # Then the key is nowhere: not in stdout/stderr, not in any log record, not in errors
    assert len(errors) == 3 * 9 + 5
    assert any(isinstance(e, ProviderAuthError) and e.status == 401 for e in errors)
    lines = log_lines()  # reads (and so consumes) stdout
    assert len([line for line in lines if line.get("message") == "picsart answered"]) == 33
    output = capsys.readouterr()
    everything = [json.dumps(lines), output.out, output.err, caplog.text]
    everything += [all_text_of(exc) for exc in errors]
    for text in everything:
        assert API_KEY not in text
        assert API_KEY[:12] not in text


def test_api_key_echoed_by_a_401_body_is_not_repeated(
    router: respx.MockRouter, client: PicsartClient
) -> None:
    router.get(BALANCE_URL).respond(
        401, json={"code": 401, "detail": f"Invalid API key '{API_KEY}'"}
    )
    with pytest.raises(ProviderAuthError) as caught:
        client.balance()
    assert API_KEY not in all_text_of(caught.value)


def test_real_logger_wiring_writes_json_lines_to_stdout() -> None:
    """The production wiring: the module's child logger reaches the service Logger that
    backdrop.observability configures, and Powertools prints JSON to stdout.

    Run in a fresh interpreter: a Logger binds sys.stdout when it is first configured."""
    script = textwrap.dedent(
        f"""
        import httpx, respx
        import backdrop.observability
        from backdrop.providers.picsart import PicsartClient
        with respx.mock:
            respx.get("{BALANCE_URL}").respond(
                200, json={{"credits": 9}}, headers={ANSWER_HEADERS!r}
            )
            with httpx.Client() as http:
                PicsartClient({API_KEY!r}, base_url="{BASE}", http=http).balance()
        """
    )
    env = {name: value for name, value in os.environ.items() if name != "POWERTOOLS_DEV"}
    env |= {"POWERTOOLS_SERVICE_NAME": "backdrop", "POWERTOOLS_LOG_LEVEL": "INFO"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    (line,) = [line for line in lines if line.get("message") == "picsart answered"]
    assert line["service"] == "backdrop"
    assert line["correlation_id"] == "corr-5b1d0e"
    assert line["credit_available"] == "1234"
    assert API_KEY not in done.stdout + done.stderr
