"""`backdrop generate` and `backdrop jobs` as a user runs them (a separate process) against
the local stack: results downloaded, large photos uploaded, every problem one line on
stderr with its exit code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e.conftest import Local, sample


def backdrop(
    stack: Local, cwd: Path, *arguments: str, connect: bool = True
) -> subprocess.CompletedProcess[str]:
    """The command, connected to the stack through the environment (or not at all)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BACKDROP_API_")}
    if connect:
        env |= {
            "BACKDROP_API_URL": stack.ready["api_url"],
            "BACKDROP_API_KEY": stack.ready["api_key"],
        }
    return subprocess.run(
        [sys.executable, "-m", "backdrop_local.cli", *arguments],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "mug.png"
    path.write_bytes(sample("mug"))
    return path


def test_generate_waits_and_downloads_the_results(
    stack: Local, tmp_path: Path, photo: Path
) -> None:
    result = backdrop(stack, tmp_path, "generate", str(photo), "--prompt", "on oak", "--count", "2")

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    paths = [tmp_path / line for line in result.stdout.splitlines()]
    assert len(paths) == 2
    (job_id,) = {path.parent.name for path in paths}
    assert all(path.parent == tmp_path / "backdrop-results" / job_id for path in paths)
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "JPEG"
    job = stack.api.get(f"/v1/generations/{job_id}").json()
    assert job["status"] == "succeeded"
    assert job["request"]["prompt"] == "on oak"
    assert job["request"]["image_key"].startswith("uploads/")  # sent inline, stored there


def test_a_photo_over_4_mb_is_uploaded_with_a_form(stack: Local, tmp_path: Path) -> None:
    big = tmp_path / "noise.png"
    Image.frombytes("RGB", (1400, 1100), os.urandom(1400 * 1100 * 3)).save(big)
    assert big.stat().st_size > 4 * 1024 * 1024

    result = backdrop(
        stack, tmp_path, "generate", str(big), "--count", "1", "--format", "png", "--out", "out"
    )

    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    path = tmp_path / line
    assert path.parent.parent == tmp_path / "out"
    assert path.suffix == ".png"
    job = stack.api.get(f"/v1/generations/{path.parent.name}").json()
    assert job["request"]["image_key"].startswith("uploads/")
    assert job["request"]["format"] == "PNG"


def test_no_wait_prints_the_job_ids_and_the_ready_file_connects(
    stack: Local, tmp_path: Path, photo: Path
) -> None:
    # What `backdrop local` writes by default, in the directory the command runs in.
    (tmp_path / ".backdrop").mkdir()
    (tmp_path / ".backdrop" / "ready.json").write_text(json.dumps(stack.ready))

    result = backdrop(stack, tmp_path, "generate", "--no-wait", str(photo), connect=False)

    assert result.returncode == 0, result.stderr
    (job_id,) = result.stdout.split()
    assert stack.wait_for_job(job_id)["status"] == "succeeded"
    assert not (tmp_path / "backdrop-results").exists()


def test_a_failed_job_exits_1_and_shows_in_jobs_status_failed(
    stack: Local, tmp_path: Path, photo: Path
) -> None:
    stack.emulator("script", {"photoroom_edit": [400]})

    result = backdrop(
        stack, tmp_path, "generate", str(photo), "--provider", "photoroom", "--count", "1"
    )

    assert result.returncode == 1
    assert result.stdout == ""
    line = one_line(result)
    match = re.fullmatch(r"backdrop generate: job (\w+) failed: provider_rejected: .+", line)
    assert match, line
    listed = backdrop(stack, tmp_path, "jobs", "--status", "failed", "--limit", "100")
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["id", "status", "trigger", "provider", "created", "images", "error"]
    assert all(row.split()[1] == "failed" for row in rows)
    (ours,) = [row.split() for row in rows if row.startswith(match[1])]
    assert ours[3] == "photoroom"
    assert ours[-1] == "provider_rejected"


@pytest.mark.parametrize(
    ("case", "exit_code", "message"),
    [
        ("missing", 2, r"backdrop generate: .*nowhere\.png: no such file"),
        ("not an image", 2, r"backdrop generate: notes\.png: not an image \(JPEG, PNG or WEBP.*"),
        ("wrong key", 2, r"backdrop generate: the API answered 403 forbidden: .*--api-key.*"),
        ("unreachable", 3, r"backdrop generate: cannot reach the API at http://127\.0\.0\.1:9 .*"),
        ("refused option", 2, r".*answered 422 invalid_request: .*count: .*"),
        ("bad usage", 2, r".*argument --count: expected a positive whole number, got '-1'"),
    ],
)
def test_bad_input_is_one_line_and_an_exit_code(
    stack: Local, tmp_path: Path, photo: Path, case: str, exit_code: int, message: str
) -> None:
    (tmp_path / "notes.png").write_text("these are not pixels")
    arguments = {
        "missing": [str(tmp_path / "nowhere.png")],
        "not an image": [str(tmp_path / "notes.png")],
        "wrong key": ["--api-key", "not-the-key", str(photo)],
        "unreachable": ["--api-url", "http://127.0.0.1:9", str(photo)],
        "refused option": ["--count", "11", str(photo)],
        "bad usage": ["--count", "-1", str(photo)],
    }[case]
    before = stack.stats()["picsart"]["submissions"]

    result = backdrop(stack, tmp_path, "generate", *arguments)

    assert result.returncode == exit_code, result.stderr
    line = result.stderr.splitlines()[-1] if case == "bad usage" else one_line(result)
    assert re.fullmatch(message, line), line
    assert result.stdout == ""
    assert stack.stats()["picsart"]["submissions"] == before


def test_without_a_stack_to_talk_to_the_command_says_how_to_name_one(
    stack: Local, tmp_path: Path
) -> None:
    result = backdrop(stack, tmp_path, "jobs", connect=False)

    assert result.returncode == 2
    assert "BACKDROP_API_URL" in one_line(result)


def test_cancel_stops_a_running_job_and_a_finished_one_says_so(
    stack: Local, tmp_path: Path, photo: Path
) -> None:
    # A provider that keeps the job processing (submits not held, polls stuck).
    stack.emulator("settings", {"honour_prefer_wait": False})
    stack.emulator("script", {"picsart_poll": ["stuck"] * 3})
    started = backdrop(stack, tmp_path, "generate", str(photo), "--no-wait")
    job_id = started.stdout.split()[0]
    deadline = time.monotonic() + 30
    while stack.api.get(f"/v1/generations/{job_id}").json()["status"] != "running":
        assert time.monotonic() < deadline, "the job never started running"
        time.sleep(0.2)

    result = backdrop(stack, tmp_path, "cancel", job_id)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{job_id} canceled: canceled by its caller")
    assert "may still charge" in result.stdout  # Picsart had accepted it
    job = stack.wait_for_job(job_id)
    assert job["status"] == "canceled"
    while not any(e["detail"].get("job_id") == job_id for e in stack.events()):
        assert time.monotonic() < deadline + 30, "no event"
        time.sleep(0.2)
    announced = {e["detail-type"] for e in stack.events() if e["detail"].get("job_id") == job_id}
    assert announced == {"Generation Canceled"}

    stack.emulator("reset")  # the provider answers normally again
    stack.emulator("settings", {"honour_prefer_wait": True})
    done = backdrop(stack, tmp_path, "generate", str(photo), "--no-wait")
    finished = stack.wait_for_job(done.stdout.split()[0])
    assert finished["status"] == "succeeded"
    late = backdrop(stack, tmp_path, "cancel", finished["id"])
    assert late.returncode != 0
    assert "already finished (succeeded)" in one_line(late)
