"""Fixed one-minute request windows per provider and API key."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class Quota:
    """Where a key stands in its window; the numbers Picsart puts in its headers."""

    allowed: bool
    limit: int
    available: int
    reset_seconds: int


@dataclass
class _Window:
    started: float
    used: int


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], _Window] = {}

    def hit(self, provider: str, key: str, limit: int) -> Quota:
        """Count one request; refused requests do not use up the window further."""
        with self._lock:
            now = self._clock()
            window = self._current(provider, key, now)
            allowed = window.used < limit
            if allowed:
                window.used += 1
            return self._quota(window, limit, now, allowed)

    def peek(self, provider: str, key: str, limit: int) -> Quota:
        with self._lock:
            now = self._clock()
            return self._quota(self._current(provider, key, now), limit, now, allowed=True)

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()

    def _current(self, provider: str, key: str, now: float) -> _Window:
        window = self._windows.get((provider, key))
        if window is None or now - window.started >= WINDOW_SECONDS:
            window = _Window(started=now, used=0)
            self._windows[(provider, key)] = window
        return window

    @staticmethod
    def _quota(window: _Window, limit: int, now: float, allowed: bool) -> Quota:
        remaining = window.started + WINDOW_SECONDS - now
        return Quota(
            allowed=allowed,
            limit=limit,
            available=max(0, limit - window.used),
            # Rounded up so a client that waits this long finds the window renewed (and
            # clamped: (started + 60) - now can round to a hair over 60 at once).
            reset_seconds=min(int(WINDOW_SECONDS), max(1, math.ceil(remaining))),
        )
