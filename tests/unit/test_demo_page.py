"""The demo's index.html, rendered from plain job views (no stack)."""

from __future__ import annotations

import re

from backdrop_local.demo_page import DemoJob, render_page


def succeeded(**changes: object) -> DemoJob:
    job = DemoJob(
        name="mug",
        trigger="api",
        input_path="api-mug/input.png",
        status="succeeded",
        job_id="0" * 32,
        prompt="on a marble counter",
        provider="picsart",
        result_paths=["api-mug/1.jpg", "api-mug/2.jpg"],
        queued_seconds=3.21,
        waited_seconds=4.56,
    )
    for key, value in changes.items():
        setattr(job, key, value)
    return job


def image_sources(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]*)"', page)


def test_every_text_is_escaped() -> None:
    job = succeeded(name="<b>mug</b>", prompt='<script>alert("x")</script> & "more"')

    page = render_page([job], emulated=True, waited_seconds=5)

    assert "<script>" not in page
    assert "<b>mug</b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;more&quot;" in page
    assert "&lt;b&gt;mug&lt;/b&gt;" in page


def test_a_failed_job_shows_its_error_code_and_message() -> None:
    job = succeeded(
        status="failed",
        result_paths=[],
        error_code="provider_rejected",
        error_message="image <too> small",
    )

    page = render_page([job], emulated=True, waited_seconds=5)

    assert 'class="job bad"' in page
    assert "provider_rejected" in page
    assert "image &lt;too&gt; small" in page
    assert image_sources(page) == ["api-mug/input.png"]  # the input still shows
    assert "0 of 1 jobs succeeded" in page


def test_a_job_that_never_started_still_renders() -> None:
    job = DemoJob(name="bottle", trigger="inbox", input_path="inbox-bottle/input.png")

    page = render_page([job], emulated=True, waited_seconds=180)

    assert "inbox upload" in page
    assert "unknown" in page  # no error code was ever given


def test_images_use_relative_quoted_paths() -> None:
    job = succeeded(input_path="api-my mug/input.png", result_paths=["api-my mug/1.jpg"])

    sources = image_sources(render_page([job], emulated=True, waited_seconds=5))

    assert sources == ["api-my%20mug/input.png", "api-my%20mug/1.jpg"]
    assert not any(s.startswith(("/", "file:", "http")) for s in sources)


def test_page_shows_the_job_details_and_timings() -> None:
    page = render_page([succeeded()], emulated=True, waited_seconds=5)

    for text in ("on a marble counter", "picsart", "HTTPS API", "0" * 32, "3.2 s", "4.6 s"):
        assert text in page
    assert "1 of 1 jobs succeeded" in page


def test_emulator_results_are_labelled_as_stand_ins() -> None:
    emulated = render_page([succeeded()], emulated=True, waited_seconds=5)
    real = render_page([succeeded()], emulated=False, waited_seconds=5)

    assert "not AI output" in emulated
    assert "picsart (local emulator)" in emulated
    assert "not AI output" not in real
    assert "(local emulator)" not in real
