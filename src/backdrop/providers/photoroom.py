"""Photoroom Image Editing API v2 (sync): one call to `/v2/edit`, one image in the answer.

Contract: shared providers.md (Photoroom section), the AI Backgrounds page (seeds/000) and
Photoroom's OpenAPI. An image URL goes as `GET /v2/edit?imageUrl=...` with every parameter
in the query; image bytes go as a `POST` multipart `imageFile` part with every parameter as
a form field. The answer body is the image itself, streamed to the caller.

A key prefixed `sandbox_` is free (1,000 calls a month, 100 a day) and gives watermarked
results: the free way to try the real service.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC
from typing import Any, TypeVar

import httpx
from aws_lambda_powertools import Logger
from pydantic import ValidationError

from backdrop.domain import exactly_one
from backdrop.image_types import sniff_image
from backdrop.providers import registry
from backdrop.providers.base import ProviderRequest
from backdrop.providers.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderProtocolError,
    from_status,
)
from backdrop.providers.transport import ProviderAnswer, new_http_client, transport_errors

NAME = "photoroom"
DEFAULT_BASE_URL = registry.get(NAME).default_url  # the registry entry owns it
# Our format names -> Photoroom's export.format.
EXPORT_FORMATS = {"JPG": "jpeg", "PNG": "png", "WEBP": "webp"}

API_KEY_HEADER = "x-api-key"
MODEL_HEADER = "pr-ai-background-model-version"
SANDBOX_PREFIX = "sandbox_"
logger = Logger(child=True)

# Answer headers worth a log line: they explain a result and its cost. Never the key.
_LOGGED_HEADERS = {
    "content-type": "content_type",
    "content-length": "content_length",
    "pr-ai-background-seed": "seed",
    "x-uncertainty-score": "uncertainty",
    "pr-unsupported-attributes": "unsupported",
}
_EXPAND = {True: "ai.auto", False: "ai.never"}
# The part's content type and name are hints only; known ones are what curl's `@file.png`
# sends.
_PART_NAMES = {"image/png": "image.png", "image/jpeg": "image.jpg", "image/webp": "image.webp"}


_N = TypeVar("_N", int, float)


class _ErrorDetail(ProviderAnswer):
    # Any: a 422 from a framework may carry a list here; it is shown, not interpreted.
    message: Any = None
    detail: Any = None


class _ErrorBody(ProviderAnswer):
    # {"error": {"message"}} (400, 500), {"error": {"detail"}} (402); a plain
    # {"detail"}/{"message"} or {"error": "text"} from a proxy or framework is read too.
    error: _ErrorDetail | str | None = None
    detail: Any = None
    message: Any = None


class _Images(ProviderAnswer):
    available: int


class _Account(ProviderAnswer):
    # GET /v2/account: "remaining image edits and monthly quota" (images.available and
    # images.subscription, as Photoroom's SDKs read it); only what is left is used.
    images: _Images


@dataclass(frozen=True)
class EditOptions:
    prompt: str | None = None
    seed: int | None = None
    expand_prompt: bool | None = None  # -> background.expandPrompt.mode ai.auto / ai.never
    negative_prompt: str | None = None  # -> background.negativePrompt (model 2 only)
    guidance_image_url: str | None = None  # -> background.guidance.imageUrl
    guidance_scale: float | None = None  # -> background.guidance.scale (0..1)
    reference_box: str | None = None  # subjectBox | originalImage -> referenceBox
    output_size: str | None = None  # auto | WxH | originalImage | croppedSubject -> outputSize
    format: str = "PNG"  # JPG | PNG | WEBP -> export.format
    model: str | None = None  # -> header pr-ai-background-model-version


@dataclass(frozen=True)
class EditedImage:
    content_type: str  # image/png, image/jpeg or image/webp, from the answer
    seed: int | None  # pr-ai-background-seed: the seed used, to repeat a result
    uncertainty: float | None  # x-uncertainty-score
    unsupported: str | None  # pr-unsupported-attributes: parameters the model ignored
    chunks: Iterator[bytes]  # the image body; valid only inside the context manager


class PhotoroomClient:
    """A small synchronous client. Retries are the workflow's job, not this class's:
    a Lambda should not sleep, and every successful call is billed."""

    name = NAME

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 60.0,
        http: httpx.Client | None = None,
        default_model: str = registry.PHOTOROOM_DEFAULT_MODEL,
    ) -> None:
        if not api_key:
            raise ProviderAuthError("no Photoroom API key is configured", provider=NAME)
        self._api_key = api_key
        self._base_url = base_url.rstrip("/")
        self._default_model = default_model
        self._http = http or new_http_client(timeout)

    def generate(self, request: ProviderRequest) -> AbstractContextManager[EditedImage]:
        """One image of the job, with the request's seed (the interface of sync providers)."""
        options = request.options
        edit = EditOptions(
            prompt=options.prompt,
            seed=request.seed,
            expand_prompt=options.expand_prompt,
            negative_prompt=options.negative_prompt,
            guidance_image_url=request.guidance_url,
            guidance_scale=options.guidance.scale if options.guidance else None,
            reference_box=options.reference_box,
            output_size=options.output_size,
            format=options.format,
            model=options.model,
        )
        return self.edit(image_url=request.image_url, image=request.image, options=edit)

    @contextmanager
    def edit(
        self,
        *,
        image_url: str | None = None,
        image: bytes | None = None,
        options: EditOptions,
    ) -> Iterator[EditedImage]:
        """Generate one background. Yields the image while its body is still streaming,
        so a large answer is never held in memory; read `chunks` inside the `with`."""
        exactly_one(image_url=image_url, image=image)
        fields = _fields(options)
        model = options.model or self._default_model
        headers = {
            API_KEY_HEADER: self._api_key,
            MODEL_HEADER: model,
            # Images on success, JSON on errors.
            "Accept": "image/*, application/json",
        }
        url = self._base_url + "/v2/edit"
        request: dict[str, Any]
        if image_url is not None:
            method = "GET"
            request = {"params": {"imageUrl": image_url, **fields}}
        else:
            assert image is not None
            method = "POST"
            content_type, filename = _image_type(image)
            # data= fields become form parts because a file part makes httpx send multipart.
            request = {"data": fields, "files": {"imageFile": (filename, image, content_type)}}

        with ExitStack() as stack:
            with transport_errors(provider=NAME, label="Photoroom", paid=True):
                response = stack.enter_context(
                    self._http.stream(method, url, headers=headers, **request)
                )
            self._log(response, method=method, model=model)
            if response.status_code >= 300:
                # An error answer made no image: losing its body costs nothing.
                with transport_errors(provider=NAME, label="Photoroom", paid=False):
                    response.read()  # error bodies are small JSON
                raise error_from_response(response, secret=self._api_key)
            content_type = _media_type(response)
            if not content_type.startswith("image/"):
                raise ProviderProtocolError(
                    f"Photoroom answered {response.status_code} with "
                    f"{content_type or 'no content type'}, not an image",
                    provider=NAME,
                    status=response.status_code,
                )
            unsupported = response.headers.get("pr-unsupported-attributes") or None
            if unsupported:
                # Ignored today, a 400 soon (providers.md): worth noticing before it is.
                logger.warning(
                    "photoroom ignored unsupported attributes",
                    extra={"unsupported": unsupported, "model": model},
                )
            yield EditedImage(
                content_type=content_type,
                seed=_number(response, "pr-ai-background-seed", int),
                uncertainty=_number(response, "x-uncertainty-score", float),
                unsupported=unsupported,
                chunks=_chunks(response),
            )

    def balance(self) -> int:
        """Images the account may still generate (GET /v2/account)."""
        headers = {API_KEY_HEADER: self._api_key, "Accept": "application/json"}
        with transport_errors(provider=NAME, label="Photoroom", paid=False):
            response = self._http.get(self._base_url + "/v2/account", headers=headers)
        if response.status_code >= 300:
            raise error_from_response(response, secret=self._api_key)
        try:
            return _Account.model_validate_json(response.content).images.available
        except ValidationError as exc:
            raise ProviderProtocolError(
                "Photoroom answered an account we cannot read", provider=NAME
            ) from exc

    def _log(self, response: httpx.Response, *, method: str, model: str) -> None:
        headers = response.headers
        logger.info(
            "photoroom answered",
            extra={
                "method": method,
                "status": response.status_code,
                "model": model,
                # Sandbox results are watermarked: say so where someone will look.
                "sandbox": self._api_key.startswith(SANDBOX_PREFIX),
                **{
                    field: headers[header]
                    for header, field in _LOGGED_HEADERS.items()
                    if header in headers
                },
            },
        )


