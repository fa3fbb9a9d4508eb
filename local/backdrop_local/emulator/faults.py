"""Fault decisions: scripted answers first, then seeded random draws.

Every decision draws the same number of random values whether or not a script or a
share applies, so changing one knob does not shift the other decisions of a run.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass
from typing import Literal, get_args

from backdrop_local.emulator.settings import EmulatorSettings

Operation = Literal["picsart_submit", "picsart_poll", "picsart_result", "photoroom_edit"]
OPERATIONS: tuple[Operation, ...] = get_args(Operation)

# An answer forced on the next call: an HTTP error status, or one of the words below.
Answer = int | str

# Words each operation understands besides HTTP statuses.
_WORDS: dict[Operation, frozenset[str]] = {
    "picsart_submit": frozenset({"slow"}),
    # processing: this poll says processing; stuck/error: the job turns so for good;
    # success: the job finishes now.
    "picsart_poll": frozenset({"slow", "processing", "stuck", "error", "success"}),
    "picsart_result": frozenset({"expired"}),
    "photoroom_edit": frozenset({"slow"}),
}

Fate = Literal["ok", "stuck", "error"]


class ScriptError(ValueError):
    """A script the emulator cannot follow."""


@dataclass(frozen=True)
class JobDice:
    """Everything random about one Picsart job, drawn once at submission."""

    fate: Fate
    expired: bool
    processing_seconds: float
    seed: int


def parse_script(data: object) -> dict[Operation, list[Answer]]:
    """Check a script such as {"picsart_submit": [429, 503], "picsart_poll": ["error"]}."""
    if not isinstance(data, dict):
        raise ScriptError("the script must be a JSON object of operation -> list of answers")
    script: dict[Operation, list[Answer]] = {}
    for name, answers in data.items():
        if name not in OPERATIONS:
            raise ScriptError(f"unknown operation {name!r}; known: {', '.join(OPERATIONS)}")
        if not isinstance(answers, list):
            raise ScriptError(f"{name}: expected a list of answers")
        operation: Operation = name
        for answer in answers:
            if isinstance(answer, bool) or not isinstance(answer, int | str):
                raise ScriptError(f"{name}: {answer!r} is neither a status nor a word")
            if isinstance(answer, int) and not 400 <= answer <= 599:
                raise ScriptError(f"{name}: status {answer} is not an error status (400..599)")
            if isinstance(answer, str) and answer not in _WORDS[operation]:
                words = ", ".join(sorted(_WORDS[operation]))
                raise ScriptError(f"{name}: unknown word {answer!r}; known: {words}")
        script[operation] = list(answers)
    return script


class FaultPlan:
    """The seeded random generator plus the FIFOs of scripted answers."""

    def __init__(self, seed: int) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._scripts: dict[Operation, deque[Answer]] = {op: deque() for op in OPERATIONS}

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(seed)

    def add_script(self, script: dict[Operation, list[Answer]]) -> None:
        with self._lock:
            for operation, answers in script.items():
                self._scripts[operation].extend(answers)

    def clear_scripts(self) -> None:
        with self._lock:
            for queue in self._scripts.values():
                queue.clear()

    def scripts(self) -> dict[str, list[Answer]]:
        with self._lock:
            return {op: list(queue) for op, queue in self._scripts.items()}

    def next_answer(self, operation: Operation, settings: EmulatorSettings) -> Answer | None:
        """The forced answer of this call: scripted, else a random transient fault, else None."""
        with self._lock:
            draw = self._rng.random()
            queue = self._scripts[operation]
            if queue:
                return queue.popleft()
        if operation == "picsart_result":
            return None  # expiry is decided per job, at submission
        buckets: tuple[tuple[Answer, float], ...] = (
            (429, settings.fault_429),
            (500, settings.fault_500),
            (503, settings.fault_503),
            ("slow", settings.fault_slow),
        )
        edge = 0.0
        for answer, share in buckets:
            edge += share
            if draw < edge:
                return answer
        return None

    def new_job(self, settings: EmulatorSettings) -> JobDice:
        with self._lock:
            fate_draw, expiry_draw, time_draw = (self._rng.random() for _ in range(3))
            seed = self._rng.randrange(1, 2**31)
        fate: Fate = "ok"
        if fate_draw < settings.fault_stuck:
            fate = "stuck"
        elif fate_draw < settings.fault_stuck + settings.fault_error:
            fate = "error"
        low, high = settings.processing_range()
        return JobDice(
            fate=fate,
            expired=expiry_draw < settings.fault_expired,
            processing_seconds=low + (high - low) * time_draw,
            seed=seed,
        )

    def new_seed(self) -> int:
        """A generation seed for a caller who gave none (Photoroom's background.seed)."""
        with self._lock:
            return self._rng.randrange(1, 2**31)
