"""`backdrop batch` as a user runs it (a separate process) against the local stack: a
batch over a catalogue folder started, followed to its end, summed up; a refusal is one
line and exit code 2."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import httpx

from tests.conftest import image_bytes
from tests.e2e.conftest import Local
from tests.e2e.test_client_cli import backdrop, one_line


def test_start_with_watch_follows_a_prefix_batch_to_its_summary(
    stack: Local, tmp_path: Path
) -> None:
    keys = [f"catalog/cli-batch/p{n}.png" for n in range(3)]
    for key in keys:
        stack.upload(key, image_bytes("PNG"))

    result = backdrop(
        stack,
        tmp_path,
        "batch", "start", "--prefix", "catalog/cli-batch/", "--count", "1", "--watch",
        "--interval", "0.5",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    batch_id, status, items, report = result.stdout.splitlines()
    assert re.fullmatch(rf"batch {batch_id}: succeeded in \d+ s", status), status
    assert items == "  3 items: 3 succeeded, 0 failed, 0 skipped"
    assert report.startswith("  report: http://127.0.0.1:")
    # Off a terminal the progress is a few plain lines on stderr, the last at the end.
    assert result.stderr.splitlines()[-1].startswith("[####################] 3/3 items")
    rows = list(csv.DictReader(io.StringIO(httpx.get(report.split()[-1]).text)))
    assert sorted(row["key"] for row in rows) == keys
    assert {row["status"] for row in rows} == {"succeeded"}
    batch = stack.api.get(f"/v1/batches/{batch_id}").json()
    assert (batch["status"], batch["options"]["count"]) == ("succeeded", 1)


def test_a_prefix_the_api_refuses_is_one_line_and_exit_2(stack: Local, tmp_path: Path) -> None:
    result = backdrop(stack, tmp_path, "batch", "start", "--prefix", "photos/", "--watch")

    assert result.returncode == 2
    assert result.stdout == ""
    line = one_line(result)
    assert line.startswith(
        "backdrop batch start: the API answered 422 invalid_request: the request is invalid "
        "(prefix: must be under "
    ), line
