"""Batches through the API function and the real batch ASL on moto's Distributed Map: each
item a job through the real generation workflow (Picsart faked by respx)."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from typing import Any

import boto3
import httpx
import pytest
import respx

from backdrop import executions
from backdrop.batches import manifest
from backdrop.batches.items import attempt_id
from backdrop.domain import Job, JobError
from backdrop.jobs import source_job_id
from backdrop_local.cloud import REGION
from tests.conftest import image_bytes
from tests.integration.conftest import PICSART, Stack, done, submitted

PHOTO = image_bytes("PNG")
ALL_DONE = {"queued": 0, "running": 0}


def _picsart(picsart: respx.MockRouter) -> respx.Route:
    picsart.get(f"{PICSART}/painting/inf-1").mock(return_value=done(1, "jpg"))
    return picsart.post(f"{PICSART}/painting/replace-background").mock(return_value=submitted())


def _s3() -> Any:
    return boto3.client("s3", region_name=REGION)


def _put(stack: Stack, key: str, body: bytes = PHOTO) -> str:
    """An object in the input bucket; its version."""
    answer = _s3().put_object(Bucket=stack.cloud.input_bucket, Key=key, Body=body)
    return str(answer["VersionId"])


def _start(stack: Stack, body: dict[str, Any], **kwargs: Any) -> tuple[int, dict[str, Any]]:
    status, answer, _ = stack.call("POST", "/v1/batches", body, **kwargs)
    return status, answer


def _run(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    status, batch = _start(stack, body)
    assert status == 202, batch
    return _wait(stack, batch["id"])


def _wait(stack: Stack, batch_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, batch, _ = stack.call("GET", f"/v1/batches/{batch_id}")
        assert status == 200, batch
        if batch["status"] != "running":
            return batch
        time.sleep(0.1)
    raise AssertionError(f"batch {batch_id} still running: {batch}")


def _report(stack: Stack, batch: dict[str, Any]) -> list[dict[str, str]]:
    key = f"batches/{batch['id']}/report.csv"
    assert key in batch["report_url"]
    body = _s3().get_object(Bucket=stack.cloud.results_bucket, Key=key)["Body"].read()
    return list(csv.DictReader(io.StringIO(body.decode())))


def _counts(**counts: int) -> dict[str, int]:
    return {"queued": 0, "running": 0, "succeeded": 0, "failed": 0, "skipped": 0} | counts


def _upload_manifest(stack: Stack, text: str, extension: str = "csv") -> str:
    key = f"uploads/manifest-{time.monotonic_ns()}.{extension}"
    _s3().put_object(Bucket=stack.cloud.input_bucket, Key=key, Body=text.encode())
    return key


def test_a_prefix_becomes_one_job_per_image_beside_its_source_with_a_report_and_an_event(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    submit = _picsart(picsart)
    versions = {name: _put(stack, f"catalog/shoes/{name}") for name in ("a.png", "b.png")}
    _put(stack, "catalog/shoes/notes.txt", b"not an image at all")
    _put(stack, "catalog/shoes/empty-folder/", b"")  # a folder marker: not an item at all
    _put(stack, "catalog/other/c.png")  # outside the prefix

    batch = _run(stack, {"prefix": "catalog/shoes/", "prompt": "marble", "count": 1,
                         "metadata": {"season": "spring"}})  # fmt: skip

    assert batch["status"] == "completed_with_failures"
    assert batch["counts"] == _counts(total=3, succeeded=2, failed=1)
    assert batch["finished_at"] is not None
    assert batch["eta_seconds"] is None
    assert submit.call_count == 2  # the non-image never reached the provider
    rows = {row["key"]: row for row in _report(stack, batch)}
    assert set(rows) == {"catalog/shoes/a.png", "catalog/shoes/b.png", "catalog/shoes/notes.txt"}
    for name, version in versions.items():
        row = rows[f"catalog/shoes/{name}"]
        # The inbox's id for the same bucket, key and version: no second payment, ever.
        assert row["job_id"] == source_job_id(
            stack.cloud.input_bucket, f"catalog/shoes/{name}", version
        )
        assert (row["status"], row["job_status"]) == ("succeeded", "succeeded")
        assert row["result_keys"] == f"outbox/catalog/shoes/{name}/0.jpg"
        job = stack.job(row["job_id"])
        assert (job["trigger"], job["batch_id"], job["owner"]) == ("batch", batch["id"], "stack")
        assert job["metadata"] == {"season": "spring"}
        assert job["options"]["prompt"] == "marble"
        assert stack.manifest(f"outbox/catalog/shoes/{name}/")["status"] == "succeeded"
    refused = rows["catalog/shoes/notes.txt"]
    assert (refused["status"], refused["error_code"]) == ("failed", "invalid_image")
    events = stack.published_events()
    (completed,) = [e for e in events if e["detail-type"] == "Batch Completed"]
    assert completed["detail"]["batch_id"] == batch["id"]
    assert completed["detail"]["counts"] == batch["counts"]
    assert completed["detail"]["report"]["key"] == f"batches/{batch['id']}/report.csv"
    assert completed["detail"]["metadata"] == {"season": "spring"}
    generation = [e for e in events if e["detail-type"].startswith("Generation")]
    assert len(generation) == 3
    assert {e["detail"]["batch_id"] for e in generation} == {batch["id"]}


def test_a_rerun_skips_what_succeeded_and_tries_a_failure_again_as_a_new_attempt(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    picsart.get(f"{PICSART}/painting/inf-1").mock(return_value=done(1, "jpg"))
    broken = {b"b.png"}  # the provider refuses this image, until it does not
    submit = picsart.post(f"{PICSART}/painting/replace-background").mock(
        side_effect=lambda request: (
            httpx.Response(400, json={"detail": "broken"})
            if any(name in request.content for name in broken)
            else submitted()
        )
    )
    _put(stack, "catalog/mugs/a.png")
    version = _put(stack, "catalog/mugs/b.png")
    first = _run(stack, {"prefix": "catalog/mugs/", "count": 1})
    assert first["counts"] == _counts(total=2, succeeded=1, failed=1)
    failed = next(r for r in _report(stack, first) if r["status"] == "failed")
    assert failed["error_code"] == "provider_rejected"
    identity = (stack.cloud.input_bucket, "catalog/mugs/b.png", version)
    assert failed["job_id"] == attempt_id(identity, 0)

    broken.clear()
    calls = submit.call_count
    second = _run(stack, {"prefix": "catalog/mugs/", "count": 1})

    assert second["counts"] == _counts(total=2, succeeded=1, skipped=1)
    assert submit.call_count == calls + 1  # only the failure was paid again
    rows = {row["key"]: row for row in _report(stack, second)}
    assert rows["catalog/mugs/a.png"]["status"] == "skipped"
    assert rows["catalog/mugs/a.png"]["job_status"] == "succeeded"
    assert rows["catalog/mugs/b.png"]["job_id"] == attempt_id(identity, 1)
    # A third run pays nothing at all.
    third = _run(stack, {"prefix": "catalog/mugs/", "count": 1})
    assert third["counts"] == _counts(total=2, skipped=2)
    assert submit.call_count == calls + 1


def test_an_image_the_inbox_already_did_is_skipped(stack: Stack, picsart: respx.MockRouter) -> None:
    submit = _picsart(picsart)
    version = _put(stack, "inbox/lamp.png")
    while stack.feed("InboxQueue", "InboxFunction"):  # the inbox starts its job
        pass
    job_id = source_job_id(stack.cloud.input_bucket, "inbox/lamp.png", version)
    stack.wait_for_execution(job_id)
    calls = submit.call_count
    assert calls == 1

    batch = _run(stack, {"prefix": "inbox/", "count": 1})

    assert batch["counts"] == _counts(total=1, skipped=1)
    (row,) = _report(stack, batch)
    assert (row["job_id"], row["status"]) == (job_id, "skipped")
    assert submit.call_count == calls


def test_a_manifest_gives_each_row_its_own_options_and_names_lines_in_the_report(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    submit = _picsart(picsart)
    _put(stack, "catalog/m/a.png")
    _put(stack, "catalog/m/b.png")
    text = (
        "key,image_url,prompt,count,sku,publish_key\n"
        "catalog/m/a.png,,a beach,1,SKU-1,skus/SKU-1.jpg\n"
        ",https://images.example.com/c.png,,1,SKU-2,\n"
        "catalog/m/b.png,,,,,\n"
    )
    batch = _run(stack, {"manifest_key": _upload_manifest(stack, text), "prompt": "marble"})

    assert batch["counts"] == _counts(total=3, succeeded=3)
    assert batch["source"]["manifest_key"].endswith(".csv")
    rows = _report(stack, batch)
    assert [(r["line"], r["key"], r["image_url"]) for r in rows] == [
        ("2", "catalog/m/a.png", ""),
        ("3", "", "https://images.example.com/c.png"),
        ("4", "catalog/m/b.png", ""),
    ]
    jobs = [stack.job(row["job_id"]) for row in rows]
    assert [job["options"]["prompt"] for job in jobs] == ["a beach", "marble", "marble"]
    assert [job["options"]["count"] for job in jobs] == [1, 1, 2]  # the stack's default: 2
    assert [job["metadata"].get("sku") for job in jobs] == ["SKU-1", "SKU-2", None]
    assert [job["publish_key"] for job in jobs] == ["skus/SKU-1.jpg", None, None]
    assert jobs[1]["source"]["url"] == "https://images.example.com/c.png"
    assert submit.call_count == 3


def test_a_json_lines_manifest(stack: Stack, picsart: respx.MockRouter) -> None:
    _picsart(picsart)
    _put(stack, "catalog/j/a.png")
    lines = [{"key": "catalog/j/a.png", "count": 1}, {"image_url": "https://x.example.com/b.png"}]
    text = "\n".join(json.dumps(line) for line in lines) + "\n\n"
    batch = _run(stack, {"manifest_key": _upload_manifest(stack, text, "jsonl"), "count": 1})
    assert batch["counts"] == _counts(total=2, succeeded=2)


def test_cancel_starts_no_more_items_and_lets_started_jobs_finish(
    make_stack: Any, picsart: respx.MockRouter
) -> None:
    stack = make_stack(BatchMaxConcurrency="1")
    release = threading.Event()
    picsart.post(f"{PICSART}/painting/replace-background").mock(return_value=submitted())
    picsart.get(f"{PICSART}/painting/inf-1").mock(
        side_effect=lambda request: done(1, "jpg") if release.is_set() else submitted()
    )
    for name in ("a", "b", "c"):
        _put(stack, f"catalog/c/{name}.png")
    status, batch = _start(stack, {"prefix": "catalog/c/", "count": 1})
    deadline = time.monotonic() + 30
    while stack.call("GET", f"/v1/batches/{batch['id']}")[1]["counts"]["running"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)

    status, canceling, _ = stack.call("POST", f"/v1/batches/{batch['id']}/cancel")
    assert status == 200, canceling
    assert (canceling["status"], canceling["cancel_requested"]) == ("running", True)
    release.set()
    ended = _wait(stack, batch["id"])

    assert ended["status"] == "canceled"
    # The job already with the provider finished and was stored; the others never started.
    assert ended["counts"] == _counts(total=3, succeeded=1, queued=2)
    statuses = sorted(row["status"] for row in _report(stack, ended))
    assert statuses == ["not_started", "not_started", "succeeded"]
    status, answer, _ = stack.call("POST", f"/v1/batches/{batch['id']}/cancel")
    assert status == 409
    assert answer["error"]["code"] == "already_finished"

    # A retry resumes it: the two kept back, nothing else (the same key answers it again).
    key = {"Idempotency-Key": "resume-1"}
    status, resumed, _ = stack.call("POST", f"/v1/batches/{batch['id']}/retry", headers=key)
    assert status == 202, resumed
    again = stack.call("POST", f"/v1/batches/{batch['id']}/retry", headers=key)[1]
    assert again["id"] == resumed["id"]
    resumed = _wait(stack, resumed["id"])
    assert resumed["status"] == "succeeded"
    assert resumed["counts"] == _counts(total=2, succeeded=2)


def test_retry_starts_a_new_batch_over_only_the_failed_items(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    submit = picsart.post(f"{PICSART}/painting/replace-background").mock(
        return_value=httpx.Response(400, json={"detail": "not today"})
    )
    picsart.get(f"{PICSART}/painting/inf-1").mock(return_value=done(1, "jpg"))
    _put(stack, "catalog/r/a.png")
    _put(stack, "catalog/r/b.png")
    text = "key,prompt\ncatalog/r/a.png,a forest\ncatalog/r/b.png,\n"
    first = _run(stack, {"manifest_key": _upload_manifest(stack, text), "count": 1})
    assert first["counts"] == _counts(total=2, failed=2)

    submit.mock(return_value=submitted())
    status, retried, headers = stack.call("POST", f"/v1/batches/{first['id']}/retry")

    assert status == 202, retried
    assert headers["Location"] == f"/v1/batches/{retried['id']}"
    assert retried["source"] == {"prefix": None, "manifest_key": None, "retry_of": first["id"]}
    ended = _wait(stack, retried["id"])
    assert ended["counts"] == _counts(total=2, succeeded=2)
    rows = _report(stack, ended)
    assert [r["line"] for r in rows] == ["2", "3"]  # the manifest's own lines
    assert stack.job(rows[0]["job_id"])["options"]["prompt"] == "a forest"  # the row's option
    # Nothing left to retry now.
    status, answer, _ = stack.call("POST", f"/v1/batches/{ended['id']}/retry")
    assert (status, answer["error"]["code"]) == (409, "nothing_to_retry")


def test_batches_are_listed_newest_first_and_a_batchs_jobs_by_batch_id(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    _picsart(picsart)
    _put(stack, "catalog/l/a.png")
    _put(stack, "catalog/l2/a.png")
    older = _run(stack, {"prefix": "catalog/l/", "count": 1})
    newer = _run(stack, {"prefix": "catalog/l2/", "count": 1})

    status, page, _ = stack.call("GET", "/v1/batches", query={"limit": "1"})
    assert status == 200
    assert [b["id"] for b in page["items"]] == [newer["id"]]
    status, rest, _ = stack.call("GET", "/v1/batches", query={"cursor": page["next_cursor"]})
    assert [b["id"] for b in rest["items"]] == [older["id"]]
    assert rest["next_cursor"] is None
    # Another API key sees none of them.
    status, theirs, _ = stack.call("GET", "/v1/batches", api_key_id="another-key")
    assert theirs["items"] == []
    status, _, _ = stack.call("GET", f"/v1/batches/{older['id']}", api_key_id="another-key")
    assert status == 404

    status, jobs = stack.list_generations(batch_id=older["id"])
    assert status == 200
    assert [j["request"]["image_key"] for j in jobs["items"]] == ["catalog/l/a.png"]
    status, jobs = stack.list_generations(batch_id=older["id"], status="failed")
    assert jobs["items"] == []
    status, answer = stack.list_generations(batch_id="0" * 32)
    assert (status, answer["error"]["code"]) == (404, "not_found")


def test_the_same_idempotency_key_answers_the_same_batch(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    _picsart(picsart)
    _put(stack, "catalog/i/a.png")
    headers = {"Idempotency-Key": "nightly-2026-12-01"}
    status, first = _start(stack, {"prefix": "catalog/i/", "count": 1}, headers=headers)
    status_again, again = _start(stack, {"prefix": "catalog/i/", "count": 1}, headers=headers)
    assert (status, status_again) == (202, 202)
    assert again["id"] == first["id"]
    status, other = _start(stack, {"prefix": "catalog/i/", "count": 2}, headers=headers)
    assert (status, other["error"]["code"]) == (422, "idempotency_key_reused")
    _wait(stack, first["id"])


BAD_REQUESTS: list[tuple[dict[str, Any], str, str]] = [
    ({"prefix": "uploads/"}, "prefix", "must be under inbox/ or catalog/"),
    ({"prefix": "outbox/x/"}, "prefix", "must be under inbox/ or catalog/"),
    ({"prefix": "catalog/../uploads/"}, "prefix", "must not hold '..'"),
    ({"prefix": "catalog/nothing-here/"}, "prefix", "no objects under catalog/nothing-here/"),
    ({"prefix": "catalog/texts/"}, "prefix", "no images under catalog/texts/"),
    ({}, "body", "give exactly one of prefix or manifest_key"),
    ({"prefix": "catalog/x/", "manifest_key": "uploads/m.csv"}, "body", "exactly one"),
    ({"manifest_key": "uploads/missing.csv"}, "manifest_key", "nothing has been uploaded"),
    ({"manifest_key": "catalog/m.csv"}, "manifest_key", "use the image_key answered"),
    ({"manifest_key": "uploads/photo.png"}, "manifest_key", "CSV (.csv) or JSON Lines"),
    ({"prefix": "catalog/texts/", "count": 0}, "count", "greater than or equal to 1"),
    ({"prefix": "catalog/texts/", "provider": "dalle"}, "provider", "'dalle'"),
    ({"prefix": "catalog/texts/", "seed": 1}, "seed", "picsart"),
]


def test_bad_batch_requests_are_refused_and_start_nothing(stack: Stack) -> None:
    _put(stack, "catalog/texts/readme.txt", b"words")
    for body, field, reason in BAD_REQUESTS:  # one stack for all: each case is one request
        status, answer = _start(stack, body)
        assert status == 422, (body, answer)
        (detail,) = answer["error"]["details"]
        assert detail["field"] == field, (body, detail)
        assert reason in detail["reason"], (body, detail)
    assert stack.call("GET", "/v1/batches")[1]["items"] == []


BAD_MANIFESTS: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "key,image_url\ncatalog/a.png,https://x.example.com/a.png\n,\n",
        [("line 2: row", "give exactly one of key or image_url")],
    ),
    ("key,count\ncatalog/a.png,eleven\n", [("line 2: count", "valid integer")]),
    ("key,count\ncatalog/a.png,11\n", [("line 2: count", "10")]),
    ("key\nuploads/a.png\n", [("line 2: row", "key must be under inbox/ or catalog/")]),
    ("key,provider\ncatalog/a.png,dalle\n", [("line 2: provider", "'dalle'")]),
    ("image_url\nhttp://10.0.0.1/a.png\n", [("line 2: image_url", "https")]),
    ("key,colour\ncatalog/a.png,red\n", [("manifest_key", "not 'colour'")]),
    ("title\nshoe\n", [("manifest_key", "must name a key or image_url column")]),
    ("key\n", [("manifest_key", "no rows")]),
    ("key\ncatalog/a.png,extra\n", [("manifest_key", "line 2: more cells")]),
]


def test_a_manifest_with_bad_rows_is_refused_naming_the_lines(stack: Stack) -> None:
    for text, problems in BAD_MANIFESTS:  # one stack for all: each case is one request
        status, answer = _start(stack, {"manifest_key": _upload_manifest(stack, text)})
        assert status == 422, answer
        assert answer["error"]["code"] == "invalid_manifest"
        found = [(d["field"], d["reason"]) for d in answer["error"]["details"]]
        assert len(found) == len(problems), (text, found)
        for (field, reason), (want_field, want_reason) in zip(found, problems, strict=True):
            assert field == want_field, (text, found)
            assert want_reason in reason, (text, found)
    assert stack.call("GET", "/v1/batches")[1]["items"] == []


def test_a_manifest_over_the_row_limit_or_not_text_is_refused(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manifest, "MAX_ROWS", 3)
    rows = "".join(f"catalog/{i}.png\n" for i in range(4))
    status, answer = _start(stack, {"manifest_key": _upload_manifest(stack, "key\n" + rows)})
    assert (status, answer["error"]["code"]) == (422, "invalid_manifest")
    assert "more than 3 rows" in answer["error"]["details"][0]["reason"]
    key = _upload_manifest(stack, "")
    _s3().put_object(Bucket=stack.cloud.input_bucket, Key=key, Body=b"\xff\xfe\x00binary")
    status, answer = _start(stack, {"manifest_key": key})
    assert "not UTF-8" in answer["error"]["details"][0]["reason"]
    key = _upload_manifest(stack, '{"key": "catalog/a.png"}\n[1, 2]\n', "jsonl")
    status, answer = _start(stack, {"manifest_key": key})
    assert "line 2: not a JSON object" in answer["error"]["details"][0]["reason"]


def test_unknown_batches_answer_404_and_a_running_batch_cannot_be_retried(
    stack: Stack, picsart: respx.MockRouter
) -> None:
    for path in ("/v1/batches/" + "0" * 32, "/v1/batches/not-an-id"):
        status, answer, _ = stack.call("GET", path)
        assert (status, answer["error"]["code"], answer["error"]["message"]) == (
            404, "not_found", "no batch has this id",
        )  # fmt: skip
    status, _, _ = stack.call("POST", "/v1/batches/" + "0" * 32 + "/cancel")
    assert status == 404
    picsart.post(f"{PICSART}/painting/replace-background").mock(return_value=submitted())
    picsart.get(f"{PICSART}/painting/inf-1").mock(return_value=submitted())  # never done
    _put(stack, "catalog/s/a.png")
    status, batch = _start(stack, {"prefix": "catalog/s/", "count": 1})
    status, answer, _ = stack.call("POST", f"/v1/batches/{batch['id']}/retry")
    assert (status, answer["error"]["code"]) == (409, "still_running")


def test_a_refusal_cut_short_is_refused_again_never_sent_to_the_provider(
    stack: Stack, picsart: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # StartItem dies between recording the refused job (queued) and failing it, as Lambda
    # may end a function anywhere; the Map retries StartItem, which finds that job.
    submit = _picsart(picsart)
    _put(stack, "catalog/cut/a.png")
    _put(stack, "catalog/cut/notes.txt", b"not an image at all")
    fail = executions.fail
    died: list[str] = []

    def dies_once(job_id: str, error: JobError, **kwargs: Any) -> Job:
        if error.code == "invalid_image" and not died:
            died.append(job_id)
            raise TimeoutError("the function ended here")
        return fail(job_id, error, **kwargs)

    monkeypatch.setattr(executions, "fail", dies_once)

    batch = _run(stack, {"prefix": "catalog/cut/", "prompt": "marble", "count": 1})

    assert died, "the refusal was never cut short"
    assert batch["counts"] == _counts(total=2, succeeded=1, failed=1)
    assert submit.call_count == 1  # only the image: the refused file never reached Picsart
    rows = {row["key"]: row for row in _report(stack, batch)}
    refused = rows["catalog/cut/notes.txt"]
    assert (refused["status"], refused["error_code"]) == ("failed", "invalid_image")
    assert refused["job_id"] == died[0]
    assert stack.job(died[0])["status"] == "failed"
