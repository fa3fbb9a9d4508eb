"""The domain: a job, what it was asked to make, where its image comes from, how it ended.
Everything else imports from here; this module imports nothing of ours."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

# Who asked for a job: the HTTPS API, an image dropped under inbox/, an event, a batch.
# "review": a regeneration a reviewer asked for (POST /v1/generations/{id}/review).
Trigger = Literal["api", "inbox", "event", "batch", "review"]
# Whose a job is. A key reads and lists only its own jobs and the stack's (jobs.py):
# "key:<API key id>" for a job an API key asked for (the id API Gateway passes the function,
# never the key itself), STACK_OWNER for work the stack started on its own (inbox images;
# any later way in that no API key asks for). The prefix keeps the two apart whatever a key
# id looks like; neither may hold "#", which separates parts of the listing keys.
STACK_OWNER = "stack"
API_KEY_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
OWNER_PATTERN = r"^(stack|key:[A-Za-z0-9_-]{1,128})$"
Owner = Annotated[str, StringConstraints(pattern=OWNER_PATTERN)]
# A provider is named by its registry entry (providers/registry.py); the record only
# needs a well-formed name, so a provider added later reads back like any other.
ProviderName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
ImageFormat = Literal["JPG", "PNG", "WEBP"]
# Model versions a request may name (Photoroom's; the others have one model).
ModelVersion = Literal["3", "background-studio-beta-2025-03-17", "2"]
ReferenceBox = Literal["subjectBox", "originalImage"]
OUTPUT_SIZE_PATTERN = r"^(auto|originalImage|croppedSubject|[1-9][0-9]{0,3}x[1-9][0-9]{0,3})$"
MAX_SEED = 2**32 - 1
JOB_ID_PATTERN = r"^[0-9a-f]{32}$"
MAX_IMAGE_URL_LENGTH = 2083  # Picsart's limit on image_url, and the most a browser takes

# Requested format -> (file extension, content type) of the stored results.
FORMATS: dict[str, tuple[str, str]] = {
    "JPG": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "WEBP": ("webp", "image/webp"),
}

# Caller's own labels, echoed in the job and its events: small, so events stay small.
MAX_METADATA_ENTRIES = 10

# An approved result's place (ReviewMode=required): under published/ of the published bucket.
PUBLISHED_PREFIX = "published/"
MAX_S3_KEY_BYTES = 1024  # S3 refuses a longer key (counted in UTF-8 bytes)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def publish_key_refusal(given: str) -> str | None:
    """Why `given` cannot be a publish_key (a key under published/, such as a SKU), or None:
    a relative path of non-empty segments (no "." or ".."), no control characters or
    backslashes, and short enough for S3 under published/."""
    if not given or given.startswith("/"):
        return "must be a relative path, such as sku-1234.jpg or shoes/sku-1234.jpg"
    if _CONTROL.search(given) or "\\" in given:
        return "must not hold control characters or backslashes"
    if any(segment in ("", ".", "..") for segment in given.split("/")):
        return "must not hold empty, '.' or '..' segments"
    size, longest = len(given.encode()), MAX_S3_KEY_BYTES - len(PUBLISHED_PREFIX)
    if size > longest:
        return f"is {size} bytes; at most {longest} fit under {PUBLISHED_PREFIX} (S3's limit)"
    return None


Metadata = dict[
    Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")],
    Annotated[str, StringConstraints(max_length=256)],
]


def exactly_one(**given: object) -> None:
    """Exactly one of these is set (an image's sources, a batch's): else the ValueError a
    model validator reports, naming them."""
    if sum(value is not None for value in given.values()) != 1:
        listed = " or ".join(given) if len(given) == 2 else ", ".join(given)
        raise ValueError(f"give exactly one of {listed}")


def image_url_fits(url: object | None) -> None:
    """A photo's URL no longer than every provider takes (MAX_IMAGE_URL_LENGTH)."""
    if url is not None and len(str(url)) > MAX_IMAGE_URL_LENGTH:
        raise ValueError(f"image_url is longer than {MAX_IMAGE_URL_LENGTH} characters")


