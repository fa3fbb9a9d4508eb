"""What an input image really is, read from its bytes (never its name), checked against what
the chosen provider accepts, so that what cannot work fails before anything is paid for."""

from __future__ import annotations

import io
from dataclasses import dataclass

from backdrop import storage
from backdrop.domain import Refused
from backdrop.observability import logger
from backdrop.providers.base import MB, InputLimits

# Enough for the header of any ordinary photo (metadata segments come before the pixels).
HEAD_BYTES = 1024 * 1024


class ImageRejected(Refused):
    """The image cannot be sent to the provider. `code` is `invalid_image` (not an image,
    or a format the provider does not take) or `image_too_large`; `message` says why."""


@dataclass(frozen=True)
class ImageInfo:
    format: str  # JPEG, PNG or WEBP
    content_type: str
    width: int
    height: int
    size: int  # bytes


def inspect_bytes(
    data: bytes, *, size: int | None = None, limits: InputLimits, provider: str
) -> ImageInfo:
    """Read the format and dimensions from `data`: the whole file, or its first bytes with
    `size` the full size. Raises ImageRejected for anything outside `provider`'s limits."""
    # Pillow loads only where an image is checked, not with every module that imports this.
    from PIL import Image

    size = len(data) if size is None else size
    _check_size(size, limits, provider)
    expected = ", ".join(limits.formats)
    try:
        # Only the provider's formats are tried: no other parser sees the bytes. Opening reads
        # the header only, and refuses a decompression bomb (too many pixels) by itself.
        with Image.open(io.BytesIO(data), formats=limits.formats) as image:
            image_format = str(image.format)
            width, height = image.size
            content_type = Image.MIME[image_format]
    except Image.DecompressionBombError as exc:
        raise ImageRejected("image_too_large", f"the image has too many pixels ({exc})") from None
    except Exception as exc:  # Pillow's parsers raise many types; each means "unreadable".
        logger.info("image not readable", extra={"reason": f"{type(exc).__name__}: {exc}"})
        raise ImageRejected(
            "invalid_image", f"the file is not a {expected} image that {provider} can take"
        ) from None
    return ImageInfo(
        format=image_format, content_type=content_type, width=width, height=height, size=size
    )


def _check_size(size: int, limits: InputLimits, provider: str) -> None:
    limit = limits.max_bytes
    if size == 0:
        raise ImageRejected("invalid_image", "the file is empty")
    if size > limit:
        raise ImageRejected(
            "image_too_large",
            f"the image is {size / MB:.1f} MB; {provider} takes at most {limit // MB} MB",
        )


def inspect_object(
    bucket: str, key: str, version_id: str | None, *, limits: InputLimits, provider: str
) -> ImageInfo:
    """inspect_bytes for an object in S3, reading only its size and its first bytes."""
    size = storage.object_size(bucket, key, version_id)
    if size is None:
        raise ImageRejected("invalid_image", f"s3://{bucket}/{key} does not exist")
    _check_size(size, limits, provider)  # before downloading anything
    head = storage.read_object_head(bucket, key, version_id, HEAD_BYTES)
    return inspect_bytes(head, size=size, limits=limits, provider=provider)
