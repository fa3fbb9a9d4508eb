"""PhotoroomClient against a faked Photoroom (respx) through the real httpx client, and
once against the provider emulator over loopback.

What is checked here is what providers.md (Photoroom section) promises: the parameter
names in the GET query and the POST multipart body, the model header, the answer headers,
the streamed image body, the status-code-to-error mapping, and that the API key never
leaks into logs or exception messages.
"""

from __future__ import annotations

import email.utils
import io
import json
import logging
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, get_args

import httpx
import pytest
import respx
from aws_lambda_powertools import Logger
from PIL import Image, ImageDraw
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.formparser import parse_form_data

from backdrop.domain import ModelVersion
from backdrop.providers import photoroom, registry
from backdrop.providers.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderProtocolError,
    ProviderQuotaExceeded,
    ProviderRejected,
    ProviderThrottled,
    ProviderUnavailable,
)
from backdrop.providers.photoroom import (
    DEFAULT_BASE_URL,
    EditedImage,
    EditOptions,
    PhotoroomClient,
    error_from_response,
)
from backdrop_local.emulator import EmulatorSettings, ProviderEmulator

BASE = "https://photoroom.example.test"
EDIT_URL = f"{BASE}/v2/edit"
# Distinctive, so that finding it anywhere in output is unambiguous.
API_KEY = "pr-TEST-4d2a7c91be0f4a13-NEVER-LOG-ME"
SANDBOX_KEY = "sandbox_" + API_KEY
IMAGE_URL = "https://cdn.test/products/p-1.png"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452")
JPEG = bytes.fromhex("ffd8ffe000104a464946")
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 "
RESULT = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64

EVERY_OPTION = EditOptions(
    prompt="a marble table in soft light",
    seed=117879368,
    expand_prompt=False,
    negative_prompt="people, text",
    guidance_image_url="https://cdn.test/guide.jpg",
    guidance_scale=0.35,
    reference_box="originalImage",
    output_size="1024x768",
    format="WEBP",
    model="2",
)
# providers.md's names for every option above.
EVERY_FIELD = {
    "background.prompt": "a marble table in soft light",
    "background.seed": "117879368",
    "background.expandPrompt.mode": "ai.never",
    "background.negativePrompt": "people, text",
    "background.guidance.imageUrl": "https://cdn.test/guide.jpg",
    "background.guidance.scale": "0.35",
    "referenceBox": "originalImage",
    "outputSize": "1024x768",
    "export.format": "webp",
}
ANSWER_HEADERS = {
    "Content-Type": "image/png",
    "pr-ai-background-seed": "55994449",
    "x-uncertainty-score": "0.0231",
}


# --------------------------------------------------------------------------- helpers


def parse_multipart(
    request: httpx.Request,
) -> tuple[MultiDict[str, str], dict[str, tuple[bytes, str]]]:
    """Parse a captured multipart/form-data request as a server would (werkzeug).
    File parts come back as (bytes, content type)."""
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
    file_parts: dict[str, tuple[bytes, str]] = {}
    for name, storage in files.items(multi=True):
        assert isinstance(storage, FileStorage)
        assert name not in file_parts, f"file part {name!r} sent twice"
        file_parts[name] = (storage.read(), storage.mimetype)
    return form, file_parts


def query_of(request: httpx.Request) -> dict[str, list[str]]:
    query: dict[str, list[str]] = {}
    for name, value in request.url.params.multi_items():
        query.setdefault(name, []).append(value)
    return query


def read_all(client: PhotoroomClient, **source: Any) -> tuple[EditedImage, bytes]:
    options = source.pop("options", EditOptions(prompt="p"))
    source = source or {"image_url": IMAGE_URL}
    with client.edit(options=options, **source) as result:
        return result, b"".join(result.chunks)


