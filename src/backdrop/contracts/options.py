"""Generation options as one source gives them: a request, an inbox image's metadata, a
folder preset, a batch or one of its manifest rows."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from backdrop.contracts.typed import Bool, Int
from backdrop.domain import (
    MAX_SEED,
    OUTPUT_SIZE_PATTERN,
    ImageFormat,
    ModelVersion,
    ProviderName,
    ReferenceBox,
)

# Spellings people use for the formats we name JPG, PNG and WEBP.
_FORMAT_ALIASES = {"JPEG": "JPG"}


def _format(value: Any) -> Any:
    if isinstance(value, str):
        upper = value.strip().upper()
        return _FORMAT_ALIASES.get(upper, upper)
    return value


def _provider(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


class OptionLayer(BaseModel):
    """Options as one source gives them (a request, object metadata, a preset): any may be
    missing, and a more specific layer wins field by field."""

    model_config = ConfigDict(extra="forbid")

    provider: Annotated[ProviderName | None, BeforeValidator(_provider)] = None
    prompt: str | None = Field(default=None, min_length=1, max_length=1000)
    negative_prompt: str | None = Field(default=None, max_length=1000)
    count: Int | None = Field(default=None, ge=1, le=10)
    format: Annotated[ImageFormat | None, BeforeValidator(_format)] = None
    seed: Int | None = Field(default=None, ge=0, le=MAX_SEED)
    expand_prompt: Bool | None = None
    model: ModelVersion | None = None
    reference_box: ReferenceBox | None = None
    output_size: str | None = Field(default=None, pattern=OUTPUT_SIZE_PATTERN)
