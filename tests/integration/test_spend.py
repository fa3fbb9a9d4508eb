"""Spend through the API function and the real ASL on moto (Picsart faked by respx): what a
job and a batch cost, a batch's quote, its budget, and the daily image allowances."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
import respx

from backdrop_local.cloud import REGION
from tests.integration.conftest import PICSART, Stack, done, submitted
from tests.integration.test_batches import _counts, _put, _report, _run, _start, _wait

BODY = {"image_url": "https://images.example.com/mug.png", "prompt": "marble"}
# The stack's prices in these tests: 2 credits an image, 3 cents a credit.
PRICES = {"PicsartCreditsPerImage": "2", "PicsartUsdPerCredit": "0.03"}


def _picsart(picsart: respx.MockRouter, images: int = 1) -> respx.Route:
    picsart.get(f"{PICSART}/painting/inf-1").mock(return_value=done(images, "jpg"))
    return picsart.post(f"{PICSART}/painting/replace-background").mock(return_value=submitted())


@pytest.fixture
def priced(make_stack: Callable[..., Stack]) -> Stack:
    return make_stack(**PRICES)


def _job(stack: Stack, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    status, answer, _ = stack.call("POST", "/v1/generations", body)
    return status, answer


def test_a_job_that_succeeded_says_what_its_images_cost(
    priced: Stack, picsart: respx.MockRouter
) -> None:
    _picsart(picsart, images=2)
    status, job = _job(priced, {**BODY, "count": 2})
    assert status == 202
    assert job["cost"] is None  # nothing made yet

    assert priced.wait_for_execution(job["id"])["status"] == "SUCCEEDED"
    status, view, _ = priced.call("GET", f"/v1/generations/{job['id']}")
    assert view["cost"] == {"units": 4.0, "unit": "credits", "estimated_usd": 0.12}


def test_a_failed_job_cost_nothing(priced: Stack, picsart: respx.MockRouter) -> None:
    picsart.post(f"{PICSART}/painting/replace-background").respond(
        400, json={"detail": "the URL could not be fetched"}
    )
    _, job = _job(priced, {**BODY, "count": 2})
    priced.wait_for_execution(job["id"])
    view = priced.call("GET", f"/v1/generations/{job['id']}")[1]
    assert (view["status"], view["cost"]) == ("failed", None)


def test_a_batch_budget_stops_new_items_and_its_retry_with_a_higher_one_does_the_rest(
    priced: Stack, picsart: respx.MockRouter
) -> None:
    submit = _picsart(picsart)
    for name in "abcde":
        _put(priced, f"catalog/lamps/{name}.png")

    batch = _run(priced, {"prefix": "catalog/lamps/", "count": 1, "max_images": 3})

    assert submit.call_count == 3  # exactly the budget's images were generated
    assert batch["status"] == "completed_with_failures"
    assert batch["counts"] == _counts(total=5, succeeded=3, queued=2)
    assert batch["budget"] == {
        "max_images": 3,
        "max_cost_usd": None,
        "images_started": 3,
        "estimated_usd_started": 0.18,
    }
    assert batch["cost"] == {"units": 6.0, "unit": "credits", "estimated_usd": 0.18}
    rows = _report(priced, batch)
    stopped = [r for r in rows if r["status"] == "not_started"]
    assert len(stopped) == 2
    assert {r["error_code"] for r in stopped} == {"budget_reached"}
    assert "max_images 3" in stopped[0]["error_message"]

    # The same budget again would stop where it stopped; a higher one does the rest.
    status, retried, _ = priced.call("POST", f"/v1/batches/{batch['id']}/retry", {"max_images": 10})
    assert status == 202, retried
    second = _wait(priced, retried["id"])
    assert second["status"] == "succeeded"
    assert second["counts"] == _counts(total=2, succeeded=2)
    assert submit.call_count == 5  # nothing paid twice
    assert second["budget"]["max_images"] == 10


def test_a_cost_budget_counts_each_job_at_the_stacks_price(
    priced: Stack, picsart: respx.MockRouter
) -> None:
    submit = _picsart(picsart, images=2)
    for name in "abc":
        _put(priced, f"catalog/cups/{name}.png")

    # 12 cents a job (2 images, 2 credits each, 3 cents a credit): two fit in 25 cents.
    batch = _run(priced, {"prefix": "catalog/cups/", "count": 2, "max_cost_usd": 0.25})

    assert submit.call_count == 2
    assert batch["counts"] == _counts(total=3, succeeded=2, queued=1)
    assert batch["budget"]["estimated_usd_started"] == pytest.approx(0.24)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"max_images": 0}, "max_images"),
        ({"max_images": -3}, "max_images"),
        ({"max_images": "10"}, "max_images"),
        ({"max_images": 2.5}, "max_images"),
        ({"max_cost_usd": -1}, "max_cost_usd"),
        ({"max_cost_usd": 0}, "max_cost_usd"),
        ({"max_cost_usd": "lots"}, "max_cost_usd"),
        ({"max_cost_usd": "1.5"}, "max_cost_usd"),
        ({"dry_run": "yes"}, "dry_run"),
        ({"dry_run": 1}, "dry_run"),
    ],
)
def test_a_bad_budget_or_dry_run_is_refused_naming_the_field(
    stack: Stack, extra: dict[str, Any], field: str
) -> None:
    _put(stack, "catalog/bad/a.png")
    status, answer = _start(stack, {"prefix": "catalog/bad/", **extra})
    assert status == 422, answer
    assert [d["field"] for d in answer["error"]["details"]] == [field]


def test_a_bad_retry_budget_is_refused(stack: Stack, picsart: respx.MockRouter) -> None:
    _picsart(picsart)
    _put(stack, "catalog/r/a.png")
    batch = _run(stack, {"prefix": "catalog/r/", "count": 1})
    status, answer, _ = stack.call("POST", f"/v1/batches/{batch['id']}/retry", {"max_images": 0})
    assert status == 422
    assert answer["error"]["details"][0]["field"] == "max_images"


def test_a_dry_run_says_what_the_batch_would_do_and_starts_nothing(
    priced: Stack, picsart: respx.MockRouter
) -> None:
    submit = _picsart(picsart)
    for name in "abcd":
        _put(priced, f"catalog/q/{name}.png")
    _put(priced, "catalog/q/notes.txt", b"not an image")
    _put(priced, "catalog/q/folder/", b"")
    done_before = _run(priced, {"prefix": "catalog/q/", "count": 1, "max_images": 1})
    assert done_before["counts"]["succeeded"] == 1
    calls = submit.call_count
    executions = len(priced.executions())

    status, quote = _start(priced, {"prefix": "catalog/q/", "count": 1, "dry_run": True})

    assert status == 200, quote
    assert submit.call_count == calls
    assert len(priced.executions()) == executions  # started nothing
    assert (quote["dry_run"], quote["items"], quote["ignored"]) == (True, 5, 1)
    assert (quote["skipped"], quote["refused"], quote["jobs"], quote["images"]) == (1, 1, 3, 3)
    (problem,) = quote["problems"]
    assert (problem["key"], problem["code"]) == ("catalog/q/notes.txt", "invalid_image")
    assert quote["estimated_cost_usd"] == pytest.approx(0.18)
    (picsart_quote,) = quote["providers"]
    assert picsart_quote["provider"] == "picsart"
    assert picsart_quote["cost"] == {"units": 6.0, "unit": "credits", "estimated_usd": 0.18}
    assert picsart_quote["estimated_seconds"] > 0
    assert quote["budget"] is None

    budgeted = _start(priced, {"prefix": "catalog/q/", "dry_run": True, "max_images": 2,
                               "count": 1})[1]  # fmt: skip
    assert budgeted["budget"] == {"max_images": 2, "max_cost_usd": None, "within": 2, "past": 1}

    # The real batch then does what the quote said.
    real = _run(priced, {"prefix": "catalog/q/", "count": 1})
    assert real["counts"] == _counts(total=5, succeeded=3, skipped=1, failed=1)
    assert submit.call_count == calls + 3


def test_a_dry_run_is_refused_as_the_batch_would_be(stack: Stack) -> None:
    status, answer = _start(stack, {"prefix": "catalog/none/", "dry_run": True})
    assert status == 422
    assert answer["error"]["details"][0]["field"] == "prefix"


def test_an_api_keys_daily_images_answer_429_past_the_allowance(
    make_stack: Callable[..., Stack], picsart: respx.MockRouter
) -> None:
    stack = make_stack(ImagesPerKeyPerDay="3")
    _picsart(picsart, images=2)

    assert _job(stack, {**BODY, "count": 2})[0] == 202
    status, answer = _job(stack, {**BODY, "count": 2})

    assert status == 429, answer
    error = answer["error"]
    assert error["code"] == "image_quota_exceeded"
    assert (
        "3 images a day (ImagesPerKeyPerDay); 2 are used today and this asks for 2"
        in (error["message"])
    )
    assert "resets at 20" in error["message"]
    assert error["details"][0]["field"] == "count"
    assert len(stack.job_ids()) == 1  # nothing recorded for the refused request
    assert _job(stack, {**BODY, "count": 1})[0] == 202  # what still fits goes
    assert _job(stack, {**BODY, "count": 11})[0] == 422  # never fits: refused as a count


def test_the_stacks_daily_images_fail_inbox_jobs_past_it(
    make_stack: Callable[..., Stack], picsart: respx.MockRouter
) -> None:
    stack = make_stack(StackImagesPerDay="1", DefaultCount="1")
    submit = _picsart(picsart)
    s3 = boto3.client("s3", region_name=REGION)
    for name in ("a", "b"):
        s3.put_object(Bucket=stack.cloud.input_bucket, Key=f"inbox/{name}.png", Body=_png())
    while stack.feed("InboxQueue", "InboxFunction"):
        pass

    jobs = [stack.job(job_id) for job_id in stack.job_ids()]
    statuses = sorted(job["status"] for job in jobs)
    assert (
        statuses == ["failed", "queued"]
        or statuses == ["failed", "running"]
        or (statuses == ["failed", "succeeded"])
    )
    (refused,) = [job for job in jobs if job["status"] == "failed"]
    assert refused["error"]["code"] == "image_quota_exceeded"
    assert "StackImagesPerDay" in refused["error"]["message"]
    for job in jobs:
        if job["status"] != "failed":
            stack.wait_for_execution(job["id"])
    assert submit.call_count == 1


def _png() -> bytes:
    from tests.conftest import image_bytes

    return image_bytes("PNG")


def test_a_request_sent_again_with_its_idempotency_key_is_counted_once(
    make_stack: Callable[..., Stack], picsart: respx.MockRouter
) -> None:
    stack = make_stack(ImagesPerKeyPerDay="2")
    _picsart(picsart, images=2)
    headers = {"Idempotency-Key": "once-only-123"}
    body = {**BODY, "count": 2}

    first = stack.call("POST", "/v1/generations", body, headers=headers)
    again = stack.call("POST", "/v1/generations", body, headers=headers)

    assert first[0] == again[0] == 202
    assert first[1]["id"] == again[1]["id"]
    assert _job(stack, {**BODY, "count": 1})[0] == 429  # the two images were counted once


def test_usage_counts_a_keys_jobs_and_batches_by_day_and_provider(
    priced: Stack, picsart: respx.MockRouter
) -> None:
    _picsart(picsart, images=2)
    _, job = _job(priced, {**BODY, "count": 2})
    priced.wait_for_execution(job["id"])
    _put(priced, "catalog/u/a.png")
    _run(priced, {"prefix": "catalog/u/", "count": 2})
    _, other = _job(priced, {**BODY, "count": 2})
    priced.wait_for_execution(other["id"])
    status, _, _ = priced.call(  # another key's work is not this key's usage
        "POST", "/v1/generations", {**BODY, "count": 1}, api_key_id="someone-else"
    )
    assert status == 202

    status, usage, _ = priced.call("GET", "/v1/usage")

    assert status == 200, usage
    today = usage["to"]
    (row,) = usage["days"]
    assert row == {
        "date": today,
        "provider": "picsart",
        "jobs": 3,
        "succeeded": 3,
        "images": 6,
        "units": 12.0,
        "unit": "credits",
        "estimated_usd": 0.36,
    }
    assert usage["totals"] == {"jobs": 3, "succeeded": 3, "images": 6, "estimated_usd": 0.36}
    assert usage["from"] < today
    empty = priced.call("GET", "/v1/usage", query={"from": "2020-01-01", "to": "2020-01-31"})[1]
    assert (empty["days"], empty["totals"]["jobs"]) == ([], 0)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2026-03-10", "to": "2026-03-01"}, "to"),
        ({"from": "2026-01-01", "to": "2026-06-01"}, "to"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-02-30"}, "to"),
        ({"since": "2026-01-01"}, "since"),
    ],
)
def test_a_bad_usage_range_is_refused_naming_the_field(
    stack: Stack, query: dict[str, str], field: str
) -> None:
    status, answer, _ = stack.call("GET", "/v1/usage", query=query)
    assert status == 422, answer
    assert field in [d["field"] for d in answer["error"]["details"]]


def test_a_batchs_items_count_against_its_keys_daily_images(
    make_stack: Callable[..., Stack], picsart: respx.MockRouter
) -> None:
    stack = make_stack(ImagesPerKeyPerDay="2")
    submit = _picsart(picsart)
    for name in "abc":
        _put(stack, f"catalog/day/{name}.png")

    batch = _run(stack, {"prefix": "catalog/day/", "count": 1})

    assert submit.call_count == 2
    assert batch["counts"] == _counts(total=3, succeeded=2, queued=1)
    (stopped,) = [r for r in _report(stack, batch) if r["status"] == "not_started"]
    assert stopped["error_code"] == "image_quota_exceeded"
    assert _job(stack, {**BODY, "count": 1})[0] == 429  # the key's own requests too
