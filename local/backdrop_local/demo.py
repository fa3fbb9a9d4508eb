"""`backdrop demo`: every bundled sample through the HTTPS API and through the inbox,
on a local stack, with the results and an index.html in one folder; then a small batch
over a catalogue folder, followed as `backdrop batch watch` follows one, its report beside.
The stack reviews (ReviewMode=required): at the end the demo says where the review console
is, and in a terminal keeps the stack up for the review until Ctrl-C.

It uses only what a client of the deployed stack has: the API (through the same client as
`backdrop generate`), the input and results buckets, and the published events.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from backdrop_client.batch_watch import batch_problems, batch_summary, watch_batch
from backdrop_client.client import TERMINAL, ApiError, BackdropError, Client, Connection, Photo
from backdrop_client.status_line import StatusLine
from backdrop_local.demo_page import DemoJob, render_page
from backdrop_local.stack import LocalStack, StackOptions, aws_client

TIMEOUT_SECONDS = 180.0
POLL_SECONDS = 0.5
PROMPTS = {
    "mug": "on a marble kitchen counter in soft morning light",
    "sneaker": "on a wet city street at dusk with neon reflections",
    "bottle": "on a mossy rock beside a mountain stream, dappled sunlight",
}
FALLBACK_PROMPT = "on a light oak tabletop in soft daylight"
# The batch: each sample this many times under a catalogue folder (the inbox would start a
# job for each upload by itself), two images per item: variants for a reviewer to choose.
BATCH_PREFIX = "catalog/demo/"
BATCH_COPIES = 2
BATCH_COUNT = 2
BATCH_PROMPT = "on a white seamless studio backdrop with a soft shadow"


@dataclasses.dataclass
class _Tracked:
    """A submitted job while the demo waits for it."""

    view: DemoJob
    source_key: str
    submitted: float
    job: dict[str, Any] | None = None
    done: bool = False


def _bar(done: int, failed: int, total: int) -> str:
    width = 24
    filled = width * done // max(total, 1)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} jobs done, {failed} failed"


def run_demo(options: StackOptions, output: Path) -> int:
    output.mkdir(parents=True, exist_ok=True)
    # Events are how inbox jobs are found; the stack's own echo would garble the progress bar.
    options = dataclasses.replace(
        options, echo=False, parameters={"ReviewMode": "required", **options.parameters}
    )
    if options.events_file is None:
        options.events_file = output / "events.jsonl"
        options.events_file.unlink(missing_ok=True)
    # A caller's file may hold older runs whose inbox keys match ours: read only what's new.
    offset = options.events_file.stat().st_size if options.events_file.exists() else 0
    stack = LocalStack(options)
    try:
        ready = stack.start()
        connection = Connection(ready["api_url"], ready["api_key"], "the demo's local stack")
        with Client(connection) as client:
            began = time.monotonic()
            tracked = _submit(client, ready, output)
            _wait(client, tracked, options.events_file, offset)
            waited = time.monotonic() - began
            jobs = [_collect(client, ready, item, output) for item in tracked]
            page = output / "index.html"
            page.write_text(
                render_page(jobs, emulated=ready["provider"] == "emulator", waited_seconds=waited),
                encoding="utf-8",
            )
            _print_summary(jobs)
            print(f"\n{page.resolve()}")
            batch_succeeded = _batch(client, ready, output)
            _offer_review(ready)
    finally:
        stack.stop()
    return 0 if all(job.succeeded for job in jobs) and batch_succeeded else 1


def _samples() -> list[tuple[str, bytes]]:
    folder = files("backdrop_local.samples")
    return sorted(
        (entry.name.removesuffix(".png"), entry.read_bytes())
        for entry in folder.iterdir()
        if entry.name.endswith(".png")
    )


def _submit(client: Client, ready: dict[str, Any], output: Path) -> list[_Tracked]:
    s3 = aws_client(ready, "s3")
    tracked: list[_Tracked] = []
    for name, data in _samples():
        # Through the API with each provider, and through the inbox (stack's default).
        for trigger, provider in (("api", "picsart"), ("api", "photoroom"), ("inbox", None)):
            folder = output / "-".join(filter(None, (trigger, provider, name)))
            shutil.rmtree(folder, ignore_errors=True)  # no results left from an older run
            folder.mkdir()
            (folder / "input.png").write_bytes(data)
            view = DemoJob(name=name, trigger=trigger, input_path=f"{folder.name}/input.png")
            item = _Tracked(view=view, source_key=f"inbox/demo/{name}.png", submitted=0.0)
            tracked.append(item)
            if provider is None:
                item.submitted = time.monotonic()
                s3.put_object(
                    Bucket=ready["input_bucket"],
                    Key=item.source_key,
                    Body=data,
                    ContentType="image/png",
                )
            else:
                _post(client, item, Photo.from_bytes(f"{name}.png", data), provider)
    return tracked


def _post(client: Client, item: _Tracked, photo: Photo, provider: str) -> None:
    """The photo uploaded with an upload form, then a job for it."""
    prompt = PROMPTS.get(item.view.name, FALLBACK_PROMPT)
    item.view.prompt = prompt
    try:
        item.source_key = client.upload(photo)
        item.submitted = time.monotonic()
        job = client.create_generation(
            {
                "image_key": item.source_key,
                "prompt": prompt,
                "count": 2,
                "format": "JPG",
                "provider": provider,
            }
        )
    except BackdropError as error:
        item.done = True
        item.view.error_code = error.code if isinstance(error, ApiError) else "request"
        item.view.error_message = error.reason if isinstance(error, ApiError) else str(error)
        return
    item.view.job_id = job["id"]


def _new_events(path: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Complete lines appended since `offset` (a line being written waits for next time)."""
    if not path.exists():
        return [], offset
    with path.open("rb") as log:
        log.seek(offset)
        chunk = log.read()
    complete = chunk[: chunk.rfind(b"\n") + 1]
    events = [json.loads(line) for line in complete.splitlines() if line.strip()]
    return events, offset + len(complete)


