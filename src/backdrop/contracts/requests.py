"""A generation as callers ask for it: the body of POST /v1/generations (JSON, or the same
fields as multipart/form-data or a form), and the detail of a `Generation Requested` event."""

from __future__ import annotations

import base64
import binascii
import json
import os
from functools import partial
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from backdrop import fetch_guard
from backdrop.contracts.exclusive import exactly_one_of
from backdrop.contracts.typed import Bool, Int, Number
from backdrop.domain import (
    MAX_METADATA_ENTRIES,
    MAX_SEED,
    OUTPUT_SIZE_PATTERN,
    ImageFormat,
    Metadata,
    ModelVersion,
    ReferenceBox,
    exactly_one,
    image_url_fits,
    publish_key_refusal,
)
from backdrop.providers import registry

# Lambda takes at most 6 MB per request and base64 adds a third: bigger photos go by upload.
MAX_INLINE_IMAGE_BYTES = 4 * 1024 * 1024
IMAGE_FIELDS = ("image_url", "image_key", "image_base64", "image")


def _known_provider(name: str) -> str:
    if name not in registry.names():
        raise ValueError(f"must be one of {', '.join(registry.names())}")
    return name


def _stack_allows(setting: str) -> bool:
    # Only the local stack allows loopback (AllowLoopbackFetch, AllowPrivateWebhookHosts),
    # for the local AWS's presigned URLs and test receivers. The variables of
    # config.UrlGuardSettings, read here because pydantic validates a request without a
    # container to ask. Unset or unreadable: no.
    try:
        return _FLAG.validate_python(os.environ.get(setting.upper(), "false"))
    except ValidationError:
        return False


_FLAG = TypeAdapter(bool)


def _provider_fetchable(url: AnyHttpUrl) -> AnyHttpUrl:
    """A URL the provider will fetch: https, a public host name, no IP address, no local
    name (fetch_guard.user_url_refusal). Syntactic only: the API resolves no DNS."""
    reason = fetch_guard.user_url_refusal(
        url.scheme, url.host or "", allow_loopback=_stack_allows("allow_loopback_fetch")
    )
    if reason is not None:
        raise ValueError(reason)
    return url


def _webhook_destination(url: str, *, resolve: bool) -> str:
    """Where a job's outcome may be POSTed (fetch_guard.webhook_url_refusal), checked here
    (with its DNS answer if `resolve`) and again at every delivery."""
    reason = fetch_guard.webhook_url_refusal(
        url, allow_private=_stack_allows("allow_private_webhook_hosts"), resolve=resolve
    )
    if reason is not None:
        raise ValueError(reason)
    return url


_WEBHOOK_URL_LENGTH = StringConstraints(min_length=1, max_length=fetch_guard.MAX_WEBHOOK_URL_LENGTH)
WebhookUrl = Annotated[
    str, _WEBHOOK_URL_LENGTH, AfterValidator(partial(_webhook_destination, resolve=True))
]
# Without DNS: for work whose id is fixed by its request (events), where a lookup failing
# for a moment would fail it for good; every delivery checks the addresses anyway.
UnresolvedWebhookUrl = Annotated[
    str, _WEBHOOK_URL_LENGTH, AfterValidator(partial(_webhook_destination, resolve=False))
]


# A photo's URL as callers give it: https, a public host name (see _provider_fetchable).
PublicImageUrl = Annotated[AnyHttpUrl, AfterValidator(_provider_fetchable)]


def _publishable(value: str) -> str:
    reason = publish_key_refusal(value)
    if reason is not None:
        raise ValueError(reason)
    return value


# Where an approved result goes under published/ (ReviewMode=required): a request's, a
# manifest row's, a review's approval.
PublishKey = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_publishable)]

# The providers registered when the API module loads, as the schema's enum.
ProviderShown = Annotated[str, WithJsonSchema({"type": "string", "enum": list(registry.names())})]
ProviderChoice = Annotated[ProviderShown, AfterValidator(_known_provider)]


class Guidance(BaseModel):
    """An image prompt in a request: exactly one of image_url or image_key, and a weight."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra=exactly_one_of("image_url", "image_key")
    )

    image_url: PublicImageUrl | None = Field(
        default=None, description="Public https URL (a host name, not an IP address)."
    )
    image_key: str | None = Field(default=None, min_length=1, max_length=1024)
    scale: Number = Field(default=0.6, ge=0, le=1, description="How much the image weighs.")

    @model_validator(mode="after")
    def _exactly_one_image(self) -> Self:
        exactly_one(image_url=self.image_url, image_key=self.image_key)
        return self


def _json_text(value: Any) -> Any:
    """Form fields are text: a JSON object may come as a string (multipart, urlencoded)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value  # left for the field's own validation to refuse
    return value


