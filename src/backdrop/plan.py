"""One plan for a new job, whichever way it came in. What was asked (an API request, an
inbox image's metadata and folder preset) becomes a NewJob: the provider, the options with
the stack's defaults applied and checked against what the provider honours, and the photo,
checked by its bytes and stored where the provider can fetch it. Nothing here is paid for;
whatever cannot work is refused here, before anything starts."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from backdrop import images, storage
from backdrop.config import PlanSettings
from backdrop.contracts.options import OptionLayer
from backdrop.contracts.typed import text_values
from backdrop.domain import (
    STACK_OWNER,
    GenerationOptions,
    GuidanceSource,
    ImageSource,
    NewJob,
    Problem,
    Refused,
    Trigger,
)
from backdrop.jobs import new_job_id
from backdrop.providers import registry
from backdrop.providers.base import ProviderSpec

if TYPE_CHECKING:  # typing only: the inbox and the batch items never read a request
    from backdrop.contracts.requests import GenerationRequest

UPLOADS_PREFIX = "uploads/"
UPLOAD_TYPES: dict[str, str] = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    # A batch's manifest (batches/manifest.py).
    "text/csv": "csv",
    "application/x-ndjson": "jsonl",
}


def _as_given(name: str) -> str:
    return name


@dataclass(frozen=True)
class Layer:
    values: Mapping[str, Any]
    # How to name one of its fields to the person who set it (a metadata key, a preset).
    origin: Callable[[str], str] = _as_given
    # What was wrong with it before its values could even be read (undecodable metadata).
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class Photo:
    """Where an image is, as asked: exactly one of a caller's URL (passed to the provider,
    never fetched here), a key from POST /v1/uploads, the bytes themselves, or an object
    already in the input bucket. `field` names it in errors."""

    url: str | None = None
    upload_key: str | None = None
    data: bytes | None = None
    stored: ImageSource | None = None
    field: str = "image"


@dataclass(frozen=True)
class Ask:
    """What was asked for: the photo, option layers (most specific first; the stack's
    defaults come last by themselves), an optional image prompt, the caller's labels, and
    whose the job will be (domain.key_owner of the API key that asked; the stack's own
    work, such as the inbox's, keeps the default)."""

    trigger: Trigger
    photo: Photo
    layers: tuple[Layer, ...] = ()
    guidance: Photo | None = None
    guidance_scale: float = 0.6
    metadata: dict[str, str] = field(default_factory=dict)
    job_id: str | None = None  # derived by the caller where the work identifies itself
    owner: str = STACK_OWNER
    webhook_url: str | None = None  # checked by the caller (fetch_guard.webhook_url_refusal)
    batch_id: str | None = None  # the batch whose item it is, and the item's place there
    batch_item: int | None = None
    publish_key: str | None = None  # where an approved result goes (checked by the caller)
    parent_id: str | None = None  # a regeneration's job, and the first of its line
    root_id: str | None = None


class PlanRefused(Refused):
    """The ask cannot become a job. `job` is the job as far as it could be planned (the
    stack's defaults where the options were at fault), for callers that record refusals."""

    def __init__(self, refused: Refused, job: NewJob) -> None:
        super().__init__(refused.code, refused.message, refused.problems)
        self.job = job


def refusal(ask: Ask, refused: Refused, settings: PlanSettings) -> PlanRefused:
    """A refusal decided before planning (a request that could not even be read), with the
    job as asked, to record and announce like any other."""
    return PlanRefused(refused, _as_asked(ask, ask.job_id or new_job_id(), settings))


def _as_asked(ask: Ask, job_id: str, settings: PlanSettings) -> NewJob:
    """The job as far as it is planned: what a refusal records (the stack's defaults, until
    the options are known; the photo as given, until it is checked)."""
    return NewJob(
        id=job_id,
        trigger=ask.trigger,
        provider=settings.default_provider,
        source=_unchecked(ask.photo, settings),
        options=GenerationOptions(prompt=settings.default_prompt, count=settings.default_count),
        metadata=ask.metadata,
        owner=ask.owner,
        webhook_url=ask.webhook_url,
        batch_id=ask.batch_id,
        batch_item=ask.batch_item,
        publish_key=ask.publish_key,
        parent_id=ask.parent_id,
        root_id=ask.root_id,
    )


def _stack_layer(settings: PlanSettings) -> Layer:
    return Layer(
        {
            "provider": settings.default_provider,
            "prompt": settings.default_prompt,
            "count": settings.default_count,
            "format": "JPG",
        },
        lambda name: "the stack's default",
    )


def check_options(layers: tuple[Layer, ...], settings: PlanSettings) -> GenerationOptions:
    """What `layers` over the stack's defaults come to, or Refused: for work checked ahead
    of its jobs (a batch's options and manifest rows)."""
    return choose(layers, settings)[1]


def choose(
    layers: tuple[Layer, ...], settings: PlanSettings
) -> tuple[ProviderSpec, GenerationOptions]:
    """The provider and options `layers` over the stack's defaults come to, or Refused."""
    return _options((*layers, _stack_layer(settings)), guided=False)


def plan(ask: Ask, settings: PlanSettings) -> NewJob:
    """The new job for `ask`, or PlanRefused saying why there can be none."""
    job_id = ask.job_id or new_job_id()
    job = _as_asked(ask, job_id, settings)
    try:
        spec, options = _options(
            (*ask.layers, _stack_layer(settings)), guided=ask.guidance is not None
        )
    except Refused as exc:
        raise PlanRefused(exc, job) from None
    job = replace(job, provider=spec.name, options=options)
    try:
        _check_place(ask)
        source = _source(ask.photo, spec, settings)
        if ask.guidance is not None:
            image = _source(ask.guidance, spec, settings)
            guidance = GuidanceSource(image=image, scale=ask.guidance_scale)
            options = options.model_copy(update={"guidance": guidance})
    except Refused as exc:
        raise PlanRefused(exc, job) from None
    return replace(job, source=source, options=options)


def _options(layers: tuple[Layer, ...], *, guided: bool) -> tuple[ProviderSpec, GenerationOptions]:
    chosen: dict[str, Any] = {}
    origins: dict[str, Callable[[str], str]] = {}
    for layer in reversed(layers):  # least specific first, so the more specific overwrite
        parsed = _parse(layer)
        for name, value in parsed.model_dump(exclude_none=True).items():
            chosen[name] = value
            origins[name] = layer.origin
    name = chosen.pop("provider")
    try:
        spec = registry.get(name)
    except registry.UnknownProvider as exc:
        origin = origins["provider"]("provider")
        raise Refused(
            "invalid_option", f"{origin} {name!r}: {exc}", (Problem("provider", str(exc)),)
        ) from None
    options = GenerationOptions.model_validate(chosen)
    # An image prompt is checked like any option, before its image is looked at.
    problems = spec.unsupported(options, asked=("guidance",) if guided else ())
    if problems:
        raise Refused(
            "unsupported_option",
            "; ".join(f"{origins.get(p.field, _as_given)(p.field)}: {p.reason}" for p in problems),
            tuple(problems),
        )
    return spec, options


def _parse(layer: Layer) -> OptionLayer:
    if layer.problems:
        reasons = "; ".join(p.reason for p in layer.problems)
        raise Refused("invalid_option", reasons, layer.problems)
    try:
        with text_values():  # object metadata and CSV rows are text
            return OptionLayer.model_validate(layer.values)
    except ValidationError as exc:
        problems = [
            Problem(name, f"{layer.origin(name)} {layer.values.get(name)!r}: {error['msg']}")
            for error in exc.errors()
            for name in [str(error["loc"][0])]
        ]
        raise Refused(
            "invalid_option", "; ".join(p.reason for p in problems), tuple(problems)
        ) from None


def _check_place(ask: Ask) -> None:
    """An inbox or catalogue image's results go beside it (storage.results_prefix): a key
    too long for that is refused before the image is read, rather than failing when they
    are written."""
    stored = ask.photo.stored
    if ask.trigger not in ("inbox", "batch") or stored is None or stored.key is None:
        return
    reason = storage.outbox_misfit(stored.key)
    if reason is not None:
        raise Refused("invalid_key", reason, (Problem(ask.photo.field, reason),))


def _unchecked(photo: Photo, settings: PlanSettings) -> ImageSource:
    """The photo's source as a refused job records it: nothing stored, nothing checked
    (inline bytes are never stored for a refusal; only their place is named)."""
    if photo.stored is not None:
        return photo.stored
    if photo.url is not None:
        return ImageSource(url=photo.url)
    return ImageSource(bucket=settings.input_bucket, key=photo.upload_key or UPLOADS_PREFIX)


def _source(photo: Photo, spec: ProviderSpec, settings: PlanSettings) -> ImageSource:
    """Where the provider will find the photo, once it is known to be one it takes."""
    if photo.url is not None:
        return ImageSource(url=photo.url)
    if photo.stored is not None:
        assert photo.stored.bucket is not None
        assert photo.stored.key is not None
        _inspect(photo, spec, photo.stored.bucket, photo.stored.key, photo.stored.version_id)
        return photo.stored
    if photo.upload_key is not None:
        key = photo.upload_key
        check_upload_key(key, photo.field)
        uploaded_size(key, photo.field, settings)
        _inspect(photo, spec, settings.input_bucket, key, None)
        return ImageSource(bucket=settings.input_bucket, key=key)
    assert photo.data is not None
    try:
        info = images.inspect_bytes(photo.data, limits=spec.limits, provider=spec.name)
    except images.ImageRejected as exc:
        raise Refused(exc.code, exc.message, (Problem(photo.field, exc.message),)) from None
    key = f"{UPLOADS_PREFIX}{uuid.uuid4().hex}.{UPLOAD_TYPES[info.content_type]}"
    version = storage.put_bytes(settings.input_bucket, key, photo.data, info.content_type)
    return ImageSource(bucket=settings.input_bucket, key=key, version_id=version)


def _inspect(
    photo: Photo, spec: ProviderSpec, bucket: str, key: str, version_id: str | None
) -> None:
    try:
        images.inspect_object(bucket, key, version_id, limits=spec.limits, provider=spec.name)
    except images.ImageRejected as exc:
        raise Refused(exc.code, exc.message, (Problem(photo.field, exc.message),)) from None


def check_upload_key(key: str, field_name: str) -> None:
    """Refused unless `key` is one POST /v1/uploads answers: in its folder, no `..`."""
    if not key.startswith(UPLOADS_PREFIX) or ".." in key:
        raise Refused.field(field_name, "use the image_key answered by POST /v1/uploads")


def uploaded_size(key: str, field_name: str, settings: PlanSettings) -> int:
    """The size of what was uploaded with `key`; Refused if nothing is there (any more)."""
    size = storage.object_size(settings.input_bucket, key, None)
    if size is None:
        raise Refused.field(
            field_name, "nothing has been uploaded with this key (or the upload has expired)"
        )
    return size


def asked(
    request: GenerationRequest, *, trigger: Trigger, owner: str, job_id: str | None = None
) -> Ask:
    """What a request asks the plan for (the API's, and the events' too)."""
    if request.image_url is not None:
        photo = Photo(url=str(request.image_url), field="image_url")
    elif request.image_key is not None:
        photo = Photo(upload_key=request.image_key, field="image_key")
    else:
        part = "image" if request.image is not None else "image_base64"
        photo = Photo(data=request.inline_image, field=part)
    guidance = request.guidance
    return Ask(
        trigger=trigger,
        photo=photo,
        layers=(Layer(request.model_dump(include=_REQUEST_OPTIONS, exclude_none=True)),),
        guidance=None
        if guidance is None
        else Photo(
            url=str(guidance.image_url) if guidance.image_url else None,
            upload_key=guidance.image_key,
            field="guidance.image_key",
        ),
        guidance_scale=guidance.scale if guidance else 0.6,
        metadata=request.metadata,
        owner=owner,
        job_id=job_id,
        webhook_url=request.webhook_url,
        publish_key=request.publish_key,
    )


_REQUEST_OPTIONS = set(OptionLayer.model_fields)
