"""Body of POST /v1/generations/{id}/review: one decision on a succeeded job's results,
told apart by `decision` (review.py holds what each may follow)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from backdrop.contracts.options import OptionLayer
from backdrop.contracts.requests import PublishKey
from backdrop.contracts.typed import Int

Reviewer = Annotated[
    str | None,
    Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Who decided, as you label them (kept in the review's history).",
    ),
]
ReviewVersion = Annotated[
    Int | None,
    Field(
        default=None,
        ge=0,
        description="How many decisions the review held when you read it "
        "(len(review.history)): if another was recorded since, the answer is 409 "
        "decision_changed and nothing is done. Without it, the decision follows whatever "
        "was decided before.",
    ),
]


class ApproveDecision(BaseModel):
    """Publish result `index` (replacing what an earlier approval of this job published)."""

    model_config = ConfigDict(extra="forbid", title="ApproveDecision")

    decision: Literal["approve"]
    index: Int = Field(ge=0, description="The chosen result's index.")
    publish_key: PublishKey | None = Field(
        default=None,
        description="Where under published/ the chosen image goes (a SKU, shoes/sku-1.jpg); "
        "by default the job's publish_key, else the source's path, or the job id.",
    )
    reviewer: Reviewer = None
    review_version: ReviewVersion = None


class RejectDecision(BaseModel):
    """Publish none of the results (removing what an earlier approval of this job published)."""

    model_config = ConfigDict(extra="forbid", title="RejectDecision")

    decision: Literal["reject"]
    reason: str | None = Field(default=None, min_length=1, max_length=1000)
    reviewer: Reviewer = None
    review_version: ReviewVersion = None


class RegenerateDecision(OptionLayer):
    """Generate again for the same photo, with the options given changed (the rest as this
    job had them): a new job, linked to this one, which it supersedes once it succeeds."""

    model_config = ConfigDict(extra="forbid", title="RegenerateDecision")

    decision: Literal["regenerate"]
    reviewer: Reviewer = None
    review_version: ReviewVersion = None


DECISION_TAG = "decision"
DECISIONS = ("approve", "reject", "regenerate")
ReviewDecisionRequest = Annotated[
    ApproveDecision | RejectDecision | RegenerateDecision, Field(discriminator=DECISION_TAG)
]