def key_owner(api_key_id: str) -> str:
    """The owner of the jobs an API key asks for, by the key's id."""
    if not re.fullmatch(API_KEY_ID_PATTERN, api_key_id):
        raise ValueError(f"not an API key id: {api_key_id!r}")
    return f"key:{api_key_id}"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"  # stopped by its caller (POST /v1/generations/{id}/cancel)


FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED})


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
    does not support are refused when the job is planned (plan.py), never dropped."""

    prompt: str = Field(min_length=1, max_length=1000)
    negative_prompt: str | None = Field(default=None, max_length=1000)
    count: int = Field(default=2, ge=1, le=10)
    format: ImageFormat = "JPG"
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    expand_prompt: bool | None = None
    guidance: GuidanceSource | None = None
    model: ModelVersion | None = None
    reference_box: ReferenceBox | None = None
    output_size: str | None = Field(default=None, pattern=OUTPUT_SIZE_PATTERN)


# Options that only some providers honour (the image, prompt, count and format all do).
OPTIONAL_OPTIONS = (
    "negative_prompt",
    "seed",
    "expand_prompt",
    "guidance",
    "model",
    "reference_box",
    "output_size",
)


class InboxPreset(BaseModel):
    """Options for every image dropped in one inbox folder (`inbox/<preset name>/...`).
    Object metadata overrides them field by field; what neither gives comes from the stack."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str | None = Field(default=None, min_length=1, max_length=1000)
    negative_prompt: str | None = Field(default=None, max_length=1000)
    count: int | None = Field(default=None, ge=1, le=10)
    format: ImageFormat | None = None
    provider: ProviderName | None = None
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)


class ResultImage(BaseModel):
    index: int
    key: str
    content_type: str
    size: int
    seed: int | None = None  # the seed the provider used, where it reports one
    # A small WEBP preview beside it (thumbnails.py); None for results stored before them.
    thumbnail_key: str | None = None


class JobError(BaseModel):
    code: str
    message: str


class Cost(BaseModel):
    """What a job's images cost: in the provider's own unit (Picsart credits, Photoroom
    images), and in dollars at the stack's configured price of that unit (an estimate: the
    provider's invoice is the truth)."""

    units: float = Field(ge=0)
    unit: str
    estimated_usd: float = Field(ge=0)

    def __add__(self, other: Cost) -> Cost:
        unit = self.unit if self.unit == other.unit else "mixed"
        return Cost(
            units=self.units + other.units,
            unit=unit,
            estimated_usd=round(self.estimated_usd + other.estimated_usd, 6),
        )


class WebhookState(BaseModel):
    """How the job's own webhook is going (the stack's subscribers are not shown on jobs)."""

    status: Literal["pending", "delivered", "failed"] = "pending"
    attempts: int = Field(default=0, ge=0)
    last_status_code: int | None = None
    last_attempt_at: datetime | None = None


@dataclass(frozen=True)
class Problem:
    """One reason a piece of work is refused: the field at fault (as the caller named it)
    and why."""

    field: str
    reason: str


