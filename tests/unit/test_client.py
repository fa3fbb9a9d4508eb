"""The API client behind `backdrop generate`, `backdrop jobs` and the demo (respx, no
network): where it finds the API, how it sends photos, how it reads failures."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from backdrop_client.client import (
    FAILED,
    UNREACHABLE,
    USAGE,
    ApiError,
    BackdropError,
    Client,
    Connection,
    Photo,
)
from tests.conftest import image_bytes

API = "https://api.example.test/Prod"
BUCKET = "https://input.s3.example.test/"


@pytest.fixture
def client() -> Any:
    pauses: list[float] = []
    with Client(Connection(API, "the-key", "test"), pause=pauses.append) as made:
        made.pauses = pauses  # type: ignore[attr-defined]
        yield made


def _job(job_id: str = "a" * 32, status: str = "queued", **fields: Any) -> dict[str, Any]:
    return {"id": job_id, "status": status, **fields}


def _error(status: int, code: str, message: str, **extra: Any) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message, **extra}})


# Where the API is.


def _pair(connection: Connection) -> tuple[str, str]:
    return connection.api_url, connection.api_key


def test_arguments_win_over_the_environment_and_the_ready_file(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    ready.write_text(json.dumps({"api_url": "http://file", "api_key": "file-key"}))
    env = {"BACKDROP_API_URL": "http://env/", "BACKDROP_API_KEY": "env-key"}

    assert _pair(Connection.resolve("http://arg", "arg-key", ready, env)) == (
        "http://arg",
        "arg-key",
    )
    assert _pair(Connection.resolve(None, None, ready, env)) == ("http://env", "env-key")
    assert _pair(Connection.resolve(None, None, ready, {})) == ("http://file", "file-key")
    # A key given alone goes with the ready file's URL.
    assert _pair(Connection.resolve(None, "arg-key", ready, {})) == ("http://file", "arg-key")


def test_the_default_ready_file_is_the_one_backdrop_local_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".backdrop").mkdir()
    (tmp_path / ".backdrop" / "ready.json").write_text('{"api_url": "http://x", "api_key": "k"}')

    connection = Connection.resolve(environ={})

    assert (connection.api_url, connection.api_key) == ("http://x", "k")
    assert "backdrop local" in connection.origin


@pytest.mark.parametrize(
    ("ready_text", "named", "message"),
    [
        (None, False, "no API to talk to"),
        (None, True, "no ready file at"),
        ("{not json", True, "cannot read"),
        ('{"api_url": "http://x"}', True, "cannot read"),
    ],
)
def test_no_api_is_a_usage_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    ready_text: str | None,
    named: bool,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    ready = tmp_path / "ready.json"
    if ready_text is not None:
        ready.write_text(ready_text)

    with pytest.raises(BackdropError, match=message) as raised:
        Connection.resolve(ready_file=ready if named else None, environ={})
    assert raised.value.exit_code == USAGE


# Photos.


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"these are not pixels", "not an image"),
        (image_bytes("GIF"), "a GIF image; JPEG, PNG or WEBP expected"),
    ],
)
def test_photos_are_checked_by_their_bytes(content: bytes, message: str) -> None:
    with pytest.raises(BackdropError, match=message) as raised:
        Photo.from_bytes("photo.png", content)
    assert raised.value.exit_code == USAGE


@pytest.mark.parametrize(("kind", "content_type"), [("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_a_photo_s_content_type_comes_from_its_bytes(kind: str, content_type: str) -> None:
    assert Photo.from_bytes("misnamed.png", image_bytes(kind)).content_type == content_type


def test_a_missing_photo_is_named(tmp_path: Path) -> None:
    with pytest.raises(BackdropError, match=r"nowhere\.png: no such file"):
        Photo.read(tmp_path / "nowhere.png")


# Sending them.


@respx.mock
def test_a_small_photo_goes_inline_with_an_idempotency_key(client: Client) -> None:
    route = respx.post(f"{API}/v1/generations").respond(202, json=_job())
    data = image_bytes("PNG")

    client.generate(Photo.from_bytes("mug.png", data), {"prompt": "on oak", "count": 2})

    request = route.calls.last.request
    assert request.headers["x-api-key"] == "the-key"
    assert len(request.headers["Idempotency-Key"]) == 32
    assert json.loads(request.content) == {
        "prompt": "on oak",
        "count": 2,
        "image_base64": base64.b64encode(data).decode(),
    }


@respx.mock
def test_a_large_photo_is_uploaded_with_the_form_fields_first(client: Client) -> None:
    fields = {"key": "uploads/abc.png", "Content-Type": "image/png", "policy": "p"}
    uploads = respx.post(f"{API}/v1/uploads").respond(
        201, json={"image_key": "uploads/abc.png", "upload": {"url": BUCKET, "fields": fields}}
    )
    s3 = respx.post(BUCKET).respond(204)
    generations = respx.post(f"{API}/v1/generations").respond(202, json=_job())
    photo = Photo("big.png", b"\x89PNG" + bytes(4 * 1024 * 1024), "image/png")

    client.generate(photo, {})

    assert json.loads(uploads.calls.last.request.content) == {
        "content_type": "image/png",
        "content_length": len(photo.data),
    }
    form = s3.calls.last.request
    assert "x-api-key" not in form.headers  # the form is the permission
    body = form.content
    positions = [body.index(f'name="{name}"'.encode()) for name in [*fields, "file"]]
    assert positions == sorted(positions)
    assert json.loads(generations.calls.last.request.content) == {"image_key": "uploads/abc.png"}


@respx.mock
def test_a_refused_upload_says_what_s3_said(client: Client) -> None:
    respx.post(f"{API}/v1/uploads").respond(
        201, json={"image_key": "uploads/a.png", "upload": {"url": BUCKET, "fields": {}}}
    )
    respx.post(BUCKET).respond(
        400,
        text="<Error><Code>EntityTooLarge</Code><Message>Your proposed upload exceeds the "
        "maximum allowed size</Message></Error>",
    )

    with pytest.raises(BackdropError, match="400 EntityTooLarge: Your proposed upload") as raised:
        client.upload(Photo("big.png", b"x", "image/png"))
    assert raised.value.exit_code == USAGE


def test_a_url_goes_as_image_url(client: Client) -> None:
    with respx.mock:
        route = respx.post(f"{API}/v1/generations").respond(202, json=_job())
        client.generate("https://example.com/mug.png", {})
    assert json.loads(route.calls.last.request.content) == {
        "image_url": "https://example.com/mug.png"
    }


# Failures.


@respx.mock
@pytest.mark.parametrize(
    ("answer", "exit_code", "message"),
    [
        (
            _error(403, "forbidden", "send a valid API key", request_id="r-1"),
            USAGE,
            r"403 forbidden: send a valid API key \(check --api-key .*\) \[request id r-1\]",
        ),
        (
            _error(
                422, "invalid_request", "invalid", details=[{"field": "count", "reason": "<= 10"}]
            ),
            USAGE,
            r"422 invalid_request: invalid \(count: <= 10\)",
        ),
        (_error(500, "internal_error", "sorry"), UNREACHABLE, "500 internal_error: sorry"),
        (httpx.Response(404, text="<html>\n nope </html>"), USAGE, "404 http_404: <html> nope"),
    ],
)
def test_an_error_answer_is_one_line_and_an_exit_code(
    client: Client, answer: httpx.Response, exit_code: int, message: str
) -> None:
    respx.get(f"{API}/v1/generations/{'a' * 32}").mock(return_value=answer)

    with pytest.raises(ApiError, match=message) as raised:
        client.get_generation("a" * 32)
    assert raised.value.exit_code == exit_code
    assert "\n" not in str(raised.value)


@respx.mock
def test_reads_are_retried_when_throttled_or_unavailable(client: Any) -> None:
    route = respx.get(f"{API}/v1/generations/{'a' * 32}").mock(
        side_effect=[
            httpx.Response(429, headers={"retry-after": "2"}),
            httpx.ReadTimeout("slow"),
            httpx.Response(200, json=_job()),
        ]
    )

    assert client.get_generation("a" * 32)["id"] == "a" * 32
    assert route.call_count == 3
    assert client.pauses == [2.0, 2.0]


@respx.mock
def test_a_post_without_idempotency_key_is_never_repeated(client: Client) -> None:
    route = respx.post(f"{API}/v1/generations").respond(503, json={"error": {"code": "x"}})

    with pytest.raises(ApiError):
        client.create_generation({"image_url": "https://example.com/a.png"})
    assert route.call_count == 1


@respx.mock
def test_a_refused_connection_fails_at_once(client: Any) -> None:
    respx.get(f"{API}/v1/generations").mock(side_effect=httpx.ConnectError("refused"))

    with pytest.raises(BackdropError, match=r"cannot reach the API at .*: refused") as raised:
        client.list_generations()
    assert raised.value.exit_code == UNREACHABLE
    assert client.pauses == []


@respx.mock
def test_an_answer_that_is_not_the_api_s_is_unreachable(client: Client) -> None:
    respx.get(f"{API}/v1/generations").respond(200, text="<html>hello</html>")

    with pytest.raises(BackdropError, match="not a JSON object") as raised:
        client.list_generations()
    assert raised.value.exit_code == UNREACHABLE


# Waiting, listing, downloading.


@respx.mock
def test_wait_polls_until_every_job_ends(client: Any) -> None:
    first, second = "a" * 32, "b" * 32
    respx.get(f"{API}/v1/generations/{first}").mock(
        side_effect=[httpx.Response(200, json=_job(first, s)) for s in ("running", "succeeded")]
    )
    second_route = respx.get(f"{API}/v1/generations/{second}").respond(
        200, json=_job(second, "failed")
    )
    seen: list[dict[str, str]] = []

    jobs = client.wait(
        [first, second],
        interval=0.5,
        on_poll=lambda j: seen.append({k: v["status"] for k, v in j.items()}),
    )

    assert {k: v["status"] for k, v in jobs.items()} == {first: "succeeded", second: "failed"}
    assert seen == [{first: "running", second: "failed"}, {first: "succeeded", second: "failed"}]
    assert second_route.call_count == 1  # an ended job is not asked again
    assert client.pauses == [0.5]


@respx.mock
def test_wait_gives_up_at_its_timeout(client: Client) -> None:
    respx.get(f"{API}/v1/generations/{'a' * 32}").respond(200, json=_job(status="running"))

    jobs = client.wait(["a" * 32], timeout=0)

    assert jobs["a" * 32]["status"] == "running"


@respx.mock
def test_jobs_follow_the_cursor_and_stop_at_the_limit(client: Client) -> None:
    pages = {
        None: ([_job(str(n) * 32, "failed") for n in range(3)], "c1"),
        "c1": ([_job(str(n) * 32, "failed") for n in range(3, 6)], "c2"),
    }

    def page(request: httpx.Request) -> httpx.Response:
        assert request.url.params["status"] == "failed"
        items, cursor = pages[request.url.params.get("cursor")]
        limit = int(request.url.params["limit"])
        return httpx.Response(200, json={"items": items[:limit], "next_cursor": cursor})

    respx.get(f"{API}/v1/generations").mock(side_effect=page)

    listed = list(client.jobs(status="failed", limit=5))

    assert [job["id"][0] for job in listed] == ["0", "1", "2", "3", "4"]


@respx.mock
def test_jobs_end_with_the_last_page(client: Client) -> None:
    respx.get(f"{API}/v1/generations").respond(200, json={"items": [_job()], "next_cursor": None})

    assert len(list(client.jobs(limit=50))) == 1


@respx.mock
def test_results_download_as_index_and_format(client: Client, tmp_path: Path) -> None:
    respx.get("https://results.example.test/0.jpg").respond(200, content=b"zero")
    respx.get("https://results.example.test/1.png").respond(403, text="<Code>Expired</Code>")
    job = _job(
        status="succeeded",
        results=[
            {"index": 0, "url": "https://results.example.test/0.jpg", "format": "JPG"},
            {"index": 1, "url": "https://results.example.test/1.png", "format": "PNG"},
        ],
    )

    with pytest.raises(BackdropError, match=r"cannot download 1\.png: 403 Expired") as raised:
        client.download_results(job, tmp_path / "job")
    assert raised.value.exit_code == FAILED
    assert (tmp_path / "job" / "0.jpg").read_bytes() == b"zero"
