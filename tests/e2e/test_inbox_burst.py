"""A catalogue-sized drop through `backdrop local`: every image once, whatever is repeated."""

from __future__ import annotations

import pytest

from backdrop_local import burst
from tests.e2e.conftest import Local

pytestmark = pytest.mark.e2e


def test_fifty_images_with_repeated_notifications_make_fifty_jobs(stack: Local) -> None:
    # Given 50 images uploaded at once, 5 of their notifications delivered a second time
    figures = burst.run(stack.ready, count=50, duplicates=5, metadata={"count": "1"}, timeout=150)

    # Then each image made exactly one job, one paid generation and one result set
    print(f"\n{figures}")
    assert figures.jobs == 50
    assert figures.succeeded == 50
    assert figures.failed == 0
    assert figures.submissions == 50
    assert figures.dead_letters == 0
