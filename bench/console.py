"""Load the review console of a local stack (ReviewMode=required) in Chromium over a queue of
N products, each with C variants, and print what the page weighs and how long it takes to show.

    .venv/bin/python bench/console.py [--products 50] [--count 4] [--runs 3]
        [--screenshot docs/assets/console.png] [--processing-seconds 1] [--param NAME=VALUE ...]

The stack makes N jobs through the API (the bundled sample photos in turn, a prompt and a
`sku` each) and the bench waits until every one has succeeded and waits for review. Printed:
the seconds that took (and any 502 of POST /v1/generations, retried); the page's own files
(/console, its script, style and icon) in bytes as served, the encoding and cache headers
they were served with, and gzip-compressed (what a CDN or a browser would move); then,
`--runs` times in a fresh browser context (a cold cache), the seconds from
`page.goto(/console)` through entering the key to every product of the first page (50) in
the DOM with every image in the queue loaded (`complete`, with a width), and the median;
apart, the page at DOMContentLoaded, the products in the DOM, and every image decoded and
painted after; the bytes of the images the page loaded (response bodies: the variants'
thumbnails, the input photos) beside what the same page would have loaded with full-size
results (the `size` of every result in the views the page was given), with the ratio; the
queue's JSON, as served and gzip-compressed; console errors and failed requests.
`--screenshot PATH` saves the 1280x800 view of the console after the last run (PNG). The
functions' log lines go to stderr. Loopback only. Figures, not judgements.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import itertools
import json
import logging
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, Request, Response, ViewportSize, sync_playwright

from backdrop_local.emulator import EmulatorSettings
from backdrop_local.samples import SAMPLES_DIR
from backdrop_local.stack import LocalStack, StackOptions

ASSETS = ("/console", "/console/console.js", "/console/console.css", "/console/favicon.svg")
QUEUE_PAGE = 50  # the console's page of products (console.js PAGE)
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
SCREENSHOT_MAX_BYTES = 300_000
PROMPTS = (
    "on a marble kitchen counter, soft morning light",
    "on a walnut table beside a window, warm afternoon sun",
    "on wet slate stones by a mountain stream",
    "on a white studio sweep, soft shadow",
    "on a sunlit terrazzo floor with palm shadows",
    "on a linen tablecloth at a garden picnic",
    "on a concrete plinth, pastel backdrop",
    "on a sandy beach at golden hour",
)
# Every product shown, and every image in the queue loaded (the input photos and variants).
SHOWN = """(n) => {
  const articles = document.querySelectorAll("#queue article[data-id]");
  if (articles.length < n) return false;
  return [...document.querySelectorAll("#queue img")]
    .every((img) => img.complete && img.naturalWidth > 0);
}"""
ARTICLES = "(n) => document.querySelectorAll('#queue article[data-id]').length >= n"
# `complete` comes before the pixels: the images are decoded asynchronously (decoding="async"),
# and a frame later they are on the screen.
DECODED = """() => {
  const images = [...document.querySelectorAll("#queue img")];
  return Promise.all(images.map((img) => img.decode()))
    .then(() => new Promise((resolve) => requestAnimationFrame(() => resolve(true))));
}"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=50, help="jobs held for review")
    parser.add_argument("--count", type=int, default=4, help="variants per product")
    parser.add_argument("--runs", type=int, default=3, help="page loads, each a cold cache")
    parser.add_argument("--screenshot", type=Path, help="a PNG of the console after the runs")
    parser.add_argument("--processing-seconds", default="1", help="emulated Picsart job time")
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="any other parameter"
    )
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)

    parameters = {
        "ReviewMode": "required",
        "PollFirstWaitSeconds": "1",
        "PollIntervalSeconds": "1",
    }
    parameters |= dict(item.split("=", 1) for item in args.param)
    options = StackOptions(
        api_port=0,
        echo=False,
        parameters=parameters,
        emulator=EmulatorSettings.from_env().merged(
            {"processing_seconds": args.processing_seconds}
        ),
    )
    stack = LocalStack(options)
    try:
        ready = stack.start()
        logs_to_stderr()
        headers = {"x-api-key": ready["api_key"]}
        with httpx.Client(base_url=ready["api_url"], headers=headers, timeout=60) as api:
            began = time.monotonic()
            job_ids, retried = create_jobs(api, args.products, args.count)
            created = time.monotonic() - began
            wait_pending(api, set(job_ids), began + args.timeout)
            pending = time.monotonic() - began
            show(
                {
                    "products": args.products,
                    "variants_each": args.count,
                    "jobs_created_seconds": round(created, 1),
                    "create_502s_retried": retried,
                    "all_pending_review_seconds": round(pending, 1),
                }
            )
            show({"page_weight": page_weight(ready["api_url"])})
        shown = min(args.products, QUEUE_PAGE)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=shutil.which("chromium"), args=["--no-sandbox"]
            )
            try:
                runs = []
                for run in range(1, args.runs + 1):
                    screenshot = args.screenshot if run == args.runs else None
                    figures = one_load(browser, ready, shown, screenshot)
                    runs.append(figures)
                    show({"run": run} | figures)
            finally:
                browser.close()
        seconds = [figures["seconds"] for figures in runs]
        show(
            {
                "products_shown": shown,
                "seconds_each_run": seconds,
                "seconds_median": round(statistics.median(seconds), 2) if seconds else None,
            }
        )
    finally:
        stack.stop()
    return 0