def _base64(value: Any) -> Any:
    # Strict: the lenient decoder would drop stray characters and hand on a damaged file.
    if isinstance(value, str):
        try:
            data = base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"not valid base64 ({exc})") from None
        if not data:
            raise ValueError("the image is empty")
        return data
    return value


Base64Image = Annotated[
    bytes,
    BeforeValidator(_base64),
    WithJsonSchema({"type": "string", "contentEncoding": "base64"}),
]


def _file_part(value: Any) -> Any:
    """The `image` file part of a multipart body, as bytes. A JSON body cannot carry a file."""
    if value is None or isinstance(value, bytes):
        return value
    content = getattr(value, "content", None)
    if isinstance(content, bytes):
        return content
    raise ValueError("send the file as the image part of multipart/form-data, or use image_base64")


class GenerationRequest(BaseModel):
    """Body of POST /v1/generations: exactly one of image_url, image_key or image_base64
    (the `image` file part in a form); JSON, or the same fields as multipart/form-data
    (`guidance` and `metadata` then as JSON text)."""

    model_config = ConfigDict(
        extra="forbid",
        # In JSON: every source but the form's file part.
        json_schema_extra=exactly_one_of(*(name for name in IMAGE_FIELDS if name != "image")),
    )

    image_url: PublicImageUrl | None = Field(
        default=None,
        description="Public https URL of the product photo (a host name, not an IP address; "
        "at most 2083 chars).",
    )
    image_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="The image_key answered by POST /v1/uploads, once the file is uploaded.",
    )
    image_base64: Base64Image | None = Field(
        default=None, description="The photo itself, base64-encoded (at most 4 MB decoded)."
    )
    image: SkipJsonSchema[Annotated[bytes | None, BeforeValidator(_file_part)]] = None
    prompt: str | None = Field(
        default=None, min_length=1, max_length=1000, description="Defaults to the stack's prompt."
    )
    negative_prompt: str | None = Field(default=None, max_length=1000)
    count: Int | None = Field(default=None, ge=1, le=10, description="Images to generate.")
    format: ImageFormat = "JPG"
    provider: ProviderChoice | None = Field(default=None, description="Defaults to the stack's.")
    seed: Int | None = Field(
        default=None, ge=0, le=MAX_SEED, description="Repeatable results (Photoroom)."
    )
    expand_prompt: Bool | None = Field(
        default=None, description="Let the provider enrich the prompt (Photoroom)."
    )
    guidance: Annotated[Guidance | None, BeforeValidator(_json_text)] = Field(
        default=None, description="An image prompt (Photoroom)."
    )
    model: ModelVersion | None = Field(default=None, description="Model version (Photoroom).")
    reference_box: ReferenceBox | None = Field(default=None, description="(Photoroom)")
    output_size: str | None = Field(
        default=None, pattern=OUTPUT_SIZE_PATTERN, description="auto, WxH, ... (Photoroom)"
    )
    metadata: Annotated[Metadata, BeforeValidator(_json_text)] = Field(
        default_factory=dict,
        max_length=MAX_METADATA_ENTRIES,
        description="Your own labels (string to string), echoed in the job and its events.",
    )
    webhook_url: WebhookUrl | None = Field(
        default=None,
        description="An https URL on a public host, POSTed the job's outcome, signed by the "
        "Standard Webhooks spec (webhook-id, webhook-timestamp, webhook-signature).",
    )
    publish_key: PublishKey | None = Field(
        default=None,
        description="ReviewMode=required: where under published/ the approved image goes "
        "(a SKU, shoes/sku-1.jpg); by default published/<job id>.<ext> for an API job, the "
        "photo's path for an inbox or catalogue one.",
    )

    @model_validator(mode="after")
    def _exactly_one_image(self) -> Self:
        exactly_one(**{name: getattr(self, name) for name in IMAGE_FIELDS})
        image_url_fits(self.image_url)
        return self

    @property
    def inline_image(self) -> bytes | None:
        return self.image if self.image is not None else self.image_base64


class RequestedGeneration(GenerationRequest):
    """A `Generation Requested` event's detail: POST /v1/generations' fields, the image by
    URL or upload key (events are too small for the photo itself)."""

    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)
    webhook_url: UnresolvedWebhookUrl | None = None

    @model_validator(mode="after")
    def _no_photo_inline(self) -> Self:
        if self.inline_image is not None:
            raise ValueError(
                "an event cannot carry the photo: upload it (POST /v1/uploads) and give "
                "image_key, or give image_url"
            )
        return self
