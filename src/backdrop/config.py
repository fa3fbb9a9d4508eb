"""What each function reads from its environment, by group: a function's settings model
(`ApiSettings`, `WorkflowSettings`, ...) is the groups it uses, read once per container
(`read`), and logic asks for the group it needs. Field names are the environment
variables of template.yaml in lower case. Providers' own settings (`<NAME>_API_URL`,
`<NAME>_SECRET_NAME`, ...) are read by their registry entries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Json,
    StringConstraints,
    ValidationError,
    model_validator,
)

from backdrop import fetch_guard
from backdrop.domain import InboxPreset, ReviewMode
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


class _Group(BaseModel):
    # Built from keyword arguments, an unknown name is an error (a stale argument says so);
    # `read` takes only the variables a model declares. A function uses one model of
    # these: its validator is built when it is read, not at import.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class JobSettings(_Group):
    """The job records, and the batch records whose counts move with them (a batch job's
    review status: jobs.py)."""

    jobs_table: str = Field(min_length=1)
    job_ttl_days: int = Field(default=90, ge=1, le=3650)
    batches_table: str = Field(min_length=1)


class BucketSettings(_Group):
    """The photos' bucket (inbox/, catalog/, uploads/) and the results'."""

    input_bucket: str = Field(min_length=1)
    results_bucket: str = Field(min_length=1)


class OutcomeSettings(JobSettings, BucketSettings):
    """Announcing how a job ended: its event on the bus, its results' manifest."""

    event_bus_name: str = Field(min_length=1)
    # Whether a job that succeeds waits for a reviewer's decision (review.py).
    review_mode: ReviewMode = "none"


class PlanSettings(OutcomeSettings):
    """Planning new jobs (plan.py): the stack's defaults under what was asked."""

    default_prompt: str = Field(min_length=1, max_length=1000)
    default_provider: Annotated[str, AfterValidator(_known_provider)] = "picsart"
    default_count: int = Field(default=2, ge=1, le=10)


class AllowanceSettings(_Group):
    """Daily image allowances (allowances.py): per API key, and for the stack's own work
    (inbox, events); 0 is no limit."""

    images_per_key_per_day: int = Field(default=0, ge=0)
    stack_images_per_day: int = Field(default=0, ge=0)


class StartSettings(PlanSettings, AllowanceSettings):
    """Starting (and stopping) jobs' workflow (executions.py), charged to their allowance."""

    state_machine_arn: str = Field(min_length=1)


class UrlGuardSettings(_Group):
    """Whether the URLs callers give may name loopback (image URLs) or private hosts
    (webhook destinations): only the local stack allows either. Declared by the functions
    that validate such URLs; the request shapes read the same variables themselves
    (contracts/requests.py), as pydantic validates them without a container."""

    allow_loopback_fetch: bool = False
    allow_private_webhook_hosts: bool = False


class BatchSettings(JobSettings):
    """The batch records (beside the jobs they start; their table is JobSettings')."""


class ResultUrlSettings(_Group):
    """Presigned URLs to stored results, as the API and webhooks hand them out
    (storage.result_url)."""

    results_bucket: str = Field(min_length=1)
    # Their lifetime; SigV4 allows at most 7 days.
    result_url_expiry_seconds: int = Field(default=3600, ge=1, le=7 * 24 * 3600)


class InboxSettings(StartSettings):
    """The inbox function."""

    # JSON object: preset name -> InboxPreset. Parsed here, so a bad preset fails the cold start.
    inbox_presets: Annotated[
        Json[dict[PresetName, InboxPreset]], AfterValidator(_known_presets)
    ] = Field(default_factory=dict)


class RequestSettings(StartSettings, UrlGuardSettings):
    """The function of `Generation Requested` events."""


class BatchStartSettings(StartSettings, BatchSettings):
    """Starting batches: their workflow, and how many of a batch's items may run at once
    (the Map's MaxConcurrency)."""

    batch_state_machine_arn: str = Field(min_length=1)
    batch_max_concurrency: int = Field(default=100, ge=1, le=10000)


