"""When to poll: at the fixed waits until the provider has a history, then near the times
its recent jobs took, the first poll at the median."""

from __future__ import annotations

from typing import Any

import pytest

from backdrop.config import WorkflowSettings
from backdrop.workflow import schedule

SETTINGS = WorkflowSettings.model_validate(
    {
        "jobs_table": "j",
        "batches_table": "b",
        "governor_table": "g",
        "input_bucket": "i",
        "results_bucket": "r",
        "event_bus_name": "e",
        "poll_first_wait_seconds": 8,
        "poll_interval_seconds": 3,
    }
)


class History:
    def __init__(self, durations: list[float]) -> None:
        self.durations = durations

    def recent(self, provider: str) -> list[float]:
        return self.durations


def _wait(durations: list[float], *, elapsed: float, attempt: int) -> int:
    governor: Any = History(durations)
    return schedule.next_wait(governor, "p", SETTINGS, elapsed=elapsed, attempt=attempt)


def test_without_history_the_fixed_waits_apply() -> None:
    assert _wait([5.0, 6.0], elapsed=0, attempt=0) == 8
    assert _wait([], elapsed=8, attempt=1) == 3


@pytest.mark.parametrize(
    ("elapsed", "attempt", "expected"),
    [
        (0.0, 0, 6),  # the median (5.0) and a moment: a 2-second job is not kept 8 s
        (5.5, 1, 4),  # then the 80th percentile (9.0)
        (9.5, 2, 3),  # then the 95th (12.0)
        (12.5, 3, 3),  # past what the history knows: every PollIntervalSeconds
    ],
)
def test_polls_aim_at_what_recent_jobs_took(elapsed: float, attempt: int, expected: int) -> None:
    durations = [2.0, 3.0, 4.0, 5.0, 5.0, 6.0, 8.0, 9.0, 10.0, 12.0]
    assert _wait(durations, elapsed=elapsed, attempt=attempt) == expected
