"""An image's type told by its first bytes (its signature), never by its name or a declared
content type. Standard library only: provider clients and the workflow both use it, and
neither should load Pillow (images.py) or boto3 for it."""

from __future__ import annotations

# Enough of a file to tell JPEG, PNG and WEBP apart.
SNIFF_BYTES = 12


def sniff_image(head: bytes) -> str | None:
    """The content type the first bytes of a file show: JPEG, PNG or WEBP; None otherwise."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None
