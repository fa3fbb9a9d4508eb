"""Property tests of the generation request: whatever the mix of fields, the model accepts
a request exactly when every rule holds, and what it accepts keeps the caller's values."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from backdrop.contracts.requests import GenerationRequest
from backdrop.domain import MAX_IMAGE_URL_LENGTH

IMAGES: dict[str, st.SearchStrategy[Any]] = {
    "image_url": st.sampled_from(
        ["https://example.com/a.png", "http://cdn.example.org/p/1.jpg", "ftp://x/a.png"]
    )
    | st.integers(1, 2200).map(lambda n: "https://example.com/" + "a" * n),
    "image_key": st.text(min_size=0, max_size=20).map(lambda t: "uploads/" + t),
    "image_base64": st.binary(min_size=0, max_size=40).map(lambda b: base64.b64encode(b).decode()),
}
OPTIONS: dict[str, st.SearchStrategy[Any]] = {
    "count": st.integers(-1, 12),
    "format": st.sampled_from(["JPG", "PNG", "WEBP", "GIF", "jpg"]),
    "seed": st.integers(-2, 3) | st.integers(2**32 - 2, 2**32 + 1),
    "prompt": st.text(max_size=8) | st.integers(998, 1002).map(lambda n: "p" * n),
    "metadata": st.dictionaries(
        st.sampled_from(["sku", "order-id", *"abcdefghij"]), st.text(max_size=8), max_size=12
    )
    | st.dictionaries(
        st.sampled_from(["sku", "bad key", "x" * 40, "x" * 41]),
        st.integers(255, 257).map(lambda n: "v" * n),
        max_size=2,
    ),
}


def _expected_valid(body: dict[str, Any]) -> bool:
    images = [name for name in IMAGES if name in body]
    if len(images) != 1:
        return False
    url = body.get("image_url")
    if url is not None and (not url.startswith("https:") or len(url) > MAX_IMAGE_URL_LENGTH):
        return False
    if "image_base64" in body and not base64.b64decode(body["image_base64"]):
        return False
    checks = {
        "count": lambda v: 1 <= v <= 10,
        "format": lambda v: v in ("JPG", "PNG", "WEBP"),
        "seed": lambda v: 0 <= v <= 2**32 - 1,
        "prompt": lambda v: 1 <= len(v) <= 1000,
        "metadata": lambda v: (
            len(v) <= 10
            and all(len(k) <= 40 and " " not in k and len(x) <= 256 for k, x in v.items())
        ),
    }
    return all(check(body[name]) for name, check in checks.items() if name in body)


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    # Mostly one image, so that the options' own rules decide most examples.
    if draw(st.integers(0, 4)):
        images = [draw(st.sampled_from(sorted(IMAGES)))]
    else:
        images = draw(st.lists(st.sampled_from(sorted(IMAGES)), unique=True))
    body = {name: draw(IMAGES[name]) for name in images}
    for name, values in OPTIONS.items():
        if draw(st.booleans()):
            body[name] = draw(values)
    return body


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_a_request_is_accepted_exactly_when_every_rule_holds(body: dict[str, Any]) -> None:
    try:
        request = GenerationRequest.model_validate(body)
    except ValidationError:
        assert not _expected_valid(body), body
        return
    assert _expected_valid(body), body
    for name in ("count", "format", "seed", "prompt", "metadata", "image_key"):
        if name in body:
            assert getattr(request, name) == body[name]
    if "image_base64" in body:
        assert request.inline_image == base64.b64decode(body["image_base64"])


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies(), st.text(min_size=1, max_size=10).filter(lambda k: k not in IMAGES))
def test_unknown_fields_are_always_refused(body: dict[str, Any], extra: str) -> None:
    if extra in OPTIONS or extra in GenerationRequest.model_fields:
        return
    with pytest.raises(ValidationError) as refused:
        GenerationRequest.model_validate({**body, extra: "x"})
    assert any(e["loc"] == (extra,) for e in refused.value.errors())