def error_from_response(response: httpx.Response, *, secret: str = "") -> ProviderError:
    """The one place that reads a Photoroom error answer; the mapping is shared.
    The response's body must have been read."""
    return from_status(
        response.status_code,
        provider=NAME,
        label="Photoroom",
        detail=_detail(response),
        retry_after=_retry_after(response),
        secret=secret,
    )


def _fields(options: EditOptions) -> dict[str, str]:
    """Photoroom's parameter names for the options that are set; unset ones are not sent."""
    export_format = EXPORT_FORMATS.get(options.format.upper())
    if export_format is None:
        raise ValueError(f"format must be one of {', '.join(EXPORT_FORMATS)}")
    expand = None if options.expand_prompt is None else _EXPAND[options.expand_prompt]
    values: dict[str, object] = {
        "background.prompt": options.prompt,
        "background.seed": options.seed,
        "background.expandPrompt.mode": expand,
        "background.negativePrompt": options.negative_prompt,
        "background.guidance.imageUrl": options.guidance_image_url,
        "background.guidance.scale": options.guidance_scale,
        "referenceBox": options.reference_box,
        "outputSize": options.output_size,
        "export.format": export_format,
    }
    # An empty string means "not set" too: Photoroom would read it as a value.
    return {name: str(value) for name, value in values.items() if value not in (None, "")}


