"""The synchronous path on moto: Generate calls Photoroom once per image and stores each."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest
import respx

from backdrop_local.cloud import REGION
from tests.conftest import load_event
from tests.integration.conftest import PNG, Stack

EDIT = "https://image-api.photoroom.com/v2/edit"
BODY = {"image_url": "https://images.example.com/mug.png", "prompt": "marble counter"}


def _edited(request: httpx.Request) -> httpx.Response:
    seed = parse_qs(urlsplit(str(request.url)).query)["background.seed"][0]
    return httpx.Response(
        200,
        content=PNG + seed.encode(),
        headers={"content-type": "image/png", "pr-ai-background-seed": seed},
    )


def _query(call: respx.models.Call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(str(call.request.url)).query).items()}


def _create(stack: Stack, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    event = load_event("api-create-generation")
    event["body"] = json.dumps(body)
    payload, error = stack.invoke("ApiFunction", event)
    assert error is None
    return payload["statusCode"], json.loads(payload["body"])


def test_count_three_makes_three_calls_with_distinct_recorded_seeds(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    edit = picsart.get(EDIT).mock(side_effect=_edited)

    status, body = _create(
        stack, {**BODY, "provider": "photoroom", "count": 3, "format": "PNG", "seed": 117879368}
    )
    job_id = str(body["id"])
    execution = stack.wait_for_execution(job_id)

    assert status == 202
    assert execution["status"] == "SUCCEEDED"
    assert edit.call_count == 3
    sent = [_query(call) for call in edit.calls]
    assert sorted(q["background.seed"] for q in sent) == ["117879368", "117879369", "117879370"]
    for query in sent:
        assert query["imageUrl"] == BODY["image_url"]
        assert query["background.prompt"] == "marble counter"
        assert query["export.format"] == "png"
    assert all(call.request.headers["pr-ai-background-model-version"] == "3" for call in edit.calls)
    job = stack.job(job_id)
    assert job["status"] == "succeeded"
    assert job["provider_job_id"] is None
    assert [(r["index"], r["seed"]) for r in job["results"]] == [
        (0, 117879368),
        (1, 117879369),
        (2, 117879370),
    ]
    s3 = boto3.client("s3", region_name=REGION)
    stored = s3.get_object(Bucket=stack.cloud.results_bucket, Key=job["results"][1]["key"])
    assert stored["Body"].read() == PNG + b"117879369"
    assert stored["ContentType"] == "image/png"
    (event,) = stack.published_events()
    assert event["detail-type"] == "Generation Succeeded"
    assert event["detail"]["provider"] == "photoroom"
    assert len(event["detail"]["results"]["keys"]) == 3


def test_without_a_seed_the_job_still_gets_distinct_recorded_seeds(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    picsart.get(EDIT).mock(side_effect=_edited)

    _, body = _create(stack, {**BODY, "provider": "photoroom", "count": 2})
    stack.wait_for_execution(str(body["id"]))

    seeds = [r["seed"] for r in stack.job(str(body["id"]))["results"]]
    assert len(set(seeds)) == 2
    assert all(isinstance(seed, int) for seed in seeds)


def test_a_throttled_image_is_retried_without_paying_twice_for_the_others(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    # Given Photoroom throttles the second image once
    throttled = {"done": False}

    def answer(request: httpx.Request) -> httpx.Response:
        if _query_of(request)["background.seed"] == "11" and not throttled["done"]:
            throttled["done"] = True
            return httpx.Response(429, json={"detail": "Too many requests"})
        return _edited(request)

    edit = picsart.get(EDIT).mock(side_effect=answer)

    _, body = _create(stack, {**BODY, "provider": "photoroom", "count": 3, "seed": 10})
    job_id = str(body["id"])

    # Then the workflow retried, and only the throttled image was asked for again
    assert stack.wait_for_execution(job_id)["status"] == "SUCCEEDED"
    seeds = sorted(_query(call)["background.seed"] for call in edit.calls)
    assert seeds == ["10", "11", "11", "12"]
    assert len(stack.job(job_id)["results"]) == 3


def test_guidance_image_and_photoroom_options_are_sent(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    edit = picsart.get(EDIT).mock(side_effect=_edited)
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=stack.cloud.input_bucket, Key="uploads/look.png", Body=PNG
    )

    _, body = _create(
        stack,
        {
            **BODY,
            "provider": "photoroom",
            "count": 1,
            "format": "WEBP",
            "guidance": {"image_key": "uploads/look.png", "scale": 0.8},
            "expand_prompt": False,
            "model": "background-studio-beta-2025-03-17",
            "reference_box": "originalImage",
            "output_size": "1024x768",
        },
    )
    stack.wait_for_execution(str(body["id"]))

    (call,) = edit.calls
    query = _query(call)
    assert "uploads/look.png" in query["background.guidance.imageUrl"]
    assert "X-Amz-Signature" in query["background.guidance.imageUrl"]
    assert query["background.guidance.scale"] == "0.8"
    assert query["background.expandPrompt.mode"] == "ai.never"
    assert query["referenceBox"] == "originalImage"
    assert query["outputSize"] == "1024x768"
    assert query["export.format"] == "webp"
    assert call.request.headers["pr-ai-background-model-version"] == (
        "background-studio-beta-2025-03-17"
    )


def test_out_of_credits_keeps_the_images_made_and_waits_for_credits(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    edit = picsart.get(EDIT).mock(
        side_effect=[
            httpx.Response(200, content=PNG, headers={"content-type": "image/png"}),
            httpx.Response(402, json={"error": {"detail": "No credits left"}}),
        ]
    )

    _, body = _create(stack, {**BODY, "provider": "photoroom", "count": 2})
    job_id = str(body["id"])

    deadline = time.monotonic() + 30
    while edit.call_count < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)  # the task records the pause and returns to its Wait
    # Nothing failed: the image made is stored, the other waits for credits, unpaid.
    assert [e["status"] for e in stack.executions()] == ["RUNNING"]
    job = stack.job(job_id)
    assert (job["status"], job["error"]) == ("running", None)
    assert stack.result_keys(f"results/{job_id}/") == [f"results/{job_id}/0.jpg"]
    assert edit.call_count == 2


@pytest.mark.parametrize(
    ("provider", "extra", "field"),
    [
        ("picsart", {"seed": 1}, "seed"),
        ("picsart", {"guidance": {"image_url": "https://example.com/look.png"}}, "guidance"),
        ("picsart", {"expand_prompt": True}, "expand_prompt"),
        ("picsart", {"model": "2"}, "model"),
        ("picsart", {"reference_box": "subjectBox"}, "reference_box"),
        ("picsart", {"output_size": "auto"}, "output_size"),
        ("photoroom", {"negative_prompt": "people"}, "negative_prompt"),
        ("photoroom", {"negative_prompt": "people", "model": "3"}, "negative_prompt"),
    ],
)
def test_capability_mismatches_are_422_naming_provider_and_field(
    stack: Stack, provider: str, extra: dict[str, object], field: str
) -> None:
    status, body = _create(stack, {**BODY, "provider": provider, **extra})

    assert status == 422
    error = body["error"]
    assert isinstance(error, dict)
    assert error["code"] == "unsupported_option"
    (detail,) = error["details"]
    assert detail["field"] == field
    assert provider in detail["reason"]
    assert stack.executions() == []


def test_negative_prompt_is_accepted_with_photoroom_model_2(stack: Stack) -> None:
    status, _ = _create(
        stack, {**BODY, "provider": "photoroom", "negative_prompt": "people", "model": "2"}
    )
    assert status == 202


def _query_of(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(str(request.url)).query).items()}


def test_a_provider_that_was_down_is_tried_again_and_only_missing_images_are_asked_for(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    answers = iter([None, httpx.Response(503, json={"detail": "busy"}), None])

    def flaky(request: httpx.Request) -> httpx.Response:
        return next(answers) or _edited(request)

    edit = picsart.get(EDIT).mock(side_effect=flaky)
    status, body = _create(stack, {**BODY, "provider": "photoroom", "count": 2, "seed": 5})
    execution = stack.wait_for_execution(str(body["id"]), timeout=60)

    assert status == 202
    assert execution["status"] == "SUCCEEDED"
    # One image stored, one call refused (not paid), then only the missing image again
    seeds = [_query(call)["background.seed"] for call in edit.calls]
    assert len(seeds) == 3
    assert sorted(seeds.count(seed) for seed in ("5", "6")) == [1, 2]