def image_answer(content: bytes = RESULT, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(200, content=content, headers={**ANSWER_HEADERS, **(headers or {})})


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


class _Chunks(httpx.SyncByteStream):
    """An answer body served chunk by chunk, recording how much was taken, and failing
    with `fail` after the chunks if given."""

    def __init__(self, chunks: list[bytes], fail: Exception | None = None) -> None:
        self.chunks = chunks
        self.fail = fail
        self.served = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.served += 1
            yield chunk
        if self.fail is not None:
            raise self.fail


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    # assert_all_mocked (the default) makes any request we did not expect fail the test.
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    # One real client for the module; respx patches the transport underneath it.
    with httpx.Client() as client:
        yield client


@pytest.fixture
def client(http: httpx.Client) -> PhotoroomClient:
    return PhotoroomClient(API_KEY, base_url=BASE, http=http)


@pytest.fixture
def log_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[[], list[dict[str, Any]]]:
    """The client's Powertools log lines, as parsed JSON (see test_picsart_client.py for
    why each test gets its own Logger writing to the sys.stdout of the moment)."""
    logger = Logger(
        service=f"photoroom-test-{uuid.uuid4().hex}", level="DEBUG", stream=_CurrentStdout()
    )
    monkeypatch.setattr(photoroom, "logger", logger)

    def read() -> list[dict[str, Any]]:
        lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
        return [json.loads(line) for line in lines]

    return read


# --------------------------------------------------------------------------- construction


@pytest.mark.parametrize("key", ["", None])
def test_missing_api_key_is_an_auth_error(key: str | None) -> None:
    with pytest.raises(ProviderAuthError) as caught:
        PhotoroomClient(key)  # type: ignore[arg-type]
    assert caught.value.code == "provider_auth"
    assert caught.value.provider == "photoroom"


def test_default_base_url_is_photorooms_image_api(router: respx.MockRouter) -> None:
    route = router.get("https://image-api.photoroom.com/v2/edit").mock(return_value=image_answer())
    with httpx.Client() as http:
        _result, body = read_all(PhotoroomClient(API_KEY, http=http))
    assert body == RESULT
    assert route.call_count == 1
    assert DEFAULT_BASE_URL == "https://image-api.photoroom.com"


def test_trailing_slash_in_base_url_is_tolerated(
    router: respx.MockRouter, http: httpx.Client
) -> None:
    route = router.get(EDIT_URL).mock(return_value=image_answer())
    read_all(PhotoroomClient(API_KEY, base_url=BASE + "/", http=http))
    assert route.call_count == 1


def test_own_http_client_has_explicit_timeouts() -> None:
    # Generation is slow (long read timeout); an unreachable host should fail fast.
    client = PhotoroomClient(API_KEY, timeout=12.5)
    assert client._http.timeout == httpx.Timeout(12.5, connect=5.0)
    assert PhotoroomClient(API_KEY)._http.timeout == httpx.Timeout(60.0, connect=5.0)


# --------------------------------------------------------------------------- the request


def test_image_url_is_a_get_with_every_parameter_in_the_query(
    router: respx.MockRouter, client: PhotoroomClient
) -> None:
    route = router.get(EDIT_URL).mock(return_value=image_answer())
    read_all(client, image_url=IMAGE_URL, options=EVERY_OPTION)
    assert route.call_count == 1
    request = route.calls.last.request
    assert request.method == "GET"
    assert request.url.path == "/v2/edit"
    assert query_of(request) == {
        "imageUrl": [IMAGE_URL],
        **{name: [value] for name, value in EVERY_FIELD.items()},
    }
    assert request.read() == b""


def test_image_bytes_are_a_multipart_post_with_every_parameter_as_a_field(
    router: respx.MockRouter, client: PhotoroomClient
) -> None:
    route = router.post(EDIT_URL).mock(return_value=image_answer())
    read_all(client, image=PNG, options=EVERY_OPTION)
    assert route.call_count == 1
    request = route.calls.last.request
    assert request.url.query == b""  # nothing in the query: it all goes in the body
    form, files = parse_multipart(request)
    assert form.to_dict(flat=False) == {name: [value] for name, value in EVERY_FIELD.items()}
    assert files == {"imageFile": (PNG, "image/png")}


@pytest.mark.parametrize(
    ("image", "content_type"),
    [
        pytest.param(PNG, "image/png", id="png"),
        pytest.param(JPEG, "image/jpeg", id="jpeg"),
        pytest.param(WEBP, "image/webp", id="webp"),
        pytest.param(b"GIF89a....", "application/octet-stream", id="unknown"),
    ],
)
def test_image_part_says_what_it_holds(
    router: respx.MockRouter, client: PhotoroomClient, image: bytes, content_type: str
) -> None:
    route = router.post(EDIT_URL).mock(return_value=image_answer())
    read_all(client, image=image)
    _form, files = parse_multipart(route.calls.last.request)
    assert files["imageFile"] == (image, content_type)


@pytest.mark.parametrize("source", ["image_url", "image"])
def test_unset_options_are_not_sent(
    router: respx.MockRouter, client: PhotoroomClient, source: str
) -> None:
    route = router.route(url=EDIT_URL).mock(return_value=image_answer())
    given = {"image_url": IMAGE_URL} if source == "image_url" else {"image": PNG}
    # Empty strings count as unset: Photoroom would read them as values.
    read_all(client, options=EditOptions(prompt="", negative_prompt=""), **given)
    request = route.calls.last.request
    if source == "image_url":
        sent = query_of(request)
        assert sent.pop("imageUrl") == [IMAGE_URL]
    else:
        form, files = parse_multipart(request)
        sent = form.to_dict(flat=False)
        assert set(files) == {"imageFile"}
    # export.format always goes: it has a default of our own (PNG).
    assert sent == {"export.format": ["png"]}
    assert photoroom.MODEL_HEADER in request.headers  # the model header is always sent


def test_falsy_but_set_values_are_sent(router: respx.MockRouter, client: PhotoroomClient) -> None:
    route = router.get(EDIT_URL).mock(return_value=image_answer())
    read_all(client, options=EditOptions(seed=0, guidance_scale=0.0, expand_prompt=False))
    sent = query_of(route.calls.last.request)
    assert sent["background.seed"] == ["0"]
    assert sent["background.guidance.scale"] == ["0.0"]
    assert sent["background.expandPrompt.mode"] == ["ai.never"]


@pytest.mark.parametrize(("expand", "mode"), [(True, "ai.auto"), (False, "ai.never")])
def test_expand_prompt_maps_to_photoroom_modes(
    router: respx.MockRouter, client: PhotoroomClient, expand: bool, mode: str
) -> None:
    route = router.get(EDIT_URL).mock(return_value=image_answer())
    read_all(client, options=EditOptions(prompt="on a beach", expand_prompt=expand))
    assert query_of(route.calls.last.request)["background.expandPrompt.mode"] == [mode]


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [("JPG", "jpeg"), ("PNG", "png"), ("WEBP", "webp"), ("jpg", "jpeg"), ("webp", "webp")],
)
def test_format_maps_to_export_format(
    router: respx.MockRouter, client: PhotoroomClient, ours: str, theirs: str
) -> None:
    route = router.get(EDIT_URL).mock(return_value=image_answer())
    read_all(client, options=EditOptions(prompt="p", format=ours))
    assert query_of(route.calls.last.request)["export.format"] == [theirs]