class Refused(Exception):
    """Work refused before it starts, for a reason its job records as its error."""

    def __init__(self, code: str, message: str, problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.problems = problems

    @property
    def error(self) -> JobError:
        return JobError(code=self.code, message=self.message)

    @classmethod
    def field(cls, name: str, reason: str, code: str = "invalid_request") -> Refused:
        """A request refused for one field."""
        return cls(code, "the request is invalid", (Problem(name, reason),))


# A succeeded job's review, when the stack's ReviewMode is `required` (review.py holds the
# rules): pending until a reviewer approves one result (published under its key), rejects
# the set, or a regeneration that succeeded replaces it (superseded).
ReviewMode = Literal["none", "required"]
ReviewStatus = Literal["pending", "approved", "rejected", "superseded"]
ReviewVerb = Literal["approve", "reject", "regenerate", "supersede"]


class ReviewDecision(BaseModel):
    """One entry of a review's history: what was decided, by whom (a label the reviewer
    gives), when."""

    decision: ReviewVerb
    at: datetime
    index: int | None = None
    reason: str | None = None
    reviewer: str | None = None
    published_key: str | None = None
    # What the decision takes down: an earlier approval's object (a rejection, or an approval
    # at another key), kept here so a repeat can finish what a crash left undone.
    removed_key: str | None = None
    job_id: str | None = None  # a regeneration's new job, or the one that superseded this


class Review(BaseModel):
    status: ReviewStatus
    chosen: int | None = None
    reason: str | None = None
    published_key: str | None = None
    decided_at: datetime | None = None
    history: list[ReviewDecision] = Field(default_factory=list)


@dataclass(frozen=True)
class NewJob:
    """A job as planned (plan.py), before it is recorded: what every way in (API, inbox)
    hands to `executions.start` or `executions.refuse`."""

    id: str
    trigger: Trigger
    provider: str
    source: ImageSource
    options: GenerationOptions
    metadata: dict[str, str] = field(default_factory=dict)
    webhook_url: str | None = None  # told of the outcome (webhooks/), checked when asked
    # Whose it is (OWNER_PATTERN). Only the stack's own work may leave it to the default:
    # an API job always belongs to the key that asked, so a forgotten owner fails here
    # rather than showing the job to every key.
    owner: str = STACK_OWNER
    # The batch that made it, and its item's place there (batches/items.py).
    batch_id: str | None = None
    batch_item: int | None = None
    # Where an approved result goes, as asked (publish_key_refusal); else where
    # storage.published_key puts it.
    publish_key: str | None = None
    # A regeneration a reviewer asked for: the job it regenerates, and the first of its line.
    parent_id: str | None = None
    root_id: str | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(OWNER_PATTERN, self.owner):
            raise ValueError(f"not an owner: {self.owner!r}")
        if self.trigger == "api" and self.owner == STACK_OWNER:
            raise ValueError("an API job belongs to the API key that asked for it")


class Job(BaseModel):
    """One generation: the record in the jobs table."""

    id: str
    status: JobStatus
    trigger: Trigger
    provider: ProviderName
    source: ImageSource
    options: GenerationOptions
    provider_job_id: str | None = None
    # A provider's own result URLs when it answered them at submit (internal: they expire).
    provider_urls: list[str] = Field(default_factory=list)
    # Set just before a paid submit is sent, cleared when the provider surely did not take
    # it: found set on a job with no provider id, the submit may have been paid for.
    submitting_since: datetime | None = None
    results: list[ResultImage] = Field(default_factory=list)
    cost: Cost | None = None  # what its images cost, once they are made
    source_thumbnail_key: str | None = None  # a preview of the photo (thumbnails.py)
    error: JobError | None = None
    metadata: Metadata = Field(default_factory=dict)
    webhook_url: str | None = None
    webhook: WebhookState | None = None
    review: Review | None = None  # ReviewMode=required: set when the job succeeds
    owner: Owner
    batch_id: str | None = None
    batch_item: int | None = None
    publish_key: str | None = None  # where an approved result goes, as asked
    parent_id: str | None = None  # the job this one regenerates
    root_id: str | None = None  # the first job of the line of regenerations
    children: list[str] = Field(default_factory=list)  # its regenerations, oldest first
    created_at: datetime
    updated_at: datetime
    expires_at: int

    @property
    def lineage(self) -> str:
        """Which product a job is of, as its published key knows it: the photo's place in
        the input bucket (its re-uploads, reruns and regenerations alike), or for a photo
        given by URL the first job of its regenerations."""
        if self.source.bucket is not None and self.source.key is not None:
            return f"s3://{self.source.bucket}/{self.source.key}"
        return self.root_id or self.id

    def readable_by(self, owner: str) -> bool:
        """Whether `owner` may read this job: its own jobs, and the stack's."""
        return self.owner in (owner, STACK_OWNER)
