"""What every workflow task works with, made once per container."""

from __future__ import annotations

from dataclasses import dataclass

from backdrop.config import Settings
from backdrop.jobs import JobStore


@dataclass(frozen=True)
class Deps:
    settings: Settings
    jobs: JobStore
