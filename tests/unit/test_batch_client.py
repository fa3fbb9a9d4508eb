"""`backdrop batch` (start, watch, cancel, retry, list) as a user runs it, against an API
faked with respx through the real client: what it sends, what it prints, how it ends."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from backdrop_client.batch_watch import batch_progress
from backdrop_client.status_line import StatusLine
from backdrop_local.cli import main

API = "https://api.example.test/Prod"
BUCKET = "https://input.s3.example.test/"
REPORT = "https://results.example.test/batches/b/report.csv?X-Amz-Signature=s"
BATCH_ID = "b" * 32
CONNECT = ["--api-url", API, "--api-key", "the-key"]


def _batch(status: str = "running", **counts: Any) -> dict[str, Any]:
    ended = status != "running"
    return {
        "id": BATCH_ID,
        "status": status,
        "source": {"prefix": "catalog/shoes/", "manifest_key": None, "retry_of": None},
        "options": {},
        "metadata": {},
        "counts": {
            "total": 3,
            "queued": 0,
            "running": 0,
            "succeeded": 0,
            "failed": 0,
            "skipped": 0,
            **counts,
        },
        "cancel_requested": False,
        "started_at": "2025-05-01T10:00:00Z",
        "finished_at": "2025-05-01T10:01:05Z" if ended else None,
        "eta_seconds": None,
        "report_url": REPORT if ended else None,
        "error": None,
    }


def _error(status: int, code: str, message: str, **extra: Any) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message, **extra}})


def _run(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, str]:
    code = main(["batch", *arguments, *CONNECT])
    out, err = capsys.readouterr()
    return code, out, err


# Starting one.


@respx.mock
def test_start_over_a_prefix_sends_the_options_and_prints_the_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    route = respx.post(f"{API}/v1/batches").respond(202, json=_batch())

    code, out, err = _run(
        capsys,
        "start",
        "--prefix", "catalog/shoes/",
        "--prompt", "on oak",
        "--count", "2",
        "--format", "png",
        "--seed", "0",
        "--metadata", "run=spring",
        "--metadata", "team=shoes=b",
        "--idempotency-key", "spring-shoes",
    )  # fmt: skip

    assert (code, out, err) == (0, f"{BATCH_ID}\n", "")
    request = route.calls.last.request
    assert request.headers["x-api-key"] == "the-key"
    assert request.headers["Idempotency-Key"] == "spring-shoes"
    assert json.loads(request.content) == {
        "prefix": "catalog/shoes/",
        "prompt": "on oak",
        "count": 2,
        "format": "PNG",
        "seed": 0,
        "metadata": {"run": "spring", "team": "shoes=b"},
    }


@respx.mock
def test_a_start_without_a_key_still_sends_one_so_a_throttled_answer_is_retried(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # retry-after: 0, so the client's pause before trying again is no wait.
    route = respx.post(f"{API}/v1/batches").mock(
        side_effect=[
            httpx.Response(429, headers={"retry-after": "0"}),
            httpx.Response(202, json=_batch()),
        ]
    )

    code, out, _ = _run(capsys, "start", "--prefix", "catalog/shoes/")

    assert (code, out) == (0, f"{BATCH_ID}\n")
    keys = {call.request.headers["Idempotency-Key"] for call in route.calls}
    assert len(keys) == 1
    assert len(keys.pop()) == 32


@respx.mock
@pytest.mark.parametrize(
    ("name", "content_type", "text"),
    [
        ("items.csv", "text/csv", "key,prompt\ncatalog/a.png,on oak\n"),
        ("items.JSONL", "application/x-ndjson", '{"key": "catalog/a.png"}\n'),
    ],
)
def test_start_with_a_manifest_uploads_it_first(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, content_type: str, text: str
) -> None:
    manifest = tmp_path / name
    manifest.write_text(text)
    fields = {"key": "uploads/m.csv", "Content-Type": content_type, "policy": "p"}
    uploads = respx.post(f"{API}/v1/uploads").respond(
        201, json={"image_key": "uploads/m.csv", "upload": {"url": BUCKET, "fields": fields}}
    )
    s3 = respx.post(BUCKET).respond(204)
    batches = respx.post(f"{API}/v1/batches").respond(202, json=_batch())

    code, out, err = _run(capsys, "start", "--manifest", str(manifest), "--count", "1")

    assert (code, out, err) == (0, f"{BATCH_ID}\n", "")
    assert json.loads(uploads.calls.last.request.content) == {
        "content_type": content_type,
        "content_length": len(text),
    }
    form = s3.calls.last.request
    assert "x-api-key" not in form.headers
    assert form.content.index(b'name="policy"') < form.content.index(b'name="file"')
    assert text.encode() in form.content
    assert json.loads(batches.calls.last.request.content) == {
        "manifest_key": "uploads/m.csv",
        "count": 1,
    }


@respx.mock
@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("items.txt", "key\ncatalog/a.png\n", r"items\.txt: a manifest is a \.csv or \.jsonl file"),
        ("items.csv", " \n", r"items\.csv: the file is empty"),
        ("missing.csv", None, r"missing\.csv: no such file"),
    ],
)
def test_a_manifest_that_cannot_be_one_is_refused_before_any_request(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    name: str,
    text: str | None,
    message: str,
) -> None:
    if text is not None:
        (tmp_path / name).write_text(text)

    code, out, err = _run(capsys, "start", "--manifest", str(tmp_path / name))

    assert (code, out) == (2, "")
    assert err.startswith("backdrop batch start: ")
    assert re.search(message, err), err
    assert not respx.calls


# Watching.


@respx.mock
def test_watch_shows_progress_until_the_batch_succeeds_then_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    route = respx.get(f"{API}/v1/batches/{BATCH_ID}").mock(
        side_effect=[
            httpx.Response(200, json=_batch(total=None, queued=None, running=2)),
            httpx.Response(200, json=_batch(running=2, succeeded=1) | {"eta_seconds": 130}),
            httpx.Response(200, json=_batch("succeeded", succeeded=2, skipped=1)),
        ]
    )

    code, out, err = _run(capsys, "watch", BATCH_ID, "--interval", "0")

    assert code == 0
    assert route.call_count == 3
    assert out.splitlines() == [
        f"batch {BATCH_ID}: succeeded in 1 min 5 s",
        "  3 items: 2 succeeded, 0 failed, 1 skipped",
        f"  report: {REPORT}",
    ]
    # Off a terminal: the first line at once, then (the polls being quick) only the last.
    assert err.splitlines() == [
        "[....................] 0/? items: 0 succeeded, 0 failed, 0 skipped, 2 running",
        "[####################] 3/3 items: 2 succeeded, 0 failed, 1 skipped, 0 running",
    ]


@respx.mock
def test_start_with_watch_follows_the_batch_and_downloads_the_report(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    respx.post(f"{API}/v1/batches").respond(202, json=_batch())
    respx.get(f"{API}/v1/batches/{BATCH_ID}").respond(200, json=_batch("succeeded", succeeded=3))
    download = respx.get(REPORT).respond(200, text="item,line,key\n")
    report = tmp_path / "out" / "report.csv"

    code, out, _ = _run(
        capsys, "start", "--prefix", "catalog/shoes/", "--watch", "--report", str(report)
    )

    assert code == 0
    assert out.splitlines() == [
        BATCH_ID,
        f"batch {BATCH_ID}: succeeded in 1 min 5 s",
        "  3 items: 3 succeeded, 0 failed, 0 skipped",
        f"  report: {report}",
    ]
    assert "x-api-key" not in download.calls.last.request.headers
    assert report.read_text() == "item,line,key\n"


@respx.mock
def test_watch_of_a_batch_with_failed_items_exits_1_and_says_how_to_retry(
    capsys: pytest.CaptureFixture[str],
) -> None:
    respx.get(f"{API}/v1/batches/{BATCH_ID}").respond(
        200, json=_batch("completed_with_failures", succeeded=2, failed=1)
    )

    code, out, err = _run(capsys, "watch", BATCH_ID)

    assert code == 1
    assert out.splitlines()[:2] == [
        f"batch {BATCH_ID}: completed_with_failures in 1 min 5 s",
        "  3 items: 2 succeeded, 1 failed, 0 skipped",
    ]
    assert err.splitlines()[-1] == (
        f"backdrop batch watch: 1 of 3 items failed: the report names each; "
        f"`backdrop batch retry {BATCH_ID}` tries them again"
    )


@respx.mock
@pytest.mark.parametrize(
    ("batch", "summary", "problem"),
    [
        (
            _batch("canceled", succeeded=1, queued=2) | {"cancel_requested": True},
            "  3 items: 1 succeeded, 0 failed, 0 skipped, 2 never started",
            f"batch {BATCH_ID} was canceled",
        ),
        (
            _batch("failed", total=None, queued=None)
            | {"error": {"code": "batch_failed", "message": "States.ItemReaderFailed: gone"}},
            "  ? items: 0 succeeded, 0 failed, 0 skipped",
            f"batch {BATCH_ID} failed: batch_failed: States.ItemReaderFailed: gone",
        ),
    ],
)
def test_a_canceled_or_failed_batch_exits_1(
    capsys: pytest.CaptureFixture[str], batch: dict[str, Any], summary: str, problem: str
) -> None:
    respx.get(f"{API}/v1/batches/{BATCH_ID}").respond(200, json=batch)

    code, out, err = _run(capsys, "watch", BATCH_ID)

    assert code == 1
    assert out.splitlines()[1] == summary
    assert err.splitlines()[-1] == f"backdrop batch watch: {problem}"


@respx.mock
def test_a_watch_that_times_out_says_the_batch_goes_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    respx.get(f"{API}/v1/batches/{BATCH_ID}").respond(200, json=_batch(running=3, queued=0))

    code, out, err = _run(capsys, "watch", BATCH_ID, "--timeout", "0")

    assert code == 1
    assert out.splitlines() == [
        f"batch {BATCH_ID}: running",
        "  3 items: 0 succeeded, 0 failed, 0 skipped, 3 running",
    ]
    assert err.splitlines()[-1] == (
        f"backdrop batch watch: batch {BATCH_ID} is still running "
        f"(`backdrop batch watch {BATCH_ID}` to follow it again)"
    )


@respx.mock
def test_ctrl_c_stops_the_watch_not_the_batch(capsys: pytest.CaptureFixture[str]) -> None:
    def interrupt(request: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt

    respx.get(f"{API}/v1/batches/{BATCH_ID}").mock(side_effect=interrupt)

    code, out, err = _run(capsys, "watch", BATCH_ID)

    assert (code, out) == (130, "")
    assert err.splitlines()[-1].startswith(
        f"backdrop batch watch: stopped watching; batch {BATCH_ID} goes on"
    )


# What the API refuses.


@respx.mock
@pytest.mark.parametrize(
    ("arguments", "method", "path", "answer", "message"),
    [
        (
            ["start", "--prefix", "photos/"],
            "POST",
            "/v1/batches",
            _error(
                422,
                "invalid_request",
                "the request is invalid",
                details=[{"field": "prefix", "reason": "must be under inbox/ or catalog/"}],
                request_id="r-1",
            ),
            "backdrop batch start: the API answered 422 invalid_request: the request is "
            "invalid (prefix: must be under inbox/ or catalog/) [request id r-1]",
        ),
        (
            ["watch", BATCH_ID],
            "GET",
            f"/v1/batches/{BATCH_ID}",
            _error(404, "not_found", "no batch has this id"),
            "backdrop batch watch: the API answered 404 not_found: no batch has this id",
        ),
        (
            ["cancel", BATCH_ID],
            "POST",
            f"/v1/batches/{BATCH_ID}/cancel",
            _error(409, "already_finished", "the batch has already finished (succeeded)"),
            "backdrop batch cancel: the API answered 409 already_finished: the batch has "
            "already finished (succeeded)",
        ),
        (
            ["retry", BATCH_ID],
            "POST",
            f"/v1/batches/{BATCH_ID}/retry",
            _error(409, "still_running", "the batch is still running"),
            "backdrop batch retry: the API answered 409 still_running: the batch is still running",
        ),
    ],
)
def test_an_api_error_is_one_line_with_its_code_message_and_details_and_exit_2(
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    method: str,
    path: str,
    answer: httpx.Response,
    message: str,
) -> None:
    route = respx.request(method, f"{API}{path}").mock(return_value=answer)

    code, out, err = _run(capsys, *arguments)

    assert (code, out) == (2, "")
    assert err.splitlines() == [message]
    assert route.call_count == 1


def test_bad_usage_exits_2_before_any_request(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["batch", "start", "--prefix", "catalog/", "--manifest", "m.csv", *CONNECT])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


# Cancel, retry, list.


@respx.mock
def test_cancel_says_the_batch_is_canceling(capsys: pytest.CaptureFixture[str]) -> None:
    respx.post(f"{API}/v1/batches/{BATCH_ID}/cancel").respond(
        200, json=_batch(running=1) | {"cancel_requested": True}
    )

    code, out, _ = _run(capsys, "cancel", BATCH_ID)

    assert code == 0
    assert out == f"{BATCH_ID} canceling: no new item starts; jobs already started finish\n"


@respx.mock
def test_retry_prints_the_new_batch_s_id(capsys: pytest.CaptureFixture[str]) -> None:
    retried = _batch() | {"id": "c" * 32}
    route = respx.post(f"{API}/v1/batches/{BATCH_ID}/retry").respond(202, json=retried)

    code, out, _ = _run(capsys, "retry", BATCH_ID)

    assert (code, out) == (0, f"{'c' * 32}\n")
    assert route.call_count == 1


@respx.mock
def test_list_follows_the_cursor_into_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    first = _batch("succeeded", succeeded=3)
    second = _batch(total=None, queued=None) | {
        "id": "c" * 32,
        "source": {"prefix": None, "manifest_key": None, "retry_of": BATCH_ID},
    }
    pages = {None: ([first], "c1"), "c1": ([second], None)}

    def page(request: httpx.Request) -> httpx.Response:
        items, cursor = pages[request.url.params.get("cursor")]
        return httpx.Response(200, json={"items": items, "next_cursor": cursor})

    respx.get(f"{API}/v1/batches").mock(side_effect=page)

    code, out, _ = _run(capsys, "list")

    assert code == 0
    header, *rows = [re.split(r"\s{2,}", line) for line in out.splitlines()]
    assert header == [
        "id",
        "status",
        "source",
        "items",
        "succeeded",
        "failed",
        "skipped",
        "started",
    ]
    assert rows == [
        [BATCH_ID, "succeeded", "catalog/shoes/", "3", "3", "0", "0", "2025-05-01 10:00:00"],
        ["c" * 32, "running", f"retry of {BATCH_ID}", "?", "0", "0", "0", "2025-05-01 10:00:00"],
    ]


# The progress line.


@pytest.mark.parametrize(
    ("batch", "line"),
    [
        (
            _batch(total=None, queued=None, running=4, succeeded=1),
            "[....................] 1/? items: 1 succeeded, 0 failed, 0 skipped, 4 running",
        ),
        (
            _batch(total=8, queued=2, running=2, succeeded=3, failed=1) | {"eta_seconds": 3725},
            "[##########..........] 4/8 items, about 1 h 2 min left: 3 succeeded, 1 failed, "
            "0 skipped, 2 running",
        ),
        (
            _batch(running=1, succeeded=1) | {"eta_seconds": 9, "cancel_requested": True},
            "[######..............] 1/3 items, canceling: 1 succeeded, 0 failed, 0 skipped, "
            "1 running",
        ),
    ],
)
def test_the_progress_line(batch: dict[str, Any], line: str) -> None:
    assert batch_progress(batch) == line


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_off_a_terminal_a_status_line_is_printed_now_and_then_and_its_end_always() -> None:
    now = [0.0]
    stream = _Stream(tty=False)
    line = StatusLine(stream, every=30.0, clock=lambda: now[0])

    for second, text in [(0, "a"), (10, "b"), (20, "c"), (31, "d"), (40, "e"), (45, "f")]:
        now[0] = second
        line.show(text)
    line.close()

    assert stream.getvalue().splitlines() == ["a", "d", "f"]


def test_on_a_terminal_a_status_line_is_rewritten_and_kept_to_its_width(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("shutil.get_terminal_size", lambda: os.terminal_size((31, 24)))
    stream = _Stream(tty=True)
    line = StatusLine(stream, every=30.0)

    line.show("x" * 40)
    line.show("short")
    line.close()

    assert stream.getvalue() == f"\r{'x' * 30}\rshort{' ' * 25}\n"


# Spend: a quote, budgets, usage.

QUOTE = {
    "dry_run": True,
    "items": 1000,
    "ignored": 2,
    "skipped": 12,
    "refused": 1,
    "problems": [
        {
            "item": 17,
            "key": "catalog/shoes/notes.txt",
            "image_url": None,
            "line": None,
            "code": "invalid_image",
            "reason": "not a .jpg, .jpeg, .png, .webp file by its name",
        }
    ],
    "jobs": 987,
    "images": 1974,
    "estimated_cost_usd": 19.74,
    "estimated_seconds": 420.0,
    "providers": [
        {
            "provider": "picsart",
            "jobs": 987,
            "images": 1974,
            "cost": {"units": 1974.0, "unit": "credits", "estimated_usd": 19.74},
            "queued_ahead_seconds": 120.0,
            "estimated_seconds": 420.0,
            "out_of_credits": False,
        }
    ],
    "budget": {"max_images": 100, "max_cost_usd": None, "within": 50, "past": 937},
}


@respx.mock
def test_a_dry_run_prints_the_quote_and_starts_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    route = respx.post(f"{API}/v1/batches").respond(200, json=QUOTE)

    code, out, err = _run(
        capsys, "start", "--prefix", "catalog/shoes/", "--count", "2", "--max-images", "100",
        "--dry-run",
    )  # fmt: skip

    assert (code, err) == (0, "")
    assert json.loads(route.calls.last.request.content) == {
        "prefix": "catalog/shoes/",
        "count": 2,
        "max_images": 100,
        "dry_run": True,
    }
    assert "Idempotency-Key" not in route.calls.last.request.headers
    assert out.splitlines() == [
        "dry run: nothing was started",
        "  items      1000 (and 2 folder markers or empty objects)",
        "  skipped    12 (already done or under way: not paid again)",
        "  refused    1",
        "    item 17 catalog/shoes/notes.txt: invalid_image: not a .jpg, .jpeg, .png, .webp "
        "file by its name",
        "  would run  987 jobs, 1974 images",
        "  picsart    987 jobs, 1974 images, 1974 credits, $19.74, about 7 min 0 s "
        "(2 min 0 s of other work queued ahead)",
        "  estimated  $19.74, about 7 min 0 s",
        "  budget     max_images 100: 50 items start, 937 would end not started",
    ]


@respx.mock
def test_a_retry_sends_the_budget_given(capsys: pytest.CaptureFixture[str]) -> None:
    route = respx.post(f"{API}/v1/batches/{BATCH_ID}/retry").respond(202, json=_batch())

    assert _run(capsys, "retry", BATCH_ID, "--max-cost-usd", "12.5")[0] == 0
    assert json.loads(route.calls.last.request.content) == {"max_cost_usd": 12.5}
    assert _run(capsys, "retry", BATCH_ID)[0] == 0
    assert route.calls.last.request.content == b""  # the batch's own budget


@pytest.mark.parametrize(
    ("argument", "value"),
    [("--max-images", "0"), ("--max-images", "ten"), ("--max-cost-usd", "-1")],
)
def test_a_bad_budget_is_refused_before_any_request(
    capsys: pytest.CaptureFixture[str], argument: str, value: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        _run(capsys, "start", "--prefix", "catalog/", argument, value)
    assert exited.value.code == 2
    assert argument in capsys.readouterr().err


@respx.mock
def test_usage_prints_a_line_a_day_and_provider(capsys: pytest.CaptureFixture[str]) -> None:
    route = respx.get(f"{API}/v1/usage").respond(
        200,
        json={
            "from": "2026-12-01",
            "to": "2026-12-04",
            "totals": {"jobs": 3, "succeeded": 2, "images": 4, "estimated_usd": 0.4},
            "days": [
                {
                    "date": "2026-12-03",
                    "provider": "photoroom",
                    "jobs": 3,
                    "succeeded": 2,
                    "images": 4,
                    "units": 4.0,
                    "unit": "images",
                    "estimated_usd": 0.4,
                }
            ],
        },
    )

    code = main(["usage", "--from", "2026-12-01", "--to", "2026-12-04", *CONNECT])
    out, _ = capsys.readouterr()

    assert code == 0
    assert dict(route.calls.last.request.url.params) == {"from": "2026-12-01", "to": "2026-12-04"}
    lines = out.splitlines()
    assert lines[0] == "2026-12-01 to 2026-12-04"
    assert lines[2].split() == ["2026-12-03", "photoroom", "3", "2", "4", "4", "images", "0.40"]
    assert lines[-1] == "total: 3 jobs, 2 succeeded, 4 images, $0.40 estimated"
