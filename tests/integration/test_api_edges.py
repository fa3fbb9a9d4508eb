"""The API's edges as the template defines them, played by the local front: API Gateway
answers the CORS preflight itself (a mock integration, no function), by the origin rule of
its mapping template, and the API's description is readable without a key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from moto import mock_aws

from backdrop_local.api_front import ApiFront, ApiKeys, Gateway
from backdrop_local.cloud import REGION, provision

KEY = "edge-key-0123456789abcdef"


class Front:
    def __init__(self, cors: str) -> None:
        cloud = provision(parameters={"CorsAllowOrigins": cors})
        keys, _ = ApiKeys.provision(
            boto3.client("apigateway", region_name=REGION), name="k", value=KEY
        )
        self.invoked: list[tuple[str, str]] = []
        self.front = ApiFront(
            gateway=Gateway.from_template(cloud.rest_api, cloud.api_events),
            invoke=self._invoke,
            keys=keys,
            host="127.0.0.1",
            port=0,
        )

    def _invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        self.invoked.append((function, event["path"]))
        return {"statusCode": 200, "headers": {"content-type": "text/plain"}, "body": "ok"}

    def preflight(self, origin: str) -> httpx.Response:
        return httpx.options(
            f"{self.front.url}/v1/generations",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        )


@pytest.fixture
def front(request: pytest.FixtureRequest) -> Iterator[Front]:
    with mock_aws():
        made = Front(request.param)
        made.front.start()
        try:
            yield made
        finally:
            made.front.stop()


@pytest.mark.parametrize(
    "front", ["https://shop.example.com, https://admin.example.com"], indirect=True
)
def test_a_preflight_is_answered_by_the_gateway_for_a_listed_origin_only(front: Front) -> None:
    listed = front.preflight("https://admin.example.com")
    assert listed.status_code == 204
    assert listed.headers["Access-Control-Allow-Origin"] == "https://admin.example.com"
    assert "Idempotency-Key" in listed.headers["Access-Control-Allow-Headers"]
    assert "POST" in listed.headers["Access-Control-Allow-Methods"]
    assert listed.headers["Vary"] == "Origin"

    unlisted = front.preflight("https://evil.example.net")
    assert unlisted.status_code == 204
    assert "Access-Control-Allow-Origin" not in unlisted.headers  # the browser refuses

    assert front.invoked == []  # no preflight reached, or woke, the function


@pytest.mark.parametrize("front", ["*"], indirect=True)
def test_any_origin_is_allowed_where_the_stack_says_star(front: Front) -> None:
    answer = front.preflight("https://anywhere.example.org")
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert front.invoked == []


@pytest.mark.parametrize("front", ["*"], indirect=True)
def test_the_docs_need_no_key_and_everything_else_does(front: Front) -> None:
    for path in ("/v1/docs", "/v1/openapi.json"):
        assert httpx.get(f"{front.front.url}{path}").status_code == 200
    assert httpx.get(f"{front.front.url}/v1/generations").status_code == 403
    assert (
        httpx.get(f"{front.front.url}/v1/generations", headers={"x-api-key": KEY}).status_code
        == 200
    )
    assert [path for _, path in front.invoked] == [
        "/v1/docs",
        "/v1/openapi.json",
        "/v1/generations",
    ]
