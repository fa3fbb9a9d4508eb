"""The figures behind `GET /_emulator/stats`: counters per provider, Picsart's download lag.

Counters (integers):
- `submissions` (Picsart) / `calls` (Photoroom edits): attempts past authentication and the
  rate limit, including those then answered with an injected fault. Balance and account
  reads (Picsart `/balance`, Photoroom `/v2/account`) count in none but `throttled`.
- `accepted`: generations taken and paid for: Picsart submissions answered 200 or 202 with a
  job created, Photoroom edits answered with an image.
- `polls` (Picsart): `GET painting/{id}` calls past authentication and the rate limit,
  whatever they answered.
- `throttled`: 429 answers sent, from the rate limit or an injected fault.
- `images`: images generated.

Lag (Picsart, seconds or null): for each job, the time from when its processing finished to
the first successful download of one of its result files; `lag_p50_seconds` and
`lag_p95_seconds` are percentiles over the jobs downloaded so far, null when there are none.
They show how promptly a client collects results (Picsart keeps them 24 hours).
"""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from collections.abc import Sequence
from typing import Literal

Provider = Literal["picsart", "photoroom"]
Figure = int | float | None
Stats = dict[str, dict[str, Figure]]

COUNTERS: dict[Provider, tuple[str, ...]] = {
    "picsart": ("submissions", "accepted", "polls", "throttled", "images"),
    "photoroom": ("calls", "accepted", "throttled", "images"),
}
# The most recent lags kept: enough for stable percentiles, bounded for long local runs.
MAX_LAGS = 10_000


class Figures:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: Counter[tuple[Provider, str]] = Counter()
        self._lags: deque[float] = deque(maxlen=MAX_LAGS)

    def count(self, provider: Provider, name: str, amount: int = 1) -> None:
        if name not in COUNTERS[provider]:
            raise ValueError(f"{provider} has no counter {name!r}")  # a typo would go unseen
        with self._lock:
            self._counters[(provider, name)] += amount

    def record_lag(self, seconds: float) -> None:
        """A Picsart job's first download, `seconds` after it became ready."""
        with self._lock:
            self._lags.append(max(0.0, seconds))

    def clear(self) -> None:
        with self._lock:
            self._counters.clear()
            self._lags.clear()

    def snapshot(self) -> Stats:
        with self._lock:
            stats: Stats = {
                provider: {name: self._counters[(provider, name)] for name in names}
                for provider, names in COUNTERS.items()
            }
            lags = sorted(self._lags)
        stats["picsart"]["lag_p50_seconds"] = percentile(lags, 0.50)
        stats["picsart"]["lag_p95_seconds"] = percentile(lags, 0.95)
        return stats


def percentile(ordered: Sequence[float], share: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default), in milliseconds' precision."""
    if not ordered:
        return None
    position = share * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    value = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
    return round(value, 3)
