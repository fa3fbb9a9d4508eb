"""What the API's routes work with, built once per container (app.py), and the container
serving the request now: routes are module-level, so they read it with `current()`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from backdrop import storage
from backdrop.api.idempotency import Idempotency
from backdrop.batches.store import BatchStore
from backdrop.config import ApiSettings
from backdrop.governor import DynamoBuckets, Governor
from backdrop.jobs import JobStore
from backdrop.storage import result_url

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver


@dataclass(frozen=True)
class Api:
    settings: ApiSettings
    jobs: JobStore
    batches: BatchStore
    idempotency: Idempotency
    resolver: APIGatewayRestResolver

    @property
    def governor(self) -> Governor:
        """The providers' rate governor, read by batches' quotes."""
        return Governor(DynamoBuckets(self.settings.governor_table))

    @property
    def urls(self) -> storage.ViewUrls:
        """The presigned URLs of a job's view."""
        return storage.ViewUrls(self.settings)

    def result_url(self, key: str) -> str:
        """A stored file's presigned URL, as callers get it."""
        return result_url(self.settings, key)

    def image_origins(self) -> list[str]:
        """The origins the images of a view come from (the buckets' presigned URLs): what
        the console's Content-Security-Policy allows."""
        urls = (
            storage.presigned_get(bucket, "probe", 60)
            for bucket in (self.settings.results_bucket, self.settings.input_bucket)
        )
        return sorted({f"{u.scheme}://{u.netloc}" for u in map(urlsplit, urls)})


_serving: ContextVar[Api] = ContextVar("api")


def current() -> Api:
    return _serving.get()


@contextmanager
def serving(api: Api) -> Iterator[None]:
    """`api` is the current container while one request is resolved."""
    token = _serving.set(api)
    try:
        yield
    finally:
        _serving.reset(token)
