"""The provider emulator over real loopback HTTP: contracts, faults, control, determinism."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw, ImageStat
from pydantic import ValidationError

import backdrop_local.emulator as emulator_package
from backdrop_local.emulator import EmulatorSettings, ProviderEmulator, picsart
from backdrop_local.emulator.cli import main as cli_main

PICSART_KEY = {"X-Picsart-API-Key": "test-key"}
PHOTOROOM_KEY = {"x-api-key": "live_test_key"}
ASYNC = {**PICSART_KEY, "Prefer": "respond-async"}
SUBJECT_RGB = (200, 30, 30)
RATE_HEADERS = (
    "X-Picsart-Correlation-Id",
    "X-Picsart-Ratelimit-Available",
    "X-Picsart-Ratelimit-Limit",
    "X-Picsart-Ratelimit-Reset-Time",
    "X-Picsart-Credit-Available",
)

StartEmulator = Callable[..., ProviderEmulator]


# --- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture
def start_emulator() -> Iterator[StartEmulator]:
    """Start emulators with setting overrides (processing_seconds defaults to "0")."""
    started: list[ProviderEmulator] = []

    def start(**overrides: Any) -> ProviderEmulator:
        emulator = ProviderEmulator(EmulatorSettings(**{"processing_seconds": "0", **overrides}))
        emulator.start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(start_emulator: StartEmulator) -> ProviderEmulator:
    return start_emulator()


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    # Shared: building a client (its TLS context) costs more than most tests here.
    with httpx.Client(timeout=10) as http:
        yield http


def alpha_png(size: int = 128) -> bytes:
    """A cut-out: an opaque red square in the middle of a transparent image."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle(
        (size // 4, size // 4, size * 3 // 4, size * 3 // 4), fill=(*SUBJECT_RGB, 255)
    )
    return _encode(image, "PNG")


