"""The request and workflow models: what a client may send, what the workflow carries."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from backdrop.contracts.requests import GenerationRequest
from backdrop.domain import ImageSource
from backdrop.workflow.messages import MarkFailedInput, Step


def _errors(body: dict[str, object]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        GenerationRequest.model_validate(body)
    return [str(e["msg"]) for e in caught.value.errors()]


def test_defaults_leave_prompt_and_count_to_the_stack() -> None:
    request = GenerationRequest.model_validate({"image_key": "uploads/a.png"})
    assert request.prompt is None
    assert request.count is None
    assert request.format == "JPG"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"image_url": "https://example.com/a.png", "image_key": "uploads/a.png"},
    ],
)
def test_exactly_one_image_is_required(body: dict[str, object]) -> None:
    assert any(
        "give exactly one of image_url, image_key, image_base64, image" in m for m in _errors(body)
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("count", 0),
        ("count", 11),
        ("format", "GIF"),
        ("prompt", ""),
        ("prompt", "x" * 1001),
        ("image_url", "ftp://example.com/a.png"),
        ("image_url", "not a url"),
        ("unknown", 1),
    ],
)
def test_out_of_range_values_are_rejected(field: str, value: object) -> None:
    body = {"image_key": "uploads/a.png", field: value}
    if field == "image_url":
        body = {field: value}
    with pytest.raises(ValidationError) as caught:
        GenerationRequest.model_validate(body)
    assert caught.value.errors()[0]["loc"][0] == field


def test_image_url_longer_than_picsart_allows_is_rejected() -> None:
    url = "https://example.com/" + "a" * 2064
    assert len(url) == 2084
    assert any("2083" in m for m in _errors({"image_url": url}))


def test_image_source_is_a_url_or_an_object() -> None:
    assert ImageSource(url="https://example.com/a.png").key is None
    with pytest.raises(ValidationError):
        ImageSource(url="https://example.com/a.png", bucket="b", key="k")
    with pytest.raises(ValidationError):
        ImageSource(bucket="b")


def test_a_step_only_knows_new_queued_processing_and_done() -> None:
    with pytest.raises(ValidationError):
        Step(provider_job_id="x", wait_seconds=1, status="error")  # type: ignore[arg-type]


def test_caught_error_reads_step_functions_field_names() -> None:
    task = MarkFailedInput.model_validate(
        {"job_id": "0" * 32, "error": {"Error": "ProviderThrottled", "Cause": "{}"}}
    )
    assert task.error.error == "ProviderThrottled"
    with pytest.raises(ValidationError):
        MarkFailedInput.model_validate({"job_id": "../etc", "error": {"Error": "x"}})
