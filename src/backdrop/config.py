"""Settings from the environment, validated once at cold start."""

from __future__ import annotations

import os
from functools import cache
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Json, StringConstraints

ProviderName = Literal["picsart", "photoroom"]
PhotoroomModel = Literal["3", "background-studio-beta-2025-03-17", "2"]
ImageFormat = Literal["JPG", "PNG", "WEBP"]
MAX_SEED = 2**32 - 1


class InboxPreset(BaseModel):
    """Options for every image dropped in one inbox folder (`inbox/<preset name>/...`).
    Object metadata overrides them field by field; what neither gives comes from the stack."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str | None = Field(default=None, min_length=1, max_length=1000)
    negative_prompt: str | None = Field(default=None, max_length=1000)
    count: int | None = Field(default=None, ge=1, le=10)
    format: ImageFormat | None = None
    provider: ProviderName | None = None
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)


# A preset is named by a folder: one path segment.
PresetName = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^/]+$")]


class Settings(BaseModel):
    """Every knob the functions read. Names match the environment variables in template.yaml."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    jobs_table: str = Field(min_length=1)
    input_bucket: str = Field(min_length=1)
    results_bucket: str = Field(min_length=1)
    event_bus_name: str = Field(min_length=1)
    # Only the functions that start work (API, inbox) need it; the workflow tasks do not.
    state_machine_arn: str | None = None
    default_prompt: str = Field(min_length=1, max_length=1000)
    default_provider: ProviderName = "picsart"
    default_count: int = Field(default=2, ge=1, le=10)
    picsart_api_url: str = "https://genai-api.picsart.io/v1"
    picsart_secret_name: str = Field(min_length=1)
    photoroom_api_url: str = "https://image-api.photoroom.com"
    photoroom_secret_name: str = Field(min_length=1)
    photoroom_model: PhotoroomModel = "3"
    # Photoroom makes one image per call: a job's calls run this many at a time.
    photoroom_concurrency: int = Field(default=4, ge=1, le=10)
    # Timeout of one provider HTTP call; the workflow's task timeout must be larger.
    provider_timeout_seconds: float = Field(default=30.0, gt=0, le=45)
    # Polling: the first wait covers the provider's typical processing time, then short waits.
    poll_first_wait_seconds: int = Field(default=8, ge=0, le=300)
    poll_interval_seconds: int = Field(default=3, ge=0, le=60)
    poll_max_attempts: int = Field(default=60, ge=1, le=1000)
    job_ttl_days: int = Field(default=90, ge=1, le=3650)
    # The API only: Idempotency-Key records, CORS, and POST /v1/uploads forms.
    idempotency_table: str | None = None
    cors_allow_origins: str = "*"
    upload_max_bytes: int = Field(default=30 * 1024 * 1024, ge=1, le=100 * 1024 * 1024)
    upload_url_seconds: int = Field(default=900, ge=60, le=604800)
    # Lifetime of the result URLs the API hands out; SigV4 allows at most 7 days.
    result_url_expiry_seconds: int = Field(default=3600, ge=1, le=7 * 24 * 3600)

    @property
    def cors_origins(self) -> list[str]:
        return [origin.strip() for origin in self.cors_allow_origins.split(",") if origin.strip()]

    # JSON object: preset name -> InboxPreset. Parsed here, so a bad preset fails the cold start.
    inbox_presets: Json[dict[PresetName, InboxPreset]] = Field(default_factory=dict)


@cache
def get_settings() -> Settings:
    """Read the environment once per container; a bad value fails the cold start loudly."""
    return Settings.model_validate({key.lower(): value for key, value in os.environ.items()})