def _wait(client: Client, tracked: list[_Tracked], events: Path, offset: int) -> None:
    progress = StatusLine()
    deadline = time.monotonic() + TIMEOUT_SECONDS
    inbox = {item.source_key: item for item in tracked if item.view.trigger == "inbox"}
    while True:
        new, offset = _new_events(events, offset)
        for event in new:
            detail = event.get("detail", {})
            item = inbox.get(detail.get("source", {}).get("key", ""))
            if detail.get("trigger") == "inbox" and item is not None and not item.done:
                item.view.job_id = detail["job_id"]
                item.job = _get(client, detail["job_id"]) or _from_event(detail)
                _finish(item)
        for item in tracked:
            if item.view.trigger == "api" and not item.done and item.view.job_id:
                job = _get(client, item.view.job_id)
                if job and job.get("status") in TERMINAL:
                    item.job = job
                    _finish(item)
        done = [item for item in tracked if item.done]
        failed = sum(item.job is None or item.job.get("status") != "succeeded" for item in done)
        progress.show(_bar(len(done), failed, len(tracked)))
        if len(done) == len(tracked) or time.monotonic() > deadline:
            break
        time.sleep(POLL_SECONDS)
    progress.close()
    for item in tracked:
        if not item.done:
            item.view.waited_seconds = time.monotonic() - item.submitted
            item.view.error_code = "demo_timeout"
            item.view.error_message = f"not finished within {TIMEOUT_SECONDS:.0f} s"


def _get(client: Client, job_id: str) -> dict[str, Any] | None:
    try:
        return client.get_generation(job_id)
    except BackdropError:
        return None


def _from_event(detail: dict[str, Any]) -> dict[str, Any]:
    """The job as far as its event tells, if the API cannot show it (no timings)."""
    keys = detail.get("results", {}).get("keys", [])
    return {**detail, "id": detail["job_id"], "results": [{"key": key} for key in keys]}


def _finish(item: _Tracked) -> None:
    item.done = True
    item.view.waited_seconds = time.monotonic() - item.submitted


