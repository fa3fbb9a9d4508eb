"""Downloading an input image given by URL, as the providers do for `image_url`."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

TIMEOUT = httpx.Timeout(15.0, connect=5.0)


class FetchError(ValueError):
    """The URL could not be read; the message says why, for the error detail."""


class TooLarge(FetchError):
    """The URL answered with more bytes than allowed."""


def is_web_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def fetch(url: str, limit: int) -> bytes:
    """GET `url` (typically a presigned S3 URL) and return at most `limit` bytes."""
    try:
        with (
            httpx.Client(timeout=TIMEOUT, follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise FetchError(f"fetching the URL answered HTTP {response.status_code}")
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"the image at the URL is larger than {limit} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as error:
        raise FetchError(f"the URL could not be fetched: {type(error).__name__}") from error
