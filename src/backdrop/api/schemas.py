"""Bodies the API takes and answers besides generations (contracts/requests.py and
contracts/views.py): the error shape and the upload form."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, ConfigDict, Field

from backdrop.contracts.typed import Int

# What POST /v1/uploads accepts: what both providers read (providers.md), and a batch's
# manifest (CSV or JSON Lines).

UploadContentType = Literal[
    "image/jpeg", "image/png", "image/webp", "text/csv", "application/x-ndjson"
]


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    field: str | None = Field(default=None, description="The request field at fault.")
    reason: str | None = None


class ErrorInfo(BaseModel):
    code: str = Field(description="Stable, machine-readable, e.g. invalid_request.")
    message: str = Field(description="For people; may change.")
    details: list[ErrorDetail] = Field(default_factory=list)
    request_id: str | None = Field(default=None, description="Quote it when reporting a problem.")


class ErrorBody(BaseModel):
    error: ErrorInfo


def error_responses(*statuses: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI `responses` entries for error answers, all with the one error shape."""
    return {
        status: {
            "description": ERROR_DESCRIPTIONS[status],
            "content": {"application/json": {"model": ErrorBody}},
        }
        for status in statuses
    }


def location(template: str) -> dict[str, Any]:
    """The `Location` header of an answer that created something at `template`."""
    return {"Location": {"description": template, "schema": {"type": "string"}}}


ERROR_DESCRIPTIONS = {
    400: "Malformed JSON or multipart body.",
    403: "Missing or wrong API key.",
    404: "No such generation or batch, or no such route.",
    409: "A request with this Idempotency-Key is still being handled.",
    413: "Too large for the API; upload the photo with POST /v1/uploads.",
    415: "Send application/json or multipart/form-data.",
    422: "A field is invalid; details name each field and why.",
    429: "Throttled, or the API key's daily quota is used up.",
    500: "Failed on the service's side.",
    503: "The work could not be started; retry.",
}


class UploadRequest(BaseModel):
    """Body of POST /v1/uploads."""

    model_config = ConfigDict(extra="forbid")

    content_type: UploadContentType = Field(description="The file's type.")
    content_length: Int | None = Field(
        default=None, ge=1, description="The file's size in bytes; the form then takes only it."
    )


class UploadForm(BaseModel):
    url: str = Field(description="POST the file here as multipart/form-data...")
    fields: dict[str, str] = Field(description="...with these fields first, then the file.")


class UploadTicket(BaseModel):
    """Answer of POST /v1/uploads: where to send the file, and the key to use after."""

    image_key: str = Field(
        description="Pass as image_key to POST /v1/generations (a manifest's as manifest_key "
        "to POST /v1/batches)."
    )
    upload: UploadForm
    expires_at: datetime
    max_bytes: int
