"""Every task state of the generation workflow retries by one of a few named policies, and
every provider step ends in RecordFailure when its retries run out: the ASL is checked
against this one table, so a policy is changed in one place (here and the ASL together)."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import ROOT

ASL = json.loads((ROOT / "statemachine" / "generation.asl.json").read_text())

_LAMBDA_TRANSIENT = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "States.Timeout",
]


def _backoff(errors: list[str], attempts: int, interval: int, max_delay: int | None) -> Any:
    rule = {"ErrorEquals": errors, "IntervalSeconds": interval, "BackoffRate": 2.0}
    rule["MaxAttempts"] = attempts
    if max_delay is not None:
        rule["MaxDelaySeconds"] = max_delay
    return rule | {"JitterStrategy": "FULL"}


# Lambda had a moment: a few quick tries. Submit and Generate retry a provider that is down
# themselves (provider_tasks.py counts the tries in the Step, across waits for a turn, with
# the same backoff), so the state retries only Lambda's own errors.
LAMBDA_ONLY = _backoff(_LAMBDA_TRANSIENT, 3, 2, 30)
# A function that ran out of time (`Sandbox.Timedout`) is retried only where running the
# step again cannot pay twice: a poll reads, a store rewrites the same objects.
SAFE_TO_REPEAT = _backoff(["ProviderUnavailable", *_LAMBDA_TRANSIENT, "Sandbox.Timedout"], 3, 2, 30)
# Recording and announcing an outcome must not be lost to a blip: anything is retried.
ANNOUNCE = _backoff(["States.ALL"], attempts=4, interval=1, max_delay=None)

POLICIES = {
    # A 429 is not retried here: the tasks turn it into a wait for the whole provider
    # (governor.py), which uses no retry budget.
    "Generate": [LAMBDA_ONLY],
    "Submit": [LAMBDA_ONLY],
    "Poll": [SAFE_TO_REPEAT],
    # Downloads are not rate limited by the provider's API.
    "Store": [SAFE_TO_REPEAT],
    "PublishSucceeded": [ANNOUNCE],
    "RecordFailure": [ANNOUNCE],
    "PublishFailed": [ANNOUNCE],
}
# Steps whose failure is the job's: caught, recorded and announced.
CAUGHT = {"Generate", "Submit", "Poll", "Store"}


def _tasks() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in ASL["States"].items() if s["Type"] == "Task"}


def test_every_task_state_retries_by_a_named_policy() -> None:
    tasks = _tasks()
    assert set(tasks) == set(POLICIES)
    for name, state in tasks.items():
        assert state["Retry"] == POLICIES[name], name


def test_every_provider_step_ends_in_record_failure() -> None:
    for name, state in _tasks().items():
        catches = state.get("Catch", [])
        if name in CAUGHT:
            assert catches == [
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}
            ], name
        else:
            assert catches == [], name


def test_the_path_is_chosen_by_mode_never_by_provider_name() -> None:
    text = json.dumps(ASL["States"])
    for name in ("picsart", "photoroom"):
        assert name not in text
    choice = ASL["States"][ASL["StartAt"]]
    assert choice["Type"] == "Choice"
    assert json.dumps(choice["Choices"]).count('"$.mode"') == 2
