"""Review before publish (ReviewMode=required) on the real parts: the workflow holds a
succeeded job for review, POST /v1/generations/{id}/review through the API function
approves (copying the chosen result under published/), rejects (removing it) or regenerates
(a linked job that supersedes its parent when it succeeds), each announced on the bus and by
webhook; the queue lists what waits, oldest first."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
import respx
from standardwebhooks import Webhook

from backdrop import review
from backdrop.jobs import JobStore
from backdrop_local.cloud import REGION
from tests.integration.conftest import PICSART, WEBHOOK_SECRET, Stack, done, submitted
from tests.receivers import receiver

BODY = {"image_url": "https://images.example.com/mug.png", "prompt": "marble", "count": 2}
OTHER_KEY = "other-key-id"


def _wait_for(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def reviewed(make_stack: Callable[..., Stack], picsart: respx.MockRouter) -> Stack:
    picsart.post(f"{PICSART}/painting/replace-background").mock(return_value=submitted())
    picsart.get(f"{PICSART}/painting/inf-1").mock(return_value=done(2))
    return make_stack(ReviewMode="required")


def _succeeded(stack: Stack, body: dict[str, Any] | None = None, **call: Any) -> str:
    status, created, _ = stack.call("POST", "/v1/generations", body or BODY, **call)
    assert status == 202, created
    job_id = str(created["id"])
    stack.wait_for_execution(job_id)
    assert stack.job(job_id)["status"] == "succeeded", stack.job(job_id)
    return job_id


def _review(
    stack: Stack, job_id: str, body: dict[str, Any], **call: Any
) -> tuple[int, dict[str, Any]]:
    status, answer, _ = stack.call("POST", f"/v1/generations/{job_id}/review", body, **call)
    return status, answer


def _s3() -> Any:
    return boto3.client("s3", region_name=REGION)


def _published(stack: Stack, key: str) -> dict[str, Any] | None:
    try:
        return dict(_s3().head_object(Bucket=_bucket(stack), Key=key))
    except _s3().exceptions.ClientError:
        return None


def _bucket(stack: Stack) -> str:
    return stack.cloud.environment["PUBLISHED_BUCKET"]


def _fields(answer: dict[str, Any]) -> dict[str, str]:
    return {d["field"]: d["reason"] for d in answer["error"]["details"]}


def test_without_review_mode_a_job_ends_as_before_and_cannot_be_reviewed(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    picsart.post(f"{PICSART}/painting/replace-background").mock(return_value=submitted())
    picsart.get(f"{PICSART}/painting/inf-1").mock(return_value=done(2))
    job_id = _succeeded(stack)
    view = json.loads(stack.get_generation(job_id)["body"])
    assert view["review"] is None
    assert stack.job(job_id)["review"] is None
    status, answer = _review(stack, job_id, {"decision": "approve", "index": 0})
    assert status == 409
    assert answer["error"]["code"] == "not_reviewable"
    assert "not held for review" in answer["error"]["message"]
    _, queue = stack.list_generations(review="pending")
    assert queue["items"] == []


def test_an_approval_publishes_the_chosen_result_and_announces_it(reviewed: Stack) -> None:
    stack = reviewed
    first, second = _succeeded(stack), _succeeded(stack)
    view = json.loads(stack.get_generation(first)["body"])
    assert view["review"]["status"] == "pending"
    assert view["source_url"] == BODY["image_url"]
    assert all(".webp" in result["thumbnail_url"] for result in view["results"])
    # The queue: oldest first, only what waits.
    _, queue = stack.list_generations(review="pending")
    assert [item["id"] for item in queue["items"]] == [first, second]
    stack.published_events()  # drain the outcomes

    status, answer = _review(stack, first, {"decision": "approve", "index": 1, "reviewer": "ana"})

    assert status == 200, answer
    key = f"published/{first}.png"  # an API job's, in the stored result's format
    assert answer["review"]["status"] == "approved"
    assert answer["review"]["chosen"] == 1
    assert answer["review"]["published_key"] == key
    (decision,) = answer["review"]["history"]
    assert (decision["decision"], decision["index"], decision["reviewer"]) == ("approve", 1, "ana")
    head = _published(stack, key)
    assert head is not None
    assert head["ContentType"] == "image/png"
    assert head["Metadata"]["job-id"] == first
    (event,) = stack.published_events()
    assert event["detail-type"] == "Generation Approved"
    assert event["detail"]["published"] == {"bucket": _bucket(stack), "key": key}
    assert event["detail"]["chosen"]["index"] == 1
    assert event["detail"]["review"]["reviewer"] == "ana"
    _, queue = stack.list_generations(review="pending")
    assert [item["id"] for item in queue["items"]] == [second]
    _, approved = stack.list_generations(review="approved")
    assert [item["id"] for item in approved["items"]] == [first]


def test_approving_again_replaces_the_object_and_a_repeat_records_nothing_new(
    reviewed: Stack,
) -> None:
    stack = reviewed
    job_id = _succeeded(stack)
    _review(stack, job_id, {"decision": "approve", "index": 0})
    _review(stack, job_id, {"decision": "approve", "index": 1})
    stack.published_events()

    # A reviewer whose answer was lost sends the same approval: published again, announced
    # again, nothing recorded twice.
    status, answer = _review(stack, job_id, {"decision": "approve", "index": 1})

    assert status == 200
    assert [d["index"] for d in answer["review"]["history"]] == [0, 1]
    versions = _s3().list_object_versions(Bucket=_bucket(stack), Prefix=f"published/{job_id}")[
        "Versions"
    ]
    assert len(versions) == 3  # the versioned bucket keeps each replaced object
    (event,) = stack.published_events()
    assert event["detail"]["review_version"] == 2


def test_a_publish_key_is_used_and_checked(reviewed: Stack) -> None:
    stack = reviewed
    job_id = _succeeded(stack)
    for bad, reason in (
        ("/sku-1.jpg", "relative path"),
        ("shoes/../sku-1.jpg", "'..'"),
        ("a" * 1020, "at most"),
        ("sku\n1", "control"),
    ):
        status, answer = _review(
            stack, job_id, {"decision": "approve", "index": 0, "publish_key": bad}
        )
        assert status == 422, bad
        assert reason in _fields(answer)["publish_key"], answer
    assert stack.job(job_id)["review"]["history"] == []

    status, answer = _review(
        stack, job_id, {"decision": "approve", "index": 0, "publish_key": "shoes/sku-1.png"}
    )
    assert status == 200
    assert _published(stack, "published/shoes/sku-1.png") is not None
    # Another key's job may not overwrite it (nor learn whose it is).
    other = _succeeded(stack, api_key_id=OTHER_KEY)
    status, answer = _review(
        stack,
        other,
        {"decision": "approve", "index": 0, "publish_key": "shoes/sku-1.png"},
        api_key_id=OTHER_KEY,
    )
    assert status == 422
    assert "another API key's generation" in _fields(answer)["publish_key"]
    assert job_id not in json.dumps(answer)
    # Moving the approval to another key removes the first object.
    _review(stack, job_id, {"decision": "approve", "index": 0, "publish_key": "sku-2.png"})
    assert _published(stack, "published/shoes/sku-1.png") is None
    assert _published(stack, "published/sku-2.png") is not None


def test_a_rejection_removes_what_was_published_and_is_announced(reviewed: Stack) -> None:
    stack = reviewed
    job_id = _succeeded(stack)
    _review(stack, job_id, {"decision": "approve", "index": 0})
    assert _published(stack, f"published/{job_id}.png") is not None
    stack.published_events()

    status, answer = _review(stack, job_id, {"decision": "reject", "reason": "blurry"})

    assert status == 200
    assert (answer["review"]["status"], answer["review"]["reason"]) == ("rejected", "blurry")
    assert answer["review"]["published_key"] is None
    assert _published(stack, f"published/{job_id}.png") is None
    (event,) = stack.published_events()
    assert event["detail-type"] == "Generation Rejected"
    assert event["detail"]["review"]["reason"] == "blurry"
    # Its key is free again: another key's job may take it.
    other = _succeeded(stack, api_key_id=OTHER_KEY)
    status, _ = _review(
        stack,
        other,
        {"decision": "approve", "index": 0, "publish_key": f"{job_id}.png"},
        api_key_id=OTHER_KEY,
    )
    assert status == 200


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"decision": "approve", "index": 2}, "index", "0, 1"),
        ({"decision": "approve", "index": -1}, "index", "greater than or equal to 0"),
        ({"decision": "approve", "index": "1"}, "index", "integer"),
        ({"decision": "approve"}, "index", "required"),
        ({"decision": "publish", "index": 0}, "decision", "approve"),
        ({"index": 0}, "decision", "decision"),
        ({"decision": "reject", "color": "red"}, "color", "not permitted"),
        ({"decision": "approve", "index": 0, "reviewer": ""}, "reviewer", "at least 1"),
        ({"decision": "regenerate", "count": 11}, "count", "less than or equal to 10"),
    ],
)
def test_a_bad_decision_is_422_naming_the_field(
    reviewed: Stack, body: dict[str, Any], field: str, reason: str
) -> None:
    job_id = _succeeded(reviewed)
    status, answer = _review(reviewed, job_id, body)
    assert status == 422, answer
    assert reason in _fields(answer)[field], answer
    assert reviewed.job(job_id)["review"]["history"] == []


def test_only_a_succeeded_job_of_a_readable_key_is_reviewed(
    reviewed: Stack, picsart: respx.MockRouter
) -> None:
    stack = reviewed
    job_id = _succeeded(stack)
    status, answer = _review(stack, job_id, {"decision": "reject"}, api_key_id=OTHER_KEY)
    assert (status, answer["error"]["code"]) == (404, "not_found")
    status, answer = _review(stack, "0" * 32, {"decision": "reject"})
    assert (status, answer["error"]["code"]) == (404, "not_found")

    picsart.post(f"{PICSART}/painting/replace-background").respond(401, json={"detail": "no"})
    failed = _succeeded_or_failed(stack)
    status, answer = _review(stack, failed, {"decision": "approve", "index": 0})
    assert (status, answer["error"]["code"]) == (409, "not_reviewable")
    assert "failed" in answer["error"]["message"]
    assert answer["error"]["details"] == [{"status": "failed"}]


def _succeeded_or_failed(stack: Stack) -> str:
    status, created, _ = stack.call("POST", "/v1/generations", BODY)
    assert status == 202
    stack.wait_for_execution(created["id"])
    return str(created["id"])


def test_of_two_reviewers_deciding_at_once_one_wins_and_nothing_is_published_twice(
    reviewed: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = reviewed
    job_id = _succeeded(stack)
    read = JobStore.get_for

    def read_then_the_other_reviewer_rejects(self: JobStore, job: str, reader: str) -> Any:
        seen = read(self, job, reader)
        if seen.review is not None and not seen.review.history:
            rejected = review.reject(
                seen, seen.review, at=seen.updated_at, reason=None, reviewer="bo"
            )
            self.record_review(job, 0, rejected)
        return seen

    monkeypatch.setattr(JobStore, "get_for", read_then_the_other_reviewer_rejects)
    status, answer = _review(stack, job_id, {"decision": "approve", "index": 0, "reviewer": "ana"})

    assert status == 409
    assert answer["error"]["code"] == "decision_changed"
    assert answer["error"]["details"][0]["review"]["status"] == "rejected"
    assert stack.job(job_id)["review"]["status"] == "rejected"
    assert _published(stack, f"published/{job_id}.png") is None
    assert stack.store().published_by(f"published/{job_id}.png") is None  # no claim left


def test_a_regeneration_is_a_linked_job_that_supersedes_its_parent(reviewed: Stack) -> None:
    stack = reviewed
    parent = _succeeded(stack)

    status, child, headers = stack.call(
        "POST",
        f"/v1/generations/{parent}/review",
        {"decision": "regenerate", "prompt": "walnut desk", "reviewer": "ana", "review_version": 0},
    )

    assert status == 202, child
    assert headers["Location"] == f"/v1/generations/{child['id']}"
    assert (child["parent_id"], child["trigger"]) == (parent, "review")
    assert (child["request"]["prompt"], child["request"]["count"]) == ("walnut desk", 2)
    assert child["request"]["image_url"] == BODY["image_url"]
    held = stack.job(parent)
    assert held["children"] == [child["id"]]
    assert held["review"]["history"][-1]["job_id"] == child["id"]
    stack.wait_for_execution(child["id"])
    _wait_for(lambda: stack.job(parent)["review"]["status"] == "superseded")
    assert stack.job(child["id"])["review"]["status"] == "pending"
    _, queue = stack.list_generations(review="pending")
    assert [item["id"] for item in queue["items"]] == [child["id"]]
    status, answer = _review(stack, parent, {"decision": "approve", "index": 0})
    assert (status, answer["error"]["code"]) == (409, "not_reviewable")
    assert child["id"] in answer["error"]["message"]


def test_a_regeneration_is_planned_like_any_job(reviewed: Stack) -> None:
    job_id = _succeeded(reviewed)
    # Picsart cannot honour a seed: refused as at creation, nothing recorded or started.
    status, answer = _review(
        reviewed, job_id, {"decision": "regenerate", "seed": 7, "review_version": 0}
    )
    assert status == 422
    assert answer["error"]["code"] == "unsupported_option"
    assert "seed" in _fields(answer)
    assert reviewed.job(job_id)["children"] == []
    assert len(reviewed.executions()) == 1


def test_a_decision_is_delivered_by_webhook(
    make_stack: Callable[..., Stack], picsart: respx.MockRouter
) -> None:
    picsart.route(host="127.0.0.1").pass_through()
    picsart.post(f"{PICSART}/painting/replace-background").mock(return_value=submitted())
    picsart.get(f"{PICSART}/painting/inf-1").mock(return_value=done(1))
    with receiver() as hook:
        stack = make_stack(ReviewMode="required", AllowPrivateWebhookHosts="true")
        job_id = _succeeded(stack, {**BODY, "count": 1, "webhook_url": hook.url})
        _review(stack, job_id, {"decision": "approve", "index": 0})
        deadline = time.monotonic() + 20
        while len(hook.requests) < 2:
            assert time.monotonic() < deadline, "no delivery"
            stack.deliver_webhooks()
            time.sleep(0.2)

    outcome, approved = (json.loads(r.body) for r in hook.requests)
    assert outcome["type"] == "generation.succeeded"
    assert approved["type"] == "generation.approved"
    assert approved["data"]["review"]["published_key"] == f"published/{job_id}.png"
    request = hook.requests[1]
    Webhook(WEBHOOK_SECRET).verify(request.body, request.headers)
    assert request.headers["webhook-id"] != hook.requests[0].headers["webhook-id"]


def test_a_decision_made_on_a_review_that_has_changed_since_is_refused(reviewed: Stack) -> None:
    job_id = _succeeded(reviewed)
    assert _review(reviewed, job_id, {"decision": "reject", "review_version": 0})[0] == 200
    # A second reviewer who read the same pending review, one decision ago.
    for body in (
        {"decision": "approve", "index": 0, "review_version": 0},
        {"decision": "regenerate", "review_version": 0},
    ):
        status, answer = _review(reviewed, job_id, body)
        assert (status, answer["error"]["code"]) == (409, "decision_changed"), body
        assert answer["error"]["details"][0]["review"]["status"] == "rejected"
    # Rejecting it too is the decision already taken: a repeat, not a change.
    status, answer = _review(reviewed, job_id, {"decision": "reject", "review_version": 0})
    assert (status, answer["review"]["status"]) == (200, "rejected")
    assert len(reviewed.job(job_id)["review"]["history"]) == 1
    assert reviewed.job(job_id)["children"] == []
    # Read again, the decision is taken.
    status, answer = _review(
        reviewed, job_id, {"decision": "approve", "index": 0, "review_version": 1}
    )
    assert (status, answer["review"]["status"]) == (200, "approved")


def test_a_publish_key_asked_at_creation_is_where_the_approval_publishes(reviewed: Stack) -> None:
    status, answer, _ = reviewed.call(
        "POST", "/v1/generations", {**BODY, "publish_key": "/sku-9.jpg"}
    )
    assert status == 422
    assert "relative path" in _fields(answer)["publish_key"]

    job_id = _succeeded(reviewed, {**BODY, "publish_key": "mugs/sku-9.png"})
    view = json.loads(reviewed.get_generation(job_id)["body"])
    assert view["request"]["publish_key"] == "mugs/sku-9.png"
    status, answer = _review(reviewed, job_id, {"decision": "approve", "index": 0})
    assert answer["review"]["published_key"] == "published/mugs/sku-9.png"
    assert _published(reviewed, "published/mugs/sku-9.png") is not None
    # Its regeneration keeps it.
    status, child, _ = reviewed.call(
        "POST", f"/v1/generations/{job_id}/review", {"decision": "regenerate", "review_version": 1}
    )
    assert child["request"]["publish_key"] == "mugs/sku-9.png"


def test_the_same_owner_s_new_photo_of_a_sku_takes_its_key_over(reviewed: Stack) -> None:
    first = _succeeded(reviewed, {**BODY, "publish_key": "sku-7.png"})
    _review(reviewed, first, {"decision": "approve", "index": 0})
    second = _succeeded(reviewed, {**BODY, "publish_key": "sku-7.png"})  # photographed again

    status, _ = _review(reviewed, second, {"decision": "approve", "index": 1})

    assert status == 200
    assert _published(reviewed, "published/sku-7.png")["Metadata"]["job-id"] == second
    # Rejecting the first takes down nothing of the second's.
    status, answer = _review(reviewed, first, {"decision": "reject"})
    assert (status, answer["review"]["status"]) == (200, "rejected")
    assert _published(reviewed, "published/sku-7.png")["Metadata"]["job-id"] == second
    # The first approved again (a repeat of its own approval, but its key was taken over
    # since): a new decision, and the image is its own again.
    status, answer = _review(reviewed, first, {"decision": "approve", "index": 0})
    assert (status, len(answer["review"]["history"])) == (200, 3)
    assert _published(reviewed, "published/sku-7.png")["Metadata"]["job-id"] == first


def test_a_rejection_sent_again_records_nothing_and_finishes_what_was_left(
    reviewed: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backdrop import storage

    job_id = _succeeded(reviewed)
    _review(reviewed, job_id, {"decision": "approve", "index": 0})
    key = f"published/{job_id}.png"

    def crash(bucket: str, key: str) -> None:
        raise RuntimeError("the function died here")

    monkeypatch.setattr(storage, "unpublish", crash)
    status, _ = _review(reviewed, job_id, {"decision": "reject", "review_version": 1})
    assert status == 500
    assert reviewed.job(job_id)["review"]["status"] == "rejected"  # recorded...
    assert _published(reviewed, key) is not None  # ...but not carried out
    monkeypatch.undo()
    reviewed.published_events()

    # The reviewer sends it again (with the version they saw): done, and announced.
    status, answer = _review(reviewed, job_id, {"decision": "reject", "review_version": 1})

    assert status == 200
    assert len(answer["review"]["history"]) == 2
    assert _published(reviewed, key) is None
    assert reviewed.store().published_by(key) is None
    assert [e["detail-type"] for e in reviewed.published_events()] == ["Generation Rejected"]


def test_a_superseded_job_may_still_be_rejected_taking_down_its_image(reviewed: Stack) -> None:
    parent = _succeeded(reviewed)
    _review(reviewed, parent, {"decision": "approve", "index": 0})
    status, child, _ = reviewed.call(
        "POST",
        f"/v1/generations/{parent}/review",
        {"decision": "regenerate", "review_version": 1},
    )
    assert status == 202
    reviewed.wait_for_execution(child["id"])
    _wait_for(lambda: reviewed.job(parent)["review"]["status"] == "superseded")
    # The regeneration publishes where its parent did (an API job's: the first job's id).
    status, answer = _review(reviewed, child["id"], {"decision": "approve", "index": 1})
    assert answer["review"]["published_key"] == f"published/{parent}.png"

    status, answer = _review(reviewed, parent, {"decision": "reject", "reason": "all of it"})

    assert (status, answer["review"]["status"]) == (200, "rejected")
    # The image at the key is the child's now: the parent's rejection leaves it.
    assert _published(reviewed, f"published/{parent}.png")["Metadata"]["job-id"] == child["id"]


def test_a_regeneration_needs_a_version_or_an_idempotency_key(reviewed: Stack) -> None:
    job_id = _succeeded(reviewed)
    status, answer = _review(reviewed, job_id, {"decision": "regenerate", "prompt": "slate"})
    assert status == 422
    assert "Idempotency-Key" in _fields(answer)["review_version"]
    assert reviewed.job(job_id)["children"] == []

    headers = {"Idempotency-Key": "regen-1"}
    first = reviewed.call(
        "POST", f"/v1/generations/{job_id}/review", {"decision": "regenerate"}, headers=headers
    )
    again = reviewed.call(
        "POST", f"/v1/generations/{job_id}/review", {"decision": "regenerate"}, headers=headers
    )
    assert first[0] == again[0] == 202
    assert first[1]["id"] == again[1]["id"]  # one job, paid once
    assert reviewed.job(job_id)["children"] == [first[1]["id"]]


def test_a_regeneration_sent_again_while_it_runs_answers_the_same_job(
    reviewed: Stack, picsart: respx.MockRouter
) -> None:
    parent = _succeeded(reviewed)
    # The regeneration stays with the provider: it has not ended when the request comes again.
    picsart.post(f"{PICSART}/painting/replace-background").mock(return_value=submitted("inf-2"))
    picsart.get(f"{PICSART}/painting/inf-2").respond(202, json={"status": "processing"})
    body = {"decision": "regenerate", "prompt": "on slate", "review_version": 0}
    status, first, _ = reviewed.call("POST", f"/v1/generations/{parent}/review", body)
    assert status == 202

    # Its answer was lost; the reviewer sends it again, with the version they had seen.
    status, again, _ = reviewed.call("POST", f"/v1/generations/{parent}/review", body)

    assert (status, again["id"]) == (202, first["id"])  # one job, paid once
    assert reviewed.job(parent)["children"] == [first["id"]]
    # Another regeneration while that one runs would pay again: refused.
    other = {"decision": "regenerate", "prompt": "on oak", "review_version": 1}
    status, answer = _review(reviewed, parent, other)
    assert (status, answer["error"]["code"]) == (409, "not_reviewable")
    assert first["id"] in answer["error"]["message"]
    assert reviewed.job(parent)["children"] == [first["id"]]
