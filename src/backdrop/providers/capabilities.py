"""What each provider can do with a request. An option a provider would ignore is refused
with a clear reason rather than silently dropped: the caller asked for it."""

from __future__ import annotations

from dataclasses import dataclass

from backdrop.config import PhotoroomModel, ProviderName
from backdrop.models import GenerationOptions, GenerationRequest
from backdrop.providers.photoroom import NEGATIVE_PROMPT_MODELS

MB = 1000 * 1000


@dataclass(frozen=True)
class InputLimits:
    """What a provider accepts as the product photo (providers.md)."""

    formats: tuple[str, ...]  # Pillow's format names
    max_bytes: int


INPUT_LIMITS: dict[ProviderName, InputLimits] = {
    "picsart": InputLimits(formats=("JPEG", "PNG", "WEBP"), max_bytes=100 * MB),
    "photoroom": InputLimits(formats=("PNG", "JPEG", "WEBP"), max_bytes=30 * MB),
}

# Request fields only some providers take (the image, prompt, count and format all do).
OPTIONAL_FIELDS = (
    "negative_prompt",
    "seed",
    "expand_prompt",
    "guidance",
    "model",
    "reference_box",
    "output_size",
)
SUPPORTED: dict[ProviderName, frozenset[str]] = {
    "picsart": frozenset({"negative_prompt"}),
    "photoroom": frozenset(OPTIONAL_FIELDS),
}


@dataclass(frozen=True)
class Unsupported:
    field: str
    reason: str


def unsupported(
    provider: ProviderName,
    request: GenerationRequest | GenerationOptions,
    *,
    photoroom_model: PhotoroomModel,
) -> list[Unsupported]:
    """Every option in `request` (an API request, or an inbox image's resolved options) that
    `provider` cannot honour, with why."""
    problems = [
        Unsupported(field, f"{provider} does not support {field}")
        for field in OPTIONAL_FIELDS
        if getattr(request, field) is not None and field not in SUPPORTED[provider]
    ]
    model = request.model or photoroom_model
    if provider == "photoroom" and request.negative_prompt and model not in NEGATIVE_PROMPT_MODELS:
        problems.append(
            Unsupported(
                "negative_prompt",
                f"photoroom ignores negative_prompt with model {model}; use model 2 or drop it",
            )
        )
    return problems
