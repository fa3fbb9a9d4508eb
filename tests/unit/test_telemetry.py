"""Metrics leave as one embedded-metric-format line each: the stack's total, and the same
figure by its dimensions."""

from __future__ import annotations

import json

import pytest

from backdrop import telemetry


def test_a_figure_is_one_emf_line_as_a_total_and_by_its_dimensions(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")

    telemetry.emit("JobsFailed", 1, provider="picsart", code="provider_timeout")

    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Backdrop"
    assert directive["Metrics"] == [{"Name": "JobsFailed", "Unit": "Count"}]
    # The alarms watch the total (service only); the dashboard splits by provider and code.
    assert directive["Dimensions"] == [["service"], ["provider", "code"]]
    assert (record["service"], record["provider"], record["code"]) == (
        "backdrop",
        "picsart",
        "provider_timeout",
    )
    assert record["JobsFailed"] == [1.0]


def test_a_figure_without_dimensions_is_the_total_alone(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")

    telemetry.emit("RateLimitWaitSeconds", 12, "Seconds", provider=None)

    (directive,) = json.loads(capsys.readouterr().out)["_aws"]["CloudWatchMetrics"]
    assert directive["Dimensions"] == [["service"]]
    assert directive["Metrics"] == [{"Name": "RateLimitWaitSeconds", "Unit": "Seconds"}]


def test_nothing_is_written_where_metrics_are_disabled(capsys: pytest.CaptureFixture[str]) -> None:
    telemetry.emit("JobsSucceeded", 1)  # the tests' environment disables them
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("code", "figures"),
    [
        ("provider_unavailable", ["ProviderErrors", "ProviderUnavailable"]),
        ("provider_rejected", ["ProviderErrors"]),
    ],
)
def test_a_provider_error_is_counted_by_code_and_an_outage_on_its_own(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    code: str,
    figures: list[str],
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")

    telemetry.provider_error("photoroom", code)

    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] for r in records] == figures
    assert records[0]["code"] == code
    assert all(r["provider"] == "photoroom" for r in records)
