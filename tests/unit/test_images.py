"""Input images are judged by their bytes against the provider's limits (Pillow, moto)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from backdrop import aws
from backdrop.images import HEAD_BYTES, ImageRejected, inspect_bytes, inspect_object
from backdrop.providers import registry
from tests.conftest import image_bytes, png_claiming


def _of(provider: str) -> dict[str, Any]:
    """The provider's name and input limits, as the plan passes them."""
    return {"limits": registry.get(provider).limits, "provider": provider}


@pytest.mark.parametrize(
    ("image_format", "content_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")],
)
@pytest.mark.parametrize("provider", ["picsart", "photoroom"])
def test_the_formats_both_providers_take_are_read_from_the_bytes(
    image_format: str, content_type: str, provider: str
) -> None:
    data = image_bytes(image_format, size=(31, 17))

    info = inspect_bytes(data, **_of(provider))

    assert (info.format, info.content_type) == (image_format, content_type)
    assert (info.width, info.height, info.size) == (31, 17, len(data))


@pytest.mark.parametrize(
    "data",
    [b"these are not pixels", image_bytes("GIF"), image_bytes("BMP"), image_bytes("TIFF")],
    ids=["text", "gif", "bmp", "tiff"],
)
def test_anything_else_is_an_invalid_image(data: bytes) -> None:
    with pytest.raises(ImageRejected) as caught:
        inspect_bytes(data, **_of("photoroom"))

    assert caught.value.code == "invalid_image"
    assert ", ".join(registry.get("photoroom").limits.formats) in caught.value.message


def test_the_name_does_not_matter_the_bytes_do() -> None:
    # A JPEG is a JPEG whatever it was called; nothing here sees a name at all.
    assert inspect_bytes(image_bytes("JPEG"), **_of("picsart")).format == "JPEG"


def test_an_empty_file_is_an_invalid_image() -> None:
    with pytest.raises(ImageRejected) as caught:
        inspect_bytes(b"", **_of("picsart"))
    assert caught.value.code == "invalid_image"


@pytest.mark.parametrize("provider", ["picsart", "photoroom"])
def test_a_file_over_the_providers_limit_is_too_large(provider: str) -> None:
    limit = registry.get(provider).limits.max_bytes
    head = image_bytes("PNG")

    inspect_bytes(head, size=limit, **_of(provider))
    with pytest.raises(ImageRejected) as caught:
        inspect_bytes(head, size=limit + 1, **_of(provider))

    assert caught.value.code == "image_too_large"
    assert provider in caught.value.message


def test_photoroom_takes_less_than_picsart() -> None:
    size = registry.get("photoroom").limits.max_bytes + 1
    assert inspect_bytes(image_bytes("PNG"), size=size, **_of("picsart")).size == size
    with pytest.raises(ImageRejected):
        inspect_bytes(image_bytes("PNG"), size=size, **_of("photoroom"))


def test_a_decompression_bomb_is_too_large() -> None:
    with pytest.raises(ImageRejected) as caught:
        inspect_bytes(png_claiming(40_000, 40_000), **_of("picsart"))
    assert caught.value.code == "image_too_large"


def test_a_large_image_that_is_no_bomb_is_read() -> None:
    assert inspect_bytes(png_claiming(4000, 3000), **_of("picsart")).width == 4000


@pytest.fixture
def bucket() -> Iterator[str]:
    with mock_aws():
        aws.reset()
        boto3.client("s3").create_bucket(Bucket="inputs")
        yield "inputs"
        aws.reset()


def test_an_object_is_judged_by_its_size_and_first_bytes(bucket: str) -> None:
    # Given an image larger than the head that is read, so only its start is fetched
    data = image_bytes("PNG", size=(640, 480)) + bytes(HEAD_BYTES)
    boto3.client("s3").put_object(Bucket=bucket, Key="inbox/a.png", Body=data)

    info = inspect_object(bucket, "inbox/a.png", None, **_of("photoroom"))

    assert (info.format, info.width, info.height, info.size) == ("PNG", 640, 480, len(data))


def test_an_object_version_is_the_one_judged(bucket: str) -> None:
    s3 = boto3.client("s3")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=bucket, Key="inbox/a.png", Body=image_bytes("JPEG"))
    s3.put_object(Bucket=bucket, Key="inbox/a.png", Body=b"not an image")

    info = inspect_object(bucket, "inbox/a.png", first["VersionId"], **_of("picsart"))
    assert info.format == "JPEG"
    with pytest.raises(ImageRejected):
        inspect_object(bucket, "inbox/a.png", None, **_of("picsart"))


def test_a_missing_object_is_an_invalid_image(bucket: str) -> None:
    with pytest.raises(ImageRejected) as caught:
        inspect_object(bucket, "inbox/gone.png", None, **_of("picsart"))
    assert caught.value.code == "invalid_image"
    assert "inbox/gone.png" in caught.value.message
