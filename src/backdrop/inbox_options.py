"""The options of one inbox image: its object metadata over its folder's preset over the
stack's defaults, field by field. What cannot be honoured is refused with the reason, naming
where the option came from."""

from __future__ import annotations

from dataclasses import dataclass
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from typing import cast

from pydantic import ValidationError

from backdrop.config import InboxPreset, ProviderName, Settings
from backdrop.models import GenerationOptions, Refused
from backdrop.observability import logger
from backdrop.providers import capabilities
from backdrop.storage import INBOX_PREFIX

# x-amz-meta-<name> -> option. S3 hands metadata names back in lower case.
METADATA_OPTIONS = {
    "prompt": "prompt",
    "negative-prompt": "negative_prompt",
    "count": "count",
    "format": "format",
    "provider": "provider",
    "seed": "seed",
}
_FIELD_METADATA = {field: f"x-amz-meta-{name}" for name, field in METADATA_OPTIONS.items()}
# Spellings people use for the formats we name JPG, PNG and WEBP.
_FORMAT_ALIASES = {"JPEG": "JPG"}


class OptionRejected(Refused):
    """`code` is `invalid_option` (a value that does not exist) or `unsupported_option`
    (the provider cannot honour it); `message` names the metadata key or preset and why."""


@dataclass(frozen=True)
class InboxOptions:
    provider: ProviderName
    options: GenerationOptions
    preset: str | None  # the preset the image's folder chose, if any


def defaults(settings: Settings) -> GenerationOptions:
    return GenerationOptions(prompt=settings.default_prompt, count=settings.default_count)


def preset_name(key: str, settings: Settings) -> str | None:
    """The preset named by the image's first folder; any other folder is just a folder."""
    folder, slash, _ = key.removeprefix(INBOX_PREFIX).partition("/")
    return folder if slash and folder in settings.inbox_presets else None


def resolve(key: str, metadata: dict[str, str], settings: Settings) -> InboxOptions:
    """The provider and options for the image at `key` with this user metadata."""
    preset = preset_name(key, settings)
    stack = InboxPreset(
        prompt=settings.default_prompt,
        count=settings.default_count,
        format="JPG",
        provider=settings.default_provider,
    )
    # (options, where they come from: None for metadata, named per key)
    layers: list[tuple[InboxPreset, str | None]] = [(_from_metadata(metadata), None)]
    if preset is not None:
        named = f"preset {preset!r} (folder {INBOX_PREFIX}{preset}/)"
        layers.append((settings.inbox_presets[preset], named))
    layers.append((stack, "the stack's default"))

    chosen: dict[str, object] = {}
    origins: dict[str, str] = {}
    for field in InboxPreset.model_fields:
        for layer, origin in layers:
            value = getattr(layer, field)
            if value is not None:
                chosen[field] = value
                origins[field] = origin or _FIELD_METADATA[field]
                break
    provider = cast(ProviderName, chosen.pop("provider"))  # the stack's layer always has one
    options = GenerationOptions.model_validate(chosen)
    problems = capabilities.unsupported(provider, options, photoroom_model=settings.photoroom_model)
    if problems:
        raise OptionRejected(
            "unsupported_option",
            "; ".join(f"{origins[problem.field]}: {problem.reason}" for problem in problems),
        )
    return InboxOptions(provider=provider, options=options, preset=preset)


def _from_metadata(metadata: dict[str, str]) -> InboxPreset:
    unknown = sorted(set(metadata) - set(METADATA_OPTIONS))
    if unknown:
        logger.info("unknown inbox metadata ignored", extra={"metadata_keys": unknown})
    given = {
        METADATA_OPTIONS[name]: _decode(name, value)
        for name, value in metadata.items()
        if name in METADATA_OPTIONS
    }
    values = dict(given)
    if "format" in values:
        upper = values["format"].strip().upper()
        values["format"] = _FORMAT_ALIASES.get(upper, upper)
    if "provider" in values:
        values["provider"] = values["provider"].strip().lower()
    try:
        return InboxPreset.model_validate(values)
    except ValidationError as exc:
        reasons = [
            f"{_FIELD_METADATA[field]} {given[field]!r}: {error['msg']}"
            for error in exc.errors()
            for field in [str(error["loc"][0])]
        ]
        raise OptionRejected("invalid_option", "; ".join(reasons)) from None


def _decode(name: str, value: str) -> str:
    """S3 returns a non-ASCII value RFC 2047-encoded (`=?UTF-8?B?...?=`): decode it."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (HeaderParseError, LookupError, UnicodeDecodeError):
        raise OptionRejected(
            "invalid_option", f"x-amz-meta-{name} is not a readable RFC 2047 encoded value"
        ) from None
