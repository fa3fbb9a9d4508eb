"""Streaming a provider's results from their URLs into the results bucket, through the fetch
guards (fetch_guard.py): https only, public addresses only, at most three redirects followed
by hand, at most ResultMaxBytes per result, images only, no more results than were asked for."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import httpx

from backdrop import fetch_guard, storage
from backdrop.config import WorkflowSettings
from backdrop.domain import Job, ResultImage
from backdrop.image_types import SNIFF_BYTES, sniff_image
from backdrop.providers.errors import (
    ProviderProtocolError,
    ProviderUnavailable,
    ResultBlocked,
    ResultUnavailable,
)

CHUNK_BYTES = 64 * 1024


def copy_results_to_s3(
    urls: list[str], *, job: Job, settings: WorkflowSettings
) -> list[ResultImage]:
    """Stream every result into the results bucket. Nothing is downloaded if the provider
    answered more URLs than the job asked images for, or if any URL is refused as given."""
    if len(urls) > job.options.count:
        raise ProviderProtocolError(
            f"{job.provider} answered {len(urls)} result URLs for {job.options.count} images; "
            "none was downloaded",
            provider=job.provider,
        )
    allow_loopback = settings.allow_loopback_fetch
    for index, url in enumerate(urls):
        _check_as_given(url, index, provider=job.provider, allow_loopback=allow_loopback)
    http = fetch_guard.guarded_client(
        timeout=settings.provider_timeout_seconds, allow_loopback=allow_loopback
    )
    return [
        copy_url_to_s3(
            http,
            url=url,
            bucket=settings.results_bucket,
            key=storage.result_key(job, index),
            provider=job.provider,
            max_bytes=settings.result_max_bytes,
            metadata={storage.JOB_ID_METADATA: job.id},
        )
        for index, url in enumerate(urls)
    ]


def _check_as_given(url: str, index: int, *, provider: str, allow_loopback: bool) -> None:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise ProviderProtocolError(f"result {index} has no valid URL", provider=provider) from None
    reason = fetch_guard.fetch_url_refusal(
        parsed.scheme, parsed.host, allow_loopback=allow_loopback
    )
    if reason is not None:
        raise ResultBlocked(f"result {index} was not downloaded: {reason}", provider=provider)


def copy_url_to_s3(
    http: httpx.Client,
    *,
    url: str,
    bucket: str,
    key: str,
    provider: str,
    max_bytes: int,
    metadata: dict[str, str] | None = None,
) -> ResultImage:
    """Stream one result from the provider into the results bucket, through the fetch
    guards. Whatever is refused leaves nothing in the bucket: the checks on the answer come
    before the upload starts, and a body that grows past `max_bytes` stops the upload (a
    multipart upload is aborted)."""
    index = int(key.rsplit("/", 1)[-1].split(".")[0])
    try:
        with fetch_guard.open_stream(http, url) as response:
            if response.status_code in (403, 404, 410):
                raise ResultUnavailable(
                    f"result {index} is no longer downloadable ({response.status_code})",
                    provider=provider,
                    status=response.status_code,
                )
            if response.status_code >= 300:
                raise ProviderUnavailable(
                    f"downloading a result answered {response.status_code}",
                    provider=provider,
                    status=response.status_code,
                )
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > max_bytes:
                raise fetch_guard.FetchBlocked(f"larger than {max_bytes} bytes ({length})")
            declared = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if not declared.startswith("image/"):
                raise ProviderProtocolError(
                    f"result {index} is not an image (content-type {declared[:80] or 'missing'})",
                    provider=provider,
                )
            chunks = fetch_guard.capped(response.iter_bytes(chunk_size=CHUNK_BYTES), max_bytes)
            head, chunks = _peek(chunks, SNIFF_BYTES)
            content_type = sniff_image(head)
            if content_type is None:
                raise ProviderProtocolError(
                    f"result {index} is not a JPEG, PNG or WEBP image (its bytes)",
                    provider=provider,
                )
            size = storage.upload_stream(
                chunks, bucket=bucket, key=key, content_type=content_type, metadata=metadata
            )
    except fetch_guard.FetchBlocked as exc:
        raise ResultBlocked(
            f"result {index} was not downloaded: {exc.reason}", provider=provider
        ) from None
    except httpx.TransportError as exc:
        raise ProviderUnavailable(
            f"downloading a result failed ({type(exc).__name__})", provider=provider
        ) from exc
    return ResultImage(index=index, key=key, content_type=content_type, size=size)


def _peek(chunks: Iterator[bytes], size: int) -> tuple[bytes, Iterator[bytes]]:
    """The first `size` bytes (fewer if the stream is shorter), and the whole stream again."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= size:
            break
    return head[:size], itertools.chain([head] if head else [], chunks)
