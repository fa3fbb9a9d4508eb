"""`/_emulator/credits`: read, top up or set the provider accounts' balances while running.

`POST {"provider": "picsart", "add": 100}` adds to one account, `{"set": 0}` sets it; without
`provider` the change applies to both. Reset and `PUT /_emulator/settings {"credits": N}`
still refill both from the setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from backdrop_local.emulator.state import EmulatorState
from backdrop_local.emulator.stats import Provider

PROVIDERS: tuple[Provider, ...] = get_args(Provider)
_FIELDS = ("provider", "add", "set")


class CreditsError(ValueError):
    """A credits change the emulator refuses; the message names the field."""


@dataclass(frozen=True)
class Change:
    provider: Provider | None  # None: both accounts
    operation: Literal["add", "set"]
    amount: int


def provider_of(value: object) -> Provider:
    for provider in PROVIDERS:
        if value == provider:
            return provider
    raise CreditsError(f"provider: unknown provider {value!r}; known: {', '.join(PROVIDERS)}")


def amount_of(value: object, field: str, *, minimum: int) -> int:
    """An integer of at least `minimum` (0 or 1); JSON true/false and 2.0 are refused."""
    wanted = "a positive integer" if minimum > 0 else "an integer >= 0"
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CreditsError(f"{field}: expected {wanted}, got {value!r}")
    return value


def parse_change(body: object) -> Change:
    """Check a body such as {"provider": "photoroom", "add": 50} or {"set": 0}."""
    if not isinstance(body, dict):
        raise CreditsError('expected a JSON object such as {"provider": "picsart", "add": 100}')
    unknown = [name for name in body if name not in _FIELDS]
    if unknown:
        raise CreditsError(f"{unknown[0]}: unknown field; known: {', '.join(_FIELDS)}")
    if "add" in body and "set" in body:
        raise CreditsError("add, set: give only one of add or set")
    if "add" not in body and "set" not in body:
        raise CreditsError("add: one of add or set is required")
    provider = provider_of(body["provider"]) if "provider" in body else None
    if "add" in body:
        return Change(provider, "add", amount_of(body["add"], "add", minimum=1))
    return Change(provider, "set", amount_of(body["set"], "set", minimum=0))


def apply_change(state: EmulatorState, change: Change) -> dict[str, int | str]:
    """Apply it; the answer names the one account changed, or gives both balances."""
    operate = state.add_credits if change.operation == "add" else state.set_credits
    if change.provider is not None:
        return {"provider": change.provider, "credits": operate(change.provider, change.amount)}
    return {provider: operate(provider, change.amount) for provider in PROVIDERS}
