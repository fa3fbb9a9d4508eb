"""How a caught failure becomes the job's error code and message."""

from __future__ import annotations

import json

import pytest

from backdrop.workflow.failures import error_from_failure
from tests.conftest import load_event


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ("ProviderThrottled", "provider_throttled"),
        ("ProviderUnavailable", "provider_unavailable"),
        ("ProviderRejected", "provider_rejected"),
        ("ProviderAuthError", "provider_auth"),
        ("ProviderQuotaExceeded", "provider_quota"),
        ("ProviderJobFailed", "provider_failed"),
        ("ProviderTimeout", "provider_timeout"),
        ("ProviderProtocolError", "provider_protocol"),
        ("ResultUnavailable", "result_unavailable"),
        ("QueueTimeout", "queue_timeout"),
        ("States.Timeout", "timeout"),
        ("Sandbox.Timedout", "timeout"),
    ],
)
def test_known_errors_keep_their_code(error: str, code: str) -> None:
    cause = json.dumps({"errorType": error, "errorMessage": "what happened"})
    assert error_from_failure(error, cause).code == code


def test_the_message_comes_from_the_lambda_cause() -> None:
    event = load_event("workflow-mark-failed")
    failure = error_from_failure(event["error"]["Error"], event["error"]["Cause"])
    assert failure.code == "provider_failed"
    assert failure.message == "Picsart failed the generation: the subject could not be detected"


def test_unexpected_errors_do_not_leak_internals() -> None:
    cause = json.dumps(
        {"errorType": "KeyError", "errorMessage": "'secret_internal_field'", "stackTrace": ["x"]}
    )
    failure = error_from_failure("KeyError", cause)
    assert failure.code == "internal_error"
    assert "secret_internal_field" not in failure.message
