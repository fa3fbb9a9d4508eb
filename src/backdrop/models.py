"""Pydantic models shared by the API, the inbox trigger and the workflow."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self
from urllib.parse import unquote_plus

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

# Defined with the settings (inbox presets take them too), and shared from here.
from backdrop.config import MAX_SEED as MAX_SEED
from backdrop.config import ImageFormat as ImageFormat
from backdrop.config import PhotoroomModel, ProviderName

Trigger = Literal["api", "inbox"]

# Requested format -> (file extension, content type) of the stored results.
FORMATS: dict[str, tuple[str, str]] = {
    "JPG": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "WEBP": ("webp", "image/webp"),
}

Prompt = Field(min_length=1, max_length=1000)
JOB_ID_PATTERN = r"^[0-9a-f]{32}$"
MAX_IMAGE_URL_LENGTH = 2083  # Picsart's limit on image_url
# Lambda takes at most 6 MB per request and base64 adds a third: bigger photos go by upload.
MAX_INLINE_IMAGE_BYTES = 4 * 1024 * 1024


# Caller's own labels, echoed in the job and its events: small, so events stay small.
MAX_METADATA_ENTRIES = 10
Metadata = dict[
    Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")],
    Annotated[str, StringConstraints(max_length=256)],
]


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


ReferenceBox = Literal["subjectBox", "originalImage"]
OUTPUT_SIZE_PATTERN = r"^(auto|originalImage|croppedSubject|[1-9][0-9]{0,3}x[1-9][0-9]{0,3})$"


class ImageSource(BaseModel):
    """An image: either a caller's URL or an object in the input bucket."""

    url: str | None = None
    bucket: str | None = None
    key: str | None = None
    version_id: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.url is None) == (self.bucket is None or self.key is None):
            raise ValueError("an image source is either a url or a bucket and key")
        return self


class GuidanceSource(BaseModel):
    """An image prompt: the image whose look the background should follow, and how much."""

    image: ImageSource
    scale: float = Field(default=0.6, ge=0, le=1)


class GenerationOptions(BaseModel):
    """What the provider is asked to make, once defaults are applied. Options a provider
    does not support are refused at the API (providers/capabilities.py), never dropped."""

    prompt: str = Prompt
    negative_prompt: str | None = Field(default=None, max_length=1000)
    count: int = Field(default=2, ge=1, le=10)
    format: ImageFormat = "JPG"
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    expand_prompt: bool | None = None
    guidance: GuidanceSource | None = None
    model: PhotoroomModel | None = None
    reference_box: ReferenceBox | None = None
    output_size: str | None = Field(default=None, pattern=OUTPUT_SIZE_PATTERN)


class ResultImage(BaseModel):
    index: int
    key: str
    content_type: str
    size: int
    seed: int | None = None  # the seed the provider used, where it reports one


class JobError(BaseModel):
    code: str
    message: str


