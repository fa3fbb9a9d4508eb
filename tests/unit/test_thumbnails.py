"""A WEBP thumbnail beside each stored result (Pillow, moto)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from PIL import Image

from backdrop import aws, storage, thumbnails
from backdrop.domain import (
    FORMATS,
    STACK_OWNER,
    GenerationOptions,
    ImageSource,
    Job,
    JobStatus,
    ResultImage,
)
from tests.conftest import image_bytes, png_claiming

BUCKET = "results"
JOB_ID = "0123456789abcdef0123456789abcdef"


class Warnings:
    """thumbnails.logger, as far as a test needs it: the warnings logged."""

    def __init__(self) -> None:
        self.logged: list[tuple[str, dict[str, Any]]] = []

    def warning(self, message: str, *, extra: dict[str, Any]) -> None:
        self.logged.append((message, extra))


@pytest.fixture
def warnings(monkeypatch: pytest.MonkeyPatch) -> Warnings:
    logged = Warnings()
    monkeypatch.setattr(thumbnails, "logger", logged)
    return logged


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        aws.reset()
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client
        aws.reset()


def _photo(size: tuple[int, int], image_format: str = "JPEG") -> bytes:
    """A photo-like image: noise does not compress, as real pixels do not."""
    noise = Image.merge("RGB", [Image.effect_noise(size, 60) for _ in range(3)])
    buffer = io.BytesIO()
    noise.save(buffer, format=image_format)
    return buffer.getvalue()


def _store(s3: Any, index: int, data: bytes, image_format: str = "PNG") -> ResultImage:
    extension, content_type = FORMATS[image_format]
    key = f"results/{JOB_ID}/{index}.{extension}"
    s3.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType=content_type)
    return ResultImage(index=index, key=key, content_type=content_type, size=len(data))


def _opened(s3: Any, key: str) -> tuple[Image.Image, dict[str, Any]]:
    answer = s3.get_object(Bucket=BUCKET, Key=key)
    image = Image.open(io.BytesIO(answer["Body"].read()))
    image.load()
    return image, answer


def test_the_key_is_under_the_job_id() -> None:
    assert thumbnails.key(JOB_ID, 3) == f"thumbnails/{JOB_ID}/3.webp"
    assert thumbnails.key(JOB_ID, 3).startswith(thumbnails.PREFIX)


def test_a_large_jpeg_gets_a_small_webp_beside_it(s3: Any) -> None:
    original = _photo((1600, 1200))
    result = _store(s3, 0, original, "JPG")

    [described] = thumbnails.add(BUCKET, JOB_ID, [result])

    assert described == result.model_copy(update={"thumbnail_key": thumbnails.key(JOB_ID, 0)})
    image, answer = _opened(s3, thumbnails.key(JOB_ID, 0))
    assert (image.format, image.size) == ("WEBP", (384, 288))
    assert answer["ContentType"] == "image/webp"
    assert answer["Metadata"] == {storage.JOB_ID_METADATA: JOB_ID}
    assert answer["ContentLength"] * 10 < len(original)


def test_a_tall_png_keeps_its_aspect(s3: Any) -> None:
    result = _store(s3, 1, _photo((900, 1800), "PNG"))

    [described] = thumbnails.add(BUCKET, JOB_ID, [result])

    assert described.thumbnail_key == thumbnails.key(JOB_ID, 1)
    image, _ = _opened(s3, thumbnails.key(JOB_ID, 1))
    assert image.size == (192, 384)


def test_a_small_image_is_not_enlarged(s3: Any) -> None:
    result = _store(s3, 0, image_bytes("WEBP", size=(100, 80)), "WEBP")

    thumbnails.add(BUCKET, JOB_ID, [result])

    image, _ = _opened(s3, thumbnails.key(JOB_ID, 0))
    assert image.size == (100, 80)


@pytest.mark.parametrize(
    ("mode", "fill", "expected_mode"),
    [
        ("RGBA", (10, 200, 30, 128), "RGBA"),
        ("P", 7, "RGB"),
        ("L", 90, "RGB"),
        ("LA", (9, 99), "RGBA"),
    ],
)
def test_modes_webp_cannot_hold_are_converted(
    s3: Any, mode: str, fill: Any, expected_mode: str
) -> None:
    buffer = io.BytesIO()
    Image.new(mode, (800, 400), fill).save(buffer, format="PNG")
    result = _store(s3, 0, buffer.getvalue())

    [described] = thumbnails.add(BUCKET, JOB_ID, [result])

    assert described.thumbnail_key is not None
    image, _ = _opened(s3, described.thumbnail_key)
    assert (image.mode, image.size) == (expected_mode, (384, 192))


def test_a_palette_with_transparency_keeps_it(s3: Any) -> None:
    palette = Image.new("P", (600, 600), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0])
    palette.paste(0, (0, 0, 300, 600))
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG", transparency=0)
    result = _store(s3, 0, buffer.getvalue())

    thumbnails.add(BUCKET, JOB_ID, [result])

    image, _ = _opened(s3, thumbnails.key(JOB_ID, 0))
    assert (image.mode, image.size) == ("RGBA", (384, 384))
    left, right = image.getpixel((10, 10)), image.getpixel((370, 10))
    assert isinstance(left, tuple)
    assert isinstance(right, tuple)
    assert left[3] == 0  # the transparent half
    assert right[:3] == pytest.approx((255, 0, 0), abs=8)


def test_a_jpeg_is_turned_as_its_exif_says(s3: Any) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotated 90 degrees; shown upright, it is tall
    buffer = io.BytesIO()
    Image.new("RGB", (800, 400), (200, 120, 40)).save(buffer, format="JPEG", exif=exif)
    result = _store(s3, 0, buffer.getvalue(), "JPG")

    thumbnails.add(BUCKET, JOB_ID, [result])

    image, _ = _opened(s3, thumbnails.key(JOB_ID, 0))
    assert image.size == (192, 384)


def test_an_unreadable_result_gets_none_and_the_others_theirs(s3: Any, warnings: Warnings) -> None:
    good = _store(s3, 0, image_bytes("PNG", size=(500, 500)))
    broken = _store(s3, 1, b"\x89PNG\r\n\x1a\nnot really")
    gif = _store(s3, 2, image_bytes("GIF", size=(500, 500)))  # not a format results come in
    last = _store(s3, 3, image_bytes("JPEG", size=(500, 500)), "JPG")

    described = thumbnails.add(BUCKET, JOB_ID, [good, broken, gif, last])

    assert [r.thumbnail_key for r in described] == [
        thumbnails.key(JOB_ID, 0),
        None,
        None,
        thumbnails.key(JOB_ID, 3),
    ]
    assert described[1] == broken
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=thumbnails.PREFIX)["Contents"]
    assert [item["Key"] for item in listed] == [
        thumbnails.key(JOB_ID, 0),
        thumbnails.key(JOB_ID, 3),
    ]
    assert [(message, extra["key"]) for message, extra in warnings.logged] == [
        ("no thumbnail made", broken.key),
        ("no thumbnail made", gif.key),
    ]


def test_an_image_too_large_to_decode_gets_none(s3: Any, warnings: Warnings) -> None:
    # Its header claims more pixels than a function could hold decoded; nothing is decoded.
    result = _store(s3, 0, png_claiming(8000, 6000))

    assert thumbnails.add(BUCKET, JOB_ID, [result]) == [result]
    assert "DecompressionBombError" in warnings.logged[0][1]["reason"]


def test_a_result_s3_cannot_give_is_an_error(s3: Any) -> None:
    gone = ResultImage(index=0, key=f"results/{JOB_ID}/0.png", content_type="image/png", size=1)

    with pytest.raises(ClientError, match="NoSuchKey"):
        thumbnails.add(BUCKET, JOB_ID, [gone])


def test_adding_again_writes_the_same_thumbnails(s3: Any) -> None:
    results = [_store(s3, i, _photo((700, 500), "PNG")) for i in range(2)]

    first = thumbnails.add(BUCKET, JOB_ID, results)
    stored = [_opened(s3, thumbnails.key(JOB_ID, i))[1]["ETag"] for i in range(2)]
    again = thumbnails.add(BUCKET, JOB_ID, first)

    assert again == first
    assert [_opened(s3, thumbnails.key(JOB_ID, i))[1]["ETag"] for i in range(2)] == stored
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=thumbnails.PREFIX)["KeyCount"]
    assert listed == 2


def test_the_photo_s_preview_is_of_the_version_the_job_was_made_from(s3: Any) -> None:
    s3.create_bucket(Bucket="input")
    s3.put_bucket_versioning(Bucket="input", VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket="input", Key="inbox/mug.png", Body=_photo((800, 400), "PNG"))
    s3.put_object(Bucket="input", Key="inbox/mug.png", Body=_photo((300, 600), "PNG"))
    source = ImageSource(bucket="input", key="inbox/mug.png", version_id=first["VersionId"])

    key = thumbnails.of_source(BUCKET, _job(source))

    assert key == f"thumbnails/{JOB_ID}/source.webp"
    stored = s3.get_object(Bucket=BUCKET, Key=key)
    assert stored["ContentType"] == "image/webp"
    assert Image.open(io.BytesIO(stored["Body"].read())).size == (384, 192)  # the first one's
    # A photo given by URL was fetched by the provider, never by us: no preview.
    assert thumbnails.of_source(BUCKET, _job(ImageSource(url="https://a.example/m.png"))) is None


def _job(source: ImageSource) -> Job:
    now = datetime.now(UTC)
    return Job(
        id=JOB_ID,
        status=JobStatus.SUCCEEDED,
        trigger="inbox",
        provider="picsart",
        source=source,
        options=GenerationOptions(prompt="p", count=1),
        owner=STACK_OWNER,
        created_at=now,
        updated_at=now,
        expires_at=0,
    )
