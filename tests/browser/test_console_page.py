"""The review console in a real Chromium, fast and without a stack: the page and its assets
come from the API's real resolver (with their real Content-Security-Policy), the API it
calls is a fake answering as the contract says, and every other request is refused."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.browser.conftest import needs_playwright
from tests.conftest import image_bytes
from tests.unit.test_console import get as console_get

needs_playwright()
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, Route, expect  # noqa: E402

pytestmark = pytest.mark.browser

ORIGIN = "http://console.test"
IMAGES = "https://images.test"
KEY = "test-key-0123456789abcdefghij"
XSS = "<img src=x onerror=alert(1)>"
PNG = image_bytes("PNG", (60, 40))


def job(n: int, *, prompt: str = "on a marble counter", **changes: Any) -> dict[str, Any]:
    """A succeeded job waiting for review, as GET /v1/generations/{id} shows it."""
    job_id = f"{n:032x}"
    view: dict[str, Any] = {
        "id": job_id,
        "status": "succeeded",
        "trigger": "api",
        "provider": "picsart",
        "created_at": f"2025-01-01T00:00:{n:02d}Z",
        "updated_at": f"2025-01-01T00:01:{n:02d}Z",
        "request": {
            "image_url": None,
            "image_key": f"products/{n}.png",
            "prompt": prompt,
            "negative_prompt": None,
            "count": 3,
            "format": "png",
            "seed": None,
        },
        "metadata": {"sku": f"SKU-{n}"},
        "source_url": f"{IMAGES}/inputs/{n}.png",
        "results": [
            {
                "index": i,
                "url": f"{IMAGES}/{job_id}/{i}.png",
                "size": len(PNG),
                "format": "png",
                "content_type": "image/png",
                "seed": 100 * n + i,
                "thumbnail_url": f"{IMAGES}/{job_id}/{i}.webp",
            }
            for i in range(3)
        ],
        "error": None,
        "webhook": None,
        "review": {
            "status": "pending",
            "chosen": None,
            "reason": None,
            "published_key": None,
            "decided_at": None,
            "history": [],
        },
        "parent_id": None,
        "children": [],
    }
    view.update(changes)
    return view


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeApi:
    """The part of the API the console calls, answering from `jobs`, two jobs a page."""

    jobs: list[dict[str, Any]]
    batch: dict[str, Any] = field(
        default_factory=lambda: {
            "id": "b" * 32,
            "status": "running",
            "metadata": {"name": "spring catalogue"},
            "started_at": "2025-01-01T00:00:00Z",
            "counts": {"total": 120, "queued": 0, "running": 0, "succeeded": 120, "failed": 0,
                       "skipped": 0},
            "review": {"pending": 83, "approved": 30, "rejected": 5, "superseded": 2},
        }
    )  # fmt: skip
    calls: list[Call] = field(default_factory=list)
    # What the next POST .../review answers instead, as (status, body).
    refusals: list[tuple[int, Any]] = field(default_factory=list)
    page_size: int = 2
    # Every URL the page asked for, of any origin; those answered from `refusals`.
    requested: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def posts(self) -> list[Call]:
        return [call for call in self.calls if call.method == "POST"]

    def find(self, job_id: str) -> dict[str, Any]:
        return next(job for job in self.jobs if job["id"] == job_id)

    def fulfil(self, route: Route, path: str) -> None:
        """Answer `path` (without a stage prefix); record the request as sent."""
        request = route.request
        url = urlsplit(request.url)
        query = dict(parse_qsl(url.query))
        body = json.loads(request.post_data) if request.post_data else None
        self.calls.append(Call(request.method, url.path, query, request.headers, body))
        refusing = bool(self.refusals) and request.method == "POST"
        status, answer = self.answer(request.method, path, query, body)
        if refusing:
            self.refused.append(request.url)
        route.fulfill(status=status, content_type="application/json", body=json.dumps(answer))

    def answer(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        parts = path.strip("/").split("/")  # v1, generations, <id>, review
        if parts == ["v1", "batches"]:
            return 200, {"items": [self.batch], "next_cursor": None}
        if parts == ["v1", "batches", self.batch["id"]]:
            return 200, self.batch
        if parts == ["v1", "generations"]:
            listed = [j for j in self.jobs if (j["review"] or {}).get("status") == query["review"]]
            start = int(query.get("cursor", "0"))
            end = start + self.page_size
            more = str(end) if end < len(listed) else None
            return 200, {"items": copy.deepcopy(listed[start:end]), "next_cursor": more}
        if parts[:2] == ["v1", "generations"] and len(parts) == 3:
            return 200, copy.deepcopy(self.find(parts[2]))
        if parts[:2] == ["v1", "generations"] and parts[3:] == ["review"] and method == "POST":
            if self.refusals:
                return self.refusals.pop(0)
            return self.decide(self.find(parts[2]), body)
        return 404, {"error": {"code": "not_found", "message": "no such route", "details": []}}

    def decide(self, reviewed: dict[str, Any], body: dict[str, Any]) -> tuple[int, Any]:
        review = reviewed["review"]
        entry = {"at": "2025-01-02T00:00:00Z", **body}
        if body["decision"] == "regenerate":
            child = job(
                90 + len(self.jobs), prompt=body.get("prompt", reviewed["request"]["prompt"])
            )
            child.update(status="queued", results=[], review=None, parent_id=reviewed["id"])
            self.jobs.append(child)
            reviewed["children"].append(child["id"])
            review["history"].append({**entry, "job_id": child["id"]})
            return 202, copy.deepcopy(child)
        if body["decision"] == "approve":
            key = f"published/{reviewed['id']}.png"
            review.update(status="approved", chosen=body["index"], published_key=key)
            entry["published_key"] = key
        else:
            review.update(status="rejected", reason=body.get("reason"))
        review["history"].append(entry)
        return 200, copy.deepcopy(reviewed)


@dataclass
class Console:
    page: Page
    api: FakeApi
    # Console errors, uncaught errors, CSP violations, dialogs, requests to other origins.
    problems: list[str]

    def open(self, path: str = "/console") -> None:
        self.page.goto(f"{ORIGIN}{path}")

    def use_key(self, key: str = KEY) -> None:
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_label("API key").press("Enter")
        expect(self.products()).not_to_have_count(0)

    def products(self) -> Locator:
        return self.page.locator("article.product")

    def product(self, n: int) -> Locator:
        return self.products().nth(n)

    def press(self, key: str) -> None:
        """A key, to whatever has the focus (as a reviewer presses it)."""
        self.page.keyboard.press(key)


def _serve(api: FakeApi, problems: list[str]) -> Any:
    def serve(route: Route) -> None:
        api.requested.append(route.request.url)
        url = urlsplit(route.request.url)
        origin = f"{url.scheme}://{url.netloc}"
        # A stage prefix (API Gateway's /prod) is kept in what the fake API records.
        path = re.sub(r"^/prod(?=/)", "", url.path)
        if origin == ORIGIN and re.fullmatch(r"/console(/[^/]+)?", path):
            status, headers, body = console_get(path, [IMAGES])
            route.fulfill(status=status, headers=headers, body=body)
        elif origin == ORIGIN and path.startswith("/v1/"):
            api.fulfil(route, path)
        elif origin == IMAGES:
            route.fulfill(status=200, content_type="image/png", body=PNG)
        elif origin == ORIGIN:
            route.fulfill(status=404, content_type="application/json", body="{}")
        else:
            problems.append(f"request to another origin: {route.request.url}")
            route.abort()

    return serve


# Every violation of the page's policy becomes a console error, which fails the test.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.fixture
def jobs() -> list[dict[str, Any]]:
    return [job(1), job(2), job(3)]


@pytest.fixture
def console(browser: Browser, jobs: list[dict[str, Any]]) -> Iterator[Console]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(5000)
    page = context.new_page()
    api = FakeApi(copy.deepcopy(jobs))
    problems: list[str] = []
    context.route("**/*", _serve(api, problems))
    page.add_init_script(script=REPORT_VIOLATIONS)

    def on_console(message: ConsoleMessage) -> None:
        # Chromium logs every error answer; those the test asked for are no problem.
        asked = message.location.get("url") in api.refused
        if message.type == "error" and not (asked and message.text.startswith("Failed to load")):
            problems.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))

    def on_dialog(dialog: Any) -> None:
        problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    yield Console(page, api, problems)
    context.close()
    assert problems == []


def test_the_page_loads_without_a_key_and_asks_for_one(console: Console) -> None:
    console.open()

    expect(console.page.get_by_role("status")).to_contain_text("Enter your API key")
    expect(console.page.get_by_label("API key")).to_have_attribute("type", "password")
    assert console.api.calls == []


def test_the_key_is_kept_for_the_tab_only_and_sent_as_a_header(console: Console) -> None:
    console.open()
    console.use_key()

    storage = console.page.evaluate(
        "() => ({session: {...sessionStorage}, local: localStorage.length,"
        " cookie: document.cookie})"
    )
    assert storage == {"session": {"backdrop.apiKey": KEY}, "local": 0, "cookie": ""}
    assert console.page.context.cookies() == []
    assert console.api.calls
    assert all(call.headers.get("x-api-key") == KEY for call in console.api.calls)
    assert not [url for url in console.api.requested if KEY in url]
    expect(console.page.get_by_label("API key")).to_have_value("")  # not left in the page

    console.page.reload()  # the tab keeps it
    expect(console.products()).to_have_count(2)

    console.page.get_by_role("button", name="Forget key").click()
    assert console.page.evaluate("() => sessionStorage.length") == 0
    expect(console.products()).to_have_count(0)


def test_each_product_shows_its_photo_variants_prompt_and_metadata(console: Console) -> None:
    console.open()
    console.use_key()

    first = console.product(0)
    expect(first.get_by_role("img", name="Input photo")).to_have_attribute(
        "src", f"{IMAGES}/inputs/1.png"
    )
    expect(first.get_by_role("button", name="Enlarge variant 2").locator("img")).to_have_attribute(
        "src", f"{IMAGES}/{1:032x}/1.webp"
    )
    expect(first.locator("dd.prompt")).to_have_text("on a marble counter")
    expect(first.locator("dt.meta")).to_have_text(["sku"])
    expect(first.locator("dd.meta")).to_have_text(["SKU-1"])
    expect(first.locator("figcaption")).to_have_text(["Input", "1 · seed 100", "2 · seed 101",
                                                      "3 · seed 102"])  # fmt: skip
    expect(console.page.locator("#progress")).to_have_text("2 pending loaded")


@pytest.mark.parametrize(
    "jobs", [[job(1, results=[dict(job(1)["results"][0], thumbnail_url=None)])]]
)
def test_a_variant_falls_back_to_its_full_url_without_a_thumbnail(console: Console) -> None:
    console.open()
    console.use_key()

    expect(console.product(0).locator(".variant img")).to_have_attribute(
        "src", f"{IMAGES}/{1:032x}/0.png"
    )


def test_clicking_a_variant_shows_it_large_and_escape_closes(console: Console) -> None:
    console.open()
    console.use_key()

    console.product(1).get_by_role("button", name="Enlarge variant 3").click()

    viewer = console.page.locator("#viewer")
    expect(viewer).to_be_visible()
    expect(viewer.locator("img")).to_have_attribute("src", f"{IMAGES}/{2:032x}/2.png")
    console.page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    assert console.api.posts() == []  # keys meant for the viewer decided nothing


def test_a_digit_approves_that_variant_and_moves_to_the_next_product(console: Console) -> None:
    console.open()
    console.page.get_by_label("Reviewer").fill("alice")
    console.use_key()

    console.press("2")

    expect(console.product(0).locator(".state")).to_have_text(
        f"Approved variant 2, published as published/{1:032x}.png by alice"
    )
    [post] = console.api.posts()
    assert post.path == f"/v1/generations/{1:032x}/review"
    # Decided on the review as shown: none recorded yet.
    assert post.body == {
        "decision": "approve",
        "index": 1,
        "reviewer": "alice",
        "review_version": 0,
    }
    assert post.headers["x-api-key"] == KEY
    assert post.headers["content-type"] == "application/json"
    expect(console.product(1)).to_be_focused()
    expect(console.product(1)).to_have_attribute("aria-current", "true")
    assert console.page.evaluate("() => sessionStorage.getItem('backdrop.reviewer')") == "alice"


def test_x_rejects_with_an_optional_reason(console: Console) -> None:
    console.open()
    console.use_key()

    console.press("x")
    reason = console.page.get_by_label("Reason (optional)")
    expect(reason).to_be_focused()
    reason.fill("shadow is wrong")
    reason.press("Enter")

    expect(console.product(0).locator(".state")).to_have_text("Rejected: shadow is wrong")
    [post] = console.api.posts()
    assert post.body == {"decision": "reject", "reason": "shadow is wrong", "review_version": 0}
    expect(console.product(1)).to_be_focused()


def test_r_regenerates_with_the_edited_prompt(console: Console) -> None:
    console.open()
    console.use_key()
    console.press("ArrowRight")

    console.press("r")
    prompt = console.page.get_by_label("Prompt", exact=True)
    expect(prompt).to_have_value("on a marble counter")
    prompt.fill("on a walnut table")
    prompt.press("Enter")

    child = f"{93:032x}"
    expect(console.product(1).locator(".state")).to_have_text(f"Regenerating as {child}")
    [post] = console.api.posts()
    assert post.path == f"/v1/generations/{2:032x}/review"
    assert post.body == {
        "decision": "regenerate",
        "prompt": "on a walnut table",
        "review_version": 0,
    }
    # The product waits for its regeneration: the next one to review is the first.
    expect(console.product(0)).to_be_focused()


def test_every_action_has_a_button(console: Console) -> None:
    console.open()
    console.use_key()

    console.product(1).get_by_role("button", name="Approve 3").click()
    expect(console.product(1).locator(".state")).to_contain_text("Approved variant 3")
    console.product(0).get_by_role("button", name="Reject").click()
    console.page.locator("#reject-dialog").get_by_role("button", name="Reject").click()

    expect(console.product(0).locator(".state")).to_have_text("Rejected")
    assert [post.body for post in console.api.posts()] == [
        {"decision": "approve", "index": 2, "review_version": 0},
        {"decision": "reject", "review_version": 0},
    ]


def test_arrows_move_between_products_and_typing_is_never_a_shortcut(console: Console) -> None:
    console.open()
    console.use_key()

    console.press("ArrowRight")
    expect(console.product(1)).to_have_attribute("aria-current", "true")
    console.press("ArrowRight")  # the last stays current
    expect(console.product(1)).to_have_attribute("aria-current", "true")
    console.press("ArrowLeft")
    expect(console.product(0)).to_have_attribute("aria-current", "true")

    reviewer = console.page.get_by_label("Reviewer")
    reviewer.press_sequentially("x2r")
    expect(reviewer).to_have_value("x2r")
    expect(console.page.locator("dialog[open]")).to_have_count(0)
    assert console.api.posts() == []


def test_load_more_pages_through_the_cursor(console: Console) -> None:
    console.open()
    console.use_key()

    console.page.get_by_role("button", name="Load more").click()

    expect(console.products()).to_have_count(3)
    expect(console.page.get_by_role("button", name="Load more")).to_be_hidden()
    lists = [c.query for c in console.api.calls if c.path == "/v1/generations"]
    assert lists == [
        {"review": "pending", "limit": "50"},
        {"review": "pending", "limit": "50", "cursor": "2"},
    ]
    expect(console.page.locator("#progress")).to_have_text("3 pending loaded")


def test_a_batch_filters_the_queue_and_shows_its_progress(console: Console) -> None:
    console.open()
    console.use_key()

    console.page.get_by_label("Batch").select_option("b" * 32)

    expect(console.page.locator("#progress")).to_have_text("37 of 120 reviewed")
    last = [c.query for c in console.api.calls if c.path == "/v1/generations"][-1]
    assert last == {"review": "pending", "limit": "50", "batch_id": "b" * 32}
    console.press("1")
    expect(console.product(0).locator(".state")).to_contain_text("Approved")
    # Counted here, not read again on every decision.
    expect(console.page.locator("#progress")).to_have_text("38 of 120 reviewed")
    batch_reads = [c for c in console.api.calls if c.path == f"/v1/batches/{'b' * 32}"]
    assert len(batch_reads) == 1


def test_another_reviewer_deciding_first_is_told_and_the_product_reloaded(
    console: Console,
) -> None:
    console.open()
    console.use_key()
    console.api.find(f"{1:032x}")["review"].update(status="rejected", reason="seen")
    console.api.refusals.append(
        (409, {"error": {"code": "decision_changed",
                         "message": "another decision was recorded on this generation first",
                         "details": [{"field": "decision", "review": {}}],
                         "request_id": "r"}})
    )  # fmt: skip

    console.press("1")

    status = console.page.get_by_role("status")
    expect(status).to_contain_text("someone else decided first")
    expect(status).to_contain_text("another decision was recorded on this generation first")
    expect(status).to_contain_text("(decision_changed)")
    expect(console.product(0).locator(".state")).to_have_text("Rejected: seen")
    assert console.api.calls[-1].path == f"/v1/generations/{1:032x}"


HOSTILE = [job(1, prompt=XSS, metadata={XSS: XSS}), job(2)]


@pytest.mark.parametrize("jobs", [HOSTILE])
def test_user_text_is_only_ever_text(console: Console) -> None:
    console.open()
    console.page.get_by_label("Reviewer").fill(XSS)
    console.use_key()
    first = console.product(0)

    expect(first.locator("dd.prompt")).to_have_text(XSS)
    expect(first.locator("dt.meta")).to_have_text([XSS])
    expect(first.locator("dd.meta")).to_have_text([XSS])
    console.press("1")
    expect(first.locator(".state")).to_have_text(
        f"Approved variant 1, published as published/{1:032x}.png by {XSS}"
    )
    console.api.refusals.append(
        (422, {"error": {"code": "invalid_request", "message": XSS,
                         "details": [{"field": XSS, "reason": XSS}], "request_id": "r"}})
    )  # fmt: skip
    console.press("2")
    expect(console.page.get_by_role("status").locator("li")).to_have_text(f"{XSS}: {XSS}")

    expect(console.page.get_by_text(XSS).first).to_be_visible()
    assert console.page.locator("img[src='x']").count() == 0
    assert console.page.evaluate("() => document.querySelectorAll('[onerror]').length") == 0


@pytest.mark.parametrize(
    "jobs",
    [[job(1, source_url="javascript:alert(1)", results=[
        dict(job(1)["results"][0], url="data:image/png;base64,AAAA", thumbnail_url=None)
    ])]],
)  # fmt: skip
def test_only_web_urls_become_image_sources(console: Console) -> None:
    console.open()
    console.use_key()

    images = console.product(0).locator("img")
    expect(images).to_have_count(2)
    assert [images.nth(i).get_attribute("src") for i in range(2)] == [None, None]


def test_the_policy_is_enforced(console: Console) -> None:
    console.open()

    ran = console.page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.injected = true";
          document.head.append(script);
          return window.injected === true;
        }"""
    )

    assert ran is False
    expect(console.page.locator("body")).to_be_visible()
    console.page.wait_for_timeout(100)  # the violation is reported asynchronously
    assert [p for p in console.problems if p.startswith("CSP violation: script-src")]
    console.problems.clear()


def test_under_a_stage_prefix_the_api_is_called_under_it_too(console: Console) -> None:
    console.open("/prod/console")
    console.use_key()

    assert {call.path for call in console.api.calls} >= {"/prod/v1/generations", "/prod/v1/batches"}