class GovernorSettings(_Group):
    """The providers' rate governor (governor.py), and how often the balance of an account
    out of credits is checked (balance_check.py): work waiting for credits looks as often."""

    governor_table: str = Field(min_length=1)
    balance_check_minutes: int = Field(default=5, ge=1, le=60)


class ApiSettings(BatchStartSettings, ResultUrlSettings, UrlGuardSettings, GovernorSettings):
    """The API function: generations, uploads and batches."""

    # Idempotency-Key records, CORS, and POST /v1/uploads forms.
    idempotency_table: str = Field(min_length=1)
    cors_allow_origins: str = "*"
    upload_max_bytes: int = Field(default=30 * 1024 * 1024, ge=1, le=100 * 1024 * 1024)
    upload_url_seconds: int = Field(default=900, ge=60, le=604800)
    # Where approvals publish (ReviewMode=required; api/reviews.py).
    published_bucket: str = Field(min_length=1)

    @property
    def cors_origins(self) -> list[str]:
        return [origin.strip() for origin in self.cors_allow_origins.split(",") if origin.strip()]


class BalanceCheckSettings(GovernorSettings):
    """The scheduled balance check: below this many credits a provider's balance is also
    checked while it is not paused, for the low-balance alarm (0: only while paused)."""

    provider_low_balance_threshold: int = Field(default=0, ge=0)


class WorkflowSettings(OutcomeSettings, GovernorSettings):
    """The generation workflow's tasks (Submit, Poll, Generate, Store, MarkFailed, Publish)."""

    # Timeout of one provider HTTP call; the workflow's task timeout must be larger.
    provider_timeout_seconds: float = Field(default=30.0, gt=0, le=45)
    # Polling: the first wait covers the provider's typical processing time, then short waits.
    poll_first_wait_seconds: int = Field(default=8, ge=0, le=300)
    poll_interval_seconds: int = Field(default=3, ge=0, le=60)
    poll_max_attempts: int = Field(default=60, ge=1, le=1000)
    # How long new work may wait its turn at the rate governor.
    queue_deadline_seconds: int = Field(default=6 * 3600, ge=60, le=86400)
    # Fetch guards (fetch_guard.py): the most bytes one downloaded result may have, and
    # whether loopback may be fetched. Only the local stack allows loopback, for its
    # provider emulator; link-local and metadata never.
    result_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1, le=1024 * 1024 * 1024)
    allow_loopback_fetch: bool = False


class BatchTaskSettings(PlanSettings, BatchSettings, UrlGuardSettings, AllowanceSettings):
    """The batch workflow's tasks (StartItem, Finish)."""


class BatchSettleSettings(BatchTaskSettings):
    """The batch workflow's SettleItem: it asks how a job's workflow ended."""

    state_machine_arn: str = Field(min_length=1)


class WebhookSettings(JobSettings, ResultUrlSettings):
    """The webhook function: the stack's own subscribers (comma-separated https URLs, every
    job's outcome), the signing secret's name, the delivery queue and its dead letters, how
    many attempts a delivery gets, and whether private hosts (loopback, over http too) may
    receive them: only the local stack allows that."""

    webhook_urls: str = ""
    webhook_secret_name: str = Field(min_length=1)
    webhook_queue_url: str = Field(min_length=1)
    webhook_dead_letter_queue_url: str = Field(min_length=1)
    webhook_max_attempts: int = Field(default=10, ge=1, le=10)
    allow_private_webhook_hosts: bool = False

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


S = TypeVar("S", bound=BaseModel)


def read(model: type[S], environ: Mapping[str, str]) -> S:
    """A function's settings from its environment: only the variables `model` declares. A
    missing or bad one fails the cold start, named as the environment spells it."""
    values = {name: environ[name.upper()] for name in model.model_fields if name.upper() in environ}
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']).upper() or model.__name__}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise SettingsError(f"{model.__name__} from the environment: {problems}") from None


class SettingsError(ValueError):
    """The function's environment lacks a setting, or holds a bad one."""
