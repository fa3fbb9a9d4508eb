"""httpx's transport failures as typed provider errors, for the clients that call out."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from backdrop.providers.errors import ProviderOutcomeUnknown, ProviderUnavailable

# Failures before the whole request left this machine: the provider cannot have acted.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
)


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