@pytest.mark.parametrize("fmt", ["GIF", "JPEG", ""])
def test_unknown_format_is_refused_before_sending(
    router: respx.MockRouter, client: PhotoroomClient, fmt: str
) -> None:
    route = router.route(url=EDIT_URL).mock(return_value=image_answer())
    with pytest.raises(ValueError, match="format must be one of"):
        read_all(client, options=EditOptions(prompt="p", format=fmt))
    assert route.call_count == 0


@pytest.mark.parametrize(
    "sources",
    [
        pytest.param({}, id="neither"),
        pytest.param({"image_url": IMAGE_URL, "image": PNG}, id="both"),
    ],
)
def test_edit_needs_exactly_one_image_source(
    router: respx.MockRouter, client: PhotoroomClient, sources: dict[str, Any]
) -> None:
    route = router.route(url=EDIT_URL).mock(return_value=image_answer())
    with (
        pytest.raises(ValueError, match="exactly one"),
        client.edit(options=EditOptions(prompt="p"), **sources),
    ):
        pass
    # Nothing was sent: a bad call must not spend credits.
    assert route.call_count == 0


@pytest.mark.parametrize("source", ["image_url", "image"])
def test_key_accept_and_default_model_headers(
    router: respx.MockRouter, client: PhotoroomClient, source: str
) -> None:
    route = router.route(url=EDIT_URL).mock(return_value=image_answer())
    read_all(client, **({"image_url": IMAGE_URL} if source == "image_url" else {"image": PNG}))
    headers = route.calls.last.request.headers
    assert headers["x-api-key"] == API_KEY
    assert headers["Accept"] == "image/*, application/json"
    assert headers["pr-ai-background-model-version"] == "3"


