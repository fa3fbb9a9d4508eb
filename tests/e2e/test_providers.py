"""Both providers through `backdrop local`: one request shape, results of one shape."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import Local, sample

pytestmark = pytest.mark.e2e


def test_the_same_body_works_with_either_provider(stack: Local) -> None:
    stack.upload("uploads/e2e/bottle.png", sample("bottle"))
    body = {"image_key": "uploads/e2e/bottle.png", "prompt": "on a mossy rock", "count": 3}

    jobs = {
        provider: stack.wait_for_job(stack.generate(**body, provider=provider))
        for provider in ("picsart", "photoroom")
    }

    for provider, job in jobs.items():
        assert job["status"] == "succeeded", job
        assert job["provider"] == provider
        assert [r["index"] for r in job["results"]] == [0, 1, 2]
        assert {r["content_type"] for r in job["results"]} == {"image/jpeg"}
        assert all(urlsplit(r["url"]).path.endswith(f"/{r['index']}.jpg") for r in job["results"])
    assert set(jobs["picsart"]) == set(jobs["photoroom"])
    assert [r["seed"] for r in jobs["picsart"]["results"]] == [None] * 3
    assert len({r["seed"] for r in jobs["photoroom"]["results"]}) == 3


def test_photoroom_seeds_repeat_and_guidance_is_used(stack: Local) -> None:
    stack.upload("uploads/e2e/mug.png", sample("mug"))
    stack.upload("uploads/e2e/look.png", sample("sneaker"))
    body = {"image_key": "uploads/e2e/mug.png", "provider": "photoroom", "format": "PNG"}

    first = stack.wait_for_job(stack.generate(**body, seed=55994449, count=2))
    again = stack.wait_for_job(stack.generate(**body, seed=55994449, count=2))
    other = stack.wait_for_job(stack.generate(**body, seed=48672244, count=2))
    guided = stack.wait_for_job(
        stack.generate(
            **body,
            seed=55994449,
            count=2,
            guidance={"image_key": "uploads/e2e/look.png", "scale": 1},
        )
    )

    assert [r["seed"] for r in first["results"]] == [55994449, 55994450]
    assert stack.download(first) == stack.download(again)
    assert stack.download(first) != stack.download(other)
    assert guided["status"] == "succeeded", guided
    assert stack.download(guided) != stack.download(first)
    assert stack.stats()["photoroom"]["calls"] == 8


def test_photoroom_errors_fail_the_job_clearly(stack: Local) -> None:
    # A wrong key is never retried (an empty account is a wait: tests/integration/test_credits.py).
    stack.emulator("script", {"photoroom_edit": [403]})
    stack.upload("uploads/e2e/mug.png", sample("mug"))

    job = stack.wait_for_job(
        stack.generate(image_key="uploads/e2e/mug.png", provider="photoroom", count=1)
    )

    assert job["status"] == "failed"
    assert job["error"]["code"] == "provider_auth"
