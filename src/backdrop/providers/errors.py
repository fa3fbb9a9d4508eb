"""Typed provider errors. Their class names are the Lambda `errorType`s that the
state machine's Retry and Catch match on, so renaming one means editing the ASL too, and
the error catalogue (error_codes.py), which says the code each records and whether the
workflow retries it."""

from __future__ import annotations

from typing import Any, ClassVar

from backdrop import error_codes


class ProviderError(Exception):
    """A provider call did not give what we asked for. `code` is what the job records: the
    catalogue's code for the class's name, so a new error without one fails at import."""

    # Raised bare, it is no errorType the workflow knows (workflow/failures.py).
    code: ClassVar[str] = "internal_error"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.code = error_codes.for_error_type(cls.__name__).name

    def __init__(
        self, message: str, *, provider: str, status: int | None = None, detail: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status = status
        self.detail = detail


class ProviderThrottled(ProviderError):
    """429: the tasks wait for `retry_after`, the provider's reset time, instead of failing."""

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
    """5xx, 408, timeouts, connection failures: transient."""


class ProviderOutcomeUnknown(ProviderError):
    """Paid work reached the provider but its answer was lost (read timeout, dropped
    connection). Never retried: the provider may have done, and billed, the work."""


class ProviderRejected(ProviderError):
    """The provider refused the request as invalid (the statuses in _REJECTED)."""


class ProviderAuthError(ProviderError):
    """401/403: a wrong or missing API key."""


class ProviderQuotaExceeded(ProviderError):
    """402: out of credits."""


class ProviderJobFailed(ProviderError):
    """The provider accepted the work and later reported it failed (status `error`)."""


class ProviderTimeout(ProviderError):
    """The provider did not finish within the poll limits."""


class QueueTimeout(ProviderError):
    """A job waited its turn at the provider's rate limit past QueueDeadlineSeconds; it was
    never sent, so nothing was paid."""


class ProviderProtocolError(ProviderError):
    """An answer we cannot understand (unknown status word, missing fields)."""


class ResultUnavailable(ProviderError):
    """A finished result could not be downloaded (expired or missing URL)."""


class ResultBlocked(ProviderError):
    """A result download broke a fetch guard (fetch_guard.py): a scheme or address we do not
    fetch from, one redirect too many, or more than ResultMaxBytes."""


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
