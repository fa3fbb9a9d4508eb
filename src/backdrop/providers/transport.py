"""What the provider clients share to call out: their HTTP client, httpx's transport
failures as typed provider errors, and the base of the answers they read."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from pydantic import BaseModel, ConfigDict

from backdrop.providers.errors import ProviderOutcomeUnknown, ProviderUnavailable

# Failures before the whole request left this machine: the provider cannot have acted.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
)


class ProviderAnswer(BaseModel):
    """A provider's JSON answer. Unknown fields are ignored: the provider may add some at
    any time."""

    model_config = ConfigDict(extra="ignore")


def new_http_client(timeout: float) -> httpx.Client:
    """An HTTP client for provider calls: `timeout` to read (generation takes seconds), and
    a dead host fails fast. No redirects (httpx's default): it would carry the provider's
    key header to wherever one points."""
    return httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0))


@contextmanager
def transport_errors(*, provider: str, label: str, paid: bool) -> Iterator[None]:
    """httpx's transport failures as typed errors. A failure after a paid request was sent
    is not retryable: a retry could pay for the same work twice."""
    try:
        yield
    except httpx.TransportError as exc:
        kind = type(exc).__name__
        if isinstance(exc, _NOT_SENT):
            raise ProviderUnavailable(
                f"could not reach {label} ({kind})", provider=provider
            ) from exc
        if paid:
            raise ProviderOutcomeUnknown(
                f"{label} may have done the work but its answer was lost ({kind}); "
                "not retried, so it is not paid for twice",
                provider=provider,
            ) from exc
        raise ProviderUnavailable(
            f"{label} did not answer in full ({kind})", provider=provider
        ) from exc
