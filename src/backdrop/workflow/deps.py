"""What every workflow task works with, made once per container."""

from __future__ import annotations

from dataclasses import dataclass

from backdrop.config import Settings
from backdrop.governor import Governor
from backdrop.jobs import JobStore


@dataclass(frozen=True)
class Deps:
    settings: Settings
    jobs: JobStore
    governor: Governor

    @classmethod
    def of(cls, settings: Settings) -> Deps:
        return cls(settings, JobStore(settings), Governor(settings.governor_table))