class Refused(Exception):
    """Work refused before it starts, for a reason its job records as its error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def error(self) -> JobError:
        return JobError(code=self.code, message=self.message)


class Job(BaseModel):
    """One generation: the record in the jobs table, and what GET /v1/generations/{id} shows."""

    id: str
    status: JobStatus
    trigger: Trigger
    provider: ProviderName
    source: ImageSource
    options: GenerationOptions
    provider_job_id: str | None = None
    results: list[ResultImage] = Field(default_factory=list)
    error: JobError | None = None
    metadata: Metadata = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime
    expires_at: int


class Guidance(BaseModel):
    """An image prompt in a request: exactly one of image_url or image_key, and a weight."""

    model_config = ConfigDict(extra="forbid")

    image_url: AnyHttpUrl | None = Field(default=None, description="Public http(s) URL.")
    image_key: str | None = Field(default=None, min_length=1, max_length=1024)
    scale: float = Field(default=0.6, ge=0, le=1, description="How much the image weighs.")

    @model_validator(mode="after")
    def _exactly_one_image(self) -> Self:
        if (self.image_url is None) == (self.image_key is None):
            raise ValueError("give exactly one of image_url or image_key")
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
    """Body of POST /v1/generations: JSON, or the same fields as multipart/form-data (with
    the photo as the `image` file part, and `guidance`/`metadata` as JSON text)."""

    model_config = ConfigDict(extra="forbid")

    image_url: AnyHttpUrl | None = Field(
        default=None, description="Public http(s) URL of the product photo (at most 2083 chars)."
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
    count: int | None = Field(default=None, ge=1, le=10, description="Images to generate.")
    format: ImageFormat = "JPG"
    provider: ProviderName | None = Field(default=None, description="Defaults to the stack's.")
    seed: int | None = Field(
        default=None, ge=0, le=MAX_SEED, description="Repeatable results (Photoroom)."
    )
    expand_prompt: bool | None = Field(
        default=None, description="Let the provider enrich the prompt (Photoroom)."
    )
    guidance: Annotated[Guidance | None, BeforeValidator(_json_text)] = Field(
        default=None, description="An image prompt (Photoroom)."
    )
    model: PhotoroomModel | None = Field(default=None, description="Model version (Photoroom).")
    reference_box: ReferenceBox | None = Field(default=None, description="(Photoroom)")
    output_size: str | None = Field(
        default=None, pattern=OUTPUT_SIZE_PATTERN, description="auto, WxH, ... (Photoroom)"
    )
    metadata: Annotated[Metadata, BeforeValidator(_json_text)] = Field(
        default_factory=dict,
        max_length=MAX_METADATA_ENTRIES,
        description="Your own labels (string to string), echoed in the job and its events.",
    )

    @model_validator(mode="after")
    def _exactly_one_image(self) -> Self:
        given = [name for name in IMAGE_FIELDS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of " + ", ".join(IMAGE_FIELDS))
        if self.image_url is not None and len(str(self.image_url)) > MAX_IMAGE_URL_LENGTH:
            raise ValueError(f"image_url is longer than {MAX_IMAGE_URL_LENGTH} characters")
        return self

    @property
    def inline_image(self) -> bytes | None:
        return self.image if self.image is not None else self.image_base64


IMAGE_FIELDS = ("image_url", "image_key", "image_base64", "image")


class PollState(BaseModel):
    """What the workflow carries between Submit, Wait and Poll (`$.poll` in the ASL)."""

    provider_job_id: str
    attempt: int = 0
    wait_seconds: int
    status: Literal["processing", "done"] = "processing"
    urls: list[str] = Field(default_factory=list)


class TaskInput(BaseModel):
    """Every workflow task gets the job id; the ASL's Parameters add what a task needs."""

    job_id: str = Field(pattern=JOB_ID_PATTERN)


class PollInput(TaskInput):
    poll: PollState


class StoreInput(TaskInput):
    urls: list[str] = Field(min_length=1)


class CaughtError(BaseModel):
    """What a Catch with ResultPath `$.error` puts in the state."""

    model_config = ConfigDict(populate_by_name=True)

    error: str = Field(alias="Error")
    cause: str | None = Field(default=None, alias="Cause")


class MarkFailedInput(TaskInput):
    error: CaughtError


class S3ObjectRef(BaseModel):
    key: str
    size: int | None = None
    eTag: str = ""
    versionId: str | None = None

    @property
    def decoded_key(self) -> str:
        # Keys arrive URL-encoded, with spaces as '+'.
        return unquote_plus(self.key)


class S3BucketRef(BaseModel):
    name: str


class S3Entity(BaseModel):
    bucket: S3BucketRef
    object: S3ObjectRef


class S3EventRecord(BaseModel):
    eventName: str
    s3: S3Entity


class S3Notification(BaseModel):
    """An S3 event notification as S3 puts it on SQS; only the fields we use, so that
    every producer's variant parses (S3 adds fields over time). A test event has no Records."""

    Records: list[S3EventRecord] = Field(default_factory=list)
    Event: str | None = None
