"""The review console against the whole local stack (ReviewMode=required): three jobs
reviewed in Chromium by keyboard, then checked where they land: the API, the results
bucket and the events."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import needs_playwright
from tests.e2e.conftest import Local, running_local, sample

needs_playwright()
from playwright.sync_api import Browser, ConsoleMessage, Page, expect  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

XSS = "<img src=x onerror=alert(1)>"


def wait_until(local: Local, job_id: str, held: str, timeout: float = 60) -> dict[str, Any]:
    """The job once it has succeeded and its review is `held` (pending, superseded...)."""
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = local.api.get(f"/v1/generations/{job_id}").json()
        if job["status"] == "succeeded" and (job.get("review") or {}).get("status") == held:
            return job
        assert job["status"] not in {"failed", "canceled"}, job
        assert time.monotonic() < deadline, f"{job_id} not {held} after {timeout}s: {job}"
        time.sleep(0.25)


def decide_on(page: Page, job_id: str, *keys: str) -> None:
    """Make `job_id` the current product (as a click on it does), then press `keys`."""
    page.locator(f"article[data-id='{job_id}'] h2").click()
    for key in keys:
        page.keyboard.press(key)


def test_a_reviewer_approves_rejects_and_regenerates_in_the_console(
    browser: Browser, tmp_path: Path
) -> None:
    with running_local(
        tmp_path,
        "--param", "ReviewMode=required",
        "--param", "PollFirstWaitSeconds=1",
        "--param", "PollIntervalSeconds=1",
        "--emulate", "processing_seconds=1",
    ) as local:  # fmt: skip
        photo = base64.b64encode(sample()).decode()
        prompts = ["on a marble counter", "on a walnut table", XSS]
        approved, rejected, regenerated = (
            local.generate(image_base64=photo, count=2, prompt=prompt, metadata={"sku": sku})
            for prompt, sku in zip(prompts, ["mug-1", "mug-2", XSS], strict=True)
        )
        for job_id in (approved, rejected, regenerated):
            wait_until(local, job_id, "pending")

        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(15_000)
        page = context.new_page()
        problems: list[str] = []

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                problems.append(f"{message.text} ({message.location.get('url')})")

        page.on("console", on_console)
        page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
        page.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
        api_url = local.ready["api_url"]
        page.goto(f"{api_url}/console")
        page.get_by_label("API key").fill(local.ready["api_key"])
        page.get_by_label("API key").press("Enter")
        products = page.locator("article.product")
        expect(products).to_have_count(3)

        hostile = page.locator(f"article[data-id='{regenerated}']")
        expect(hostile.locator("dd.prompt")).to_have_text(XSS)
        expect(hostile.locator("dd.meta")).to_have_text([XSS])
        expect(hostile.locator(".photos img")).to_have_count(3)  # the photo and two variants
        assert page.locator("img[src='x']").count() == 0

        decide_on(page, approved, "2")
        expect(page.locator(f"article[data-id='{approved}'] .state")).to_contain_text(
            "Approved variant 2"
        )
        decide_on(page, rejected, "x")
        page.get_by_label("Reason (optional)").fill("the shadow is wrong")
        page.get_by_label("Reason (optional)").press("Enter")
        expect(page.locator(f"article[data-id='{rejected}'] .state")).to_have_text(
            "Rejected: the shadow is wrong"
        )
        decide_on(page, regenerated, "r")
        page.get_by_label("Prompt", exact=True).fill("on a slate board")
        page.get_by_label("Prompt", exact=True).press("Enter")
        expect(hostile.locator(".state")).to_contain_text("Regenerating as")
        # Every image the page showed loaded, from an origin its policy allows.
        page.wait_for_function(
            "() => [...document.images].filter((i) => i.src).every((i) => i.complete)"
        )
        broken = page.evaluate(
            "() => [...document.images].filter((i) => i.src && !i.naturalWidth).map((i) => i.src)"
        )
        assert broken == []
        context.close()
        assert problems == []

        first = local.api.get(f"/v1/generations/{approved}").json()
        assert first["review"]["status"] == "approved"
        assert first["review"]["chosen"] == 1
        key = first["review"]["published_key"]
        assert key
        local.client("s3").head_object(Bucket=local.ready["published_bucket"], Key=key)

        second = local.api.get(f"/v1/generations/{rejected}").json()
        assert second["review"]["status"] == "rejected"
        assert second["review"]["reason"] == "the shadow is wrong"

        third = local.api.get(f"/v1/generations/{regenerated}").json()
        [child_id] = third["children"]
        child = local.api.get(f"/v1/generations/{child_id}").json()
        assert child["parent_id"] == regenerated
        assert child["request"]["prompt"] == "on a slate board"
        wait_until(local, child_id, "pending")
        wait_until(local, regenerated, "superseded", timeout=15)

        announced = {(e["detail-type"], e["detail"].get("job_id")) for e in local.events()}
        assert ("Generation Approved", approved) in announced
        assert ("Generation Rejected", rejected) in announced


def test_a_twenty_image_batch_is_approved_by_keyboard_and_published(
    browser: Browser, tmp_path: Path
) -> None:
    with running_local(
        tmp_path,
        "--param", "ReviewMode=required",
        "--param", "PollFirstWaitSeconds=1",
        "--param", "PollIntervalSeconds=1",
        "--emulate", "processing_seconds=1",
    ) as local:  # fmt: skip
        photo = sample()
        for index in range(20):
            local.upload(f"catalog/console/sku-{index:02d}.png", photo)
        batch_id = local.api.post(
            "/v1/batches", json={"prefix": "catalog/console/", "count": 2}
        ).json()["id"]
        deadline = time.monotonic() + 120
        while (batch := local.api.get(f"/v1/batches/{batch_id}").json())["status"] == "running":
            assert time.monotonic() < deadline, batch
            time.sleep(0.5)
        assert batch["review"]["pending"] == 20, batch

        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.goto(f"{local.ready['api_url']}/console")
        page.get_by_label("API key").fill(local.ready["api_key"])
        page.get_by_label("API key").press("Enter")
        page.get_by_label("Batch").select_option(batch_id)
        expect(page.locator("article.product")).to_have_count(20)
        expect(page.locator("#progress")).to_have_text("0 of 20 reviewed")

        # From the queue (keys typed in the batch's select are the select's): each `1`
        # approves the current product's first variant, and the next one becomes current.
        page.locator("article.product h2").first.click()
        for done in range(1, 21):
            page.keyboard.press("1")
            expect(page.locator("#progress")).to_have_text(f"{done} of 20 reviewed")
        context.close()

        listed = local.client("s3").list_objects_v2(
            Bucket=local.ready["published_bucket"], Prefix="published/catalog/console/"
        )
        assert sorted(item["Key"] for item in listed["Contents"]) == [
            f"published/catalog/console/sku-{index:02d}.jpg" for index in range(20)
        ]
        # The events reach the log a moment after the answers (the stack polls its queue).
        deadline = time.monotonic() + 30
        while len(approved := _approved(local)) < 20 and time.monotonic() < deadline:
            time.sleep(0.25)
        assert len(approved) == 20
        assert local.api.get(f"/v1/batches/{batch_id}").json()["review"]["approved"] == 20


def _approved(local: Local) -> set[str]:
    return {
        e["detail"]["job_id"] for e in local.events() if e["detail-type"] == "Generation Approved"
    }
