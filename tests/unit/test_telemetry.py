"""Metrics leave as one embedded-metric-format line each, with the provider as a dimension."""

from __future__ import annotations

import json

import pytest

from backdrop import telemetry


def test_a_figure_is_one_emf_line_with_its_provider(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")

    telemetry.emit("RateLimitWaitSeconds", 12, "Seconds", provider="picsart")

    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Backdrop"
    assert directive["Metrics"] == [{"Name": "RateLimitWaitSeconds", "Unit": "Seconds"}]
    assert ["provider", "service"] in directive["Dimensions"]
    assert (record["provider"], record["RateLimitWaitSeconds"]) == ("picsart", [12.0])


def test_nothing_is_written_where_metrics_are_disabled(capsys: pytest.CaptureFixture[str]) -> None:
    telemetry.emit("JobsSucceeded", 1)  # the tests' environment disables them
    assert capsys.readouterr().out == ""
