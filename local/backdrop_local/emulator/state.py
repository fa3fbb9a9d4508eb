"""What both emulated providers share: settings, accounts, counters, faults, limits."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from backdrop_local.emulator.faults import FaultPlan
from backdrop_local.emulator.ratelimit import RateLimiter
from backdrop_local.emulator.settings import EmulatorSettings
from backdrop_local.emulator.stats import Figures, Provider, Stats

__all__ = ["EmulatorState", "Provider"]


class EmulatorState:
    def __init__(self, settings: EmulatorSettings) -> None:
        self._lock = threading.Lock()
        self._settings = settings.model_copy(deep=True)
        self.faults = FaultPlan(settings.seed)
        self.limiter = RateLimiter()
        self._balances: dict[Provider, int] = {}
        self.figures = Figures()
        self._fill_balances()
        # Set on shutdown so deliberate delays end at once instead of holding threads.
        self.stopping = threading.Event()

    @property
    def settings(self) -> EmulatorSettings:
        with self._lock:
            return self._settings

    def update_settings(self, patch: Mapping[str, Any]) -> EmulatorSettings:
        """Merge a partial update (pydantic.ValidationError on bad values).

        A new seed restarts the random sequence; new credits refill both balances.
        """
        with self._lock:
            new = self._settings.merged(patch)
            self._settings = new
            if "seed" in patch:
                self.faults.reseed(new.seed)
            if "credits" in patch:
                self._fill_balances()
            return new

    def reset(self) -> None:
        """Back to the state right after start, under the current settings."""
        with self._lock:
            self._fill_balances()
            self.faults.reseed(self._settings.seed)
        self.faults.clear_scripts()
        self.limiter.clear()
        self.figures.clear()

    def count(self, provider: Provider, name: str, amount: int = 1) -> None:
        self.figures.count(provider, name, amount)

    def stats(self) -> Stats:
        """What GET /_emulator/stats answers; the names are explained in the stats module."""
        return self.figures.snapshot()

    def balance(self, provider: Provider) -> int:
        with self._lock:
            return self._balances[provider]

    def charge(self, provider: Provider, amount: int) -> bool:
        """Take `amount` credits if the balance covers them; False (nothing taken) if not."""
        with self._lock:
            if self._balances[provider] < amount:
                return False
            self._balances[provider] -= amount
            return True

    def refund(self, provider: Provider, amount: int) -> None:
        with self._lock:
            self._balances[provider] += amount

    def add_credits(self, provider: Provider, amount: int) -> int:
        """A top-up (POST /_emulator/credits); the new balance."""
        with self._lock:
            self._balances[provider] += amount
            return self._balances[provider]

    def set_credits(self, provider: Provider, amount: int) -> int:
        """Replaces one balance only; the `credits` setting (and so reset) is left as it is."""
        with self._lock:
            self._balances[provider] = amount
            return amount

    def balances(self) -> dict[Provider, int]:
        with self._lock:
            return dict(self._balances)

    def pause(self, seconds: float) -> None:
        """Sleep that ends early when the emulator stops."""
        if seconds > 0:
            self.stopping.wait(seconds)

    def _fill_balances(self) -> None:
        self._balances = {"picsart": self._settings.credits, "photoroom": self._settings.credits}
