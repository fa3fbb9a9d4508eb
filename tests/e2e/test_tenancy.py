"""Tenancy through `backdrop local`: a second API key, added with boto3 on the local AWS as
on API Gateway, reads and lists its own jobs and the stack's, never the first key's."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Local, sample

pytestmark = pytest.mark.e2e


def _ids(client: httpx.Client, **params: str) -> list[str]:
    answer = client.get("/v1/generations", params={"limit": "100", **params})
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]


def _new_key(stack: Local, *, on_plan: bool = True) -> tuple[str, httpx.Client]:
    """An enabled API key on the local AWS (on the stack's usage plan unless told), and a
    client that sends it."""
    gateway = stack.client("apigateway")
    value = secrets.token_urlsafe(24)
    key = gateway.create_api_key(name=f"e2e-{value[:6]}", value=value, enabled=True)
    if on_plan:
        gateway.create_usage_plan_key(
            usagePlanId=stack.ready["usage_plan_id"], keyId=key["id"], keyType="API_KEY"
        )
    client = httpx.Client(base_url=stack.ready["api_url"], headers={"x-api-key": value})
    return key["id"], client


@pytest.fixture
def second(stack: Local) -> Iterator[httpx.Client]:
    _, client = _new_key(stack)
    yield client
    client.close()


def _generate(client: httpx.Client) -> str:
    answer = client.post(
        "/v1/generations",
        data={"count": "1"},
        files={"image": ("mug.png", sample("mug"), "image/png")},
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def _error(answer: httpx.Response) -> dict[str, Any]:
    error = answer.json()["error"]
    del error["request_id"]  # each answer's own
    return error  # type: ignore[no-any-return]


def test_a_second_key_neither_reads_nor_lists_the_first_keys_job(
    stack: Local, second: httpx.Client
) -> None:
    first_job = _generate(stack.api)
    assert stack.api.get(f"/v1/generations/{first_job}").status_code == 200

    theirs = second.get(f"/v1/generations/{first_job}")
    unknown = second.get(f"/v1/generations/{'0' * 32}")

    assert theirs.status_code == unknown.status_code == 404
    assert _error(theirs) == _error(unknown)
    assert _error(theirs)["code"] == "not_found"
    assert first_job not in _ids(second)
    assert first_job not in _ids(second, status="queued")
    assert first_job in _ids(stack.api)

    # And the other way round: the second key's job is its own.
    second_job = _generate(second)
    assert second.get(f"/v1/generations/{second_job}").status_code == 200
    assert stack.api.get(f"/v1/generations/{second_job}").status_code == 404
    assert second_job in _ids(second)
    assert second_job not in _ids(stack.api)
    assert stack.wait_for_job(first_job)["status"] == "succeeded"


def test_both_keys_see_the_inbox_jobs(stack: Local, second: httpx.Client) -> None:
    stack.upload("inbox/e2e-tenancy/bottle.png", sample("bottle"))

    job_id = stack.wait_for_event("inbox/e2e-tenancy/bottle.png")["detail"]["job_id"]

    for client in (stack.api, second):
        answer = client.get(f"/v1/generations/{job_id}")
        assert answer.status_code == 200, answer.text
        assert answer.json()["trigger"] == "inbox"
        assert job_id in _ids(client)
        assert job_id in _ids(client, status="succeeded")


def test_a_key_counts_only_while_enabled_and_on_the_usage_plan(stack: Local) -> None:
    key_id, client = _new_key(stack, on_plan=False)
    gateway = stack.client("apigateway")

    assert client.get("/v1/generations").status_code == 403
    gateway.create_usage_plan_key(
        usagePlanId=stack.ready["usage_plan_id"], keyId=key_id, keyType="API_KEY"
    )
    assert client.get("/v1/generations").status_code == 200  # at once: a miss looks again

    gateway.update_api_key(
        apiKey=key_id, patchOperations=[{"op": "replace", "path": "/enabled", "value": "false"}]
    )
    # Refused once the front's short cache of keys has gone (as on API Gateway, a change
    # takes a moment).
    answers = []
    for _ in range(40):
        answers.append(client.get("/v1/generations").status_code)
        if answers[-1] == 403:
            break
        time.sleep(0.25)
    assert answers[-1] == 403, answers
    client.close()
