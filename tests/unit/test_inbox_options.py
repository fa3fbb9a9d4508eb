"""Inbox options: metadata over the folder's preset over the stack's defaults."""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.header import Header
from typing import Any

import pytest
from pydantic import ValidationError

from backdrop import inbox_options
from backdrop.config import InboxSettings
from backdrop.domain import GenerationOptions
from backdrop.inbox_options import preset_name
from backdrop.plan import Ask, Photo, PlanRefused, plan

BASE = {
    "jobs_table": "jobs",
    "batches_table": "batches",
    "state_machine_arn": "arn:aws:states:us-east-1:123456789012:stateMachine:generation",
    "input_bucket": "inputs",
    "results_bucket": "results",
    "event_bus_name": "bus",
    "default_prompt": "studio",
    "default_count": "2",
}
PRESETS = {
    "spring": {"prompt": "a spring meadow", "count": 4, "format": "PNG"},
    "portraits": {"provider": "photoroom", "seed": 9},
}


def _settings(presets: Any = PRESETS, **values: str) -> InboxSettings:
    # As the functions read it: every value a string from the environment.
    return InboxSettings.model_validate({**BASE, "inbox_presets": json.dumps(presets), **values})


@dataclass(frozen=True)
class Chosen:
    provider: str
    options: GenerationOptions
    preset: str | None


def resolve(key: str, metadata: dict[str, str], settings: InboxSettings) -> Chosen:
    """What the plan makes of an inbox image's metadata and folder (a URL photo: nothing
    is read from S3 here)."""
    layers = inbox_options.layers(key, metadata, settings)
    photo = Photo(url="https://images.example.com/mug.png")
    new = plan(Ask(trigger="inbox", photo=photo, layers=layers), settings)
    return Chosen(new.provider, new.options, preset_name(key, settings))


def _rejected(key: str, metadata: dict[str, str]) -> PlanRefused:
    with pytest.raises(PlanRefused) as caught:
        resolve(key, metadata, _settings())
    return caught.value


def test_without_metadata_or_preset_the_stack_decides() -> None:
    chosen = resolve("inbox/mug.png", {}, _settings())

    assert chosen.provider == "picsart"
    assert chosen.preset is None
    assert (chosen.options.prompt, chosen.options.count, chosen.options.format) == (
        "studio",
        2,
        "JPG",
    )
    assert (chosen.options.negative_prompt, chosen.options.seed) == (None, None)


def test_metadata_wins_over_the_preset_field_by_field() -> None:
    chosen = resolve("inbox/spring/mug.png", {"count": "1"}, _settings())

    assert chosen.preset == "spring"
    assert (chosen.options.prompt, chosen.options.count, chosen.options.format) == (
        "a spring meadow",
        1,
        "PNG",
    )


def test_every_metadata_option_is_read() -> None:
    metadata = {
        "prompt": "on a slate",
        "negative-prompt": "people",
        "count": "3",
        "format": "webp",
        "provider": "picsart",
    }
    options = resolve("inbox/mug.png", metadata, _settings()).options
    assert options.model_dump(include={"prompt", "negative_prompt", "count", "format"}) == {
        "prompt": "on a slate",
        "negative_prompt": "people",
        "count": 3,
        "format": "WEBP",
    }
    seeded = resolve("inbox/mug.png", {"provider": "photoroom", "seed": "5"}, _settings())
    assert (seeded.provider, seeded.options.seed) == ("photoroom", 5)


def test_a_preset_can_choose_the_provider_and_its_options() -> None:
    chosen = resolve("inbox/portraits/anna.jpg", {}, _settings())
    assert (chosen.provider, chosen.options.seed) == ("photoroom", 9)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("inbox/spring/mug.png", "spring"),
        ("inbox/spring/deeper/mug.png", "spring"),
        ("inbox/summer/mug.png", None),  # a folder that is no preset is just a folder
        ("inbox/spring.png", None),  # no folder at all
        ("inbox/other/spring/mug.png", None),  # only the first folder counts
    ],
)
def test_the_first_folder_names_the_preset(key: str, expected: str | None) -> None:
    assert preset_name(key, _settings()) == expected


