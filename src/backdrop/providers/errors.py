"""Typed provider errors. Their class names are the Lambda `errorType`s that the
state machine's Retry and Catch match on, so renaming one means editing the ASL too."""

from __future__ import annotations

from typing import ClassVar


class ProviderError(Exception):
    """A provider call did not give what we asked for. `code` is what the job records."""

    code: ClassVar[str] = "provider_error"

    def __init__(
        self, message: str, *, provider: str, status: int | None = None, detail: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status = status
        self.detail = detail


class ProviderThrottled(ProviderError):
    """429: retried by the workflow with backoff; `retry_after` is the provider's reset time."""

    code = "provider_throttled"

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        retry_after: float | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider, status=429, detail=detail)
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    """5xx, timeouts, connection failures: transient, retried by the workflow."""

    code = "provider_unavailable"


class ProviderOutcomeUnknown(ProviderError):
    """Paid work reached the provider but its answer was lost (read timeout, dropped
    connection). Never retried: the provider may have done, and billed, the work."""

    code = "provider_outcome_unknown"


class ProviderRejected(ProviderError):
    """The provider refused the request as invalid (400/404/413/415/422/431)."""

    code = "provider_rejected"


class ProviderAuthError(ProviderError):
    """401/403: a wrong or missing API key. Never retried."""

    code = "provider_auth"


class ProviderQuotaExceeded(ProviderError):
    """402: out of credits. Never retried."""

    code = "provider_quota"


class ProviderJobFailed(ProviderError):
    """The provider accepted the work and later reported it failed (status `error`)."""

    code = "provider_failed"


class ProviderTimeout(ProviderError):
    """The provider did not finish within the poll limits."""

    code = "provider_timeout"


class QueueTimeout(ProviderError):
    """A job waited its turn at the provider's rate limit past QueueDeadlineSeconds; it was
    never sent, so nothing was paid."""

    code = "queue_timeout"


class ProviderProtocolError(ProviderError):
    """An answer we cannot understand (unknown status word, missing fields)."""

    code = "provider_protocol"


class ResultUnavailable(ProviderError):
    """A finished result could not be downloaded (expired or missing URL)."""

    code = "result_unavailable"


class ResultBlocked(ProviderError):
    """A result download broke a fetch guard (fetch_guard.py): a scheme or address we do not
    fetch from, one redirect too many, or more than ResultMaxBytes. Never retried."""

    code = "result_blocked"


# Statuses meaning "this request will never work as sent".
_REJECTED = frozenset({400, 404, 405, 413, 415, 422, 431})


def from_status(
    status: int,
    *,
    provider: str,
    label: str,
    detail: str | None,
    retry_after: float | None,
    secret: str = "",
) -> ProviderError:
    """The one mapping from a provider's HTTP status to a typed error, for every provider.
    The provider's detail is kept for the job's message, with the key masked should an
    answer echo it."""
    if detail and secret:
        detail = detail.replace(secret, "[redacted]")
    message = f"{label} answered {status}" + (f": {detail}" if detail else "")
    if status == 429:
        return ProviderThrottled(message, provider=provider, retry_after=retry_after, detail=detail)
    kind: type[ProviderError] = ProviderProtocolError
    if status in (401, 403):
        kind = ProviderAuthError
    elif status == 402:
        kind = ProviderQuotaExceeded
    elif status in _REJECTED:
        kind = ProviderRejected
    elif status == 408 or status >= 500:
        kind = ProviderUnavailable
    return kind(message, provider=provider, status=status, detail=detail)
