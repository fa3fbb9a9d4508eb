"""Picsart Smart Background (async): submit, then poll the inference id.

Contract: shared providers.md and Picsart's OpenAPI (`/painting/replace-background`,
`/painting/{inference_id}`, `/balance`).
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, ValidationError

from backdrop.providers.base import PollOutcome, ProviderRequest
from backdrop.providers.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderJobFailed,
    ProviderProtocolError,
    from_status,
)
from backdrop.providers.transport import transport_errors

NAME = "picsart"
DEFAULT_BASE_URL = "https://genai-api.picsart.io/v1"
logger = Logger(child=True)

# Answer headers worth a log line: they explain throttling and spend. Never the key.
_LOGGED_HEADERS = {
    "x-picsart-correlation-id": "correlation_id",
    "x-picsart-ratelimit-available": "ratelimit_available",
    "x-picsart-ratelimit-limit": "ratelimit_limit",
    "x-picsart-ratelimit-reset-time": "ratelimit_reset_time",
    "x-picsart-credit-available": "credit_available",
}


class _Answer(BaseModel):
    # Unknown fields are ignored: the provider may add some at any time.
    model_config = ConfigDict(extra="ignore")


_T = TypeVar("_T", bound=_Answer)


class _Submitted(_Answer):
    status: str | None = None
    # The spec's prose says transaction_id, the docs and SDK inference_id: accept both.
    inference_id: str | None = None
    transaction_id: str | None = None


class _ResultItem(_Answer):
    id: str | None = None
    url: str


class _PollAnswer(_Answer):
    status: str
    data: list[_ResultItem] | None = None
    detail: str | None = None
    message: str | None = None


class _Balance(_Answer):
    credits: int


class PicsartClient:
    """A small synchronous client. Retries are the workflow's job, not this class's:
    a Lambda should not sleep, and a submit must not be sent twice by accident."""

    name = NAME

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 30.0,
        http: httpx.Client | None = None,
    ) -> None:
        if not api_key:
            raise ProviderAuthError("no Picsart API key is configured", provider=NAME)
        self._base_url = base_url.rstrip("/")
        self._headers = {"X-Picsart-API-Key": api_key, "Accept": "application/json"}
        self._http = http or httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0))

    def submit(self, request: ProviderRequest) -> str:
        """Start an async generation of the job's images; returns the inference id."""
        options = request.options
        return self.replace_background(
            prompt=options.prompt,
            negative_prompt=options.negative_prompt,
            count=options.count,
            format=options.format,
            image_url=request.image_url,
            image=request.image,
        )

    def replace_background(
        self,
        *,
        prompt: str,
        image_url: str | None = None,
        image: bytes | None = None,
        negative_prompt: str | None = None,
        count: int = 2,
        format: str = "JPG",
    ) -> str:
        """Start an async generation; returns the inference id to poll."""
        if (image_url is None) == (image is None):
            raise ValueError("give exactly one of image_url or image")
        fields = {"prompt": prompt, "count": str(count), "format": format, "mode": "async"}
        if negative_prompt:
            fields["negative_prompt"] = negative_prompt
        if image_url is not None:
            fields["image_url"] = image_url
        # Every field goes as a multipart part: Picsart accepts only multipart/form-data,
        # and httpx sends that only when it has parts to send.
        files: dict[str, tuple[str | None, bytes, str] | tuple[None, bytes]] = {
            name: (None, value.encode()) for name, value in fields.items()
        }
        if image is not None:
            files["image"] = ("image", image, "application/octet-stream")
        response = self._send(
            "POST",
            "/painting/replace-background",
            paid=True,
            files=files,
            headers={"Prefer": "respond-async"},
        )
        answer = _parse(_Submitted, response)
        inference_id = answer.inference_id or answer.transaction_id
        if not inference_id:
            raise ProviderProtocolError(
                "Picsart accepted the request but returned no inference id", provider=NAME
            )
        return inference_id

    def poll(self, inference_id: str) -> PollOutcome:
        response = self._send("GET", f"/painting/{inference_id}")
        answer = _parse(_PollAnswer, response)
        if answer.status == "processing":
            return PollOutcome("processing")
        if answer.status == "success":
            urls = tuple(item.url for item in answer.data or ())
            if not urls:
                raise ProviderProtocolError(
                    "Picsart reported success with no images", provider=NAME
                )
            return PollOutcome("done", urls)
        if answer.status == "error":
            reason = answer.detail or answer.message or "no reason given"
            raise ProviderJobFailed(
                f"Picsart failed the generation: {reason}", provider=NAME, detail=reason
            )
        raise ProviderProtocolError(
            f"Picsart answered an unknown status {answer.status!r}", provider=NAME
        )

    def balance(self) -> int:
        return _parse(_Balance, self._send("GET", "/balance")).credits

    def _send(self, method: str, path: str, *, paid: bool = False, **kwargs: Any) -> httpx.Response:
        headers = {**self._headers, **kwargs.pop("headers", {})}
        with transport_errors(provider=NAME, label="Picsart", paid=paid):
            response = self._http.request(method, self._base_url + path, headers=headers, **kwargs)
        logger.info(
            "picsart answered",
            extra={
                "method": method,
                "path": path.split("/")[1],
                "status": response.status_code,
                **{
                    field: response.headers[h]
                    for h, field in _LOGGED_HEADERS.items()
                    if h in response.headers
                },
            },
        )
        if response.status_code >= 300:
            raise error_from_response(response, secret=self._headers["X-Picsart-API-Key"])
        return response


def error_from_response(response: httpx.Response, *, secret: str = "") -> ProviderError:
    """The one place that reads a Picsart error answer; the mapping is shared."""
    return from_status(
        response.status_code,
        provider=NAME,
        label="Picsart",
        detail=_detail(response),
        retry_after=_reset_time(response),
        secret=secret,
    )


def _detail(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    text = body.get("detail") or body.get("message")
    return str(text)[:500] if text else None


def _reset_time(response: httpx.Response) -> float | None:
    for header in ("x-picsart-ratelimit-reset-time", "retry-after"):
        try:
            return float(response.headers[header])
        except (KeyError, ValueError):
            continue
    return None


def _parse(model: type[_T], response: httpx.Response) -> _T:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise ProviderProtocolError(
            f"Picsart answered {response.status_code} with a body we cannot read", provider=NAME
        ) from exc
