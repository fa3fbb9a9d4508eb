"""Our Standard Webhooks signatures, checked with the reference library (standardwebhooks on
PyPI), and the rules for webhook destinations."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from backdrop import fetch_guard
from backdrop.webhooks import delivery, signing

OLD = "whsec_" + base64.b64encode(b"the-secret-being-rotated-out").decode()
NEW = "whsec_" + base64.b64encode(b"the-secret-being-rotated-in!").decode()
BODY = '{"type":"generation.succeeded","data":{"id":"c9d0"}}'


def _signed(secret_value: str) -> dict[str, str]:
    return signing.headers(signing.keys(secret_value), "msg_1", int(time.time()), BODY)


def test_a_signature_verifies_with_the_reference_library() -> None:
    assert Webhook(NEW).verify(BODY, _signed(NEW)) == {
        "type": "generation.succeeded",
        "data": {"id": "c9d0"},
    }


def test_during_a_rotation_each_secret_verifies() -> None:
    headers = _signed(f"{NEW} {OLD}")
    assert len(headers["webhook-signature"].split()) == 2
    for secret in (NEW, OLD):
        Webhook(secret).verify(BODY, headers)


def test_the_generated_form_bare_base64_is_the_same_secret_as_with_its_prefix() -> None:
    # CloudFormation generates 32 letters and digits: base64 of 24 bytes, no prefix.
    generated = "Zk3pQ9x2Lr8TwVb6Nc4Hj7Ya5Ue1Mo0S"
    headers = _signed(generated)
    Webhook(generated).verify(BODY, headers)
    Webhook("whsec_" + generated).verify(BODY, headers)


def test_anything_changed_fails_verification() -> None:
    headers = _signed(NEW)
    with pytest.raises(WebhookVerificationError):
        Webhook(NEW).verify(BODY.replace("succeeded", "failed"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(OLD).verify(BODY, headers)
    stale = signing.headers(signing.keys(NEW), "msg_1", int(time.time()) - 3600, BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(NEW).verify(BODY, stale)  # replay protection: too old


@pytest.mark.parametrize("value", ["", "   ", "whsec_not*base64", "c2hvcnQ="])
def test_a_bad_signing_secret_is_refused_not_used(value: str) -> None:
    with pytest.raises(signing.BadSecret):
        signing.keys(value)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/in", "https"),
        ("https://10.0.0.1/in", "IP address"),
        ("https://[::1]/in", "IP address"),
        ("https://169.254.169.254/latest", "IP address"),
        ("https://u:p@hooks.example.com/in", "credentials"),
        ("https://localhost/in", "local name"),
        ("https://printer.local/in", "local name"),
        ("https://hooks.example.com/" + "x" * 2048, "2048"),
        ("https:///nohost", "no host"),
    ],
)
def test_webhook_destinations_refused_before_any_lookup(url: str, reason: str) -> None:
    refusal = fetch_guard.webhook_url_refusal(url, allow_private=False)
    assert refusal is not None
    assert reason in refusal


@pytest.mark.parametrize("address", ["10.1.2.3", "192.168.0.7", "127.0.0.1", "169.254.169.254"])
def test_a_name_resolving_to_a_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    monkeypatch.setattr(fetch_guard, "resolve", lambda host, port: [address])
    refusal = fetch_guard.webhook_url_refusal("https://hooks.example.com/in", allow_private=False)
    assert refusal is not None
    assert address in refusal


def test_a_public_name_passes_and_loopback_only_where_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fetch_guard, "resolve", lambda host, port: ["93.184.215.14"])
    assert (
        fetch_guard.webhook_url_refusal("https://hooks.example.com/in", allow_private=False) is None
    )
    local = "http://127.0.0.1:8123/hook"
    assert fetch_guard.webhook_url_refusal(local, allow_private=True) is None
    assert fetch_guard.webhook_url_refusal(local, allow_private=False) is not None
    # Metadata addresses never, whatever the stack allows.
    metadata = "http://169.254.169.254/latest"
    assert fetch_guard.webhook_url_refusal(metadata, allow_private=True) is not None


def test_the_schedule_is_the_specs_about_three_days_and_retry_after_is_honoured() -> None:
    delays = [delivery.next_delay(n, None) for n in range(1, delivery.MAX_ATTEMPTS)]
    planned = delivery.RETRY_DELAYS
    assert all(p <= d <= p * 1.1 for d, p in zip(delays, planned, strict=True))  # jitter
    assert 3 * 86400 < sum(planned) < 3.2 * 86400  # about three days
    assert delivery.MAX_ATTEMPTS == 10
    assert delivery.next_delay(1, 120.0) == 120.0  # longer than the planned 5 s
    assert delivery.next_delay(3, 60.0) >= 1800  # shorter than planned: the plan


class _Sqs:
    def __init__(self) -> None:
        self.visibility: list[int] = []

    def change_message_visibility(self, **call: object) -> None:
        self.visibility.append(int(str(call["VisibilityTimeout"])))


@pytest.mark.parametrize("due_in", [10.0, 3600.0, 86400.0])
def test_a_retry_back_early_hides_until_due_within_what_sqs_allows(
    monkeypatch: pytest.MonkeyPatch, due_in: float
) -> None:
    from backdrop.config import WebhookSettings
    from backdrop.webhooks import dispatch

    sqs = _Sqs()
    monkeypatch.setattr(dispatch.aws, "client", lambda service: sqs)
    settings = WebhookSettings.model_validate(
        {
            "jobs_table": "j",
            "batches_table": "b",
            "results_bucket": "r",
            "webhook_secret_name": "s",
            "webhook_queue_url": "https://sqs.example/q",
            "webhook_dead_letter_queue_url": "https://sqs.example/dlq",
        }
    )
    waiting = delivery.Delivery(
        message_id="msg_1",
        url="https://hooks.example.com/in",
        body="{}",
        job_id="j1",
        own=False,
        attempt=9,
        not_before=time.time() + due_in,
    )

    with pytest.raises(dispatch.NotDue):
        dispatch.Dispatcher(settings, jobs=None).retry(waiting, "receipt")  # type: ignore[arg-type]

    (seconds,) = sqs.visibility
    # Never past SQS's 12 hours from the receive (a request for more is refused), and
    # never longer than the wait: a day's wait comes back twice, hidden again each time.
    assert 0 < seconds <= min(due_in, 43200 - 600) + 1
