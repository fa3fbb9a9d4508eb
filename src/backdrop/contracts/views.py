"""What callers see of a job: the response models of the read routes (and the data of a
webhook), and the one function that turns a job record into them. Internals (the provider's job id,
the record's expiry, bucket names and object keys of results, the job's owner) never leave
through here, but inside the presigned URLs that show the results and the photo."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, get_args

from pydantic import BaseModel, Field

from backdrop.contracts.requests import ProviderShown
from backdrop.domain import (
    FORMATS,
    Cost,
    ImageFormat,
    ImageSource,
    Job,
    JobError,
    JobStatus,
    ModelVersion,
    ReferenceBox,
    ResultImage,
    Review,
    Trigger,
    WebhookState,
)


def _unset(value: Any) -> bool:
    return value is None


# A provider option appears only when the request set it.
def _option(description: str) -> Any:
    return Field(default=None, exclude_if=_unset, description=description)


class GuidanceView(BaseModel):
    image_url: str | None = _option("The image prompt's URL, when given as a URL.")
    image_key: str | None = _option("The image prompt's key in the input bucket.")
    scale: float


class RequestView(BaseModel):
    """What was asked for, with the stack's defaults applied, in the fields of
    POST /v1/generations."""

    image_url: str | None = Field(description="The product photo's URL, for a URL source.")
    image_key: str | None = Field(description="Its key in the input bucket, otherwise.")
    prompt: str
    negative_prompt: str | None
    count: int
    format: ImageFormat
    seed: int | None
    expand_prompt: bool | None = _option("(Photoroom)")
    guidance: GuidanceView | None = _option("An image prompt (Photoroom).")
    model: ModelVersion | None = _option("(Photoroom)")
    reference_box: ReferenceBox | None = _option("(Photoroom)")
    output_size: str | None = _option("(Photoroom)")
    webhook_url: str | None = _option("Where the outcome is POSTed.")
    publish_key: str | None = _option("Where under published/ an approved image goes.")


class ResultView(BaseModel):
    index: int
    url: str = Field(description="Presigned GET URL of the stored image; it expires.")
    thumbnail_url: str | None = Field(
        default=None,
        description="Presigned GET URL of a small WEBP preview (384 px); null for results "
        "stored before previews.",
    )
    size: int = Field(description="Bytes.")
    format: ImageFormat
    content_type: str
    seed: int | None = Field(description="The seed the provider used, where it reports one.")


class GenerationView(BaseModel):
    """A job as GET /v1/generations/{id} and GET /v1/generations show it."""

    id: str
    status: JobStatus
    trigger: Trigger
    provider: ProviderShown
    created_at: datetime
    updated_at: datetime
    request: RequestView
    metadata: dict[str, str]
    results: list[ResultView] = Field(description="Empty until the job has succeeded.")
    error: JobError | None = Field(description="Why the job failed; null otherwise.")
    webhook: WebhookState | None = Field(
        default=None,
        description="How the delivery to webhook_url is going (pending, delivered, failed); "
        "null without a webhook_url.",
    )
    source_url: str | None = Field(
        default=None,
        description="Where to see the product photo: its image_url, or a presigned GET URL of "
        "the stored photo (it expires).",
    )
    source_thumbnail_url: str | None = Field(
        default=None,
        description="Presigned GET URL of a small WEBP preview of the stored photo (384 px), "
        "for a job held for review (ReviewMode=required); null otherwise, for a photo given "
        "by URL, and for jobs stored before previews.",
    )
    review: Review | None = Field(
        default=None,
        description="With ReviewMode=required, once the generation has succeeded: pending, "
        "approved (chosen result published at published_key), rejected or superseded (by a "
        "regeneration), with every decision in history. Null otherwise.",
    )
    parent_id: str | None = Field(
        default=None, description="The generation this one regenerates (a reviewer asked)."
    )
    children: list[str] = Field(
        default_factory=list, description="Its regenerations, oldest first."
    )
    cost: Cost | None = Field(
        default=None,
        description="What its images cost once made: units in the provider's own (credits "
        "for Picsart, images for Photoroom) and estimated_usd at the stack's configured "
        "prices. Null until it has succeeded, and for a job that made nothing (a refused or "
        "failed call costs nothing).",
    )


class GenerationPage(BaseModel):
    """One page of GET /v1/generations, newest first."""

    items: list[GenerationView]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class ViewUrls(Protocol):
    """The URLs a view shows callers (presigned, expiring): of a stored file by its key, and
    of a job's photo (storage.ViewUrls)."""

    def result_url(self, key: str) -> str: ...

    def source_url(self, source: ImageSource) -> str | None: ...


def generation_view(job: Job, urls: ViewUrls) -> GenerationView:
    options = job.options
    guidance = None
    if options.guidance is not None:
        image = options.guidance.image
        guidance = GuidanceView(
            image_url=image.url, image_key=_key(image), scale=options.guidance.scale
        )
    return GenerationView(
        id=job.id,
        status=job.status,
        trigger=job.trigger,
        provider=job.provider,
        created_at=job.created_at,
        updated_at=job.updated_at,
        # In the fields of POST /v1/generations; of the source, only the URL or the key.
        request=RequestView(
            image_url=job.source.url,
            image_key=_key(job.source),
            guidance=guidance,
            webhook_url=job.webhook_url,
            publish_key=job.publish_key,
            **options.model_dump(exclude={"guidance"}),
        ),
        metadata=job.metadata,
        results=[_result(r, job.options.format, urls) for r in job.results],
        error=job.error,
        webhook=job.webhook,
        source_url=urls.source_url(job.source),
        source_thumbnail_url=None
        if job.source_thumbnail_key is None
        else urls.result_url(job.source_thumbnail_key),
        review=job.review,
        parent_id=job.parent_id,
        children=job.children,
        cost=job.cost,
    )


def _key(source: ImageSource) -> str | None:
    # Only the key: which bucket, and which version of the object, are the stack's business.
    return source.key if source.url is None else None


_FORMAT_OF_TYPE: dict[str, ImageFormat] = {FORMATS[f][1]: f for f in get_args(ImageFormat)}


def _result(result: ResultImage, requested: ImageFormat, urls: ViewUrls) -> ResultView:
    thumbnail = result.thumbnail_key
    return ResultView(
        index=result.index,
        url=urls.result_url(result.key),
        thumbnail_url=None if thumbnail is None else urls.result_url(thumbnail),
        size=result.size,
        # What was stored, where the provider said; else what was asked for.
        format=_FORMAT_OF_TYPE.get(result.content_type, requested),
        content_type=result.content_type,
        seed=result.seed,
    )
