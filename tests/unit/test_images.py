"""Input images are judged by their bytes against the provider's limits (Pillow, moto)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from backdrop import aws
from backdrop.images import HEAD_BYTES, ImageRejected, inspect_bytes, inspect_object
from backdrop.providers.capabilities import INPUT_LIMITS
from tests.conftest import image_bytes, png_claiming


@pytest.mark.parametrize(
    ("image_format", "content_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")],
)
@pytest.mark.parametrize("provider", ["picsart", "photoroom"])
def test_the_formats_both_providers_take_are_read_from_the_bytes(
    image_format: str, content_type: str, provider: str
) -> None:
    data = image_bytes(image_format, size=(31, 17))

    info = inspect_bytes(data, provider=provider)  # type: ignore[arg-type]

    assert (info.format, info.content_type) == (image_format, content_type)
    assert (info.width, info.height, info.size) == (31, 17, len(data))


@pytest.mark.parametrize(
    "data",
    [b"these are not pixels", image_bytes("GIF"), image_bytes("BMP"), image_bytes("TIFF")],
    ids=["text", "gif", "bmp", "tiff"],
)
def test_anything_else_is_an_invalid_image(data: bytes) -> None:
    with pytest.raises(ImageRejected) as caught:
        inspect_bytes(data, provider="photoroom")

    assert caught.value.code == "invalid_image"
    assert ", ".join(INPUT_LIMITS["photoroom"].formats) in caught.value.message


def test_the_name_does_not_matter_the_bytes_do() -> None:
    # A JPEG is a JPEG whatever it was called; nothing here sees a name at all.
    assert inspect_bytes(image_bytes("JPEG"), provider="picsart").format == "JPEG"


def test_an_empty_file_is_an_invalid_image() -> None:
    with pytest.raises(ImageRejected) as caught:
        inspect_bytes(b"", provider="picsart")
    assert caught.value.code == "invalid_image"


@pytest.mark.parametrize("provider", ["picsart", "photoroom"])
def test_a_file_over_the_providers_limit_is_too_large(provider: str) -> None:
    limit = INPUT_LIMITS[provider].max_bytes  # type: ignore[index]
    head = image_bytes("PNG")

    inspect_bytes(head, size=limit, provider=provider)  # type: ignore[arg-type]
    with pytest.raises(ImageRejected) as caught:
        inspect_bytes(head, size=limit + 1, provider=provider)  # type: ignore[arg-type]

    assert caught.value.code == "image_too_large"
    assert provider in caught.value.message


def test_photoroom_takes_less_than_picsart() -> None:
    size = INPUT_LIMITS["photoroom"].max_bytes + 1
    assert inspect_bytes(image_bytes("PNG"), size=size, provider="picsart").size == size
    with pytest.raises(ImageRejected):
        inspect_bytes(image_bytes("PNG"), size=size, provider="photoroom")


def test_a_decompression_bomb_is_too_large() -> None:
    with pytest.raises(ImageRejected) as caught:
        inspect_bytes(png_claiming(40_000, 40_000), provider="picsart")
    assert caught.value.code == "image_too_large"


def test_a_large_image_that_is_no_bomb_is_read() -> None:
    assert inspect_bytes(png_claiming(4000, 3000), provider="picsart").width == 4000


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

    info = inspect_object(bucket, "inbox/a.png", None, provider="photoroom")

    assert (info.format, info.width, info.height, info.size) == ("PNG", 640, 480, len(data))


def test_an_object_version_is_the_one_judged(bucket: str) -> None:
    s3 = boto3.client("s3")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=bucket, Key="inbox/a.png", Body=image_bytes("JPEG"))
    s3.put_object(Bucket=bucket, Key="inbox/a.png", Body=b"not an image")

    info = inspect_object(bucket, "inbox/a.png", first["VersionId"], provider="picsart")
    assert info.format == "JPEG"
    with pytest.raises(ImageRejected):
        inspect_object(bucket, "inbox/a.png", None, provider="picsart")


def test_a_missing_object_is_an_invalid_image(bucket: str) -> None:
    with pytest.raises(ImageRejected) as caught:
        inspect_object(bucket, "inbox/gone.png", None, provider="picsart")
    assert caught.value.code == "invalid_image"
    assert "inbox/gone.png" in caught.value.message
