"""Signed webhooks on the real parts: the workflow announces the outcome on the bus, the
template's rule puts it on the webhook queue (moto), the webhook function delivers it to a
receiver on loopback, and the reference Standard Webhooks library verifies the signature."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime

import pytest
import respx
from standardwebhooks import Webhook

from tests.integration.conftest import PICSART, WEBHOOK_SECRET, Stack, submitted
from tests.receivers import receiver

BODY = {"image_url": "https://images.example.com/mug.png", "prompt": "marble"}


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    # The schedule's first retry is 5 s; a second here keeps the suite quick (the function
    # runs in this process, so it sees the change).
    from backdrop.webhooks import delivery

    monkeypatch.setattr(delivery, "RETRY_DELAYS", (1, *delivery.RETRY_DELAYS[1:]))


@pytest.fixture
def hooks_stack(make_stack: Callable[..., Stack], picsart: respx.MockRouter) -> Stack:
    # Loopback receivers are allowed where the stack says so (the local stack does).
    picsart.route(host="127.0.0.1").pass_through()
    return make_stack(AllowPrivateWebhookHosts="true", WebhookMaxAttempts="2")


def _succeeding(picsart: respx.MockRouter) -> None:
    picsart.post(f"{PICSART}/painting/replace-background").mock(return_value=submitted())
    picsart.get(f"{PICSART}/painting/inf-1").respond(
        200, json={"status": "success", "data": [{"url": "https://cdn.picsart.test/r0.png"}]}
    )


def _create(stack: Stack, **extra: object) -> str:
    answer = stack.create_generation({**BODY, **extra})
    assert answer["statusCode"] == 202, answer
    return str(json.loads(answer["body"])["id"])


def _deliver_until(stack: Stack, done: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "no delivery"
        stack.deliver_webhooks()
        time.sleep(0.2)


def test_the_outcome_is_delivered_signed_and_verifies_with_the_reference_library(
    hooks_stack: Stack, picsart: respx.MockRouter
) -> None:
    _succeeding(picsart)
    with receiver() as hook:
        job_id = _create(hooks_stack, webhook_url=hook.url, metadata={"sku": "MUG-1"})
        hooks_stack.wait_for_execution(job_id)
        _deliver_until(hooks_stack, lambda: len(hook.requests) == 1)

    (request,) = hook.requests
    payload = Webhook(WEBHOOK_SECRET).verify(request.body, request.headers)
    assert payload["type"] == "generation.succeeded"
    assert payload["data"]["id"] == job_id
    assert payload["data"]["status"] == "succeeded"
    assert payload["data"]["metadata"] == {"sku": "MUG-1"}
    assert len(payload["data"]["results"]) == 1
    assert request.headers["webhook-id"] == f"msg_{job_id}_succeeded"
    assert request.headers["content-type"] == "application/json"
    # The job shows how its webhook went.
    job = json.loads(hooks_stack.get_generation(job_id)["body"])
    assert job["webhook"]["status"] == "delivered"
    assert job["webhook"]["attempts"] == 1
    assert job["webhook"]["last_status_code"] == 200
    assert job["request"]["webhook_url"] == hook.url


def test_a_tampered_body_or_another_secret_does_not_verify(
    hooks_stack: Stack, picsart: respx.MockRouter
) -> None:
    _succeeding(picsart)
    with receiver() as hook:
        job_id = _create(hooks_stack, webhook_url=hook.url)
        hooks_stack.wait_for_execution(job_id)
        _deliver_until(hooks_stack, lambda: len(hook.requests) == 1)

    (request,) = hook.requests
    from standardwebhooks.webhooks import WebhookVerificationError

    with pytest.raises(WebhookVerificationError):
        Webhook(WEBHOOK_SECRET).verify(
            request.body.replace(b"succeeded", b"failed"), request.headers
        )
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB").verify(request.body, request.headers)


def test_a_failed_attempt_is_retried_later_with_the_same_id_and_bytes(
    hooks_stack: Stack, picsart: respx.MockRouter
) -> None:
    _succeeding(picsart)
    with receiver(500) as hook:
        job_id = _create(hooks_stack, webhook_url=hook.url)
        hooks_stack.wait_for_execution(job_id)
        _deliver_until(hooks_stack, lambda: len(hook.requests) == 1)
        pending = json.loads(hooks_stack.get_generation(job_id)["body"])["webhook"]
        # The retry waits on the queue (SQS's delay), never in a sleeping Lambda.
        _deliver_until(hooks_stack, lambda: len(hook.requests) == 2, timeout=30)

    first, second = hook.requests
    assert pending["status"] == "pending"
    assert pending["last_status_code"] == 500
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    Webhook(WEBHOOK_SECRET).verify(second.body, second.headers)
    job = json.loads(hooks_stack.get_generation(job_id)["body"])
    assert job["webhook"]["status"] == "delivered"
    assert job["webhook"]["attempts"] == 2


def test_a_receiver_that_keeps_failing_ends_in_the_dead_letters_and_the_job_stays_succeeded(
    hooks_stack: Stack, picsart: respx.MockRouter
) -> None:
    _succeeding(picsart)
    with receiver(503, 503, 503) as hook:
        job_id = _create(hooks_stack, webhook_url=hook.url)
        hooks_stack.wait_for_execution(job_id)
        _deliver_until(hooks_stack, lambda: len(hook.requests) == 2, timeout=30)

    (dead,) = hooks_stack.dead_webhooks()
    assert dead["delivery"]["job_id"] == job_id
    assert dead["delivery"]["attempt"] == 2  # WebhookMaxAttempts
    assert dead["status_code"] == 503
    job = json.loads(hooks_stack.get_generation(job_id)["body"])
    assert job["status"] == "succeeded"
    assert job["webhook"]["status"] == "failed"


def test_410_stops_at_once_and_3xx_is_a_failure(
    hooks_stack: Stack, picsart: respx.MockRouter
) -> None:
    _succeeding(picsart)
    with receiver(410) as gone:
        job_id = _create(hooks_stack, webhook_url=gone.url)
        hooks_stack.wait_for_execution(job_id)
        _deliver_until(hooks_stack, lambda: len(gone.requests) == 1)
        time.sleep(0.5)
        hooks_stack.deliver_webhooks()
    assert len(gone.requests) == 1
    assert hooks_stack.dead_webhooks() == []  # the receiver asked: not a dead letter
    assert json.loads(hooks_stack.get_generation(job_id)["body"])["webhook"]["status"] == "failed"

    with receiver(302) as moved:
        moved.headers["location"] = "http://127.0.0.1:1/elsewhere"
        job_id = _create(hooks_stack, webhook_url=moved.url, prompt="another")
        hooks_stack.wait_for_execution(job_id)
        _deliver_until(hooks_stack, lambda: len(moved.requests) == 1)
    webhook = json.loads(hooks_stack.get_generation(job_id)["body"])["webhook"]
    assert (webhook["status"], webhook["last_status_code"]) == ("pending", 302)


def test_a_failed_job_is_delivered_as_generation_failed(
    hooks_stack: Stack, picsart: respx.MockRouter
) -> None:
    picsart.post(f"{PICSART}/painting/replace-background").respond(401, json={"detail": "no"})
    with receiver() as hook:
        job_id = _create(hooks_stack, webhook_url=hook.url)
        hooks_stack.wait_for_execution(job_id)
        _deliver_until(hooks_stack, lambda: len(hook.requests) == 1)

    payload = Webhook(WEBHOOK_SECRET).verify(hook.requests[0].body, hook.requests[0].headers)
    assert payload["type"] == "generation.failed"
    assert payload["data"]["error"]["code"] == "provider_auth"
    assert hook.requests[0].headers["webhook-id"] == f"msg_{job_id}_failed"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/x", "https"),
        ("https://10.0.0.1/x", "IP address"),
        ("https://user:pw@hooks.example.com/x", "credentials"),
        ("https://localhost/x", "local name"),
        ("https://metadata.internal/x", "local name"),
        ("https://hooks.example.com/" + "a" * 2040, "2048"),
    ],
)
def test_a_bad_webhook_url_is_422_naming_it_and_starts_nothing(
    stack: Stack, url: str, reason: str
) -> None:
    answer = stack.create_generation({**BODY, "webhook_url": url})

    assert answer["statusCode"] == 422
    error = json.loads(answer["body"])["error"]
    (detail,) = error["details"]
    assert detail["field"] == "webhook_url"
    assert reason in detail["reason"]
    assert stack.executions() == []


def test_each_destination_is_its_own_delivery_so_one_failing_spares_the_others(
    make_stack: Callable[..., Stack], picsart: respx.MockRouter
) -> None:
    picsart.route(host="127.0.0.1").pass_through()
    _succeeding(picsart)
    with receiver(500, 500) as stack_hook, receiver() as own_hook:
        stack = make_stack(
            AllowPrivateWebhookHosts="true", WebhookMaxAttempts="2", WebhookUrls=stack_hook.url
        )
        job_id = _create(stack, webhook_url=own_hook.url)
        stack.wait_for_execution(job_id)
        _deliver_until(
            stack, lambda: len(own_hook.requests) == 1 and len(stack_hook.requests) == 2, timeout=30
        )
        time.sleep(0.5)
        stack.deliver_webhooks()

    # The job's own receiver got it once; the stack's failing one did not make it resend.
    assert len(own_hook.requests) == 1
    assert len(stack_hook.requests) == 2
    assert own_hook.requests[0].body == stack_hook.requests[0].body
    # Subscribers are not shown where the job's own webhook goes.
    assert "webhook_url" not in json.loads(stack_hook.requests[0].body)["data"]["request"]
    job = json.loads(stack.get_generation(job_id)["body"])
    assert job["webhook"]["status"] == "delivered"  # the job's own; the stack's are not shown
    (dead,) = stack.dead_webhooks()
    assert dead["delivery"]["url"] == stack_hook.url


def test_a_receiver_that_never_finishes_answering_is_given_up_on_after_the_timeout(
    hooks_stack: Stack, picsart: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backdrop.webhooks import delivery

    monkeypatch.setattr(delivery, "TIMEOUT_SECONDS", 1.0)
    _succeeding(picsart)
    with receiver() as hook:
        # A byte every 0.2 s for 8 s: no read ever times out, only the whole attempt can.
        hook.trickle = 8.0
        job_id = _create(hooks_stack, webhook_url=hook.url)
        hooks_stack.wait_for_execution(job_id)
        _deliver_until(hooks_stack, lambda: len(hook.requests) >= 1)
        attempted = json.loads(hooks_stack.get_generation(job_id)["body"])["webhook"]

    assert attempted["status"] == "pending"
    assert attempted["last_status_code"] is None
    # Recorded well before the receiver would have stopped trickling.
    last = datetime.fromisoformat(attempted["last_attempt_at"])
    assert (
        last - datetime.fromisoformat(hooks_stack.job(job_id)["updated_at"])
    ).total_seconds() < 5


def test_more_destinations_than_sqs_takes_in_one_batch_are_all_delivered(
    make_stack: Callable[..., Stack], picsart: respx.MockRouter
) -> None:
    picsart.route(host="127.0.0.1").pass_through()
    _succeeding(picsart)
    with receiver() as hook:
        subscribers = ",".join(f"{hook.url}?subscriber={n}" for n in range(11))
        stack = make_stack(AllowPrivateWebhookHosts="true", WebhookUrls=subscribers)
        job_id = _create(stack, webhook_url=f"{hook.url}?own")
        stack.wait_for_execution(job_id)
        _deliver_until(stack, lambda: len(hook.requests) == 12, timeout=30)

    assert len({request.path for request in hook.requests}) == 12
    assert {request.headers["webhook-id"] for request in hook.requests} == {
        f"msg_{job_id}_succeeded"
    }
