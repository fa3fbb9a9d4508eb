"""Picsart Smart Background (async): submit, then poll the inference id.

Contract: shared providers.md and Picsart's OpenAPI (`/painting/replace-background`,
`/painting/{inference_id}`, `/balance`).
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
from aws_lambda_powertools import Logger
from pydantic import ValidationError

from backdrop.domain import exactly_one
from backdrop.providers import registry
from backdrop.providers.base import PollOutcome, ProviderRequest, Submitted
from backdrop.providers.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderJobFailed,
    ProviderProtocolError,
    from_status,
)
from backdrop.providers.transport import ProviderAnswer, new_http_client, transport_errors

NAME = "picsart"
# The job id recorded when a submit's answer holds the results but names no inference id.
ANSWERED_AT_SUBMIT = "answered-at-submit"
DEFAULT_BASE_URL = registry.get(NAME).default_url  # the registry entry owns it
logger = Logger(child=True)

# Answer headers worth a log line: they explain throttling and spend. Never the key.
_LOGGED_HEADERS = {
    "x-picsart-correlation-id": "correlation_id",
    "x-picsart-ratelimit-available": "ratelimit_available",
    "x-picsart-ratelimit-limit": "ratelimit_limit",
    "x-picsart-ratelimit-reset-time": "ratelimit_reset_time",
    "x-picsart-credit-available": "credit_available",
}


_T = TypeVar("_T", bound=ProviderAnswer)


class _Submitted(ProviderAnswer):
    status: str | None = None
    # The spec's prose says transaction_id, the docs and SDK inference_id: accept both.
    inference_id: str | None = None
    transaction_id: str | None = None


class _ResultItem(ProviderAnswer):
    id: str | None = None
    url: str


class _PollAnswer(ProviderAnswer):
    status: str
    data: list[_ResultItem] | None = None
    detail: str | None = None
    message: str | None = None


class _Finished(_PollAnswer):
    """A submit answered 200 after a `Prefer` wait: the poll's answer, maybe with the id."""

    inference_id: str | None = None
    transaction_id: str | None = None


class _Balance(ProviderAnswer):
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
        self._http = http or new_http_client(timeout)
        # What the last answer said of the account's rate limit and credits (the governor).
        self.last_available: int | None = None
        self.last_credits: int | None = None

    def submit(self, request: ProviderRequest, *, wait_seconds: int = 0) -> Submitted:
        """Start an async generation of the job's images. With `wait_seconds`, ask the
        gateway to hold the answer that long (`Prefer: respond-async, wait=N`): a job done
        by then comes back with its results, otherwise (or where the gateway ignores the
        header) with the inference id to poll."""
        options = request.options
        response = self._replace_background(
            prompt=options.prompt,
            negative_prompt=options.negative_prompt,
            count=options.count,
            format=options.format,
            image_url=request.image_url,
            image=request.image,
            wait_seconds=wait_seconds,
        )
        if response.status_code == 200:
            answer = _parse(_Finished, response)
            outcome = _outcome(answer)
            if outcome.status == "done":
                job_id = answer.inference_id or answer.transaction_id or ANSWERED_AT_SUBMIT
                return Submitted(provider_job_id=job_id, urls=outcome.urls)
        return Submitted(provider_job_id=_inference_id(response))

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
        response = self._replace_background(
            prompt=prompt,
            image_url=image_url,
            image=image,
            negative_prompt=negative_prompt,
            count=count,
            format=format,
            wait_seconds=0,
        )
        return _inference_id(response)

    def _replace_background(
        self,
        *,
        prompt: str,
        image_url: str | None,
        image: bytes | None,
        negative_prompt: str | None,
        count: int,
        format: str,
        wait_seconds: int,
    ) -> httpx.Response:
        exactly_one(image_url=image_url, image=image)
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
        prefer = "respond-async" + (f", wait={wait_seconds}" if wait_seconds > 0 else "")
        extra: dict[str, Any] = {}
        if wait_seconds > 0:
            # The answer may take the whole wait: the read timeout covers it and then some.
            timeout = self._http.timeout
            extra["timeout"] = httpx.Timeout(
                (timeout.read or 30.0) + wait_seconds, connect=timeout.connect
            )
        return self._send(
            "POST",
            "/painting/replace-background",
            paid=True,
            files=files,
            headers={"Prefer": prefer},
            **extra,
        )

    def poll(self, inference_id: str) -> PollOutcome:
        response = self._send("GET", f"/painting/{inference_id}")
        return _outcome(_parse(_PollAnswer, response))

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
        self.last_available = _header_int(response, "x-picsart-ratelimit-available")
        self.last_credits = _header_int(response, "x-picsart-credit-available")
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


def _inference_id(response: httpx.Response) -> str:
    answer = _parse(_Submitted, response)
    inference_id = answer.inference_id or answer.transaction_id
    if not inference_id:
        raise ProviderProtocolError(
            "Picsart accepted the request but returned no inference id", provider=NAME
        )
    return inference_id


def _outcome(answer: _PollAnswer) -> PollOutcome:
    if answer.status == "processing":
        return PollOutcome("processing")
    if answer.status == "success":
        urls = tuple(item.url for item in answer.data or ())
        if not urls:
            raise ProviderProtocolError("Picsart reported success with no images", provider=NAME)
        return PollOutcome("done", urls)
    if answer.status == "error":
        reason = answer.detail or answer.message or "no reason given"
        raise ProviderJobFailed(
            f"Picsart failed the generation: {reason}", provider=NAME, detail=reason
        )
    raise ProviderProtocolError(
        f"Picsart answered an unknown status {answer.status!r}", provider=NAME
    )


def _header_int(response: httpx.Response, header: str) -> int | None:
    try:
        return int(response.headers[header])
    except (KeyError, ValueError):
        return None


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
