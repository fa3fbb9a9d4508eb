"""The rate governor through the real state machine on moto: the provider's 429s on any
call are waits, never failures, and are never paid twice; new work that cannot get a turn
in time fails clearly without reaching the provider; a submit the gateway held comes back
with its results and needs no poll."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import boto3
import httpx
import respx

from backdrop_local.cloud import REGION
from tests.integration.conftest import CDN, PICSART, Stack, done, processing, submitted

SUBMIT = f"{PICSART}/painting/replace-background"
POLL = f"{PICSART}/painting/inf-1"
BODY = {"image_url": "https://images.example.com/mug.png", "prompt": "marble counter"}


def _throttled() -> httpx.Response:
    return httpx.Response(
        429,
        json={"code": 429, "detail": "Too many requests"},
        headers={"X-Picsart-Ratelimit-Reset-Time": "1", "X-Picsart-Ratelimit-Available": "0"},
    )


def _governor(stack: Stack, provider: str) -> dict[str, object]:
    table = stack.cloud.environment["GOVERNOR_TABLE"]
    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=table, Key={"provider": {"S": provider}}
    )["Item"]
    return {k: next(iter(v.values())) for k, v in item.items()}


def test_429s_on_polls_are_waits_and_the_paid_job_succeeds(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    submit = picsart.post(SUBMIT).mock(return_value=submitted())
    poll = picsart.get(POLL).mock(
        side_effect=[_throttled(), _throttled(), _throttled(), processing(), done(2)]
    )

    job_id = json.loads(stack.create_generation(BODY)["body"])["id"]

    assert stack.wait_for_execution(job_id)["status"] == "SUCCEEDED"
    assert submit.call_count == 1  # paid once
    assert poll.call_count == 5
    job = stack.job(job_id)
    assert job["status"] == "succeeded"
    # Three 429s were waits, not polls: the poll limit counts only real answers.
    assert float(str(_governor(stack, "picsart")["paused_until"])) > 0


def test_three_429s_in_a_row_on_submit_never_fail_the_job(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    submit = picsart.post(SUBMIT).mock(
        side_effect=[_throttled(), _throttled(), _throttled(), submitted()]
    )
    picsart.get(POLL).mock(return_value=done(1))

    job_id = json.loads(stack.create_generation({**BODY, "count": 1})["body"])["id"]

    assert stack.wait_for_execution(job_id)["status"] == "SUCCEEDED"
    assert [c.response.status_code for c in submit.calls] == [429, 429, 429, 202]


def test_a_job_whose_turn_comes_too_late_fails_before_reaching_the_provider(
    make_stack: Callable[..., Stack], picsart: respx.MockRouter
) -> None:
    # One request a minute: new work gets a turn about every minute (less the share kept
    # for polls), and may wait at most one. Two jobs at once: whichever Submit runs second
    # has its turn too late.
    stack = make_stack(PicsartRequestsPerMinute="1", QueueDeadlineSeconds="60")
    submit = picsart.post(SUBMIT).mock(return_value=submitted())
    picsart.get(POLL).mock(return_value=processing())

    ids = [json.loads(stack.create_generation(BODY)["body"])["id"] for _ in range(2)]

    deadline = time.monotonic() + 30
    while sorted(stack.job(i)["status"] for i in ids) != ["failed", "running"]:
        assert time.monotonic() < deadline, [stack.job(i)["status"] for i in ids]
        time.sleep(0.1)
    (late,) = [i for i in ids if stack.job(i)["status"] == "failed"]
    error = stack.job(late)["error"]
    assert error["code"] == "queue_timeout"
    assert "QueueDeadlineSeconds" in error["message"]
    assert stack.wait_for_execution(late)["status"] == "FAILED"
    assert submit.call_count == 1  # only the job with a turn reached the provider


def test_a_submit_the_gateway_held_comes_back_with_results_and_no_poll(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    data = [{"id": f"img-{i}", "url": f"{CDN}/inf-1/{i}.png"} for i in range(2)]
    submit = picsart.post(SUBMIT).respond(
        200, json={"status": "success", "data": data}, headers={"Preference-Applied": "wait=15"}
    )
    poll = picsart.get(POLL).mock(return_value=done(2))

    job_id = json.loads(stack.create_generation({**BODY, "format": "PNG"})["body"])["id"]

    assert stack.wait_for_execution(job_id)["status"] == "SUCCEEDED"
    assert submit.calls.last.request.headers["Prefer"] == "respond-async, wait=15"
    assert poll.call_count == 0
    assert sorted(stack.result_keys()) == [f"results/{job_id}/{i}.png" for i in range(2)]
    assert stack.job(job_id)["provider_job_id"] == "answered-at-submit"


def test_a_gateway_that_ignores_prefer_is_polled_as_before(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    submit = picsart.post(SUBMIT).mock(return_value=submitted())
    poll = picsart.get(POLL).mock(return_value=done(1))

    job_id = json.loads(stack.create_generation({**BODY, "count": 1})["body"])["id"]

    assert stack.wait_for_execution(job_id)["status"] == "SUCCEEDED"
    assert submit.call_count == 1
    assert poll.call_count == 1


def test_a_turn_under_a_second_away_is_slept_in_the_task_not_in_a_wait_state(
    make_stack: Callable[..., Stack], picsart: respx.MockRouter
) -> None:
    # 120 a minute, submits held: new work's turns come about half a second apart.
    stack = make_stack(PicsartRequestsPerMinute="120")
    sent: list[float] = []

    def submit(request: httpx.Request) -> httpx.Response:
        sent.append(time.monotonic())
        return submitted()

    picsart.post(SUBMIT).mock(side_effect=submit)
    picsart.get(POLL).mock(return_value=done(1))

    started = time.monotonic()
    ids = [
        json.loads(stack.create_generation({**BODY, "count": 1})["body"])["id"] for _ in range(2)
    ]

    for job_id in ids:
        assert stack.wait_for_execution(job_id)["status"] == "SUCCEEDED"
    # The second job waited for its turn (the limit holds) without a WaitForTurn state
    # (which takes whole seconds, and two transitions). Its turn came at least half a
    # second after the first one's, which came after the start: a first send held up by a
    # busy machine only makes the second's later still.
    assert len(sent) == 2
    assert sent[1] - started >= 0.4
    for job_id in ids:
        assert "WaitForTurn" not in stack.states_entered(job_id)
