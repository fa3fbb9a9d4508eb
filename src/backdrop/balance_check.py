"""The scheduled balance check: a provider whose account ran out of credits is resumed once
its balance covers the smallest call it refused; with a low-balance threshold, every
provider's balance is read too, for the low-balance alarm. A balance that cannot be read
(the provider down, an answer that is not a number) is logged and changes nothing: the
pause stays until a later check or an operator (`backdrop provider resume`) lifts it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from backdrop import telemetry
from backdrop.governor import Governor, Limit
from backdrop.observability import logger
from backdrop.providers import errors, registry
from backdrop.providers.base import Balanced

# How long one balance call may take: the check has a minute, and several providers.
BALANCE_TIMEOUT_SECONDS = 10.0
BalanceClient = Callable[[str], Balanced | None]


@dataclass(frozen=True)
class Checked:
    """What the check found for one provider: its balance (None: not read), and whether
    it was paused and is now resumed."""

    provider: str
    balance: int | None
    paused: bool
    resumed: bool


def check(governor: Governor, clients: BalanceClient, *, low_threshold: int) -> list[Checked]:
    """Check each provider that is paused (or every one, with a low-balance threshold)."""
    found = []
    for name in registry.names():
        paused = governor.credits(name).out_since is not None
        if not paused and low_threshold <= 0:
            continue
        found.append(_check_one(governor, clients, name, paused, low_threshold))
    return found


def _check_one(
    governor: Governor, clients: BalanceClient, name: str, paused: bool, low_threshold: int
) -> Checked:
    try:
        client = clients(name)
        balance = client.balance() if client is not None else None
    except errors.ProviderError as exc:
        # Not configured (no key), down, or an unreadable answer: the pause stays.
        logger.warning(
            "provider balance not read",
            extra={"provider": name, "code": exc.code, "reason": exc.message},
        )
        return Checked(name, None, paused, False)
    if balance is None:
        return Checked(name, None, paused, False)
    telemetry.emit("ProviderCreditsAvailable", balance, provider=name)
    if low_threshold and balance < low_threshold:
        logger.warning("provider balance low", extra={"provider": name, "balance": balance})
    needed = governor.credits(name).needed
    resumed = (
        paused
        and balance >= max(1.0, needed)
        and governor.resume(name, Limit.of(registry.get(name)))
    )
    return Checked(name, balance, paused, resumed)
