"""Streaming a provider's result from its URL into the results bucket."""

from __future__ import annotations

import httpx

from backdrop.domain import FORMATS, ResultImage
from backdrop.providers.errors import ProviderUnavailable, ResultUnavailable
from backdrop.storage import upload_stream


def copy_url_to_s3(
    http: httpx.Client,
    *,
    url: str,
    bucket: str,
    key: str,
    image_format: str,
    provider: str,
    metadata: dict[str, str] | None = None,
) -> ResultImage:
    """Stream one result from the provider into the results bucket."""
    _, default_type = FORMATS[image_format]
    try:
        # Result URLs may redirect to a CDN; they carry no key, so following is safe.
        with http.stream("GET", url, follow_redirects=True) as response:
            if response.status_code in (403, 404, 410):
                raise ResultUnavailable(
                    f"result {key.rsplit('/', 1)[-1]} is no longer downloadable "
                    f"({response.status_code})",
                    provider=provider,
                    status=response.status_code,
                )
            if response.status_code >= 300:
                raise ProviderUnavailable(
                    f"downloading a result answered {response.status_code}",
                    provider=provider,
                    status=response.status_code,
                )
            content_type = response.headers.get("content-type", "").split(";")[0].strip()
            if not content_type.startswith("image/"):
                content_type = default_type
            size = upload_stream(
                response.iter_bytes(chunk_size=64 * 1024),
                bucket=bucket,
                key=key,
                content_type=content_type,
                metadata=metadata,
            )
    except httpx.TransportError as exc:
        raise ProviderUnavailable(
            f"downloading a result failed ({type(exc).__name__})", provider=provider
        ) from exc
    index = int(key.rsplit("/", 1)[-1].split(".")[0])
    return ResultImage(index=index, key=key, content_type=content_type, size=size)
