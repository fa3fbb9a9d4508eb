"""Scheduled (BalanceCheckMinutes): resume providers whose credits came back
(balance_check.py)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from backdrop import balance_check
from backdrop.config import BalanceCheckSettings
from backdrop.governor import Governor
from backdrop.providers.base import Balanced
from backdrop.runtime import Function, Wiring
from backdrop.workflow.deps import governor

if TYPE_CHECKING:  # typing only: the module costs a cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext


@dataclass(frozen=True)
class _Container:
    governor: Governor
    low_threshold: int


def _container(settings: BalanceCheckSettings) -> _Container:
    return _Container(governor(settings), settings.provider_low_balance_threshold)


def _clients(name: str) -> Balanced | None:
    from backdrop.providers.clients import balance_client

    return balance_client(name, timeout=balance_check.BALANCE_TIMEOUT_SECONDS)


def _run(container: _Container, event: dict[str, Any], context: LambdaContext) -> Any:
    found = balance_check.check(container.governor, _clients, low_threshold=container.low_threshold)
    return {"checked": [asdict(one) for one in found]}


handler = Function(Wiring(BalanceCheckSettings, _container), _run)
