"""An account out of credits, through the real state machine on moto: a 402 pauses the
provider's new work instead of failing it (the job waits, unsent and unpaid), and the
scheduled balance check resumes the provider once its balance is back, while a balance it
cannot read changes nothing."""

from __future__ import annotations

import json
import time

import httpx
import respx

from tests.conftest import load_event
from tests.integration.conftest import PICSART, Stack, done, submitted
from tests.integration.test_rate_governor import BODY, POLL, SUBMIT, _governor

BALANCE = f"{PICSART}/balance"


def _out_of_credits() -> httpx.Response:
    return httpx.Response(
        402,
        json={"code": 402, "detail": "Not enough credits for this request."},
        headers={"X-Picsart-Credit-Available": "0"},
    )


def _paused_since(stack: Stack) -> float:
    try:
        return float(str(_governor(stack, "picsart").get("credits_out_since", 0)))
    except KeyError:  # no bucket yet: nothing has called the provider
        return 0.0


def _check(stack: Stack) -> list[dict[str, object]]:
    payload, error = stack.invoke("BalanceCheckFunction", load_event("balance-check-scheduled"))
    assert error is None, payload
    return payload["checked"]  # type: ignore[no-any-return]


def test_a_402_pauses_new_work_and_the_balance_check_resumes_it_when_credits_are_back(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    submit = picsart.post(SUBMIT).mock(side_effect=[_out_of_credits(), submitted()])
    picsart.get(POLL).mock(return_value=done(1))
    balance = picsart.get(BALANCE).mock(
        side_effect=[
            httpx.Response(200, json={"credits": 0}),
            httpx.Response(200, json={"credits": "plenty"}),  # not a number
            httpx.Response(200, json={"credits": 40}),
        ]
    )
    assert _check(stack) == []  # nothing paused, no threshold: no provider is called
    assert balance.call_count == 0

    job_id = json.loads(stack.create_generation({**BODY, "count": 1})["body"])["id"]
    deadline = time.monotonic() + 30
    while not _paused_since(stack) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _paused_since(stack) > 0

    # The job waits: queued, its execution running, sent once and refused (not paid).
    assert stack.job(job_id)["status"] == "queued"
    assert [e["status"] for e in stack.executions()] == ["RUNNING"]
    assert submit.call_count == 1

    # Still empty: the pause stays. Unreadable: logged, the pause stays, nothing crashes.
    paused = {"provider": "picsart", "paused": True, "resumed": False}
    assert _check(stack) == [{**paused, "balance": 0}]
    assert _check(stack) == [{**paused, "balance": None}]
    assert _paused_since(stack) > 0
    # Credits are back: resumed, and new work goes at once.
    assert _check(stack) == [{**paused, "balance": 40, "resumed": True}]
    assert _paused_since(stack) == 0

    second = json.loads(stack.create_generation({**BODY, "count": 1})["body"])["id"]
    assert stack.wait_for_execution(second)["status"] == "SUCCEEDED"
    assert submit.call_count == 2
    # The first still waits for its next look (about BalanceCheckMinutes): never failed.
    assert stack.job(job_id)["status"] == "queued"
