"""Time a batch's quote (`"dry_run": true`) over N catalogue images on a local stack, then
run the real batch and compare its counts with the quote's.

    .venv/bin/python bench/quote.py [--images 1000] [--done 100] [--refused 5]

The prefix holds N images, `--refused` files that are not images by their names and a
folder marker; `--done` of the images are made first (a batch with that `max_images`), so
the quote must skip them. Printed: the quote's answer time (each of `--tries` calls: min,
median, max), its counts, the real batch's counts and time, and whether they match. The
stack runs on loopback only. Figures, not judgements.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from backdrop.observability import logger
from backdrop_local import burst
from backdrop_local.emulator import EmulatorSettings
from backdrop_local.stack import LocalStack, StackOptions, aws_client

PREFIX = "catalog/quote-bench/"


def _fill(ready: dict[str, Any], images: int, refused: int) -> None:
    s3 = aws_client(ready, "s3")
    bodies = itertools.cycle(burst.samples())
    keys = [(f"{PREFIX}item-{n:05d}.png", next(bodies)) for n in range(images)]
    keys += [(f"{PREFIX}notes-{n}.txt", b"not an image") for n in range(refused)]
    keys.append((f"{PREFIX}folder/", b""))
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda kv: s3.put_object(Bucket=ready["input_bucket"], Key=kv[0], Body=kv[1]),
                keys,
            )
        )


def _api(ready: dict[str, Any]) -> httpx.Client:
    return httpx.Client(
        base_url=ready["api_url"], headers={"x-api-key": ready["api_key"]}, timeout=120
    )


def _run_batch(
    api: httpx.Client, body: dict[str, Any], timeout: float
) -> tuple[dict[str, Any], float]:
    began = time.monotonic()
    answer = api.post("/v1/batches", json=body)
    answer.raise_for_status()
    batch_id = answer.json()["id"]
    deadline = began + timeout
    while time.monotonic() < deadline:
        batch = api.get(f"/v1/batches/{batch_id}").json()
        if batch["status"] != "running":
            return batch, time.monotonic() - began
        time.sleep(1)
    raise TimeoutError(f"batch {batch_id} still running")


def _failures(batch: dict[str, Any]) -> dict[str, int]:
    """The batch's items that did not succeed, by error code and message (its report)."""
    rows = csv.DictReader(io.StringIO(httpx.get(batch["report_url"]).text))
    found = Counter(
        f"{row['status']}: {row['error_code']}: {row['error_message'][:120]}"
        for row in rows
        if row["status"] not in ("succeeded", "skipped")
    )
    return dict(found.most_common(10))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--done", type=int, default=100, help="images made before the quote")
    parser.add_argument("--refused", type=int, default=5, help="non-images in the prefix")
    parser.add_argument("--tries", type=int, default=5, help="quotes timed")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args(argv)

    options = StackOptions(
        api_port=0,
        echo=False,
        parameters={"PollFirstWaitSeconds": "1", "PollIntervalSeconds": "1"},
        emulator=EmulatorSettings.from_env().merged({"processing_seconds": "1"}),
    )
    stack = LocalStack(options)
    report: dict[str, Any] = {"images": args.images, "done_first": args.done}
    try:
        ready = stack.start()
        logger.setLevel("WARNING")
        _fill(ready, args.images, args.refused)
        api = _api(ready)
        body = {"prefix": PREFIX, "count": 1}
        if args.done:
            first, _ = _run_batch(api, {**body, "max_images": args.done}, args.timeout)
            report["first_batch_counts"] = first["counts"]
            report["first_batch_failures"] = _failures(first)
        seconds, quote = [], {}
        for _ in range(args.tries):
            began = time.monotonic()
            answer = api.post("/v1/batches", json={**body, "dry_run": True})
            seconds.append(time.monotonic() - began)
            answer.raise_for_status()
            quote = answer.json()
        report["quote_seconds"] = {
            "min": round(min(seconds), 3),
            "median": round(statistics.median(seconds), 3),
            "max": round(max(seconds), 3),
        }
        report["quote"] = {
            name: quote[name]
            for name in ("items", "ignored", "skipped", "refused", "jobs", "images")
        } | {
            "estimated_cost_usd": quote["estimated_cost_usd"],
            "estimated_seconds": quote["estimated_seconds"],
        }
        batch, took = _run_batch(api, body, args.timeout)
        counts = batch["counts"]
        report["batch"] = {"counts": counts, "seconds": round(took, 1), "status": batch["status"]}
        report["matches"] = {
            "items": quote["items"] == counts["total"],
            "skipped": quote["skipped"] == counts["skipped"],
            "refused": quote["refused"] == counts["failed"],
            "jobs": quote["jobs"] == counts["succeeded"],
        }
    finally:
        stack.stop()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