@pytest.mark.parametrize(
    ("default_model", "option_model", "sent"),
    [
        ("3", None, "3"),
        ("background-studio-beta-2025-03-17", None, "background-studio-beta-2025-03-17"),
        ("3", "2", "2"),
        ("background-studio-beta-2025-03-17", "3", "3"),
    ],
)
def test_model_header_default_and_override(
    router: respx.MockRouter,
    http: httpx.Client,
    default_model: str,
    option_model: str | None,
    sent: str,
) -> None:
    route = router.get(EDIT_URL).mock(return_value=image_answer())
    client = PhotoroomClient(API_KEY, base_url=BASE, http=http, default_model=default_model)
    read_all(client, options=EditOptions(prompt="p", model=option_model))
    assert route.calls.last.request.headers["pr-ai-background-model-version"] == sent


def test_model_constants_follow_providers_md() -> None:
    assert get_args(ModelVersion)[0] == "3"  # Photoroom's own default, and ours
    assert set(get_args(ModelVersion)) == {"3", "background-studio-beta-2025-03-17", "2"}
    assert set(registry.PHOTOROOM_NEGATIVE_PROMPT_MODELS) == {"2"}
    assert photoroom.EXPORT_FORMATS == {"JPG": "jpeg", "PNG": "png", "WEBP": "webp"}


# --------------------------------------------------------------------------- the answer


def test_answer_headers_are_parsed(router: respx.MockRouter, client: PhotoroomClient) -> None:
    router.get(EDIT_URL).mock(
        return_value=image_answer(
            headers={
                "Content-Type": "image/webp; charset=binary",
                "pr-unsupported-attributes": "background.negativePrompt",
            }
        )
    )
    result, body = read_all(client)
    assert result.content_type == "image/webp"
    assert result.seed == 55994449
    assert result.uncertainty == pytest.approx(0.0231)
    assert result.unsupported == "background.negativePrompt"
    assert body == RESULT


def test_absent_answer_headers_are_none(router: respx.MockRouter, client: PhotoroomClient) -> None:
    router.get(EDIT_URL).respond(200, content=RESULT, headers={"Content-Type": "image/jpeg"})
    result, _body = read_all(client)
    assert (result.content_type, result.seed, result.uncertainty, result.unsupported) == (
        "image/jpeg",
        None,
        None,
        None,
    )


def test_unreadable_answer_headers_are_none_not_a_failure(
    router: respx.MockRouter, client: PhotoroomClient
) -> None:
    # The image is paid for; an odd informational header must not throw it away.
    router.get(EDIT_URL).mock(
        return_value=image_answer(
            headers={"pr-ai-background-seed": "lucky", "x-uncertainty-score": "n/a"}
        )
    )
    result, body = read_all(client)
    assert (result.seed, result.uncertainty) == (None, None)
    assert body == RESULT


def test_body_is_streamed_not_buffered(router: respx.MockRouter, client: PhotoroomClient) -> None:
    parts = [RESULT[i : i + 1000] for i in range(0, len(RESULT), 1000)]
    stream = _Chunks(parts)
    router.get(EDIT_URL).mock(
        return_value=httpx.Response(200, headers=ANSWER_HEADERS, stream=stream)
    )
    with client.edit(image_url=IMAGE_URL, options=EditOptions(prompt="p")) as result:
        # Nothing of the body was taken before the caller asked for it...
        assert stream.served == 0
        received = []
        for chunk in result.chunks:
            received.append(chunk)
            # ...and then only as fast as the caller reads.
            assert stream.served == len(received)
    assert len(received) == len(parts) > 1
    assert b"".join(received) == RESULT


