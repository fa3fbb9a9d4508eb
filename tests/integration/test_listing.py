"""GET /v1/generations and GET /v1/generations/{id} through the API function, on moto:
the public view of a job, newest-first listing on the table's indexes, cursors, and
result URLs that download what the workflow stored."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
import respx

from backdrop import jobs
from backdrop.domain import (
    GenerationOptions,
    GuidanceSource,
    ImageSource,
    JobError,
    JobStatus,
    NewJob,
    ResultImage,
)
from backdrop.jobs import new_job_id, source_job_id
from backdrop_local.cloud import REGION
from backdrop_local.pollers import sqs_event
from tests.conftest import load_event
from tests.integration.conftest import PICSART, PNG, Stack, done, submitted

Maker = Callable[..., str]
# The key of the sample events the Stack helpers send: the one whose jobs these tests list
# (tests/integration/test_tenancy.py has the jobs of other keys).
OWNER = "key:k1l2m3n4o5"


@pytest.fixture
def make_job(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Maker:
    """Record a job the way the API and the inbox do (JobStore), and move it to a status.
    A clock that ticks one second per reading makes creation order unambiguous."""
    ticks = itertools.count(1)
    start = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    monkeypatch.setattr(jobs, "_now", lambda: start + timedelta(seconds=next(ticks)))
    store = stack.store()
    inbox_images = itertools.count()

    def make(
        trigger: str = "api",
        status: JobStatus = JobStatus.QUEUED,
        options: GenerationOptions | None = None,
        results: list[ResultImage] | None = None,
    ) -> str:
        if trigger == "api":
            job_id = new_job_id()
            source = ImageSource(url="https://images.example.com/mug.png")
        else:
            key = f"inbox/product-{next(inbox_images)}.png"
            job_id = source_job_id(stack.cloud.input_bucket, key, "v1")
            source = ImageSource(bucket=stack.cloud.input_bucket, key=key, version_id="v1")
        store.create(
            NewJob(
                id=job_id,
                trigger=trigger,  # type: ignore[arg-type]
                provider="picsart",
                source=source,
                options=options or GenerationOptions(prompt="on a beach", count=1),
                owner=OWNER if trigger == "api" else "stack",
            )
        )
        if status is not JobStatus.QUEUED:
            store.mark_running(job_id, f"inf-{job_id}")
        if status is JobStatus.SUCCEEDED:
            store.mark_succeeded(job_id, results or [])
        if status is JobStatus.FAILED:
            store.mark_failed(job_id, JobError(code="provider_failed", message="it broke"))
        return job_id

    return make


def _get(stack: Stack, job_id: str) -> dict[str, Any]:
    payload = stack.get_generation(job_id)
    assert payload["statusCode"] == 200, payload
    return json.loads(payload["body"])  # type: ignore[no-any-return]


def _all_pages(stack: Stack, **query: str) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        status, body = stack.list_generations(**query, **({"cursor": cursor} if cursor else {}))
        assert status == 200, body
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "the cursor never ends"


def _unsigned(view: Any) -> Any:
    """A view with every presigned URL cut at its query: a signature carries the second
    it was made in, so two reads of one job a second apart differ only there."""
    if isinstance(view, dict):
        return {
            key: value.split("?", 1)[0]
            if key.endswith("url") and isinstance(value, str)
            else _unsigned(value)
            for key, value in view.items()
        }
    if isinstance(view, list):
        return [_unsigned(value) for value in view]
    return view


def _ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


def test_lists_jobs_newest_first_across_triggers(stack: Stack, make_job: Maker) -> None:
    statuses = itertools.cycle(JobStatus)
    created = [make_job(trigger, next(statuses)) for trigger in ["api", "inbox"] * 4]

    status, body = stack.list_generations()

    assert status == 200
    assert _ids(body["items"]) == created[::-1]
    assert body["next_cursor"] is None
    assert {item["trigger"] for item in body["items"]} == {"api", "inbox"}
    # The same view as the job's own route
    for item in body["items"]:
        assert _unsigned(item) == _unsigned(_get(stack, item["id"]))


@pytest.mark.parametrize(("jobs_made", "limit"), [(7, 3), (6, 3), (5, 1), (0, 20)])
def test_cursor_pages_through_every_job_once(
    stack: Stack, make_job: Maker, jobs_made: int, limit: int
) -> None:
    created = [make_job() for _ in range(jobs_made)]

    pages = _all_pages(stack, limit=str(limit))

    # Full pages until the last, which is never empty unless there is nothing at all
    assert [len(page) for page in pages[:-1]] == [limit] * (len(pages) - 1)
    assert 0 < len(pages[-1]) <= limit or jobs_made == 0
    assert _ids([item for page in pages for item in page]) == created[::-1]


def test_limit_defaults_to_twenty(stack: Stack, make_job: Maker) -> None:
    for _ in range(21):
        make_job()

    _, body = stack.list_generations()

    assert len(body["items"]) == 20
    assert body["next_cursor"] is not None


def test_status_filter_gives_full_pages_of_that_status(stack: Stack, make_job: Maker) -> None:
    # Failed jobs are rare and scattered among many others: a filter applied after a
    # limited read would come back with short or empty pages.
    layout = "qqfsssrsfqsssssrfsf"
    kinds = {"q": JobStatus.QUEUED, "r": JobStatus.RUNNING}
    kinds |= {"s": JobStatus.SUCCEEDED, "f": JobStatus.FAILED}
    created = [(make_job("api", kinds[c]), kinds[c]) for c in layout]

    for wanted in JobStatus:
        pages = _all_pages(stack, status=wanted.value, limit="2")

        expected = [job_id for job_id, status in reversed(created) if status is wanted]
        assert _ids([item for page in pages for item in page]) == expected
        assert [len(page) for page in pages[:-1]] == [2] * (len(pages) - 1)
        assert all(item["status"] == wanted.value for page in pages for item in page)


def test_a_job_changing_status_moves_between_filtered_lists(stack: Stack, make_job: Maker) -> None:
    job_id = make_job("inbox", JobStatus.RUNNING)
    assert _ids(stack.list_generations(status="running")[1]["items"]) == [job_id]

    stack.store().mark_failed(job_id, JobError(code="timeout", message="too slow"))

    assert stack.list_generations(status="running")[1]["items"] == []
    assert _ids(stack.list_generations(status="failed")[1]["items"]) == [job_id]


def test_the_sample_event_lists_succeeded_jobs_two_at_a_time(stack: Stack, make_job: Maker) -> None:
    done_ids = [make_job("api", JobStatus.SUCCEEDED) for _ in range(3)]
    make_job("api", JobStatus.FAILED)

    payload, error = stack.invoke("ApiFunction", load_event("api-list-generations"))

    assert error is None
    body = json.loads(payload["body"])
    assert _ids(body["items"]) == done_ids[:0:-1]
    assert body["next_cursor"]


def _tampered(cursor: str) -> str:
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    # Move the position one second later, keeping the shape (and the old checksum)
    edited = raw.replace(":00:0", ":00:1", 1)
    assert edited != raw
    return base64.urlsafe_b64encode(edited.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"status": "done"}, "status"),
        ({"status": "QUEUED"}, "status"),
        ({"cursor": "not a cursor"}, "cursor"),
        ({"cursor": "eyJpZCI6IjEifQ"}, "cursor"),  # well-formed base64 of JSON
        ({"cursor": "x" * 600}, "cursor"),
    ],
)
def test_bad_queries_are_422_naming_the_field(
    stack: Stack, query: dict[str, str], field: str
) -> None:
    status, body = stack.list_generations(**query)

    assert status == 422
    assert body["error"]["code"] == "invalid_request"
    assert [d["field"] for d in body["error"]["details"]] == [field]
    assert all(d["reason"] for d in body["error"]["details"])


def test_edited_or_truncated_cursors_are_refused(stack: Stack, make_job: Maker) -> None:
    for _ in range(3):
        make_job()
    _, first = stack.list_generations(limit="1")
    cursor = first["next_cursor"]
    assert stack.list_generations(limit="1", cursor=cursor)[0] == 200

    for bad in (_tampered(cursor), cursor[:-3], cursor[1:], cursor + "AA"):
        status, body = stack.list_generations(limit="1", cursor=bad)
        assert status == 422, bad
        assert body["error"]["details"][0]["field"] == "cursor"


def test_failed_job_shows_its_error_and_no_internals(stack: Stack, make_job: Maker) -> None:
    job_id = make_job("inbox", JobStatus.FAILED)
    record = stack.job(job_id)

    view = _get(stack, job_id)

    assert view["status"] == "failed"
    assert view["error"] == {"code": "provider_failed", "message": "it broke"}
    assert view["results"] == []
    assert view["request"]["image_key"] == record["source"]["key"]
    assert view["request"]["image_url"] is None
    assert view["metadata"] == record["metadata"]
    # The photo is shown by a presigned URL, which names its bucket and version as any
    # presigned URL does; no field does.
    source_url = view.pop("source_url")
    assert record["source"]["key"] in source_url
    assert record["source"]["version_id"] in source_url
    text = json.dumps(view)
    for internal in (
        "provider_job_id",
        record["provider_job_id"],
        "expires_at",
        str(record["expires_at"]),
        stack.cloud.input_bucket,
        "version_id",
        jobs.LIST_KEY,
    ):
        assert internal not in text


def test_request_summary_shows_the_options_that_were_set(stack: Stack, make_job: Maker) -> None:
    guidance = GuidanceSource(
        image=ImageSource(bucket=stack.cloud.input_bucket, key="styles/marble.png"), scale=0.3
    )
    options = GenerationOptions(
        prompt="marble", count=2, format="WEBP", seed=7, guidance=guidance, output_size="512x512"
    )
    job_id = make_job("api", options=options)

    request = _get(stack, job_id)["request"]

    assert request == {
        "image_url": "https://images.example.com/mug.png",
        "image_key": None,
        "prompt": options.prompt,
        "negative_prompt": None,
        "count": options.count,
        "format": options.format,
        "seed": options.seed,
        "guidance": {"image_key": "styles/marble.png", "scale": 0.3},
        "output_size": options.output_size,
    }


def test_result_urls_download_the_stored_images(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(ResultUrlExpirySeconds="900")
    s3 = boto3.client("s3", region_name=REGION)
    job_id = new_job_id()
    results = []
    for index, (body, content_type) in enumerate([(b"first image", "image/png"), (b"2", "x/y")]):
        key = f"results/{job_id}/{index}.png"
        s3.put_object(Bucket=stack.cloud.results_bucket, Key=key, Body=body)
        results.append(ResultImage(index=index, key=key, content_type=content_type, size=len(body)))
    store = stack.store()
    store.create(
        NewJob(
            id=job_id,
            trigger="api",
            provider="photoroom",
            source=ImageSource(url="https://images.example.com/mug.png"),
            options=GenerationOptions(prompt="p", count=2, format="PNG"),
            owner=OWNER,
        )
    )
    store.mark_running(job_id, None)
    store.mark_succeeded(job_id, results)

    views = [_get(stack, job_id), stack.list_generations()[1]["items"][0]]

    for view in views:
        shown = view["results"]
        assert [r["index"] for r in shown] == [0, 1]
        assert [r["size"] for r in shown] == [r.size for r in results]
        assert [r["content_type"] for r in shown] == ["image/png", "x/y"]
        assert [r["format"] for r in shown] == ["PNG", "PNG"]
        assert all("key" not in r for r in shown)
        for result, stored in zip(shown, [b"first image", b"2"], strict=True):
            assert parse_qs(urlsplit(result["url"]).query)["X-Amz-Expires"] == ["900"]
            answer = requests.get(result["url"], timeout=10)
            assert answer.status_code == 200
            assert answer.content == stored


def _deliver_inbox(stack: Stack, key: str) -> None:
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=stack.cloud.input_bucket, Key=key, Body=PNG
    )
    answer = boto3.client("sqs", region_name=REGION).receive_message(
        QueueUrl=stack.cloud.inbox_queue_url, MaxNumberOfMessages=10
    )
    messages = [m for m in answer.get("Messages", []) if "s3:TestEvent" not in m["Body"]]
    payload, error = stack.invoke("InboxFunction", sqs_event(messages, "arn:inbox", REGION))
    assert error is None, payload
    assert payload == {"batchItemFailures": []}


def test_jobs_from_the_api_and_the_inbox_are_listed_with_their_results(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    picsart.post(f"{PICSART}/painting/replace-background").mock(return_value=submitted())
    picsart.get(f"{PICSART}/painting/inf-1").mock(return_value=done(2))
    created = stack.create_generation({"image_url": "https://images.example.com/a.png"})
    api_job = json.loads(created["body"])["id"]
    stack.wait_for_execution(api_job)
    _deliver_inbox(stack, "inbox/bottle.png")
    (inbox_job,) = [e["name"] for e in stack.executions() if e["name"] != api_job]
    stack.wait_for_execution(inbox_job)

    status, body = stack.list_generations(status="succeeded")

    assert status == 200
    assert _ids(body["items"]) == [inbox_job, api_job]
    assert body["items"][0]["request"]["image_key"] == "inbox/bottle.png"
    for item in body["items"]:
        assert [r["index"] for r in item["results"]] == [0, 1]
        for result in item["results"]:
            assert requests.get(result["url"], timeout=10).content == PNG
