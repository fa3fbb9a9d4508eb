"""What each provider can do with a request. An option a provider would ignore is refused
with a clear reason rather than silently dropped: the caller asked for it."""

from __future__ import annotations

from dataclasses import dataclass

from backdrop.config import PhotoroomModel, ProviderName
from backdrop.models import GenerationRequest
from backdrop.providers.photoroom import NEGATIVE_PROMPT_MODELS

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
    provider: ProviderName, request: GenerationRequest, *, photoroom_model: PhotoroomModel
) -> list[Unsupported]:
    """Every option in `request` that `provider` cannot honour, with why."""
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
