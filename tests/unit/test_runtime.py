"""One container per function (backdrop.runtime) and each function's settings
(backdrop.config.read): built once, again after a reset, refused loudly when wrong."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from backdrop import config
from backdrop.config import JobSettings, SettingsError, WorkflowSettings
from backdrop.runtime import Function, Wiring

WORKFLOW = {
    "JOBS_TABLE": "jobs",
    "BATCHES_TABLE": "batches",
    "GOVERNOR_TABLE": "governor",
    "INPUT_BUCKET": "in",
    "RESULTS_BUCKET": "out",
    "EVENT_BUS_NAME": "bus",
}


class Context:
    function_name = "f"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:f"
    aws_request_id = "r"


def _counting(monkeypatch: pytest.MonkeyPatch) -> tuple[Function[JobSettings], list[str]]:
    made: list[str] = []

    def make(settings: JobSettings) -> JobSettings:
        made.append(settings.jobs_table)
        return settings

    def run(container: JobSettings, event: dict[str, Any], context: Any) -> str:
        return f"{container.jobs_table}:{event['n']}"

    monkeypatch.setenv("JOBS_TABLE", "first")
    monkeypatch.setenv("BATCHES_TABLE", "batches")
    return Function(Wiring(JobSettings, make), run), made


def test_a_container_is_made_at_the_first_invocation_and_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler, made = _counting(monkeypatch)
    assert made == []  # nothing at import, or when the handler is made
    assert handler({"n": 1}, Context()) == "first:1"
    monkeypatch.setenv("JOBS_TABLE", "second")
    assert handler({"n": 2}, Context()) == "first:2"  # a warm container keeps its settings
    assert made == ["first"]


def test_a_reset_is_a_cold_start_reading_the_environment_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler, made = _counting(monkeypatch)
    handler({"n": 1}, Context())
    monkeypatch.setenv("JOBS_TABLE", "second")
    handler.reset()
    assert handler({"n": 2}, Context()) == "second:2"
    assert made == ["first", "second"]


def test_a_function_reads_only_the_variables_its_model_declares() -> None:
    settings = config.read(WorkflowSettings, {**WORKFLOW, "PATH": "/bin", "STATE_MACHINE_ARN": "x"})
    assert settings.governor_table == "governor"
    assert "state_machine_arn" not in WorkflowSettings.model_fields


def test_a_missing_or_bad_variable_is_named_as_the_environment_spells_it() -> None:
    without = {k: v for k, v in WORKFLOW.items() if k != "RESULTS_BUCKET"}
    with pytest.raises(
        SettingsError, match="WorkflowSettings from the environment: RESULTS_BUCKET: Field required"
    ):
        config.read(WorkflowSettings, without)
    with pytest.raises(SettingsError, match="POLL_INTERVAL_SECONDS: Input should be less than"):
        config.read(WorkflowSettings, {**WORKFLOW, "POLL_INTERVAL_SECONDS": "61"})


def test_an_unknown_setting_given_by_name_is_refused() -> None:
    values = {key.lower(): value for key, value in WORKFLOW.items()}
    with pytest.raises(ValidationError, match="state_machine_arn"):
        WorkflowSettings.model_validate({**values, "state_machine_arn": "stale"})
