"""POST /v1/generations/{id}/cancel through the API function, on the real workflow: the job
becomes `canceled` for good, its execution stops, and it is announced like any ending."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import respx

from backdrop.domain import JobError
from backdrop.jobs import JobConflict
from tests.integration.conftest import PICSART, Stack, submitted

BODY = {"image_url": "https://images.example.com/mug.png", "prompt": "marble"}


def _wait_for(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _running(stack: Stack, picsart: respx.MockRouter) -> str:
    """A job the provider accepted and never finishes."""
    picsart.post(f"{PICSART}/painting/replace-background").mock(return_value=submitted())
    picsart.get(f"{PICSART}/painting/inf-1").respond(200, json={"status": "processing"})
    job_id = str(json.loads(stack.create_generation(BODY)["body"])["id"])
    _wait_for(lambda: stack.job(job_id)["provider_job_id"] == "inf-1")
    return job_id


def test_a_running_job_is_canceled_its_execution_stopped_and_it_is_announced(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    job_id = _running(stack, picsart)
    stack.published_events()  # drain

    status, body = stack.cancel_generation(job_id)

    assert status == 200
    assert body["status"] == "canceled"
    assert body["error"]["code"] == "canceled"
    # The provider had it: the caller is told it may still be charged for.
    assert "may still charge" in body["error"]["message"]
    assert "inf-1" in body["error"]["message"]
    # Stopped (ABORTED); a task moto was running at that moment may instead end it through
    # RecordFailure (FAILED), which leaves the job canceled and announces it again.
    execution = stack.wait_for_execution(job_id)
    assert execution["status"] in ("ABORTED", "FAILED")
    assert stack.job(job_id)["status"] == "canceled"
    events = stack.published_events()
    assert events
    assert {e["detail-type"] for e in events} == {"Generation Canceled"}
    assert {e["detail"]["status"] for e in events} == {"canceled"}
    # Listed and filtered like any status.
    _, page = stack.list_generations(status="canceled")
    assert [item["id"] for item in page["items"]] == [job_id]


def test_canceling_a_finished_job_is_409_and_changes_nothing(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    picsart.post(f"{PICSART}/painting/replace-background").respond(401, json={"detail": "no"})
    job_id = str(json.loads(stack.create_generation(BODY)["body"])["id"])
    stack.wait_for_execution(job_id)

    status, body = stack.cancel_generation(job_id)

    assert status == 409
    assert body["error"]["code"] == "already_finished"
    assert "(failed)" in body["error"]["message"]
    assert stack.job(job_id)["status"] == "failed"


def test_a_second_cancel_answers_the_canceled_job_and_announces_it_again(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    # A cancel whose answer (or announcement) was lost can be sent again safely.
    job_id = _running(stack, picsart)
    assert stack.cancel_generation(job_id)[0] == 200
    stack.wait_for_execution(job_id)
    stack.published_events()  # drain

    status, body = stack.cancel_generation(job_id)

    assert status == 200
    assert body["status"] == "canceled"
    assert [e["detail-type"] for e in stack.published_events()] == ["Generation Canceled"]


def test_an_unknown_id_or_another_keys_job_is_404(stack: Stack, picsart: respx.MockRouter) -> None:
    job_id = _running(stack, picsart)

    for target, key in ((job_id, "someoneelse"), ("0" * 32, None), ("not-an-id", None)):
        status, body = stack.cancel_generation(target, api_key_id=key)
        assert status == 404, target
        assert body["error"]["code"] == "not_found"
    assert stack.job(job_id)["status"] == "running"


def test_no_later_write_of_the_workflow_finishes_a_canceled_job(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    # A task already under way when its execution stopped may still try to write.
    job_id = _running(stack, picsart)
    store = stack.store()
    store.mark_canceled(job_id, JobError(code="canceled", message="canceled by its caller"))

    for write in (
        lambda: store.mark_running(job_id, "inf-9"),
        lambda: store.mark_succeeded(job_id, []),
    ):
        try:
            write()
        except JobConflict:
            pass
        else:
            raise AssertionError("a canceled job was changed")
    # A failure recorded after the cancel leaves it canceled (RecordFailure ends quietly).
    assert store.mark_failed(job_id, JobError(code="x", message="y")).status.value == "canceled"
    assert stack.job(job_id)["status"] == "canceled"