def _collect(client: Client, ready: dict[str, Any], item: _Tracked, output: Path) -> DemoJob:
    """Fill the view from the job record and download its results beside the input."""
    view, job = item.view, item.job
    if job is None:
        return view
    view.status = job["status"]
    view.provider = job.get("provider")
    view.prompt = job.get("request", {}).get("prompt", view.prompt)
    if job.get("error"):
        view.error_code, view.error_message = job["error"]["code"], job["error"]["message"]
    if "created_at" in job and "updated_at" in job:
        started = datetime.fromisoformat(job["created_at"])
        view.queued_seconds = (datetime.fromisoformat(job["updated_at"]) - started).total_seconds()
    s3 = aws_client(ready, "s3")
    folder = output / Path(view.input_path).parent
    for n, result in enumerate(job.get("results", []), 1):
        # The API gives each result a URL; a job known only from its event has keys.
        where = urlsplit(result["url"]).path if "url" in result else result["key"]
        target = folder / f"{n}{Path(where).suffix}"
        try:
            if "url" in result:
                client.download(result["url"], target)
            else:
                s3.download_file(ready["results_bucket"], result["key"], str(target))
        except (BotoCoreError, ClientError, BackdropError) as error:
            view.status, view.error_code, view.error_message = "failed", "download", str(error)
            continue
        view.result_paths.append(f"{folder.name}/{target.name}")
    return view


def _batch(client: Client, ready: dict[str, Any], output: Path) -> bool:
    """The samples under catalog/demo/ as one batch, followed to its end by the code of
    `backdrop batch watch`; its report downloaded (its URL dies with the stack). True if
    every item succeeded."""
    s3 = aws_client(ready, "s3")
    keys = []
    for copy in range(1, BATCH_COPIES + 1):
        for name, data in _samples():
            keys.append(f"{BATCH_PREFIX}{name}-{copy}.png")
            s3.put_object(
                Bucket=ready["input_bucket"], Key=keys[-1], Body=data, ContentType="image/png"
            )
    print(
        f"\nA batch over the {len(keys)} images under {BATCH_PREFIX} "
        f"(`backdrop batch start --prefix {BATCH_PREFIX} --count {BATCH_COUNT} --watch`):"
    )
    report = output / "batch-report.csv"
    report.unlink(missing_ok=True)  # not an older run's
    try:
        started = client.start_batch(
            BATCH_PREFIX,
            {"prompt": BATCH_PROMPT, "count": BATCH_COUNT, "metadata": {"by": "backdrop demo"}},
        )
        batch = watch_batch(client, started["id"], interval=POLL_SECONDS, timeout=TIMEOUT_SECONDS)
        if batch.get("report_url"):
            client.download(batch["report_url"], report)
    except BackdropError as error:
        print(f"backdrop demo: the batch: {error}", file=sys.stderr)
        return False
    for line in batch_summary(batch):
        print(line)
    if report.exists():
        print(f"  report: {report.resolve()}")
    problems = batch_problems(batch)
    for problem in problems:
        print(f"backdrop demo: {problem}", file=sys.stderr)
    return not problems


def _offer_review(ready: dict[str, Any]) -> None:
    """Where to review what the demo made; in a terminal, the stack stays up for it."""
    if ready.get("review_mode") != "required" or not ready.get("console_url"):
        return
    print(
        f"\nEvery job waits for review. Open {ready['console_url']} and paste the API key "
        f"{ready['api_key']}: pick the batch, then 1-9 approves a variant (published under "
        f"published/ in {ready['published_bucket']}), x rejects, r regenerates."
    )
    if not sys.stdin.isatty():
        print(
            "(Not a terminal: the stack stops now; "
            "`backdrop local --param ReviewMode=required` keeps one up.)"
        )
        return
    print("The stack stays up for the review; Ctrl-C stops it.")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print()


def _print_summary(jobs: list[DemoJob]) -> None:
    header = ("job", "trigger", "provider", "status", "images", "seconds", "job id")
    rows = [
        (
            job.name,
            job.trigger,
            job.provider or "-",
            job.status if job.succeeded else f"{job.status} ({job.error_code})",
            str(len(job.result_paths)),
            "-" if job.waited_seconds is None else f"{job.waited_seconds:.1f}",
            job.job_id or "-",
        )
        for job in jobs
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