def test_connection_lost_mid_image_is_not_retried(
    router: respx.MockRouter, client: PhotoroomClient
) -> None:
    # Photoroom made (and billed) the image: a retry would pay for it twice.
    failure = httpx.ReadError("connection reset")
    stream = _Chunks([RESULT[:100]], fail=failure)
    router.get(EDIT_URL).mock(
        return_value=httpx.Response(200, headers=ANSWER_HEADERS, stream=stream)
    )
    with (
        pytest.raises(ProviderOutcomeUnknown) as caught,
        client.edit(image_url=IMAGE_URL, options=EditOptions(prompt="p")) as result,
    ):
        b"".join(result.chunks)
    assert caught.value.__cause__ is failure


def test_empty_image_is_a_protocol_error(router: respx.MockRouter, client: PhotoroomClient) -> None:
    router.get(EDIT_URL).mock(return_value=image_answer(b""))
    with pytest.raises(ProviderProtocolError, match="empty image"):
        read_all(client)


def test_callers_own_errors_pass_through_untouched(
    router: respx.MockRouter, client: PhotoroomClient
) -> None:
    # An error in the caller's block (an S3 upload, say) is not Photoroom's to translate.
    router.get(EDIT_URL).mock(return_value=image_answer())
    own = httpx.ConnectError("the caller's own connection")
    with (
        pytest.raises(httpx.ConnectError) as caught,
        client.edit(image_url=IMAGE_URL, options=EditOptions(prompt="p")),
    ):
        raise own
    assert caught.value is own


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        pytest.param(b'{"result": "ok"}', {"Content-Type": "application/json"}, id="json"),
        pytest.param(b"<html>hi</html>", {"Content-Type": "text/html; charset=utf-8"}, id="html"),
        pytest.param(RESULT, {}, id="no-content-type"),
    ],
)
def test_non_image_success_is_a_protocol_error(
    router: respx.MockRouter, client: PhotoroomClient, content: bytes, headers: dict[str, str]
) -> None:
    router.get(EDIT_URL).respond(200, content=content, headers=headers)
    entered = False
    with (
        pytest.raises(ProviderProtocolError) as caught,
        client.edit(image_url=IMAGE_URL, options=EditOptions(prompt="p")),
    ):
        entered = True
    assert not entered
    assert caught.value.status == 200
    assert "not an image" in str(caught.value)


# --------------------------------------------------------------------------- errors

ERROR_MAP: list[tuple[int, type[ProviderError], dict[str, Any]]] = [
    (400, ProviderRejected, {"error": {"message": "detail for 400"}}),
    (402, ProviderQuotaExceeded, {"error": {"detail": "detail for 402"}}),
    (401, ProviderAuthError, {"detail": "detail for 401"}),
    (403, ProviderAuthError, {"error": {"message": "detail for 403"}}),
    (404, ProviderRejected, {"error": {"message": "detail for 404"}}),
    (413, ProviderRejected, {"error": {"message": "detail for 413"}}),
    (415, ProviderRejected, {"error": {"message": "detail for 415"}}),
    (422, ProviderRejected, {"detail": "detail for 422"}),
    (429, ProviderThrottled, {"error": {"message": "detail for 429"}}),
    (408, ProviderUnavailable, {"message": "detail for 408"}),
    (500, ProviderUnavailable, {"error": {"message": "detail for 500"}}),
    (502, ProviderUnavailable, {"error": {"message": "detail for 502"}}),
    (503, ProviderUnavailable, {"error": {"message": "detail for 503"}}),
    (504, ProviderUnavailable, {"error": {"message": "detail for 504"}}),
]


@pytest.mark.parametrize("source", ["image_url", "image"])
@pytest.mark.parametrize(
    ("status", "error_type", "body"), ERROR_MAP, ids=[str(s) for s, _, _ in ERROR_MAP]
)
def test_status_codes_map_to_typed_errors_before_yielding(
    router: respx.MockRouter,
    client: PhotoroomClient,
    source: str,
    status: int,
    error_type: type[ProviderError],
    body: dict[str, Any],
) -> None:
    router.route(url=EDIT_URL).respond(status, json=body)
    given = {"image_url": IMAGE_URL} if source == "image_url" else {"image": PNG}
    entered = False
    with (
        pytest.raises(ProviderError) as caught,
        client.edit(options=EditOptions(prompt="p"), **given),
    ):
        entered = True
    # Raised before the caller's block runs: there is no image to store.
    assert not entered
    error = caught.value
    assert type(error) is error_type
    assert error.provider == "photoroom"
    assert error.status == status
    assert error.detail == f"detail for {status}"
    assert str(error) == f"Photoroom answered {status}: detail for {status}"


