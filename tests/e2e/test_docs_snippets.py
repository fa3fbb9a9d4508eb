"""The documentation's runnable snippets (docs/snippets/, included into its pages) run as a
reader would run them, against the local stack: the shell quick start, the Python client of
the API, the webhook receiver."""

from __future__ import annotations

import base64
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.e2e.conftest import Local, sample

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SNIPPETS = ROOT / "docs" / "snippets"


def _env(stack: Local, **more: str) -> dict[str, str]:
    """The reader's shell: the stack's API in the variables the pages name, this venv's
    commands (`backdrop`) on PATH."""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "API": stack.ready["api_url"],
        "KEY": stack.ready["api_key"],
        "BACKDROP_API_URL": stack.ready["api_url"],
        "BACKDROP_API_KEY": stack.ready["api_key"],
        **more,
    }


BASH = shutil.which("bash")


@pytest.mark.skipif(shutil.which("jq") is None or BASH is None, reason="needs bash and jq")
def test_the_quick_start_runs(stack: Local, tmp_path: Path) -> None:
    assert BASH is not None
    # Run where the repository's paths resolve (the sample photo), writing into tmp_path.
    (tmp_path / "local").symlink_to(ROOT / "local")
    result = subprocess.run(
        [BASH, "-euo", "pipefail", str(SNIPPETS / "quickstart.sh")],
        cwd=tmp_path,
        env=_env(stack),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert '"status": "' in result.stdout
    downloaded = sorted((tmp_path / "backdrop-results").rglob("*.jpg"))
    assert len(downloaded) == 3, result.stdout


def test_the_python_client_runs(stack: Local, tmp_path: Path) -> None:
    photo = tmp_path / "mug.png"
    photo.write_bytes(sample("mug"))
    result = subprocess.run(
        [sys.executable, str(SNIPPETS / "generate.py"), str(photo)],
        cwd=tmp_path,
        env=_env(stack),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    paths = result.stdout.split()
    assert len(paths) == 2
    assert all((tmp_path / path).read_bytes()[:2] == b"\xff\xd8" for path in paths)  # JPEG


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_webhook_receiver_accepts_the_stacks_deliveries(stack: Local) -> None:
    port = _free_port()
    receiver = subprocess.Popen(
        [sys.executable, "-u", str(SNIPPETS / "webhook_receiver.py")],
        env=_env(stack, WEBHOOK_SECRET=stack.ready["webhook_secret"], PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    output = receiver.stdout
    assert output is not None

    def read() -> None:
        for line in output:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        job_id = stack.generate(
            image_base64=base64.b64encode(sample("mug")).decode(),
            count=1,
            webhook_url=f"http://127.0.0.1:{port}/hook",
        )
        assert stack.wait_for_job(job_id)["status"] == "succeeded"
        line = lines.get(timeout=60)
        assert line.split() == [f"msg_{job_id}_succeeded", "generation.succeeded", job_id]
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
