"""Pydantic models shared by the API, the inbox trigger and the workflow."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, Self
from urllib.parse import unquote_plus

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

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


class GenerationRequest(BaseModel):
    """Body of POST /v1/generations."""

    model_config = ConfigDict(extra="forbid")

    image_url: AnyHttpUrl | None = Field(
        default=None, description="Public http(s) URL of the product photo (at most 2083 chars)."
    )
    image_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="Key of the photo in the input bucket.",
    )
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
    guidance: Guidance | None = Field(default=None, description="An image prompt (Photoroom).")
    model: PhotoroomModel | None = Field(default=None, description="Model version (Photoroom).")
    reference_box: ReferenceBox | None = Field(default=None, description="(Photoroom)")
    output_size: str | None = Field(
        default=None, pattern=OUTPUT_SIZE_PATTERN, description="auto, WxH, ... (Photoroom)"
    )

    @model_validator(mode="after")
    def _exactly_one_image(self) -> Self:
        if (self.image_url is None) == (self.image_key is None):
            raise ValueError("give exactly one of image_url or image_key")
        if self.image_url is not None and len(str(self.image_url)) > MAX_IMAGE_URL_LENGTH:
            raise ValueError(f"image_url is longer than {MAX_IMAGE_URL_LENGTH} characters")
        return self


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
