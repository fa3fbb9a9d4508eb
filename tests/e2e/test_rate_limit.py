"""A drop larger than the provider's rate limit allows at once, through `backdrop local`:
the emulator and the rate governor both allow 60 requests a minute. Every job ends well,
each image is paid for once, and no job fails for throttling."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backdrop_local import burst
from tests.e2e.conftest import Local, running_local

pytestmark = pytest.mark.e2e
RATE = 60


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    with running_local(
        tmp_path_factory.mktemp("limited"),
        "--param", f"PicsartRequestsPerMinute={RATE}",
        "--param", "PollFirstWaitSeconds=1",
        "--param", "PollIntervalSeconds=1",
        "--emulate", f"rate_limit_per_minute={RATE}",
        "--emulate", "processing_seconds=1-3",
    ) as stack:  # fmt: skip
        yield stack


def test_a_drop_over_the_rate_limit_ends_with_every_job_paid_once(limited: Local) -> None:
    # Given 24 images at once: more than the 5-request burst, most of half a minute's 30
    figures = burst.run(limited.ready, count=24, duplicates=2, metadata={"count": "1"}, timeout=240)

    print(f"\n{figures}")
    assert figures.jobs == 24
    assert figures.succeeded == 24
    assert figures.failures == {}
    # Each image accepted (paid) exactly once, whatever was queued, paused or repeated
    assert figures.submissions == 24
    assert figures.dead_letters == 0
