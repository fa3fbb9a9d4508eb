"""The API is strict on JSON types and on paths (the two findings of a fuzzer run), and
keeps parsing what is text by nature: a multipart form's fields."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import PNG, Stack
from tests.integration.test_api import MULTIPART, _call, _multipart

URL = "https://images.example.com/p.png"


@pytest.mark.parametrize("path", ["/v1/generations/\n", "/v1/generations\n", "/v1/batches/\n"])
def test_a_path_ending_in_a_newline_is_no_generation_not_the_list(stack: Stack, path: str) -> None:
    status, _, body = _call(stack, None, path=path, method="GET")
    assert (status, body["error"]["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/uploads", {"content_type": "image/png", "content_length": True}, "content_length"),
        ("/v1/uploads", {"content_type": "image/png", "content_length": "3"}, "content_length"),
        ("/v1/uploads", {"content_type": "image/png", "content_length": 3.5}, "content_length"),
        ("/v1/generations", {"image_url": URL, "count": "3"}, "count"),
        ("/v1/generations", {"image_url": URL, "count": True}, "count"),
        ("/v1/generations", {"image_url": URL, "seed": 3.0}, "seed"),
        ("/v1/generations", {"image_url": URL, "expand_prompt": "true"}, "expand_prompt"),
        ("/v1/generations", {"image_url": URL, "expand_prompt": 1}, "expand_prompt"),
        (
            "/v1/generations",
            {"image_url": URL, "guidance": {"image_url": URL, "scale": "0.5"}},
            "guidance.scale",
        ),
        ("/v1/batches", {"prefix": "catalog/", "count": "2"}, "count"),
        ("/v1/batches", {"prefix": "catalog/", "expand_prompt": 0}, "expand_prompt"),
    ],
)
def test_json_numbers_and_booleans_must_be_typed(
    stack: Stack, path: str, body: dict[str, Any], field: str
) -> None:
    status, _, answer = _call(stack, body, path=path)
    assert status == 422, answer
    assert answer["error"]["code"] == "invalid_request"
    assert [d["field"] for d in answer["error"]["details"]] == [field]


def test_typed_json_numbers_are_taken(stack: Stack) -> None:
    status, _, answer = _call(
        stack, {"content_type": "image/png", "content_length": 3}, path="/v1/uploads"
    )
    assert (status, answer["max_bytes"]) == (201, 3)
    status, _, job = _call(stack, {"image_url": URL, "count": 2})
    assert (status, job["request"]["count"]) == (202, 2)


def test_a_form_still_writes_numbers_as_text(stack: Stack) -> None:
    body = _multipart({"count": "2", "format": "PNG"}, {"image": ("p.png", PNG, "image/png")})
    status, _, job = _call(stack, body, content_type=MULTIPART)
    assert (status, job["request"]["count"]) == (202, 2), job


@pytest.mark.parametrize(
    ("path", "query"),
    [("/v1/generations", {"stauts": "failed"}), ("/v1/batches", {"": "false"})],
)
def test_a_query_parameter_the_route_does_not_take_is_refused(
    stack: Stack, path: str, query: dict[str, str]
) -> None:
    status, _, answer = _call(stack, None, path=path, method="GET", query=query)
    assert (status, answer["error"]["code"]) == (422, "invalid_request")
    [detail] = answer["error"]["details"]
    assert detail["field"] == next(iter(query))
    takes = "it takes: batch_id, cursor, limit, review, status"
    assert takes in detail["reason"] or path != "/v1/generations"