def show(figures: dict[str, Any]) -> None:
    print(json.dumps(figures, indent=2), flush=True)


def logs_to_stderr() -> None:
    """The functions' log lines to stderr: stdout has the figures alone."""
    from backdrop.observability import logger  # once the stack has named the service

    for handler in logging.getLogger(logger.name).handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)


def photos() -> list[tuple[str, str]]:
    """The bundled sample photos, by name, base64-encoded."""
    return [
        (path.stem, base64.b64encode(path.read_bytes()).decode())
        for path in sorted(Path(SAMPLES_DIR).glob("*.png"))
    ]


def create_jobs(api: httpx.Client, products: int, count: int) -> tuple[list[str], int]:
    """`products` jobs through POST /v1/generations, the sample photos in turn; their ids
    and the 502s retried."""
    bodies = [
        {
            "image_base64": photo,
            "count": count,
            "prompt": prompt,
            "metadata": {"sku": f"{name}-{n + 1:03d}"},
        }
        for n, (name, photo), prompt in zip(
            range(products), itertools.cycle(photos()), itertools.cycle(PROMPTS), strict=False
        )
    ]

    def post(body: dict[str, Any]) -> str:
        for _ in range(3):  # a 502 (the function's unhandled error) is counted and retried
            answer = api.post("/v1/generations", json=body)
            if answer.status_code != 502:
                break
            retried.append(answer.text)
        if answer.status_code != 202:
            raise SystemExit(f"POST /v1/generations: {answer.status_code} {answer.text}")
        return str(answer.json()["id"])

    retried: list[str] = []
    job_ids = [post(body) for body in bodies]  # one at a time: the queue (oldest first) in turn
    for text in retried:
        print(f"POST /v1/generations answered 502, retried: {text}", file=sys.stderr)
    return job_ids, len(retried)


def wait_pending(api: httpx.Client, job_ids: set[str], deadline: float) -> None:
    """Until every job has succeeded and waits for review (the review queue, every page)."""
    while True:
        pending: set[str] = set()
        cursor = None
        while True:
            params = {"review": "pending", "limit": "100"} | ({"cursor": cursor} if cursor else {})
            page = api.get("/v1/generations", params=params).raise_for_status().json()
            pending |= {item["id"] for item in page["items"] if item["status"] == "succeeded"}
            cursor = page["next_cursor"]
            if not cursor:
                break
        missing = job_ids - pending
        if not missing:
            return
        for job_id in list(missing)[:5]:  # a job that cannot come any more ends the bench
            job = api.get(f"/v1/generations/{job_id}").json()
            if job["status"] in {"failed", "canceled"}:
                raise SystemExit(f"job {job_id} {job['status']}: {job.get('error')}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(missing)} jobs not pending review in time")
        time.sleep(1)


def page_weight(api_url: str) -> dict[str, Any]:
    """The console's own files: bytes as served, the encoding and caching headers served
    (an ETag or Last-Modified, if any, to revalidate by), gzip -9 bytes."""
    files = {}
    for path in ASSETS:
        answer = httpx.get(f"{api_url}{path}", headers={"accept-encoding": "gzip, br"})
        answer.raise_for_status()
        body = answer.content  # decoded, if the stack had compressed it
        files[path] = {
            "bytes": len(body),
            "served_encoding": answer.headers.get("content-encoding", "identity"),
            "cache_control": answer.headers.get("cache-control"),
            "validator": answer.headers.get("etag") or answer.headers.get("last-modified"),
            "gzip_bytes": len(gzip.compress(body, compresslevel=9)),
        }
    total = sum(entry["bytes"] for entry in files.values())
    zipped = sum(entry["gzip_bytes"] for entry in files.values())
    return files | {"total": {"bytes": total, "gzip_bytes": zipped}}