@pytest.mark.parametrize("status", [409, 302, 418])
def test_undocumented_status_is_a_protocol_error(
    router: respx.MockRouter, client: PhotoroomClient, status: int
) -> None:
    router.get(EDIT_URL).respond(status, json={"error": {"message": "odd"}})
    with pytest.raises(ProviderProtocolError) as caught:
        read_all(client)
    assert caught.value.status == status


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        pytest.param(b'{"error": {"message": "m", "detail": "d"}}', "m", id="message-first"),
        pytest.param(b'{"error": "plain text error"}', "plain text error", id="error-string"),
        pytest.param(b'{"message": "top-level message"}', "top-level message", id="message"),
        pytest.param(
            b'{"detail": [{"loc": ["query", "outputSize"], "msg": "bad"}]}',
            '[{"loc": ["query", "outputSize"], "msg": "bad"}]',
            id="framework-list",
        ),
        pytest.param(b'{"error": {}}', None, id="empty-error"),
        pytest.param(b"[1, 2]", None, id="json-list"),
        pytest.param(b"<html>Bad Request</html>", None, id="html"),
        pytest.param(b"", None, id="empty"),
    ],
)
def test_error_detail_shapes(
    router: respx.MockRouter, client: PhotoroomClient, content: bytes, detail: str | None
) -> None:
    router.get(EDIT_URL).respond(400, content=content)
    with pytest.raises(ProviderRejected) as caught:
        read_all(client)
    assert caught.value.detail == detail
    assert str(caught.value) == "Photoroom answered 400" + (f": {detail}" if detail else "")


def test_long_error_detail_is_truncated(router: respx.MockRouter, client: PhotoroomClient) -> None:
    router.get(EDIT_URL).respond(400, json={"error": {"message": "x" * 5000}})
    with pytest.raises(ProviderRejected) as caught:
        read_all(client)
    assert caught.value.detail == "x" * 500


def _http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


@pytest.mark.parametrize(
    ("headers", "low", "high"),
    [
        pytest.param({"Retry-After": "7"}, 7.0, 7.0, id="seconds"),
        pytest.param({"Retry-After": "1.5"}, 1.5, 1.5, id="fractional"),
        # Dates are made when the test runs (a date made at collection goes stale).
        pytest.param({"Retry-After": 120}, 100.0, 121.0, id="http-date"),
        pytest.param({"Retry-After": -60}, 0.0, 0.0, id="past-date"),
    ],
)
def test_throttled_carries_retry_after(
    router: respx.MockRouter,
    client: PhotoroomClient,
    headers: dict[str, str | int],
    low: float,
    high: float,
) -> None:
    sent = {k: _http_date(v) if isinstance(v, int) else v for k, v in headers.items()}
    router.get(EDIT_URL).respond(429, json={"error": {"message": "slow down"}}, headers=sent)
    with pytest.raises(ProviderThrottled) as caught:
        read_all(client)
    assert caught.value.retry_after is not None
    assert low <= caught.value.retry_after <= high
    assert caught.value.detail == "slow down"


@pytest.mark.parametrize("headers", [{}, {"Retry-After": "soon"}], ids=["absent", "unreadable"])
def test_throttled_without_a_usable_retry_after(
    router: respx.MockRouter, client: PhotoroomClient, headers: dict[str, str]
) -> None:
    # Photoroom documents no rate-limit headers: the workflow's own backoff applies.
    router.get(EDIT_URL).respond(429, json={"error": {"message": "m"}}, headers=headers)
    with pytest.raises(ProviderThrottled) as caught:
        read_all(client)
    assert caught.value.retry_after is None


