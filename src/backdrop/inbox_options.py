"""The option layers of one inbox image: its object metadata (x-amz-meta-*) over its
folder's preset. plan.py puts the stack's defaults under them and names each layer's
fields in its refusals."""

from __future__ import annotations

from email.errors import HeaderParseError
from email.header import decode_header, make_header

from backdrop.config import InboxSettings
from backdrop.domain import Problem
from backdrop.observability import logger
from backdrop.plan import Layer
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


def preset_name(key: str, settings: InboxSettings) -> str | None:
    """The preset named by the image's first folder; any other folder is just a folder."""
    folder, slash, _ = key.removeprefix(INBOX_PREFIX).partition("/")
    return folder if slash and folder in settings.inbox_presets else None


def layers(key: str, metadata: dict[str, str], settings: InboxSettings) -> tuple[Layer, ...]:
    """The image's metadata, then its folder's preset, if it has one."""
    values, problems = _from_metadata(metadata)
    found = [Layer(values, lambda field: _FIELD_METADATA[field], problems)]
    preset = preset_name(key, settings)
    if preset is not None:
        named = f"preset {preset!r} (folder {INBOX_PREFIX}{preset}/)"
        values = settings.inbox_presets[preset].model_dump(exclude_none=True)
        found.append(Layer(values, lambda field: named))
    return tuple(found)


def _from_metadata(metadata: dict[str, str]) -> tuple[dict[str, str], tuple[Problem, ...]]:
    unknown = sorted(set(metadata) - set(METADATA_OPTIONS))
    if unknown:
        logger.info("unknown inbox metadata ignored", extra={"metadata_keys": unknown})
    values: dict[str, str] = {}
    problems: list[Problem] = []
    for name, value in metadata.items():
        if name in METADATA_OPTIONS:
            try:
                values[METADATA_OPTIONS[name]] = _decode(value)
            except ValueError:
                reason = f"x-amz-meta-{name} is not a readable RFC 2047 encoded value"
                problems.append(Problem(METADATA_OPTIONS[name], reason))
    return values, tuple(problems)


def _decode(value: str) -> str:
    """S3 returns a non-ASCII value RFC 2047-encoded (`=?UTF-8?B?...?=`): decode it."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (HeaderParseError, LookupError, UnicodeDecodeError):
        raise ValueError("not RFC 2047") from None
