"""Tenancy, through the API function on moto: an API key reads and lists only its own jobs
and the stack's (the inbox's); another key's job answers exactly as an unknown id. Listing
merges two owners' index Queries, so pages stay full and cursors page through both."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import respx

from backdrop import jobs
from backdrop.domain import GenerationOptions, ImageSource, JobError, JobStatus, NewJob
from backdrop.jobs import new_job_id, source_job_id
from tests.conftest import load_event
from tests.integration.conftest import PICSART, Stack, processing, submitted

A, B = "keyaaaaaaa", "keybbbbbbb"  # API key ids, as API Gateway passes them
STACK = "stack"
Maker = Callable[..., str]


def _event(name: str, key_id: str | None) -> dict[str, Any]:
    event = load_event(name)
    event["requestContext"]["identity"]["apiKeyId"] = key_id
    return event


def _get(stack: Stack, job_id: str, key_id: str | None) -> tuple[int, dict[str, str], Any]:
    event = _event("api-get-generation", key_id)
    event["path"] = f"/v1/generations/{job_id}"
    event["pathParameters"] = {"id": job_id}
    payload, error = stack.invoke("ApiFunction", event)
    assert error is None, payload
    headers = {k: v[0] for k, v in (payload.get("multiValueHeaders") or {}).items()}
    return payload["statusCode"], headers | (payload.get("headers") or {}), payload["body"]


def _list(stack: Stack, key_id: str | None, **query: str) -> tuple[int, dict[str, Any]]:
    event = _event("api-list-generations", key_id)
    event["queryStringParameters"] = query or None
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
    payload, error = stack.invoke("ApiFunction", event)
    assert error is None, payload
    return payload["statusCode"], json.loads(payload["body"])


def _pages(stack: Stack, key_id: str, **query: str) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        status, body = _list(stack, key_id, **query, **({"cursor": cursor} if cursor else {}))
        assert status == 200, body
        pages.append([item["id"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 100, "the cursor never ends"


def _create(stack: Stack, key_id: str | None, **headers: str) -> tuple[int, Any]:
    event = _event("api-create-generation", key_id)
    event["headers"] = {**event["headers"], **headers}
    event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
    event["body"] = json.dumps({"image_url": "https://images.example.com/mug.png"})
    payload, error = stack.invoke("ApiFunction", event)
    assert error is None, payload
    return payload["statusCode"], json.loads(payload["body"])


@pytest.fixture
def make_job(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Maker:
    """Record a job of an owner ("key:<id>" or "stack") as the API and the inbox do, at one
    second per job, and move it to a status."""
    ticks = itertools.count(1)
    start = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    monkeypatch.setattr(jobs, "_now", lambda: start + timedelta(seconds=next(ticks)))
    store = stack.store()
    images = itertools.count()

    def make(owner: str, status: JobStatus = JobStatus.QUEUED) -> str:
        if owner == STACK:
            key = f"inbox/product-{next(images)}.png"
            job_id = source_job_id(stack.cloud.input_bucket, key, "v1")
            source = ImageSource(bucket=stack.cloud.input_bucket, key=key, version_id="v1")
            trigger = "inbox"
        else:
            job_id, trigger = new_job_id(), "api"
            source = ImageSource(url="https://images.example.com/mug.png")
        store.create(
            NewJob(
                id=job_id,
                trigger=trigger,  # type: ignore[arg-type]
                provider="picsart",
                source=source,
                options=GenerationOptions(prompt="on a beach", count=1),
                owner=owner,
            )
        )
        if status is not JobStatus.QUEUED:
            store.mark_running(job_id, f"inf-{job_id}")
        if status is JobStatus.SUCCEEDED:
            store.mark_succeeded(job_id, [])
        if status is JobStatus.FAILED:
            store.mark_failed(job_id, JobError(code="provider_failed", message="it broke"))
        return job_id

    return make


@pytest.fixture
def provider(picsart: respx.MockRouter) -> respx.MockRouter:
    picsart.post(f"{PICSART}/painting/replace-background").mock(return_value=submitted())
    picsart.get(f"{PICSART}/painting/inf-1").mock(return_value=processing())
    return picsart


def test_a_job_made_through_the_api_is_its_keys_and_no_others(
    stack: Stack, provider: respx.MockRouter
) -> None:
    status, made = _create(stack, A)
    assert status == 202
    job_id = made["id"]

    assert stack.job(job_id)["owner"] == f"key:{A}"
    status, _, body = _get(stack, job_id, A)
    assert status == 200
    assert _list(stack, A)[1]["items"][0]["id"] == job_id
    # Neither the answer to its maker nor the list shows whose it is.
    for text in (body, json.dumps(made), json.dumps(_list(stack, A)[1])):
        assert A not in text
        assert "owner" not in text
    # Another key: not found, not listed, in no status either.
    assert _get(stack, job_id, B)[0] == 404
    assert _list(stack, B)[1] == {"items": [], "next_cursor": None}
    assert _list(stack, B, status="queued")[1]["items"] == []


def test_another_keys_job_answers_exactly_as_an_unknown_id(stack: Stack, make_job: Maker) -> None:
    theirs = make_job(f"key:{A}", JobStatus.SUCCEEDED)

    answers = [_get(stack, job_id, B) for job_id in (theirs, new_job_id())]

    (status, headers, body), unknown = answers
    assert status == 404
    assert json.loads(body)["error"]["code"] == "not_found"
    # Same status, headers and body (the events carry the same request id): nothing tells
    # "someone else's" from "no such job".
    assert (status, headers, body) == unknown


def test_a_key_sees_its_own_jobs_and_the_stacks_newest_first(stack: Stack, make_job: Maker) -> None:
    owners = [f"key:{A}", STACK, f"key:{B}", f"key:{A}", f"key:{B}", STACK, f"key:{A}"]
    made = [(make_job(owner), owner) for owner in owners]

    for key in (A, B):
        visible = [job_id for job_id, owner in reversed(made) if owner in (f"key:{key}", STACK)]
        hidden = [job_id for job_id, owner in made if owner not in (f"key:{key}", STACK)]

        status, body = _list(stack, key)
        assert status == 200
        assert [item["id"] for item in body["items"]] == visible
        assert body["next_cursor"] is None
        assert all(_get(stack, job_id, key)[0] == 200 for job_id in visible)
        assert all(_get(stack, job_id, key)[0] == 404 for job_id in hidden)
    # The stack's jobs keep their trigger; a key's jobs are API jobs.
    _, body = _list(stack, A)
    triggers = {item["id"]: item["trigger"] for item in body["items"]}
    assert {triggers[job_id] for job_id, owner in made if owner == STACK} == {"inbox"}


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 5, 20])
def test_pages_across_both_owners_are_full_until_the_last(
    stack: Stack, make_job: Maker, limit: int
) -> None:
    # Runs of each owner, so a page often ends inside one owner's run, or at the border.
    layout = "AAASSABBBSSSSABAAAASBASS"
    owner_of = {"A": f"key:{A}", "B": f"key:{B}", "S": STACK}
    made = [(make_job(owner_of[c]), c) for c in layout]

    pages = _pages(stack, A, limit=str(limit))

    expected = [job_id for job_id, c in reversed(made) if c in "AS"]
    assert [job_id for page in pages for job_id in page] == expected
    assert [len(page) for page in pages[:-1]] == [limit] * (len(pages) - 1)
    assert 0 < len(pages[-1]) <= limit


def test_a_status_filter_merges_both_owners_in_full_pages(stack: Stack, make_job: Maker) -> None:
    kinds = {"q": JobStatus.QUEUED, "r": JobStatus.RUNNING}
    kinds |= {"s": JobStatus.SUCCEEDED, "f": JobStatus.FAILED}
    # (owner, status) pairs: failed jobs scattered among owners and among other statuses.
    layout = ["As", "Sf", "Bf", "Af", "Ss", "Aq", "Bf", "Sf", "Sr", "As"]
    layout += ["Af", "Bs", "Sf", "Af", "Ss", "Bf", "Af", "Sq", "Af", "Ar"]
    owner_of = {"A": f"key:{A}", "B": f"key:{B}", "S": STACK}
    made = [(make_job(owner_of[p[0]], kinds[p[1]]), p[0], kinds[p[1]]) for p in layout]

    for wanted in JobStatus:
        for limit in (1, 2, 3):
            pages = _pages(stack, A, status=wanted.value, limit=str(limit))

            expected = [j for j, o, s in reversed(made) if o in "AS" and s is wanted]
            assert [job_id for page in pages for job_id in page] == expected, (wanted, limit)
            assert [len(page) for page in pages[:-1]] == [limit] * (len(pages) - 1)
    # And another key's view of the same status: only its own and the stack's.
    failed_for_b = [j for j, o, s in reversed(made) if o in "BS" and s is JobStatus.FAILED]
    assert [item["id"] for item in _list(stack, B, status="failed")[1]["items"]] == failed_for_b


def test_a_cursor_names_a_place_not_whose_jobs(stack: Stack, make_job: Maker) -> None:
    a_jobs = [make_job(f"key:{A}") for _ in range(3)]
    b_jobs = [make_job(f"key:{B}") for _ in range(3)]
    _, first = _list(stack, B, limit="1")
    assert [item["id"] for item in first["items"]] == [b_jobs[-1]]

    # Key A with key B's cursor: A's jobs older than that place, never B's.
    status, body = _list(stack, A, cursor=first["next_cursor"])

    assert status == 200
    assert [item["id"] for item in body["items"]] == a_jobs[::-1]


def test_the_same_idempotency_key_from_two_keys_makes_two_jobs_each_its_own(
    stack: Stack, provider: respx.MockRouter
) -> None:
    ids = {}
    for key in (A, B):
        status, made = _create(stack, key, **{"Idempotency-Key": "order-1"})
        assert status == 202
        ids[key] = made["id"]
    # A retry answers each key its own first job.
    assert _create(stack, A, **{"Idempotency-Key": "order-1"})[1]["id"] == ids[A]

    assert ids[A] != ids[B]
    assert _get(stack, ids[A], A)[0] == _get(stack, ids[B], B)[0] == 200
    assert _get(stack, ids[A], B)[0] == _get(stack, ids[B], A)[0] == 404


def test_a_request_without_an_api_key_id_is_refused(stack: Stack, make_job: Maker) -> None:
    # API Gateway names the key on every route that needs one: without, nothing is shown.
    job_id = make_job(STACK)

    assert _get(stack, job_id, None)[0] == 403
    assert _list(stack, None)[0] == 403
    status, body = _create(stack, None)
    assert status == 403
    assert body["error"]["code"] == "forbidden"


def test_requests_at_once_each_answer_to_their_own_key(stack: Stack, make_job: Maker) -> None:
    # The local stack serves the API from threads; Powertools keeps the event on a class,
    # so requests at once must not read each other's (a key's job shown to another key).
    job_id = make_job(f"key:{A}")
    keys = [A, B] * 12
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda key: _get(stack, job_id, key)[0], keys))
    assert statuses == [200 if key == A else 404 for key in keys]
