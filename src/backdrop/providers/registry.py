"""Every provider the service can use, by name. Adding one is a client module, an entry
here, the emulator's routes, and its secret in template.yaml
(docs/contributing/adding-a-provider.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backdrop.domain import OPTIONAL_OPTIONS, GenerationOptions, Problem
from backdrop.providers.base import MB, InputLimits, Mode, ProviderSettings, ProviderSpec

if TYPE_CHECKING:
    import httpx

    from backdrop.providers.photoroom import PhotoroomClient
    from backdrop.providers.picsart import PicsartClient


class UnknownProvider(LookupError):
    """No provider has this name."""


def _picsart(api_key: str, settings: ProviderSettings, http: httpx.Client) -> PicsartClient:
    from backdrop.providers.picsart import PicsartClient

    return PicsartClient(api_key, base_url=settings.api_url, http=http)


def _photoroom(api_key: str, settings: ProviderSettings, http: httpx.Client) -> PhotoroomClient:
    from backdrop.providers.photoroom import PhotoroomClient

    return PhotoroomClient(
        api_key,
        base_url=settings.api_url,
        http=http,
        default_model=settings.model or PHOTOROOM_DEFAULT_MODEL,
    )


# The model Photoroom is asked for where neither the job nor the stack names one.
PHOTOROOM_DEFAULT_MODEL = "3"
# Photoroom honours a negative prompt with model 2 only (providers.md).
PHOTOROOM_NEGATIVE_PROMPT_MODELS = frozenset({"2"})


def _photoroom_rules(options: GenerationOptions, settings: ProviderSettings) -> list[Problem]:
    model = options.model or settings.model or PHOTOROOM_DEFAULT_MODEL
    if options.negative_prompt and model not in PHOTOROOM_NEGATIVE_PROMPT_MODELS:
        reason = f"photoroom ignores negative_prompt with model {model}; use model 2 or drop it"
        return [Problem("negative_prompt", reason)]
    return []


_PROVIDERS: dict[str, ProviderSpec] = {}


def register(spec: ProviderSpec) -> ProviderSpec:
    """Add (or replace) a provider."""
    _PROVIDERS[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    _PROVIDERS.pop(name, None)


def get(name: str) -> ProviderSpec:
    try:
        return _PROVIDERS[name]
    except KeyError:
        raise UnknownProvider(
            f"{name!r} is not a provider; use one of {', '.join(names())}"
        ) from None


def names() -> tuple[str, ...]:
    return tuple(_PROVIDERS)


register(
    ProviderSpec(
        name="picsart",
        mode=Mode.ASYNC,
        limits=InputLimits(formats=("JPEG", "PNG", "WEBP"), max_bytes=100 * MB),
        default_url="https://genai-api.picsart.io/v1",
        client=_picsart,
        options=frozenset({"negative_prompt"}),
        unit="credits",
    )
)
register(
    ProviderSpec(
        name="photoroom",
        mode=Mode.SYNC,
        limits=InputLimits(formats=("PNG", "JPEG", "WEBP"), max_bytes=30 * MB),
        default_url="https://image-api.photoroom.com",
        client=_photoroom,
        options=frozenset(OPTIONAL_OPTIONS),  # every one
        rules=_photoroom_rules,
    )
)
