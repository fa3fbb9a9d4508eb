"""A test-only function for tests/integration/test_local_wiring.py: it records every event
it gets (the functions run in the test's process, so the test reads the list)."""

from __future__ import annotations

import threading
from typing import Any

received: list[dict[str, Any]] = []
_lock = threading.Lock()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with _lock:
        received.append(event)
    return {"recorded": True}