def one_load(
    browser: Browser, ready: dict[str, Any], shown: int, screenshot: Path | None
) -> dict[str, Any]:
    """One page load in a fresh context, timed until `shown` products and their images."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(120_000)
    page = context.new_page()
    images: list[Response] = []
    queues: list[Response] = []
    failed: list[str] = []
    errors: list[str] = []

    def on_response(response: Response) -> None:
        if response.request.resource_type == "image":
            images.append(response)
        elif "/v1/generations?" in response.url:
            queues.append(response)

    def on_failed(request: Request) -> None:
        failed.append(f"{request.resource_type} {request.url[:80]}: {request.failure}")

    page.on("response", on_response)
    page.on("requestfailed", on_failed)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    try:
        began = time.perf_counter()
        page.goto(f"{ready['api_url']}/console", wait_until="domcontentloaded")
        loaded = time.perf_counter()
        key = page.get_by_label("API key")
        key.fill(ready["api_key"])
        key.press("Enter")
        page.wait_for_function(ARTICLES, arg=shown, polling="raf")
        articles = time.perf_counter()
        page.wait_for_function(SHOWN, arg=shown, polling="raf")
        done = time.perf_counter()
        page.evaluate(DECODED)
        decoded = time.perf_counter()
        figures: dict[str, Any] = {
            "seconds": round(done - began, 2),
            "page_loaded_seconds": round(loaded - began, 2),
            "products_in_dom_seconds": round(articles - began, 2),
            "images_loaded_seconds": round(done - began, 2),
            "images_decoded_seconds": round(decoded - began, 2),
        }
        figures |= image_bytes(images, queues)
        figures["progress_text"] = page.locator("#progress").inner_text()
        figures["console_errors"] = errors
        figures["failed_requests"] = failed
        if screenshot is not None:
            figures["screenshot"] = take_screenshot(page, screenshot)
    finally:
        context.close()
    return figures


def image_bytes(images: list[Response], queues: list[Response]) -> dict[str, Any]:
    """Bytes of the images the page loaded, by kind, beside what the same page would load
    at full size (the results' and the photos' own bytes)."""
    thumbnails = photo_previews = sources = other = 0
    counted = {"thumbnails": 0, "photo_previews": 0, "sources": 0, "other": 0}
    for response in images:
        size = len(response.body())
        if "/thumbnails/" in response.url and "/source.webp" in response.url:
            photo_previews += size
            counted["photo_previews"] += 1
        elif "/thumbnails/" in response.url:
            thumbnails += size
            counted["thumbnails"] += 1
        elif "/console/" in response.url:
            other += size
            counted["other"] += 1
        else:
            sources += size
            counted["sources"] += 1
    bodies = [response.body() for response in queues]
    views = [item for body in bodies for item in json.loads(body)["items"]]
    full = sum(result["size"] for item in views for result in item["results"])
    photos = sum(len(httpx.get(item["source_url"]).content) for item in views if item["source_url"])
    results = sum(len(item["results"]) for item in views)
    missing_thumbnails = sum(
        1 for item in views for result in item["results"] if not result.get("thumbnail_url")
    )
    return {
        "image_requests": counted,
        "thumbnail_bytes": thumbnails,
        "full_size_results_bytes": full,
        "thumbnails_over_full": round(thumbnails / full, 3) if full else None,
        "results_in_views": results,
        "results_without_thumbnail": missing_thumbnails,
        "photo_preview_bytes": photo_previews,
        "input_photo_bytes": sources,
        "other_image_bytes": other,
        "page_images_bytes": thumbnails + photo_previews + sources,
        "page_images_bytes_if_full_size": full + photos,
        "page_over_full": round((thumbnails + photo_previews + sources) / (full + photos), 3)
        if full + photos
        else None,
        "queue_json_bytes": sum(len(body) for body in bodies),
        "queue_json_gzip_bytes": sum(len(gzip.compress(body, compresslevel=9)) for body in bodies),
    }


def take_screenshot(page: Page, path: Path) -> dict[str, Any]:
    """The first products at the top of the page, as a reviewer sees them: a PNG."""
    page.evaluate("() => window.scrollTo(0, 0)")
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=False, scale="css", animations="disabled")
    size = path.stat().st_size
    viewport = VIEWPORT
    if size > SCREENSHOT_MAX_BYTES:  # a smaller view, the same top of the queue
        viewport = {"width": 1024, "height": 640}
        page.set_viewport_size(viewport)
        page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=str(path), full_page=False, scale="css", animations="disabled")
        size = path.stat().st_size
    return {"path": str(path), "bytes": size, "viewport": viewport}


if __name__ == "__main__":
    sys.exit(main())
