"""What the workflow's tasks work with, made once per container: the provider tasks'
`Deps`, and the lighter `OutcomeDeps` of the tasks that end a job."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from backdrop.config import GovernorSettings, OutcomeSettings, WorkflowSettings
from backdrop.governor import DynamoBuckets, Governor
from backdrop.jobs import JobStore
from backdrop.runtime import Wiring
from backdrop.stores import WorkflowJobs

if TYPE_CHECKING:
    from backdrop.providers.base import AsyncProvider, SyncProvider


class ProviderClients(Protocol):
    """Where a task gets the client of the provider it calls."""

    def async_client(self, name: str, *, timeout: float) -> AsyncProvider: ...

    def sync_client(self, name: str, *, timeout: float) -> SyncProvider: ...


class RegisteredClients:
    """The registry's clients, with their keys from Secrets Manager. Imported by the task
    that calls out, when it does: a cold start of the other tasks does not pay for them."""

    def async_client(self, name: str, *, timeout: float) -> AsyncProvider:
        from backdrop.providers.clients import async_client

        return async_client(name, timeout=timeout)

    def sync_client(self, name: str, *, timeout: float) -> SyncProvider:
        from backdrop.providers.clients import sync_client

        return sync_client(name, timeout=timeout)


@dataclass(frozen=True)
class Deps:
    settings: WorkflowSettings
    jobs: WorkflowJobs
    governor: Governor
    clients: ProviderClients = field(default_factory=RegisteredClients)
    sleep: Callable[[float], None] = time.sleep  # a wait under a second, in the task

    @classmethod
    def of(cls, settings: WorkflowSettings) -> Deps:
        return cls(settings, JobStore(settings), governor(settings))


def governor(settings: GovernorSettings) -> Governor:
    """The stack's governor: work waiting for credits looks again at the balance check's rate."""
    buckets = DynamoBuckets(settings.governor_table)
    return Governor(buckets, credits_wait=settings.balance_check_minutes * 60.0)


WIRING = Wiring(WorkflowSettings, Deps.of)


@dataclass(frozen=True)
class OutcomeDeps:
    settings: OutcomeSettings
    jobs: WorkflowJobs

    @classmethod
    def of(cls, settings: OutcomeSettings) -> OutcomeDeps:
        return cls(settings, JobStore(settings))


OUTCOME_WIRING = Wiring(OutcomeSettings, OutcomeDeps.of)