def test_non_ascii_values_come_back_rfc2047_encoded_and_are_decoded() -> None:
    prompt = "tasse à café sur une table en chêne, lumière du matin"
    encoded = Header(prompt, "utf-8").encode()
    assert encoded.startswith("=?utf-8?")

    assert resolve("inbox/mug.png", {"prompt": encoded}, _settings()).options.prompt == prompt


def test_unknown_metadata_is_ignored() -> None:
    chosen = resolve("inbox/mug.png", {"colour": "blue", "mtime": "1700000000"}, _settings())
    assert chosen.options.prompt == "studio"


@pytest.mark.parametrize(
    ("metadata", "named"),
    [
        ({"count": "0"}, "x-amz-meta-count '0'"),
        ({"count": "2.5"}, "x-amz-meta-count '2.5'"),
        ({"format": "tiff"}, "x-amz-meta-format 'tiff'"),
        ({"provider": "dalle"}, "x-amz-meta-provider 'dalle'"),
        ({"seed": "4294967296", "provider": "photoroom"}, "x-amz-meta-seed '4294967296'"),
        ({"prompt": "x" * 1001}, "x-amz-meta-prompt"),
        ({"prompt": "=?utf-8?b?not base64?="}, "x-amz-meta-prompt"),
    ],
)
def test_invalid_values_are_refused_naming_the_key(metadata: dict[str, str], named: str) -> None:
    rejected = _rejected("inbox/mug.png", metadata)
    assert rejected.code == "invalid_option"
    assert named in rejected.message


def test_every_invalid_value_is_named_at_once() -> None:
    rejected = _rejected("inbox/mug.png", {"count": "11", "format": "gif"})
    assert "x-amz-meta-count" in rejected.message
    assert "x-amz-meta-format" in rejected.message


@pytest.mark.parametrize(
    ("key", "metadata", "expected"),
    [
        ("inbox/mug.png", {"seed": "1"}, "x-amz-meta-seed: picsart does not support seed"),
        (
            "inbox/portraits/anna.jpg",
            {"provider": "picsart"},
            "preset 'portraits' (folder inbox/portraits/): picsart does not support seed",
        ),
        (
            "inbox/mug.png",
            {"provider": "photoroom", "negative-prompt": "people"},
            "x-amz-meta-negative-prompt: photoroom ignores negative_prompt with model 3",
        ),
    ],
)
def test_options_the_provider_cannot_honour_are_refused_naming_their_origin(
    key: str, metadata: dict[str, str], expected: str
) -> None:
    rejected = _rejected(key, metadata)
    assert rejected.code == "unsupported_option"
    assert expected in rejected.message


def test_negative_prompt_goes_to_photoroom_with_model_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOTOROOM_MODEL", "2")
    settings = _settings()
    metadata = {"provider": "photoroom", "negative-prompt": "people"}
    assert resolve("inbox/mug.png", metadata, settings).options.negative_prompt == "people"


@pytest.mark.parametrize(
    "presets",
    [
        "not json",
        ["a list"],
        {"spring": {"promt": "typo"}},
        {"spring": {"count": 11}},
        {"spring": {"provider": "dalle"}},
        {"a/b": {"count": 1}},
    ],
)
def test_a_bad_preset_fails_the_cold_start(presets: Any) -> None:
    value = presets if isinstance(presets, str) else json.dumps(presets)
    with pytest.raises(ValidationError) as caught:
        InboxSettings.model_validate({**BASE, "inbox_presets": value})
    assert caught.value.errors()[0]["loc"][0] == "inbox_presets"


def test_no_presets_is_fine() -> None:
    assert InboxSettings.model_validate(BASE).inbox_presets == {}
