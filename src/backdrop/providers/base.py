"""What every provider is to the rest of the service: a mode, input limits, the options it
honours, its settings, and a client that does one of two things. Asynchronous providers are
submitted to and polled by the workflow; synchronous ones generate one image per call."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from backdrop.domain import OPTIONAL_OPTIONS, Cost, GenerationOptions, Problem

if TYPE_CHECKING:  # httpx is imported only by the tasks that call a provider
    import httpx

MB = 1000 * 1000


class Mode(StrEnum):
    """Which path of the workflow a job takes; the execution input carries it."""

    SYNC = "sync"  # Generate: one call per image, results streamed into S3 at once
    ASYNC = "async"  # Submit, then Wait and Poll until done, then Store


@dataclass(frozen=True)
class InputLimits:
    """What a provider accepts as the product photo."""

    formats: tuple[str, ...]  # Pillow's format names
    max_bytes: int


@dataclass(frozen=True)
class ProviderRequest:
    """What one call asks of a provider: the job's options and where the photo is."""

    options: GenerationOptions
    image_url: str | None = None  # a URL the provider fetches the photo from...
    image: bytes | None = None  # ...or the photo itself
    guidance_url: str | None = None  # the image prompt's URL, if the options have one
    seed: int | None = None  # synchronous providers: this image's seed


@dataclass(frozen=True)
class Submitted:
    """A provider took the job: its id, and its results if it answered them at once."""

    provider_job_id: str
    urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class PollOutcome:
    status: Literal["processing", "done"]
    urls: tuple[str, ...] = ()


class GeneratedImage(Protocol):
    """One image a synchronous provider answered, still streaming."""

    @property
    def content_type(self) -> str: ...
    @property
    def seed(self) -> int | None: ...
    @property
    def chunks(self) -> Iterator[bytes]: ...


@runtime_checkable
class AsyncProvider(Protocol):
    name: str

    def submit(self, request: ProviderRequest, *, wait_seconds: int = 0) -> Submitted:
        """Start a paid generation. A provider that can hold its answer up to
        `wait_seconds` may answer the results at once."""
        ...

    def poll(self, provider_job_id: str) -> PollOutcome: ...


@runtime_checkable
class SyncProvider(Protocol):
    name: str

    def generate(self, request: ProviderRequest) -> AbstractContextManager[GeneratedImage]:
        """Generate one image; read its chunks inside the `with`."""
        ...


@runtime_checkable
class Balanced(Protocol):
    """A client that can read its account's balance, in the units the provider charges."""

    def balance(self) -> int: ...


class ProviderSettings(BaseModel):
    """A provider's settings, from `<NAME>_*` environment variables (template.yaml)."""

    model_config = ConfigDict(frozen=True)

    api_url: str = Field(min_length=1)
    secret_name: str | None = None  # Secrets Manager name of the API key
    concurrency: int = Field(default=4, ge=1, le=10)  # sync: calls one job makes at once
    model: str | None = None  # the default model version, for a provider that has several
    # The rate governor's limit for this provider: requests a minute, and at once.
    requests_per_minute: int = Field(default=500, ge=1, le=100_000)
    burst: int = Field(default=5, ge=1, le=1000)
    # Async providers that can hold a submit's answer: how long to ask them to (0: never).
    submit_wait_seconds: int = Field(default=0, ge=0, le=25)
    # What one generated image costs, in the provider's unit (ProviderSpec.unit), and what
    # one unit costs in dollars: the stack's prices (template parameters), for estimates.
    units_per_image: float = Field(default=1.0, ge=0, le=1000)
    usd_per_unit: float = Field(default=0.0, ge=0, le=1000)


ClientFactory = Callable[[str, ProviderSettings, "httpx.Client"], "AsyncProvider | SyncProvider"]


@dataclass(frozen=True)
class ProviderSpec:
    """A provider's registry entry: everything the service needs to know before calling it.
    `client` imports the client module only when a task calls the provider."""

    name: str
    mode: Mode
    limits: InputLimits
    default_url: str
    client: ClientFactory
    options: frozenset[str] = frozenset()  # which of OPTIONAL_OPTIONS it honours
    unit: str = "images"  # what the provider charges in (its balance counts these)
    # Rules beyond "does it take this option" (e.g. an option only some models honour).
    rules: Callable[[GenerationOptions, ProviderSettings], list[Problem]] = field(
        default=lambda options, settings: []
    )

    def settings(self, environ: Mapping[str, str] | None = None) -> ProviderSettings:
        env = os.environ if environ is None else environ
        prefix = self.name.upper().replace("-", "_") + "_"
        given = {
            name: env[prefix + name.upper()]
            for name in ProviderSettings.model_fields
            if env.get(prefix + name.upper())
        }
        return ProviderSettings.model_validate({"api_url": self.default_url, **given})

    def cost(self, images: int, settings: ProviderSettings | None = None) -> Cost:
        """What `images` generated images cost at the stack's prices. A call the provider
        refused, or a job it failed, made no image and costs nothing."""
        settings = settings or self.settings()
        units = images * settings.units_per_image
        return Cost(
            units=units, unit=self.unit, estimated_usd=round(units * settings.usd_per_unit, 6)
        )

    def unsupported(
        self,
        options: GenerationOptions,
        settings: ProviderSettings | None = None,
        *,
        asked: tuple[str, ...] = (),
    ) -> list[Problem]:
        """Every option in `options` (or named in `asked`, for options not resolved yet)
        this provider cannot honour, with why. An option it would ignore is refused rather
        than silently dropped: the caller asked for it."""
        problems = [
            Problem(name, f"{self.name} does not support {name}")
            for name in OPTIONAL_OPTIONS
            if (getattr(options, name) is not None or name in asked) and name not in self.options
        ]
        return problems + self.rules(options, settings or self.settings())
