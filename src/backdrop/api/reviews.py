"""POST /v1/generations/{id}/review: a reviewer's decision on a succeeded job's results
(ReviewMode=required). A key reviews what it may read; another key's job is 404, as
anywhere. Each decision is recorded first, conditionally on the review it was made on, and
only then carried out (published, removed, started): of two reviewers deciding at once one
wins, the other gets 409 `decision_changed`, and nothing is published twice."""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from backdrop import events, review, storage
from backdrop.api.caller import caller, readable_job
from backdrop.api.container import Api, current
from backdrop.api.create import start
from backdrop.api.errors import ApiError
from backdrop.api.idempotency import IdempotencyKey
from backdrop.api.schemas import ErrorBody, error_responses, location
from backdrop.batches.store import review_moved
from backdrop.contracts.decisions import (
    ApproveDecision,
    RegenerateDecision,
    RejectDecision,
    ReviewDecisionRequest,
)
from backdrop.contracts.options import OptionLayer
from backdrop.contracts.views import GenerationView, generation_view
from backdrop.domain import FINISHED, ImageSource, Job, NewJob, Refused, ResultImage, Review
from backdrop.jobs import DecisionChanged, JobNotFound, KeyTaken
from backdrop.plan import Ask, Layer, Photo, plan

router = APIGatewayRouter()  # type: ignore[no-untyped-call]