def _image_type(image: bytes) -> tuple[str, str]:
    content_type = sniff_image(image)
    if content_type is None:
        return "application/octet-stream", "image"
    return content_type, _PART_NAMES[content_type]


def _chunks(response: httpx.Response) -> Iterator[bytes]:
    # A connection lost mid-body is as transient as one lost before the answer.
    size = 0
    with transport_errors(provider=NAME, label="Photoroom", paid=True):
        for chunk in response.iter_bytes():
            size += len(chunk)
            yield chunk
    if size == 0:
        raise ProviderProtocolError(
            f"Photoroom answered {response.status_code} with an empty image",
            provider=NAME,
            status=response.status_code,
        )


def _media_type(response: httpx.Response) -> str:
    value: str = response.headers.get("content-type", "")
    return value.split(";")[0].strip().lower()


def _number(response: httpx.Response, header: str, kind: Callable[[str], _N]) -> _N | None:
    # An unreadable informational header is not worth failing a paid-for image over.
    try:
        return kind(response.headers[header])
    except (KeyError, ValueError):
        return None


def _detail(response: httpx.Response) -> str | None:
    try:
        body = _ErrorBody.model_validate_json(response.content)
    except ValidationError:
        return None
    error = body.error
    candidates: list[Any] = [body.detail, body.message]
    if isinstance(error, _ErrorDetail):
        candidates = [error.message, error.detail, *candidates]
    elif error:
        candidates = [error, *candidates]
    for value in candidates:
        if value:
            text = value if isinstance(value, str) else json.dumps(value)
            return text[:500]
    return None


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds; RFC 9110 allows a delay or an HTTP date."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC by RFC 5322
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time.time())
