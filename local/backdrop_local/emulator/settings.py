"""Knobs of the provider emulator: timing, limits, injected faults, accounts."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ENV_PREFIX = "BACKDROP_EMULATOR_"

_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:-\s*(\d+(?:\.\d+)?)\s*)?$")


class EmulatorSettings(BaseModel):
    """How the emulated Picsart and Photoroom behave. Every field has a safe default."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    processing_seconds: str = Field(
        default="2",
        description=(
            "Seconds a Picsart job takes from submission until polls (or a submission held by "
            '`Prefer: wait`) return the result: fixed ("2") or a uniform range ("1-3"), drawn '
            "per job."
        ),
    )
    honour_prefer_wait: bool = Field(
        default=True,
        description=(
            "Whether a Picsart submission with `Prefer: respond-async, wait=N` is held up to N "
            "seconds and answered 200 with the result when it is ready in time. False plays a "
            "gateway that ignores `wait`: such submissions are answered 202 at once."
        ),
    )
    rate_limit_per_minute: int = Field(
        default=500,
        ge=1,
        description=(
            "Requests allowed per API key, per provider, in a 60 s window. Over it the answer "
            "is 429 (Picsart with X-Picsart-Ratelimit-* headers and the seconds until the "
            "window resets; Photoroom a 429 JSON with a Retry-After header in seconds)."
        ),
    )
    fault_429: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of API calls (submit, poll, edit) answered 429 Too Many Requests.",
    )
    fault_500: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of API calls answered 500 Internal Server Error.",
    )
    fault_503: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of API calls answered 503 Service Unavailable.",
    )
    fault_slow: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of API calls answered only after `slow_seconds` (past client timeouts).",
    )
    slow_seconds: float = Field(
        default=35.0,
        ge=0.0,
        description='Delay of a slow answer (`fault_slow`, scripted "slow"), in seconds.',
    )
    fault_stuck: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description='Share of Picsart jobs that stay "processing" forever.',
    )
    fault_error: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description='Share of Picsart jobs that end with status "error" (not billed).',
    )
    fault_expired: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of Picsart jobs whose result file URLs answer 404, as if expired.",
    )
    seed: int = Field(
        default=0,
        description=(
            "Seed of the one random generator behind every random decision (faults, processing "
            "time, job seeds), so a run with the same requests in the same order repeats."
        ),
    )
    credits: int = Field(
        default=10_000,
        ge=0,
        description=(
            "Starting balance of each provider account; one credit per generated image. "
            "Not enough left: 402. Photoroom sandbox_ keys are free."
        ),
    )
    api_keys: list[str] | None = Field(
        default=None,
        description=(
            "Accepted API keys. None accepts any non-empty key; a missing key always fails "
            "(Picsart 401, Photoroom 403)."
        ),
    )

    @field_validator("processing_seconds", mode="before")
    @classmethod
    def _number_to_text(cls, value: object) -> object:
        # JSON and CLI callers naturally send 0 or 1.5; keep one textual form.
        if isinstance(value, int | float) and not isinstance(value, bool):
            return f"{value:g}"
        return value

    @field_validator("processing_seconds")
    @classmethod
    def _check_seconds(cls, value: str) -> str:
        match = _SECONDS.match(value)
        if match is None:
            raise ValueError('expected seconds as "2" or a range "1-3"')
        low, high = match.group(1), match.group(2)
        if high is not None and float(high) < float(low):
            raise ValueError("range must go from low to high")
        return value.replace(" ", "")

    @model_validator(mode="after")
    def _check_shares(self) -> Self:
        # One draw is split into buckets, so the shares of one decision cannot exceed 1.
        if self.fault_429 + self.fault_500 + self.fault_503 + self.fault_slow > 1.0 + 1e-9:
            raise ValueError("fault_429 + fault_500 + fault_503 + fault_slow must be <= 1")
        if self.fault_stuck + self.fault_error > 1.0 + 1e-9:
            raise ValueError("fault_stuck + fault_error must be <= 1")
        return self

    def processing_range(self) -> tuple[float, float]:
        """Low and high bound of a job's processing time, in seconds."""
        match = _SECONDS.match(self.processing_seconds)
        assert match is not None  # checked by the validator
        low = float(match.group(1))
        high = float(match.group(2)) if match.group(2) is not None else low
        return low, high

    def merged(self, patch: Mapping[str, Any]) -> EmulatorSettings:
        """A validated copy with `patch` applied on top."""
        return EmulatorSettings.model_validate({**self.model_dump(), **patch})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EmulatorSettings:
        """Settings from BACKDROP_EMULATOR_<FIELD> variables (e.g. BACKDROP_EMULATOR_FAULT_429)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is None:
                continue
            if name == "api_keys":
                keys = [key.strip() for key in raw.split(",") if key.strip()]
                values[name] = keys or None
            else:
                values[name] = raw
        return cls.model_validate(values)
