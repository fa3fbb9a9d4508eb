"""A small WEBP preview beside every stored result, so that a review console page of many
products loads kilobytes of thumbnails rather than megabytes of full-size images.

Each lives in the results bucket at thumbnails/<job id>/<index>.webp, carrying the job id as
its results do, and expires with them; a job held for review has one of its photo too
(source.webp), so a reviewer compares previews with previews. A job stored before
thumbnails existed has none: its results' thumbnail_key, and its source_thumbnail_key,
are None.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from backdrop import aws, storage
from backdrop.domain import Job, ResultImage
from backdrop.observability import logger

if TYPE_CHECKING:
    from PIL.Image import Image as PillowImage

PREFIX = "thumbnails/"
SIZE = 384  # px, the longest side
CONTENT_TYPE = "image/webp"
QUALITY = 70
# Results are sniffed to be one of these (image_types.py): no other parser sees the bytes.
_FORMATS = ("JPEG", "PNG", "WEBP")
# Pillow refuses a decompression bomb only past ~179 MP, more than a 512 MB function can
# decode; a result this large gets no thumbnail rather than ending the function.
MAX_PIXELS = 40_000_000


def key(job_id: str, index: int | str) -> str:
    return f"{PREFIX}{job_id}/{index}.webp"


def add(bucket: str, job_id: str, results: list[ResultImage]) -> list[ResultImage]:
    """Make and store a thumbnail of each result in `bucket`; returns the results with
    their thumbnail_key. A result Pillow cannot read keeps thumbnail_key None (the job has
    paid for its images: a preview never fails it); S3's errors are raised, for the task's
    retry. Running it again for a job writes the same objects again."""
    described = []
    for result in results:
        thumbnail_key = _stored(bucket, result.key, None, bucket, key(job_id, result.index), job_id)
        described.append(result.model_copy(update={"thumbnail_key": thumbnail_key}))
    return described


def of_source(bucket: str, job: Job) -> str | None:
    """Make and store, in `bucket`, a thumbnail of the photo `job` was made from (the
    version it was made from); its key, or None for a photo given by URL (the provider
    fetched it, never us) or one Pillow cannot read."""
    source = job.source
    if source.bucket is None or source.key is None:
        return None
    return _stored(
        source.bucket, source.key, source.version_id, bucket, key(job.id, "source"), job.id
    )


def _stored(
    bucket: str, image_key: str, version_id: str | None, to_bucket: str, to_key: str, job_id: str
) -> str | None:
    """The thumbnail of one stored image, put at `to_key`; None if it cannot be made."""
    s3 = aws.client("s3")
    version = {"VersionId": version_id} if version_id else {}
    original = s3.get_object(Bucket=bucket, Key=image_key, **version)["Body"].read()
    preview = _thumbnail(original, image_key)
    if preview is None:
        return None
    s3.put_object(
        Bucket=to_bucket,
        Key=to_key,
        Body=preview,
        ContentType=CONTENT_TYPE,
        Metadata={storage.JOB_ID_METADATA: job_id},
    )
    return to_key


def _thumbnail(data: bytes, result_key: str) -> bytes | None:
    """The WEBP thumbnail of an image's bytes, or None if Pillow cannot make one."""
    # Pillow loads only where a thumbnail is made (images.py does the same).
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data), formats=_FORMATS) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise Image.DecompressionBombError(f"{width}x{height} px")
            picture: PillowImage = image
            if picture.mode in ("1", "P", "PA"):  # else resized by nearest neighbour only
                picture = _webp_mode(picture)
            picture.thumbnail((SIZE, SIZE))  # keeps the aspect; never enlarges
            # Browsers turn a JPEG by its EXIF orientation; the thumbnail carries no EXIF.
            small = _webp_mode(ImageOps.exif_transpose(picture))
            buffer = io.BytesIO()
            small.save(buffer, format="WEBP", quality=QUALITY)
    except Exception as exc:  # Pillow's parsers raise many types; each means "unreadable".
        logger.warning(
            "no thumbnail made",
            extra={"key": result_key, "reason": f"{type(exc).__name__}: {exc}"},
        )
        return None
    return buffer.getvalue()


def _webp_mode(image: PillowImage) -> PillowImage:
    """The image in a mode WEBP holds: RGBA where it has transparency, else RGB."""
    if image.mode in ("RGB", "RGBA"):
        return image
    return image.convert("RGBA" if image.has_transparency_data else "RGB")
