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


class ProviderProtocolError(ProviderError):
    """An answer we cannot understand (unknown status word, missing fields)."""

    code = "provider_protocol"


class ResultUnavailable(ProviderError):
    """A finished result could not be downloaded (expired or missing URL)."""

    code = "result_unavailable"