@router.post(
    "/v1/generations/<job_id>/review",
    operation_id="reviewGeneration",
    tags=["generations"],
    summary="Approve, reject or regenerate a succeeded generation's results",
    description=(
        "With ReviewMode=required every generation that succeeds waits in the review queue "
        "(`GET /v1/generations?review=pending`). `approve` copies the chosen result to its "
        "published key under `published/` in the published bucket and announces "
        "`Generation Approved`; approving again with another index replaces it. `reject` "
        "removes what this generation published and announces `Generation Rejected`. "
        "`regenerate` starts a new generation for the same photo (202, the new one), linked "
        "by `parent_id` and `children`; this one becomes `superseded` when it succeeds."
    ),
    responses={
        200: {"description": "The generation, as decided."},
        202: {
            "description": "regenerate: the new generation, queued.",
            "headers": location("/v1/generations/{id}"),
        },
        409: {
            "description": "not_reviewable (not succeeded, not held for review, superseded), "
            "or decision_changed (another reviewer decided first; details hold the review).",
            "content": {"application/json": {"model": ErrorBody}},
        },
        **error_responses(400, 403, 404, 422, 429, 500, 503),
    },
)
def review_generation(
    job_id: str,
    decision: Annotated[ReviewDecisionRequest, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Response[GenerationView]:
    api = current()
    job = readable_job(router.current_event, job_id)
    try:
        if isinstance(decision, ApproveDecision):
            return _answer(_approve(api, job, decision))
        if isinstance(decision, RejectDecision):
            return _answer(_reject(api, job, decision))
        if idempotency_key is None:
            if decision.review_version is None:
                # Sent again after a lost answer, it would start (and pay for) a second job.
                raise Refused.field(
                    "review_version",
                    "a regeneration needs review_version (or an Idempotency-Key header), so "
                    "that a request sent again starts no second job",
                )
            child = _regenerate(api, job, decision)
        else:
            child = api.idempotency.once(
                key=idempotency_key,
                scope="reviews",
                owner=caller(router.current_event),
                request={"job_id": job.id, **decision.model_dump(mode="json")},
                model=Job,
                start=lambda: _regenerate(api, job, decision),
                context=router.lambda_context,
            )
    except review.NotReviewable as exc:
        raise ApiError("not_reviewable", str(exc), [{"status": exc.status}]) from None
    except Refused as exc:
        raise ApiError.refused(exc) from None
    except DecisionChanged:
        now = api.jobs.get(job.id)
        held = now.review.model_dump(mode="json") if now.review else None
        raise ApiError(
            "decision_changed",
            "another decision was recorded on this generation first; read it again",
            [{"field": "decision", "review": held}],
        ) from None
    return _answer(child, HTTPStatus.ACCEPTED, {"Location": f"/v1/generations/{child.id}"})


def _answer(
    job: Job, status: HTTPStatus = HTTPStatus.OK, headers: dict[str, str] | None = None
) -> Response[GenerationView]:
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body=generation_view(job, current().urls),
        headers=headers,
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _approve(api: Api, job: Job, decision: ApproveDecision) -> Job:
    held = job.review
    decided = review.approve(
        job,
        held,
        index=decision.index,
        at=_now(),
        publish_key=decision.publish_key or job.publish_key,
        reviewer=decision.reviewer,
    )
    key = decided.published_key
    assert key is not None
    chosen = next(result for result in job.results if result.index == decision.index)
    _own_result(api, job, chosen)
    # A repeat publishes again, unless the key has since been taken over: then it is new.
    repeat = held is not None and review.is_repeat(held, decision.index, key)
    if repeat and api.jobs.published_by(key) == job.id:
        assert held is not None
        decided = held
    if decided is not held:
        _still(job, decision.review_version)
        try:
            created = api.jobs.claim_published(key, job)
        except KeyTaken as taken:
            raise Refused.field("publish_key", f"{taken}; choose another") from None
        try:
            api.jobs.record_review(
                job.id, review.version(held), decided, also=_counted(api, job, decided)
            )
        except DecisionChanged:
            if created:  # nothing of this decision may stay behind
                api.jobs.release_published(key, job)
            raise
    settings = api.settings
    storage.publish(settings.results_bucket, chosen, settings.published_bucket, key, job.id)
    _take_down(api, job, review.removed_key(decided))
    return _announced(api, job.model_copy(update={"review": decided}))


def _reject(api: Api, job: Job, decision: RejectDecision) -> Job:
    held = job.review
    if held is not None and review.is_repeat(held, None, None):
        decided = held  # taken down and announced again, recorded once
    else:
        decided = review.reject(
            job, held, at=_now(), reason=decision.reason, reviewer=decision.reviewer
        )
        _still(job, decision.review_version)
        api.jobs.record_review(
            job.id, review.version(held), decided, also=_counted(api, job, decided)
        )
    _take_down(api, job, review.removed_key(decided))
    return _announced(api, job.model_copy(update={"review": decided}))


def _own_result(api: Api, job: Job, result: ResultImage) -> None:
    """NotReviewable unless the stored image is still this job's: an inbox or catalogue
    photo's folder holds the latest version's images (a re-upload, a rerun), and that
    version's job supersedes this one."""
    head = storage.head_object(api.settings.results_bucket, result.key) or {}
    stored_by = head.get("Metadata", {}).get(storage.JOB_ID_METADATA)
    if stored_by == job.id:
        return
    if stored_by is None:
        raise review.NotReviewable(job, "its images are no longer stored")
    try:
        replaced = review.supersede(job.review, by_job=stored_by, at=_now())
        api.jobs.record_review(
            job.id, review.version(job.review), replaced, also=_counted(api, job, replaced)
        )
    except DecisionChanged:
        pass  # decided meanwhile: the refusal below stands all the same
    raise review.NotReviewable(
        job, f"superseded by job {stored_by}: the photo was replaced, and its images with it"
    )


def _take_down(api: Api, job: Job, key: str | None) -> None:
    """Remove what this job published at `key`, if the image there is still its own (a
    later job of the product may have published there since)."""
    if key is None or api.jobs.published_by(key) != job.id:
        return
    storage.unpublish(api.settings.published_bucket, key)
    api.jobs.release_published(key, job)


def _counted(api: Api, job: Job, decided: Review) -> list[dict[str, Any]]:
    """The move of `job` in its batch's review counts, for the decision's own write."""
    before = job.review.status if job.review else None
    return review_moved(api.settings.batches_table, job.batch_id, before, decided.status)


def _still(job: Job, seen: int | None) -> None:
    """DecisionChanged if the reviewer decided on a review that has changed since."""
    if seen is not None and seen != review.version(job.review):
        raise DecisionChanged(job.id)


def _announced(api: Api, job: Job) -> Job:
    settings = api.settings
    events.publish_review(
        job,
        bus_name=settings.event_bus_name,
        results_bucket=settings.results_bucket,
        published_bucket=settings.published_bucket,
    )
    return job


def _regenerate(api: Api, job: Job, decision: RegenerateDecision) -> Job:
    """Plan the new job as any (the same provider checks, the same refusals), record the
    decision naming it, then start it."""
    review.reviewable(job, job.review)
    under_way = _regeneration_under_way(api, job)
    if under_way is not None:
        if _asks_as(decision, under_way):
            return under_way  # the same request again (a lost answer): the job it started
        raise review.NotReviewable(
            job, f"job {under_way.id} is regenerating it: decide again once that has ended"
        )
    _still(job, decision.review_version)
    new = _planned(api, job, decision)
    decided = review.regenerate(
        job, job.review, at=_now(), child=new.id, reviewer=decision.reviewer
    )
    api.jobs.record_review(job.id, review.version(job.review), decided, child=new.id)
    return start(new)


def _regeneration_under_way(api: Api, job: Job) -> Job | None:
    """The regeneration the latest decision started, while it has not ended: a second one
    would pay again for what is already being made. None if it never got its record (its
    start was cut short: nothing was sent), or has failed or been canceled."""
    last = job.review.history[-1] if job.review and job.review.history else None
    if last is None or last.decision != "regenerate" or last.job_id is None:
        return None
    try:
        child = api.jobs.get(last.job_id)
    except JobNotFound:
        return None
    return None if child.status in FINISHED else child


def _asks_as(decision: RegenerateDecision, child: Job) -> bool:
    """Whether `decision` asks for what `child` was made with (a request sent again)."""
    asked = decision.model_dump(include=set(OptionLayer.model_fields), exclude_none=True)
    made = child.options.model_dump(mode="json") | {"provider": child.provider}
    return all(made.get(name) == value for name, value in asked.items())


def _planned(api: Api, job: Job, decision: RegenerateDecision) -> NewJob:
    options = job.options
    asked = decision.model_dump(include=set(OptionLayer.model_fields), exclude_none=True)
    kept = options.model_dump(mode="json", exclude={"guidance"}, exclude_none=True)
    kept["provider"] = job.provider
    guidance = options.guidance
    ask = Ask(
        trigger="review",
        photo=_photo(job.source, "source"),
        layers=(Layer(asked), Layer(kept, lambda name: f"the regenerated job's {name}")),
        guidance=None if guidance is None else _photo(guidance.image, "guidance"),
        guidance_scale=guidance.scale if guidance else 0.6,
        metadata=job.metadata,
        owner=job.owner,
        webhook_url=job.webhook_url,
        batch_id=job.batch_id,
        publish_key=review.line_key(job),
        parent_id=job.id,
        root_id=job.root_id or job.id,
    )
    return plan(ask, api.settings)  # its PlanRefused is a Refused: a 422 like any


def _photo(source: ImageSource, field: str) -> Photo:
    """A photo of the reviewed job, as the plan takes it again: its URL, or its object."""
    if source.url is not None:
        return Photo(url=source.url, field=field)
    return Photo(stored=source, field=field)
