"""A succeeded job's review (ReviewMode=required): which decision may follow which, and
what each leaves recorded. Pure: the caller writes the answer conditionally on the review
it read (`version`), so of two reviewers deciding at once one wins and the other is told,
and publishes or removes the object the decision names."""

from __future__ import annotations

from datetime import datetime

from backdrop import storage
from backdrop.domain import (
    PUBLISHED_PREFIX,
    Job,
    JobStatus,
    Refused,
    Review,
    ReviewDecision,
    ReviewMode,
    publish_key_refusal,
)


class NotReviewable(Exception):
    """A decision on a job that cannot take one now (not succeeded, or superseded)."""

    def __init__(self, job: Job, why: str) -> None:
        super().__init__(why)
        self.job_id = job.id
        self.status = str(job.status)


def pending() -> Review:
    """The review a job starts with when it succeeds and the stack requires reviews."""
    return Review(status="pending")


def on_success(mode: ReviewMode) -> Review | None:
    """What a job that just succeeded is held for: a pending review where the stack's
    ReviewMode is `required`, nothing where it is `none` (today's behaviour exactly)."""
    return pending() if mode == "required" else None


def version(review: Review | None) -> int:
    """What a decision is conditional on: how many decisions the review holds."""
    return 0 if review is None else len(review.history)


def approve(
    job: Job,
    review: Review | None,
    *,
    index: int,
    at: datetime,
    publish_key: str | None = None,
    reviewer: str | None = None,
) -> Review:
    """Approve the result `index`: published at `publish_key` (under published/) or where
    storage.published_key puts it. Approving another index later replaces it."""
    current = reviewable(job, review)
    chosen = {result.index: result for result in job.results}
    if index not in chosen:
        raise Refused.field(
            "index", f"must be one of this job's results: {_listed(sorted(chosen))}"
        )
    if publish_key is not None and (reason := publish_key_refusal(publish_key)):
        raise Refused.field("publish_key", reason)
    key = storage.published_key(job, chosen[index], publish_key)
    earlier = current.published_key
    decision = ReviewDecision(
        decision="approve",
        at=at,
        index=index,
        reviewer=reviewer,
        published_key=key,
        removed_key=earlier if earlier != key else None,
    )
    return Review(
        status="approved",
        chosen=index,
        published_key=key,
        decided_at=at,
        history=[*current.history, decision],
    )


def reject(
    job: Job, review: Review | None, *, at: datetime, reason: str | None, reviewer: str | None
) -> Review:
    """Reject the set: nothing of this job stays published (the caller removes the object
    an earlier approval published, which the decision's `removed_key` names). A superseded
    job may be rejected too: what it published is taken down."""
    current = reviewable(job, review, rejecting=True)
    decision = ReviewDecision(
        decision="reject",
        at=at,
        reason=reason,
        reviewer=reviewer,
        removed_key=current.published_key,
    )
    return Review(
        status="rejected", reason=reason, decided_at=at, history=[*current.history, decision]
    )


def is_repeat(review: Review | None, index: int | None, key: str | None) -> bool:
    """Whether a decision is the one already recorded: approving `index` at `key` once more,
    or rejecting (index None) a rejected job. A retry, of a reviewer whose answer was lost:
    it is carried out and announced again, and records nothing new."""
    if review is None:
        return False
    if index is None:
        return review.status == "rejected"
    return review.status == "approved" and review.chosen == index and review.published_key == key


def line_key(job: Job) -> str | None:
    """The publish_key a regeneration of `job` takes: the one `job` was asked with, or the
    one its approval gave; None where its place is the default (the regeneration's default
    is the same place: the source's path, or the first job's id)."""
    if job.publish_key is not None:
        return job.publish_key
    held = job.review
    if held is None or held.published_key is None or held.chosen is None:
        return None
    chosen = next((r for r in job.results if r.index == held.chosen), None)
    if held.published_key == storage.published_key(job, chosen):
        return None
    return held.published_key.removeprefix(PUBLISHED_PREFIX)


def removed_key(review: Review) -> str | None:
    """What the latest decision takes down, if anything."""
    return review.history[-1].removed_key if review.history else None


def regenerate(
    job: Job, review: Review | None, *, at: datetime, child: str, reviewer: str | None
) -> Review:
    """A regeneration was asked for: recorded in the history, the review otherwise as it
    was (it is superseded once the new job succeeds)."""
    current = reviewable(job, review)
    decision = ReviewDecision(decision="regenerate", at=at, reviewer=reviewer, job_id=child)
    return current.model_copy(update={"history": [*current.history, decision]})


def superseded_by(review: Review | None) -> str | None:
    """The regeneration a superseded review names, if it is superseded."""
    if review is None or review.status != "superseded":
        return None
    return next((d.job_id for d in reversed(review.history) if d.decision == "supersede"), None)


def supersede(review: Review | None, *, by_job: str, at: datetime) -> Review:
    """A regeneration of this job succeeded: it replaces this one in the queue. What this
    job published stays published until the new one is approved in its place."""
    current = review or pending()
    decision = ReviewDecision(decision="supersede", at=at, job_id=by_job)
    return current.model_copy(
        update={"status": "superseded", "decided_at": at, "history": [*current.history, decision]}
    )


def reviewable(job: Job, review: Review | None, *, rejecting: bool = False) -> Review:
    """The review a decision on `job` may follow; NotReviewable if none may (a superseded
    job takes only a rejection)."""
    if job.status != JobStatus.SUCCEEDED:
        raise NotReviewable(job, f"only a succeeded job can be reviewed; this one is {job.status}")
    if review is None:
        raise NotReviewable(job, "this job was not held for review (ReviewMode was none)")
    if review.status == "superseded" and not rejecting:
        raise NotReviewable(
            job,
            f"superseded by job {superseded_by(review)}: review that one (this one may only "
            "be rejected, taking down what it published)",
        )
    return review


def _listed(indexes: list[int]) -> str:
    if not indexes:
        return "none (it has no results)"
    if indexes == list(range(indexes[0], indexes[-1] + 1)) and len(indexes) > 2:
        return f"{indexes[0]} to {indexes[-1]}"
    return ", ".join(map(str, indexes))
