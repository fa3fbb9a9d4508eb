"""What the batch workflow's tasks work with, made once per container."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from backdrop.batches.store import BatchStore
from backdrop.config import BatchSettleSettings, BatchTaskSettings
from backdrop.jobs import JobStore
from backdrop.runtime import Wiring

S = TypeVar("S", bound=BatchTaskSettings)


@dataclass(frozen=True)
class BatchDeps(Generic[S]):
    settings: S
    jobs: JobStore
    batches: BatchStore


def batch_deps(settings: S) -> BatchDeps[S]:
    return BatchDeps(settings, JobStore(settings), BatchStore(settings))


WIRING = Wiring(BatchTaskSettings, batch_deps)
SETTLE_WIRING = Wiring(BatchSettleSettings, batch_deps)
