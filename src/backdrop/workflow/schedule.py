"""When to poll: near the times the provider's recent jobs took, so most jobs are polled
once or twice and their results are seen soon after they exist. With no history yet,
the stack's PollFirstWaitSeconds, then PollIntervalSeconds."""

from __future__ import annotations

import math

from backdrop.config import WorkflowSettings
from backdrop.stores import JobDurations

# Poll k (from 0) is aimed at this quantile of recent durations: the first at the median,
# then where most of the rest finish. Beyond the list, every PollIntervalSeconds.
_AIMS = (0.5, 0.8, 0.95)
_MIN_HISTORY = 5  # fewer recent jobs than this say too little: use the fixed schedule
_LEAD = 0.3  # seconds polled after the aimed time, so a result a moment late is still seen


def next_wait(
    governor: JobDurations,
    provider: str,
    settings: WorkflowSettings,
    *,
    elapsed: float,
    attempt: int,
) -> int:
    """Seconds to wait before poll `attempt` (0 = the first), `elapsed` s after submit."""
    fixed = settings.poll_first_wait_seconds if attempt == 0 else settings.poll_interval_seconds
    recent = sorted(governor.recent(provider))
    if len(recent) < _MIN_HISTORY:
        return max(0, fixed)
    for aim in _AIMS[attempt:]:
        target = _quantile(recent, aim) + _LEAD
        if target > elapsed + 0.5:
            return max(1, math.ceil(target - elapsed))
    return max(1, settings.poll_interval_seconds)


def _quantile(ordered: list[float], q: float) -> float:
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]