@pytest.mark.parametrize("source", ["image_url", "image"])
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
    router: respx.MockRouter, client: PhotoroomClient, source: str, failure: httpx.HTTPError
) -> None:
    router.route(url=EDIT_URL).mock(side_effect=failure)
    given = {"image_url": IMAGE_URL} if source == "image_url" else {"image": PNG}
    # Retryable only when the request cannot have reached Photoroom whole.
    not_sent = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteTimeout)
    expected = ProviderUnavailable if isinstance(failure, not_sent) else ProviderOutcomeUnknown
    with pytest.raises(ProviderError) as caught:
        read_all(client, **given)
    assert type(caught.value) is expected
    assert caught.value.__cause__ is failure
    assert type(failure).__name__ in str(caught.value)


def test_failure_reading_an_error_body_is_unavailable(
    router: respx.MockRouter, client: PhotoroomClient
) -> None:
    failure = httpx.ReadTimeout("stalled")
    stream = _Chunks([b'{"error": '], fail=failure)
    router.get(EDIT_URL).mock(return_value=httpx.Response(500, stream=stream))
    with pytest.raises(ProviderUnavailable) as caught:
        read_all(client)
    assert caught.value.__cause__ is failure


def test_error_from_response_masks_the_secret() -> None:
    response = httpx.Response(403, json={"error": {"message": f"bad key {API_KEY}"}})
    error = error_from_response(response, secret=API_KEY)
    assert isinstance(error, ProviderAuthError)
    assert error.detail == "bad key [redacted]"
    assert API_KEY not in all_text_of(error)


# --------------------------------------------------------------------------- logging


