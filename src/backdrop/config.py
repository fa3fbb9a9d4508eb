"""Settings from the environment, validated once at cold start. Providers' own settings
(`<NAME>_API_URL`, `<NAME>_SECRET_NAME`, ...) are read by their registry entries."""

from __future__ import annotations

import os
from functools import cache
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Json,
    StringConstraints,
    model_validator,
)

from backdrop import fetch_guard
from backdrop.domain import InboxPreset
from backdrop.providers import registry


def _known_provider(name: str) -> str:
    if name not in registry.names():
        raise ValueError(f"{name!r} is not a provider; use one of {', '.join(registry.names())}")
    return name


def _known_presets(presets: dict[str, InboxPreset]) -> dict[str, InboxPreset]:
    for preset in presets.values():
        if preset.provider is not None:
            _known_provider(preset.provider)
    return presets


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
    default_provider: Annotated[str, AfterValidator(_known_provider)] = "picsart"
    default_count: int = Field(default=2, ge=1, le=10)
    # Timeout of one provider HTTP call; the workflow's task timeout must be larger.
    provider_timeout_seconds: float = Field(default=30.0, gt=0, le=45)
    # Polling: the first wait covers the provider's typical processing time, then short waits.
    poll_first_wait_seconds: int = Field(default=8, ge=0, le=300)
    poll_interval_seconds: int = Field(default=3, ge=0, le=60)
    poll_max_attempts: int = Field(default=60, ge=1, le=1000)
    job_ttl_days: int = Field(default=90, ge=1, le=3650)
    # The providers' rate governor (governor.py), and how long new work may wait its turn.
    governor_table: str = Field(min_length=1)
    queue_deadline_seconds: int = Field(default=6 * 3600, ge=60, le=86400)
    # Batches (batches/): their table, the batch workflow the API starts, and how many of a
    # batch's items may run at once (the Map's MaxConcurrency).
    batches_table: str | None = None
    batch_state_machine_arn: str | None = None
    batch_max_concurrency: int = Field(default=100, ge=1, le=10000)
    # The API only: Idempotency-Key records, CORS, and POST /v1/uploads forms.
    idempotency_table: str | None = None
    cors_allow_origins: str = "*"
    upload_max_bytes: int = Field(default=30 * 1024 * 1024, ge=1, le=100 * 1024 * 1024)
    upload_url_seconds: int = Field(default=900, ge=60, le=604800)
    # Lifetime of the result URLs the API hands out; SigV4 allows at most 7 days.
    result_url_expiry_seconds: int = Field(default=3600, ge=1, le=7 * 24 * 3600)
    # Fetch guards (fetch_guard.py): the most bytes one downloaded result may have, and
    # whether loopback may be fetched (and given as an image URL). Only the local stack
    # allows loopback, for its provider emulator; link-local and metadata never.
    result_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1, le=1024 * 1024 * 1024)
    allow_loopback_fetch: bool = False
    # Webhooks (webhooks/): the stack's own subscribers (comma-separated https URLs, every
    # job's outcome), the signing secret's name, the delivery queue and its dead letters, how
    # many attempts a delivery gets, and whether private hosts (loopback, over http too)
    # may receive them: only the local stack allows that.
    webhook_urls: str = ""
    webhook_secret_name: str | None = None
    webhook_queue_url: str | None = None
    webhook_dead_letter_queue_url: str | None = None
    webhook_max_attempts: int = Field(default=10, ge=1, le=10)
    allow_private_webhook_hosts: bool = False
    # JSON object: preset name -> InboxPreset. Parsed here, so a bad preset fails the cold start.
    inbox_presets: Annotated[
        Json[dict[PresetName, InboxPreset]], AfterValidator(_known_presets)
    ] = Field(default_factory=dict)

    @property
    def cors_origins(self) -> list[str]:
        return [origin.strip() for origin in self.cors_allow_origins.split(",") if origin.strip()]

    @property
    def stack_webhooks(self) -> list[str]:
        return [url.strip() for url in self.webhook_urls.split(",") if url.strip()]

    @model_validator(mode="after")
    def _webhooks_are_destinations(self) -> Self:
        # A bad subscriber fails the cold start, not every delivery (no DNS here: the
        # deliveries check the addresses).
        for url in self.stack_webhooks:
            reason = fetch_guard.webhook_url_refusal(
                url, allow_private=self.allow_private_webhook_hosts, resolve=False
            )
            if reason is not None:
                raise ValueError(f"WebhookUrls: {url[:100]} {reason}")
        return self


@cache
def get_settings() -> Settings:
    """Read the environment once per container; a bad value fails the cold start loudly."""
    return Settings.model_validate({key.lower(): value for key, value in os.environ.items()})