def studio_jpeg(size: int = 128) -> bytes:
    """A studio shot: a blue ellipse on near-white, no alpha."""
    image = Image.new("RGB", (size, size), (248, 248, 248))
    ImageDraw.Draw(image).ellipse(
        (size // 4, size // 5, size * 3 // 4, size * 4 // 5), fill=(30, 60, 200)
    )
    return _encode(image, "JPEG")


def brightness(content: bytes) -> float:
    return float(ImageStat.Stat(Image.open(io.BytesIO(content)).convert("L")).mean[0])


def _encode(image: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format)
    return buffer.getvalue()


def submit(
    client: httpx.Client,
    emulator: ProviderEmulator,
    fields: Mapping[str, str | None] | None = None,
    *,
    image: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """Submit a Smart Background job; a field set to None is left out."""
    form = {"prompt": "on a sunny beach", **(fields or {})}
    files: dict[str, Any] = {"image": ("product.png", image or alpha_png(), "image/png")}
    if image == b"":
        files = {"negative_prompt": (None, "blurry")}  # multipart, but no image part
    return client.post(
        f"{emulator.picsart_base_url}/painting/replace-background",
        headers=ASYNC if headers is None else headers,
        data={key: value for key, value in form.items() if value is not None},
        files=files,
    )


def poll(client: httpx.Client, emulator: ProviderEmulator, inference_id: str) -> httpx.Response:
    return client.get(f"{emulator.picsart_base_url}/painting/{inference_id}", headers=PICSART_KEY)


def poll_until_done(
    client: httpx.Client, emulator: ProviderEmulator, inference_id: str, limit: float = 5.0
) -> httpx.Response:
    deadline = time.monotonic() + limit
    while True:
        answer = poll(client, emulator, inference_id)
        if answer.status_code != 202 or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def generate(
    client: httpx.Client,
    emulator: ProviderEmulator,
    fields: Mapping[str, str] | None = None,
    *,
    image: bytes | None = None,
) -> tuple[str, httpx.Response]:
    """Submit asynchronously and poll until the job is no longer processing."""
    submitted = submit(client, emulator, fields, image=image)
    assert submitted.status_code == 202, submitted.text
    inference_id = submitted.json()["inference_id"]
    return inference_id, poll_until_done(client, emulator, inference_id)


def edit(
    client: httpx.Client,
    emulator: ProviderEmulator,
    fields: Mapping[str, str] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """A Photoroom edit of the alpha cut-out with a text prompt."""
    form = {"background.prompt": "on a marble counter", **(fields or {})}
    return client.post(
        f"{emulator.photoroom_base_url}/v2/edit",
        headers=PHOTOROOM_KEY if headers is None else headers,
        data=form,
        files={"imageFile": ("product.png", alpha_png(), "image/png")},
    )


def control(
    client: httpx.Client, emulator: ProviderEmulator, method: str, name: str, body: object = None
) -> httpx.Response:
    return client.request(method, f"{emulator.base_url}/_emulator/{name}", json=body)


def assert_picsart_error(answer: httpx.Response, status: int, field: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["code"] == status
    assert isinstance(body["message"], str)
    assert field in body["detail"]


def fates(client: httpx.Client, emulator: ProviderEmulator, jobs: int) -> list[str]:
    outcome = []
    for _ in range(jobs):
        inference_id = submit(client, emulator).json()["inference_id"]
        outcome.append(poll(client, emulator, inference_id).json()["status"])
    return outcome


# --- Picsart: the happy path ----------------------------------------------------------


def test_async_job_is_processing_until_its_time_then_lists_count_files(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    # Given a Picsart job that takes 0.3 s
    emulator = start_emulator(processing_seconds="0.3")

    # When a cut-out is submitted asynchronously for 3 PNGs
    submitted = submit(client, emulator, {"count": "3", "format": "PNG"})

    # Then it is accepted with an inference id, and polls say "processing" until it is done
    assert submitted.status_code == 202
    assert submitted.headers["Preference-Applied"] == "respond-async"
    body = submitted.json()
    assert body["status"] == "processing"
    assert body["data"] == []
    inference_id = body["inference_id"]
    assert uuid.UUID(inference_id)
    early = poll(client, emulator, inference_id)
    assert early.status_code == 202
    assert early.json() == {"status": "processing", "inference_id": inference_id}

    time.sleep(0.35)
    done = poll(client, emulator, inference_id)
    assert done.status_code == 200
    assert done.json()["status"] == "success"
    results = done.json()["data"]
    assert len(results) == 3

    # And every file is a PNG of the input's size that keeps the subject's pixels
    pictures = []
    for result in results:
        assert result["url"].startswith(f"{emulator.base_url}/picsart/results/{inference_id}/")
        download = client.get(result["url"])
        assert download.status_code == 200
        assert download.headers["Content-Type"] == "image/png"
        picture = Image.open(io.BytesIO(download.content))
        assert picture.format == "PNG"
        assert picture.size == (128, 128)
        assert picture.convert("RGB").getpixel((64, 64)) == SUBJECT_RGB
        pictures.append(download.content)
    # And the variants differ (the backdrop depends on the index)
    assert len(set(pictures)) == 3
    stats = emulator.stats()["picsart"]
    assert {name: stats[name] for name in ("submissions", "accepted", "polls", "images")} == {
        "submissions": 1,
        "accepted": 1,
        "polls": 2,
        "images": 3,
    }


@pytest.mark.parametrize(
    ("requested", "pillow_format", "content_type"),
    [("JPG", "JPEG", "image/jpeg"), ("PNG", "PNG", "image/png"), ("WEBP", "WEBP", "image/webp")],
)
def test_result_files_have_the_requested_format(
    emulator: ProviderEmulator,
    client: httpx.Client,
    requested: str,
    pillow_format: str,
    content_type: str,
) -> None:
    _, done = generate(client, emulator, {"count": "1", "format": requested})

    download = client.get(done.json()["data"][0]["url"])

    assert download.headers["Content-Type"] == content_type
    assert Image.open(io.BytesIO(download.content)).format == pillow_format
    assert download.url.path.endswith("." + requested.lower())


def test_sync_mode_answers_the_result_directly_with_defaults(
    emulator: ProviderEmulator, client: httpx.Client
) -> None:
    # When a job is submitted without async mode or preference
    answer = submit(client, emulator, headers=PICSART_KEY)

    # Then the answer is the result: the default 2 images, as JPG
    assert answer.status_code == 200
    assert answer.json()["status"] == "success"
    urls = [result["url"] for result in answer.json()["data"]]
    assert len(urls) == 2
    assert all(url.endswith(".jpg") for url in urls)


def test_mode_field_async_works_without_the_prefer_header(
    emulator: ProviderEmulator, client: httpx.Client
) -> None:
    answer = submit(client, emulator, {"mode": "async"}, headers=PICSART_KEY)

    assert answer.status_code == 202
    assert "Preference-Applied" not in answer.headers


def test_studio_shot_gets_a_new_background_and_keeps_its_subject(
    emulator: ProviderEmulator, client: httpx.Client
) -> None:
    # Given a JPEG studio shot (no alpha) of a blue subject on near-white
    _, done = generate(client, emulator, {"count": "1", "format": "PNG"}, image=studio_jpeg())

    picture = Image.open(io.BytesIO(client.get(done.json()["data"][0]["url"]).content))
    rgb = picture.convert("RGB")

    # Then the corner is no longer the studio white, and the subject is still blue
    corner = rgb.getpixel((3, 3))
    assert isinstance(corner, tuple)
    assert max(abs(channel - 248) for channel in corner) > 20
    centre = rgb.getpixel((64, 64))
    assert isinstance(centre, tuple)
    assert all(abs(a - b) <= 12 for a, b in zip(centre, (30, 60, 200), strict=True))


def test_image_url_is_fetched_and_a_failing_fetch_is_a_400(
    emulator: ProviderEmulator, client: httpx.Client
) -> None:
    # Given a downloadable image (a result file of the emulator itself)
    _, done = generate(client, emulator, {"count": "1", "format": "PNG"})
    url = done.json()["data"][0]["url"]
    form = {"prompt": "in a forest", "image_url": url, "mode": "async"}
    endpoint = f"{emulator.picsart_base_url}/painting/replace-background"

    # When it is submitted by URL, Then the job is accepted
    fetched = client.post(
        endpoint, headers=PICSART_KEY, files={k: (None, v) for k, v in form.items()}
    )
    assert fetched.status_code == 202, fetched.text

    # When it is submitted by result id (the deprecated image_id), Then it is accepted too
    by_id = {"prompt": "in a forest", "image_id": done.json()["data"][0]["id"], "mode": "async"}
    reused = client.post(
        endpoint, headers=PICSART_KEY, files={k: (None, v) for k, v in by_id.items()}
    )
    assert reused.status_code == 202, reused.text

    # When the URL does not answer 200, Then the submission fails naming the field
    form["image_url"] = f"{emulator.base_url}/picsart/results/missing/1.png"
    missing = client.post(
        endpoint, headers=PICSART_KEY, files={k: (None, v) for k, v in form.items()}
    )
    assert_picsart_error(missing, 400, "image_url")


def test_balance_reports_the_credits_left(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    emulator = start_emulator(credits=10)
    generate(client, emulator, {"count": "4"})

    balance = client.get(f"{emulator.picsart_base_url}/balance", headers=PICSART_KEY)

    assert balance.json() == {"credits": 6}
    assert balance.headers["X-Picsart-Credit-Available"] == "6"


# --- Picsart: validation, auth, limits --------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "status", "field"),
    [
        ({"prompt": None}, 400, "prompt"),
        ({"prompt": "   "}, 400, "prompt"),
        ({"image_url": "https://example.com/a.png"}, 400, "image_url"),
        ({"count": "11"}, 422, "count"),
        ({"count": "0"}, 422, "count"),
        ({"count": "two"}, 422, "count"),
        ({"format": "GIF"}, 422, "format"),
        ({"mode": "later"}, 422, "mode"),
    ],
)
def test_invalid_submissions_get_the_documented_error_body(
    emulator: ProviderEmulator,
    client: httpx.Client,
    fields: dict[str, Any],
    status: int,
    field: str,
) -> None:
    answer = submit(client, emulator, fields)

    assert_picsart_error(answer, status, field)
    assert all(name in answer.headers for name in RATE_HEADERS)


def test_submission_without_any_image_is_a_400(
    emulator: ProviderEmulator, client: httpx.Client
) -> None:
    assert_picsart_error(submit(client, emulator, image=b""), 400, "image")


def test_bad_image_url_is_a_422(emulator: ProviderEmulator, client: httpx.Client) -> None:
    form = {"prompt": "beach", "image_url": "ftp://example.com/a.png"}
    answer = client.post(
        f"{emulator.picsart_base_url}/painting/replace-background",
        headers=PICSART_KEY,
        files={key: (None, value) for key, value in form.items()},
    )
    assert_picsart_error(answer, 422, "image_url")


def test_non_multipart_body_is_a_415(emulator: ProviderEmulator, client: httpx.Client) -> None:
    answer = client.post(
        f"{emulator.picsart_base_url}/painting/replace-background",
        headers=PICSART_KEY,
        json={"prompt": "beach", "image_url": "https://example.com/a.png"},
    )
    assert_picsart_error(answer, 415, "multipart")


def test_bytes_that_are_no_image_are_refused(
    emulator: ProviderEmulator, client: httpx.Client
) -> None:
    assert_picsart_error(submit(client, emulator, image=b"%PDF-1.7 not an image"), 415, "image")


def test_image_over_the_size_limit_is_a_413(
    emulator: ProviderEmulator, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a limit small enough to test without sending 100 MB
    monkeypatch.setattr(picsart, "MAX_IMAGE_BYTES", 1_000)

    assert_picsart_error(submit(client, emulator, image=studio_jpeg(512)), 413, "image")


def test_missing_or_unknown_picsart_key_is_a_401(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    emulator = start_emulator(api_keys=["good-key"])

    missing = submit(client, emulator, headers={})
    unknown = submit(client, emulator, headers={"X-Picsart-API-Key": "other"})
    known = submit(
        client, emulator, headers={"X-Picsart-API-Key": "good-key", "Prefer": "respond-async"}
    )

    assert_picsart_error(missing, 401, "X-Picsart-API-Key")
    assert_picsart_error(unknown, 401, "key")
    assert known.status_code == 202
    assert emulator.stats()["picsart"]["submissions"] == 1


def test_rate_limit_answers_429_with_headers_per_key(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    # Given a limit of 2 requests a minute
    emulator = start_emulator(rate_limit_per_minute=2)
    balance = f"{emulator.picsart_base_url}/balance"

    # When one key makes 3 requests
    answers = [client.get(balance, headers=PICSART_KEY) for _ in range(3)]

    # Then the window counts down, and the third is refused with the reset time
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert [a.headers["X-Picsart-Ratelimit-Available"] for a in answers] == ["1", "0", "0"]
    refused = answers[2]
    assert_picsart_error(refused, 429, "Rate limit")
    assert refused.headers["X-Picsart-Ratelimit-Limit"] == "2"
    assert 1 <= int(refused.headers["X-Picsart-Ratelimit-Reset-Time"]) <= 60
    # And another key has its own window
    assert client.get(balance, headers={"X-Picsart-API-Key": "other"}).status_code == 200


def test_every_picsart_answer_carries_the_documented_headers(
    emulator: ProviderEmulator, client: httpx.Client
) -> None:
    answers = [
        submit(client, emulator),
        submit(client, emulator, {"format": "GIF"}),
        poll(client, emulator, "no-such-id"),
        client.get(f"{emulator.picsart_base_url}/balance", headers={}),
    ]
    for answer in answers:
        for name in RATE_HEADERS:
            assert name in answer.headers, (answer.status_code, name)
        assert uuid.UUID(answer.headers["X-Picsart-Correlation-Id"])
        assert int(answer.headers["X-Picsart-Ratelimit-Reset-Time"]) >= 1
    assert (
        answers[0].headers["X-Picsart-Correlation-Id"]
        != answers[1].headers["X-Picsart-Correlation-Id"]
    )


def test_unknown_inference_id_is_a_404(emulator: ProviderEmulator, client: httpx.Client) -> None:
    assert_picsart_error(poll(client, emulator, str(uuid.uuid4())), 404, "inference")


def test_credits_run_out_with_a_402(start_emulator: StartEmulator, client: httpx.Client) -> None:
    # Given 3 credits
    emulator = start_emulator(credits=3)

    # When 2 images are generated and then 2 more are asked for
    first = submit(client, emulator, {"count": "2"})
    second = submit(client, emulator, {"count": "2"})

    # Then the first is billed and the second refused
    assert first.status_code == 202
    assert first.headers["X-Picsart-Credit-Available"] == "1"
    assert_picsart_error(second, 402, "credits")
    assert second.headers["X-Picsart-Credit-Available"] == "1"


# --- Picsart: faults -------------------------------------------------------------------


def test_scripted_answers_are_consumed_in_order_before_random_faults(
    emulator: ProviderEmulator, client: httpx.Client
) -> None:
    # Given a script for submissions, polls and result files
    script = {
        "picsart_submit": [429, 503],
        "picsart_poll": ["processing", "error"],
        "picsart_result": [404],
    }
    queued = control(client, emulator, "POST", "script", script)
    assert queued.status_code == 200
    assert queued.json()["picsart_submit"] == [429, 503]

    # When submitting three times, Then 429 and 503 come first, in order
    throttled, unavailable, accepted = (submit(client, emulator) for _ in range(3))
    assert_picsart_error(throttled, 429, "emulator")
    assert throttled.headers["X-Picsart-Ratelimit-Available"] == "0"
    assert_picsart_error(unavailable, 503, "emulator")
    assert accepted.status_code == 202

    # And polls say "processing" once, then the job has failed for good
    inference_id = accepted.json()["inference_id"]
    answers = [poll(client, emulator, inference_id) for _ in range(3)]
    assert [a.status_code for a in answers] == [202, 200, 200]
    assert [a.json()["status"] for a in answers] == ["processing", "error", "error"]
    assert answers[1].json()["detail"]

    # And a result file answers 404 once, then normally
    _, done = generate(client, emulator, {"count": "1"})
    url = done.json()["data"][0]["url"]
    assert client.get(url).status_code == 404
    assert client.get(url).status_code == 200
    assert control(client, emulator, "GET", "script").json() == {
        "picsart_submit": [],
        "picsart_poll": [],
        "picsart_result": [],
        "photoroom_edit": [],
    }


@pytest.mark.parametrize(
    "script",
    [{"picsart_submit": [200]}, {"picsart_poll": ["later"]}, {"nope": [500]}, [429]],
)
def test_invalid_scripts_are_refused(
    emulator: ProviderEmulator, client: httpx.Client, script: object
) -> None:
    answer = control(client, emulator, "POST", "script", script)

    assert answer.status_code == 400
    assert answer.json()["error"]


def test_fault_error_ends_jobs_in_error_without_billing(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    emulator = start_emulator(fault_error=1.0, credits=100)

    inference_id, done = generate(client, emulator)

    assert done.status_code == 200
    body = done.json()
    assert body["status"] == "error"
    assert body["inference_id"] == inference_id
    assert body["detail"]
    assert done.headers["X-Picsart-Credit-Available"] == "100"


def test_fault_stuck_jobs_never_finish(start_emulator: StartEmulator, client: httpx.Client) -> None:
    emulator = start_emulator(fault_stuck=1.0, processing_seconds="0.05")
    inference_id = submit(client, emulator).json()["inference_id"]
    time.sleep(0.1)

    answers = [poll(client, emulator, inference_id) for _ in range(3)]

    assert {a.status_code for a in answers} == {202}
    assert {a.json()["status"] for a in answers} == {"processing"}


def test_random_faults_repeat_with_the_same_seed(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    # Given two emulators with the same seed and one with another, half the jobs failing
    settings = {"fault_error": 0.5, "fault_stuck": 0.2}
    first = start_emulator(seed=7, **settings)
    second = start_emulator(seed=7, **settings)
    other = start_emulator(seed=8, **settings)

    # When the same requests are made to each
    outcomes = [fates(client, emulator, 12) for emulator in (first, second, other)]

    # Then the same seed gives the same fates, and a mix of them
    assert outcomes[0] == outcomes[1]
    assert {"success", "error", "processing"} <= set(outcomes[0])
    assert outcomes[0] != outcomes[2]

    # And after a reset the run repeats again
    assert control(client, first, "POST", "reset").status_code == 200
    assert fates(client, first, 12) == outcomes[0]


def test_same_seed_gives_the_same_result_files(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    contents = []
    for emulator in (start_emulator(seed=3), start_emulator(seed=3)):
        _, done = generate(client, emulator, {"count": "1", "format": "PNG"})
        contents.append(client.get(done.json()["data"][0]["url"]).content)

    assert contents[0] == contents[1]


def test_fault_expired_result_files_answer_404(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    emulator = start_emulator(fault_expired=1.0)
    _, done = generate(client, emulator, {"count": "2"})

    downloads = [client.get(result["url"]) for result in done.json()["data"]]

    assert [d.status_code for d in downloads] == [404, 404]


@pytest.mark.parametrize(
    ("share", "status"), [("fault_429", 429), ("fault_500", 500), ("fault_503", 503)]
)
def test_transient_fault_shares_answer_their_status(
    start_emulator: StartEmulator, client: httpx.Client, share: str, status: int
) -> None:
    emulator = start_emulator(**{share: 1.0})

    assert_picsart_error(submit(client, emulator), status, "emulator")
    photoroom = edit(client, emulator)
    assert photoroom.status_code == status
    assert photoroom.json()["error"]["message"]


def test_fault_slow_answers_after_the_client_gave_up(
    start_emulator: StartEmulator,
) -> None:
    # Given every call slow by 0.6 s, and a client that waits 0.2 s
    emulator = start_emulator(fault_slow=1.0, slow_seconds=0.6)

    with httpx.Client(timeout=0.2) as impatient, pytest.raises(httpx.ReadTimeout):
        submit(impatient, emulator)


# --- Photoroom -------------------------------------------------------------------------


def test_photoroom_same_seed_same_bytes_other_seed_other_bytes(
    emulator: ProviderEmulator, client: httpx.Client
) -> None:
    first = edit(client, emulator, {"background.seed": "117879368"})
    again = edit(client, emulator, {"background.seed": "117879368"})
    other = edit(client, emulator, {"background.seed": "55994449"})

    assert first.status_code == 200
    assert first.headers["Content-Type"] == "image/png"
    assert first.headers["pr-ai-background-seed"] == "117879368"
    assert 0.0 <= float(first.headers["x-uncertainty-score"]) <= 1.0
    assert first.content == again.content
    assert first.content != other.content
    assert emulator.stats()["photoroom"] == {
        "calls": 3,
        "accepted": 3,
        "throttled": 0,
        "images": 3,
    }


def test_photoroom_without_seed_reports_the_seed_it_used(
    emulator: ProviderEmulator, client: httpx.Client
) -> None:
    unseeded = edit(client, emulator)
    seed = unseeded.headers["pr-ai-background-seed"]

    replay = edit(client, emulator, {"background.seed": seed})

    assert int(seed) > 0
    assert replay.content == unseeded.content


def test_photoroom_sandbox_key_gets_a_watermark_for_free(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    emulator = start_emulator(credits=1)
    seed = {"background.seed": "42"}

    sandbox = [edit(client, emulator, seed, headers={"x-api-key": "sandbox_abc"}) for _ in range(2)]
    live = edit(client, emulator, seed)

    assert [answer.status_code for answer in sandbox] == [200, 200]
    assert live.status_code == 200  # the one credit was still there
    assert sandbox[0].content != live.content
    # The watermark lightens the image: white text rows over it
    assert brightness(sandbox[0].content) > brightness(live.content)


@pytest.mark.parametrize(
    ("export", "pillow_format", "content_type"),
    [
        ("png", "PNG", "image/png"),
        ("jpeg", "JPEG", "image/jpeg"),
        ("jpg", "JPEG", "image/jpeg"),
        ("webp", "WEBP", "image/webp"),
    ],
)
def test_photoroom_export_formats(
    emulator: ProviderEmulator,
    client: httpx.Client,
    export: str,
    pillow_format: str,
    content_type: str,
) -> None:
    answer = edit(client, emulator, {"export.format": export})

    assert answer.headers["Content-Type"] == content_type
    assert Image.open(io.BytesIO(answer.content)).format == pillow_format


def test_photoroom_output_size_and_original_reference_box(
    emulator: ProviderEmulator, client: httpx.Client
) -> None:
    sized = edit(client, emulator, {"outputSize": "300x200"})
    kept = edit(client, emulator, {"referenceBox": "originalImage", "outputSize": "originalImage"})

    assert Image.open(io.BytesIO(sized.content)).size == (300, 200)
    picture = Image.open(io.BytesIO(kept.content)).convert("RGB")
    assert picture.size == (128, 128)
    assert picture.getpixel((64, 64)) == SUBJECT_RGB


def test_photoroom_without_any_background_answers_the_cut_out(
    emulator: ProviderEmulator, client: httpx.Client
) -> None:
    png = edit(client, emulator, {"background.prompt": ""})
    jpeg = edit(client, emulator, {"background.prompt": "", "export.format": "jpeg"})

    cut_out = Image.open(io.BytesIO(png.content))
    assert cut_out.mode == "RGBA"
    assert cut_out.getpixel((2, 2)) == (0, 0, 0, 0)
    corner = Image.open(io.BytesIO(jpeg.content)).convert("RGB").getpixel((2, 2))
    assert isinstance(corner, tuple)
    assert min(corner) >= 245  # white, give or take JPEG noise


def test_photoroom_guidance_image_changes_the_background(
    emulator: ProviderEmulator, client: httpx.Client
) -> None:
    seed = {"background.seed": "7"}
    plain = edit(client, emulator, seed)
    guided = client.post(
        f"{emulator.photoroom_base_url}/v2/edit",
        headers=PHOTOROOM_KEY,
        data={"background.prompt": "on a marble counter", "background.guidance.scale": "1", **seed},
        files={
            "imageFile": ("product.png", alpha_png(), "image/png"),
            "background.guidance.imageFile": ("mood.jpg", studio_jpeg(), "image/jpeg"),
        },
    )

    assert guided.status_code == 200, guided.text
    assert guided.content != plain.content


def test_photoroom_negative_prompt_is_flagged_unless_model_2(
    emulator: ProviderEmulator, client: httpx.Client
) -> None:
    negative = {"background.negativePrompt": "flowers"}

    default_model = edit(client, emulator, negative)
    model_2 = edit(
        client, emulator, negative, headers={**PHOTOROOM_KEY, "pr-ai-background-model-version": "2"}
    )

    assert default_model.headers["pr-unsupported-attributes"] == "background.negativePrompt"
    assert model_2.status_code == 200
    assert "pr-unsupported-attributes" not in model_2.headers


@pytest.mark.parametrize(
    ("fields", "headers", "mentions"),
    [
        ({"background.seed": "-3"}, {}, "background.seed"),
        ({"background.seed": "abc"}, {}, "background.seed"),
        ({"background.expandPrompt.mode": "sometimes"}, {}, "expandPrompt"),
        ({"background.guidance.scale": "1.5"}, {}, "guidance.scale"),
        ({"referenceBox": "everything"}, {}, "referenceBox"),
        ({"outputSize": "huge"}, {}, "outputSize"),
        ({"export.format": "gif"}, {}, "export.format"),
        ({"imageUrl": "https://example.com/a.png"}, {}, "imageUrl"),
        ({"background.imageUrl": "https://example.com/bg.png"}, {}, "background.prompt"),
        ({}, {"pr-ai-background-model-version": "9"}, "pr-ai-background-model-version"),
    ],
)
def test_photoroom_invalid_edits_are_400_with_a_message(
    emulator: ProviderEmulator,
    client: httpx.Client,
    fields: dict[str, str],
    headers: dict[str, str],
    mentions: str,
) -> None:
    answer = edit(client, emulator, fields, headers={**PHOTOROOM_KEY, **headers})

    assert answer.status_code == 400
    assert mentions in answer.json()["error"]["message"]


def test_photoroom_key_errors_are_403(start_emulator: StartEmulator, client: httpx.Client) -> None:
    emulator = start_emulator(api_keys=["good"])

    missing = edit(client, emulator, headers={})
    unknown = edit(client, emulator, headers={"x-api-key": "bad"})
    known = edit(client, emulator, headers={"x-api-key": "good"})

    assert missing.status_code == unknown.status_code == 403
    assert missing.json()["error"]["message"]
    assert known.status_code == 200


def test_photoroom_credits_exhausted_is_402_with_detail(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    emulator = start_emulator(credits=1)

    spent = edit(client, emulator)
    refused = edit(client, emulator)

    assert spent.status_code == 200
    assert refused.status_code == 402
    assert refused.json()["error"]["detail"]


def test_photoroom_rate_limit_and_scripted_errors(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    # Given a limit of 3 a minute and a scripted 500 on the next edit
    emulator = start_emulator(rate_limit_per_minute=3)
    emulator.script({"photoroom_edit": [500]})

    # When the key makes 4 calls
    answers = [edit(client, emulator) for _ in range(4)]

    # Then the 500 comes first, then successes, then the limit
    assert [a.status_code for a in answers] == [500, 200, 200, 429]
    assert answers[0].json()["error"]["message"]
    assert answers[3].json()["error"]["message"]


# --- control endpoints -------------------------------------------------------------------


def test_settings_can_be_changed_at_runtime(
    emulator: ProviderEmulator, client: httpx.Client
) -> None:
    # When a partial update is sent
    changed = control(client, emulator, "PUT", "settings", {"fault_500": 1.0, "credits": 5})

    # Then it is merged into the settings and applies at once
    assert changed.status_code == 200
    assert changed.json()["fault_500"] == 1.0
    assert changed.json()["processing_seconds"] == "0"
    assert emulator.settings.credits == 5
    assert submit(client, emulator).status_code == 500
    balance = client.get(f"{emulator.picsart_base_url}/balance", headers=PICSART_KEY)
    assert balance.json() == {"credits": 5}

    # And invalid values are refused, leaving the settings as they were
    refused = control(client, emulator, "PUT", "settings", {"fault_500": 2, "nope": 1})
    assert refused.status_code == 400
    assert control(client, emulator, "GET", "settings").json()["fault_500"] == 1.0


def test_stats_and_reset(emulator: ProviderEmulator, client: httpx.Client) -> None:
    inference_id, _ = generate(client, emulator, {"count": "2"})
    edit(client, emulator)
    emulator.script({"picsart_submit": [500]})

    stats = control(client, emulator, "GET", "stats").json()
    assert stats == emulator.stats()
    assert stats["picsart"]["submissions"] == 1
    assert stats["picsart"]["images"] == 2
    assert stats["photoroom"] == {"calls": 1, "accepted": 1, "throttled": 0, "images": 1}

    reset = control(client, emulator, "POST", "reset")

    assert reset.status_code == 200
    assert emulator.stats() == {
        "picsart": {
            "submissions": 0,
            "accepted": 0,
            "polls": 0,
            "throttled": 0,
            "images": 0,
            "lag_p50_seconds": None,
            "lag_p95_seconds": None,
        },
        "photoroom": {"calls": 0, "accepted": 0, "throttled": 0, "images": 0},
    }
    assert poll(client, emulator, inference_id).status_code == 404  # jobs are gone
    assert submit(client, emulator).status_code == 202  # and so is the script


# --- credits: top-ups and the Photoroom account ----------------------------------------


def account(
    client: httpx.Client, emulator: ProviderEmulator, headers: dict[str, str] | None = None
) -> httpx.Response:
    return client.get(
        f"{emulator.photoroom_base_url}/v2/account",
        headers=PHOTOROOM_KEY if headers is None else headers,
    )


def test_top_up_adds_to_one_account_only(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    emulator = start_emulator(credits=10)

    topped = control(client, emulator, "POST", "credits", {"provider": "picsart", "add": 5})

    assert topped.status_code == 200
    assert topped.json() == {"provider": "picsart", "credits": 15}
    assert control(client, emulator, "GET", "credits").json() == {"picsart": 15, "photoroom": 10}
    balance = client.get(f"{emulator.picsart_base_url}/balance", headers=PICSART_KEY)
    assert balance.json() == {"credits": 15}
    assert balance.headers["X-Picsart-Credit-Available"] == "15"
    # And the Python side does the same
    assert emulator.top_up("photoroom", 3) == 13
    assert emulator.balances() == {"picsart": 15, "photoroom": 13}
    assert emulator.settings.credits == 10  # the setting is untouched


def test_credits_can_be_set_and_changed_for_both_accounts(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    emulator = start_emulator(credits=10)

    zeroed = control(client, emulator, "POST", "credits", {"provider": "picsart", "set": 0})
    both = control(client, emulator, "POST", "credits", {"add": 2})

    assert zeroed.json() == {"provider": "picsart", "credits": 0}
    assert both.json() == {"picsart": 2, "photoroom": 12}
    assert control(client, emulator, "POST", "credits", {"set": 7}).json() == {
        "picsart": 7,
        "photoroom": 7,
    }
    assert emulator.set_credits("photoroom", 0) == 0
    assert emulator.balances() == {"picsart": 7, "photoroom": 0}


def test_reset_refills_the_balances_from_the_credits_setting(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    emulator = start_emulator(credits=10)
    emulator.top_up("picsart", 90)
    emulator.set_credits("photoroom", 1)

    control(client, emulator, "POST", "reset")

    assert emulator.balances() == {"picsart": 10, "photoroom": 10}


def test_a_picsart_submit_refused_with_402_goes_through_after_a_top_up(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    # Given 1 credit, too few for 2 images
    emulator = start_emulator(credits=1)
    refused = submit(client, emulator, {"count": "2"})
    assert_picsart_error(refused, 402, "credits")

    # When the account is topped up by 1
    control(client, emulator, "POST", "credits", {"provider": "picsart", "add": 1})

    # Then the same submission is taken and billed, and the headers follow the balance
    accepted = submit(client, emulator, {"count": "2"})
    assert accepted.status_code == 202, accepted.text
    assert accepted.headers["X-Picsart-Credit-Available"] == "0"
    emulator.top_up("picsart", 4)
    polled = poll(client, emulator, accepted.json()["inference_id"])
    assert polled.headers["X-Picsart-Credit-Available"] == "4"
    assert emulator.stats()["picsart"]["accepted"] == 1


def test_photoroom_account_reflects_edits_and_top_ups(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    emulator = start_emulator(credits=5)
    assert account(client, emulator).json() == {
        "plan": "emulated",
        "images": {"available": 5, "subscription": 5},
    }

    assert edit(client, emulator).status_code == 200
    after_edit = account(client, emulator)
    emulator.top_up("photoroom", 10)
    after_top_up = account(client, emulator)
    sandbox = account(client, emulator, {"x-api-key": "sandbox_abc"})

    assert after_edit.status_code == 200
    assert after_edit.json()["images"] == {"available": 4, "subscription": 5}
    assert after_top_up.json()["images"] == {"available": 14, "subscription": 5}
    assert sandbox.status_code == 200
    assert sandbox.json() == after_top_up.json()
    # Reading the account is no generation
    assert emulator.stats()["photoroom"] == {"calls": 1, "accepted": 1, "throttled": 0, "images": 1}


def test_photoroom_account_needs_a_known_key(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    emulator = start_emulator(api_keys=["good"])

    missing = account(client, emulator, {})
    unknown = account(client, emulator, {"x-api-key": "bad"})
    known = account(client, emulator, {"x-api-key": "good"})

    assert missing.status_code == unknown.status_code == 403
    assert missing.json()["error"]["message"]
    assert known.status_code == 200


def test_photoroom_account_shares_the_edit_rate_limit(
    start_emulator: StartEmulator, client: httpx.Client
) -> None:
    emulator = start_emulator(rate_limit_per_minute=2)

    answers = [edit(client, emulator), account(client, emulator), account(client, emulator)]
    refused_edit = edit(client, emulator)

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["error"]["message"]
    assert 1 <= int(answers[2].headers["Retry-After"]) <= 60
    assert refused_edit.status_code == 429
    assert emulator.stats()["photoroom"]["throttled"] == 2
    assert emulator.stats()["photoroom"]["calls"] == 1


@pytest.mark.parametrize(
    ("body", "start", "mentions"),
    [
        ({"provider": "dalle", "add": 1}, "provider:", "picsart, photoroom"),
        ({"provider": 1, "add": 1}, "provider:", "known"),
        ({"provider": "picsart", "add": 0}, "add:", "positive integer"),
        ({"add": -3}, "add:", "positive integer"),
        ({"add": "5"}, "add:", "'5'"),
        ({"add": 1.5}, "add:", "1.5"),
        ({"add": True}, "add:", "True"),
        ({"set": -1}, "set:", ">= 0"),
        ({"set": False}, "set:", "False"),
        ({"add": 1, "set": 2}, "add, set:", "only one"),
        ({"provider": "picsart"}, "add:", "add or set"),
        ({"credits": 5}, "credits:", "unknown field"),
        ([1], "expected a JSON object", "add"),
    ],
)
def test_bad_credit_changes_are_400_naming_the_field(
    start_emulator: StartEmulator,
    client: httpx.Client,
    body: object,
    start: str,
    mentions: str,
) -> None:
    emulator = start_emulator(credits=10)

    refused = control(client, emulator, "POST", "credits", body)

    assert refused.status_code == 400
    message = refused.json()["error"]
    assert message.startswith(start), message
    assert mentions in message
    assert emulator.balances() == {"picsart": 10, "photoroom": 10}


def test_credits_body_that_is_no_json_is_a_400(
    emulator: ProviderEmulator, client: httpx.Client
) -> None:
    refused = client.post(f"{emulator.base_url}/_emulator/credits", content=b"add 5")

    assert refused.status_code == 400
    assert "JSON object" in refused.json()["error"]


@pytest.mark.parametrize(
    ("call", "provider", "credits", "mentions"),
    [
        ("top_up", "dalle", 1, "provider"),
        ("top_up", "picsart", 0, "credits"),
        ("top_up", "picsart", True, "credits"),
        ("set_credits", "photoroom", -1, "credits"),
    ],
)
def test_python_credit_helpers_refuse_bad_values(
    emulator: ProviderEmulator, call: str, provider: str, credits: int, mentions: str
) -> None:
    with pytest.raises(ValueError, match=mentions):
        getattr(emulator, call)(provider, credits)


def test_base_urls_and_lifecycle() -> None:
    emulator = ProviderEmulator(EmulatorSettings(), port=0)
    with pytest.raises(RuntimeError):
        _ = emulator.base_url

    with emulator:
        assert emulator.base_url == f"http://127.0.0.1:{emulator.port}"
        assert emulator.picsart_base_url == f"{emulator.base_url}/picsart/v1"
        assert emulator.photoroom_base_url == f"{emulator.base_url}/photoroom"
        assert httpx.get(f"{emulator.base_url}/_emulator/health").json() == {"status": "ok"}
        url = emulator.base_url

    emulator.stop()  # twice is harmless
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/_emulator/health")


# --- settings and command line ---------------------------------------------------------


def test_settings_from_environment() -> None:
    settings = EmulatorSettings.from_env(
        {
            "BACKDROP_EMULATOR_PROCESSING_SECONDS": "1-3",
            "BACKDROP_EMULATOR_FAULT_429": "0.25",
            "BACKDROP_EMULATOR_SEED": "9",
            "BACKDROP_EMULATOR_API_KEYS": "a, b",
            "UNRELATED": "x",
        }
    )

    assert settings.processing_range() == (1.0, 3.0)
    assert settings.fault_429 == 0.25
    assert settings.seed == 9
    assert settings.api_keys == ["a", "b"]
    assert settings.rate_limit_per_minute == 500


@pytest.mark.parametrize(
    "values",
    [
        {"processing_seconds": "3-1"},
        {"processing_seconds": "soon"},
        {"fault_429": 0.6, "fault_503": 0.6},
        {"fault_stuck": 0.7, "fault_error": 0.4},
        {"fault_expired": -0.1},
        {"unknown": 1},
    ],
)
def test_settings_refuse_impossible_values(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        EmulatorSettings(**values)


def test_cli_refuses_bad_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["--fault-429", "2"]) == 2
    assert "fault_429" in capsys.readouterr().err


def test_cli_serves_until_interrupted() -> None:
    # Given the emulator started as a command on any free port, one setting from the env
    source_root = str(Path(emulator_package.__file__).resolve().parents[3])
    environment = {
        **os.environ,
        "BACKDROP_EMULATOR_CREDITS": "77",
        "PYTHONPATH": os.pathsep.join(filter(None, [source_root, os.environ.get("PYTHONPATH")])),
    }
    with subprocess.Popen(
        [sys.executable, "-m", "backdrop_local.emulator", "--port", "0", "--seed", "3"],
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
    ) as process:
        try:
            assert process.stdout is not None
            label, picsart_url = process.stdout.readline().split()
            assert label == "Picsart"

            # When asked, Then the flag's seed and the environment's credits apply
            balance = httpx.get(f"{picsart_url}/balance", headers=PICSART_KEY)
            assert balance.json() == {"credits": 77}
            control_url = picsart_url.removesuffix("/picsart/v1") + "/_emulator/settings"
            assert httpx.get(control_url).json()["seed"] == 3

            # When interrupted, Then it stops cleanly with status 0
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