def test_answer_is_logged(
    router: respx.MockRouter,
    client: PhotoroomClient,
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    router.post(EDIT_URL).mock(return_value=image_answer())
    read_all(client, image=PNG, options=EditOptions(prompt="p", model="2"))
    (line,) = [line for line in log_lines() if line.get("message") == "photoroom answered"]
    assert line["level"] == "INFO"
    assert line["method"] == "POST"
    assert line["status"] == 200
    assert line["model"] == "2"
    assert line["sandbox"] is False
    assert line["content_type"] == "image/png"
    assert line["content_length"] == str(len(RESULT))
    assert line["seed"] == "55994449"
    assert line["uncertainty"] == "0.0231"
    assert "unsupported" not in line


def test_unsupported_attributes_are_a_warning(
    router: respx.MockRouter,
    client: PhotoroomClient,
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    router.get(EDIT_URL).mock(
        return_value=image_answer(
            headers={"pr-unsupported-attributes": "background.negativePrompt"}
        )
    )
    read_all(client, options=EditOptions(prompt="p", negative_prompt="flowers"))
    (warning,) = [line for line in log_lines() if line["level"] == "WARNING"]
    assert warning["unsupported"] == "background.negativePrompt"
    assert warning["model"] == "3"


def test_errors_and_sandbox_keys_are_logged(
    router: respx.MockRouter, http: httpx.Client, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    router.get(EDIT_URL).respond(402, json={"error": {"detail": "no credits"}})
    client = PhotoroomClient(SANDBOX_KEY, base_url=BASE, http=http)
    with pytest.raises(ProviderQuotaExceeded):
        read_all(client)
    (line,) = [line for line in log_lines() if line.get("message") == "photoroom answered"]
    assert line["status"] == 402
    assert line["sandbox"] is True  # watermarked results: worth seeing in the log


def test_api_key_never_appears_in_logs_or_errors(
    router: respx.MockRouter,
    client: PhotoroomClient,
    log_lines: Callable[[], list[dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given every kind of answer, some echoing the key back as a proxy or a bad-key page might
    caplog.set_level(logging.DEBUG)
    echoed = {"x-api-key": API_KEY}
    scenarios: list[Any] = [
        image_answer(headers={**echoed, "pr-unsupported-attributes": "background.negativePrompt"}),
        *[
            httpx.Response(
                status, json={"error": {"message": f"key {API_KEY} refused"}}, headers=echoed
            )
            for status in (400, 401, 402, 403, 404, 413, 422, 429, 500, 503)
        ],
        httpx.Response(403, text=f"Forbidden: x-api-key={API_KEY}"),
        httpx.Response(200, json={"key": API_KEY}),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
    ]
    errors: list[BaseException] = []
    for source in ({"image_url": IMAGE_URL}, {"image": PNG}):
        for answer in scenarios:
            router.routes.clear()
            route = router.route(url=EDIT_URL)
            if isinstance(answer, Exception):
                route.mock(side_effect=answer)
            else:
                route.mock(return_value=answer)
            try:
                read_all(client, options=EditOptions(prompt="p", negative_prompt="n"), **source)
            except ProviderError as exc:
                errors.append(exc)
    # Then the key is nowhere: not in stdout/stderr, not in any log record, not in errors
    assert len(errors) == 2 * (len(scenarios) - 1)
    assert any(isinstance(e, ProviderAuthError) and e.status == 403 for e in errors)
    lines = log_lines()  # reads (and so consumes) stdout
    assert len([line for line in lines if line.get("message") == "photoroom answered"]) == 2 * 13
    output = capsys.readouterr()
    everything = [json.dumps(lines), output.out, output.err, caplog.text]
    everything += [all_text_of(exc) for exc in errors]
    for text in everything:
        assert API_KEY not in text
        assert API_KEY[:12] not in text


def test_api_key_echoed_by_a_403_body_is_masked(
    router: respx.MockRouter, client: PhotoroomClient
) -> None:
    router.get(EDIT_URL).respond(403, json={"error": {"message": f"Invalid API key '{API_KEY}'"}})
    with pytest.raises(ProviderAuthError) as caught:
        read_all(client)
    assert caught.value.detail == "Invalid API key '[redacted]'"
    assert API_KEY not in all_text_of(caught.value)


# --------------------------------------------------------------------------- emulator


@pytest.fixture(scope="module")
def emulator() -> Iterator[ProviderEmulator]:
    with ProviderEmulator(EmulatorSettings(), host="127.0.0.1", port=0) as running:
        yield running


@pytest.fixture
def product_png() -> bytes:
    # A red product on a plain white studio background, which the emulator can cut out.
    picture = Image.new("RGB", (96, 72), (255, 255, 255))
    ImageDraw.Draw(picture).rectangle((30, 18, 66, 56), fill=(200, 30, 30))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _edit_on(emulator: ProviderEmulator, image: bytes, options: EditOptions) -> tuple[Any, ...]:
    with (
        httpx.Client() as http,
        PhotoroomClient("live_test_key", base_url=emulator.photoroom_base_url, http=http).edit(
            image=image, options=options
        ) as result,
    ):
        body = b"".join(result.chunks)
    return result.content_type, result.seed, result.unsupported, body


def test_against_the_emulator_same_seed_same_image(
    emulator: ProviderEmulator, product_png: bytes
) -> None:
    options = EditOptions(prompt="beach", seed=7, format="JPG")
    first = _edit_on(emulator, product_png, options)
    second = _edit_on(emulator, product_png, options)
    content_type, seed, unsupported, body = first
    assert (content_type, seed, unsupported) == ("image/jpeg", 7, None)
    assert body.startswith(b"\xff\xd8\xff")
    assert second == first  # same seed, same bytes
    other = _edit_on(emulator, product_png, EditOptions(prompt="beach", seed=8, format="JPG"))
    assert other[1] == 8
    assert other[3] != body


def test_against_the_emulator_every_option_is_accepted(
    emulator: ProviderEmulator, product_png: bytes
) -> None:
    # Every field name the client sends is one the emulator reads (a typo would be a 400).
    options = EditOptions(
        prompt="a marble table",
        seed=117879368,
        expand_prompt=False,
        negative_prompt="people",
        guidance_scale=0.3,
        reference_box="originalImage",
        output_size="80x60",
        format="WEBP",
        model="2",
    )
    content_type, seed, unsupported, body = _edit_on(emulator, product_png, options)
    assert (content_type, seed, unsupported) == ("image/webp", 117879368, None)
    assert Image.open(io.BytesIO(body)).size == (80, 60)
    # Model 3 ignores the negative prompt, and says so.
    ignored = EditOptions(prompt="a marble table", negative_prompt="people", model="3")
    assert _edit_on(emulator, product_png, ignored)[2] == "background.negativePrompt"
