"""A Python client generated from the committed openapi.json (openapi-python-client, as a
user would make one) comes out with no warning and runs a job to its end on the local stack:
upload the photo, ask for a generation, read it until it succeeds."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import TERMINAL, Local, sample

pytestmark = pytest.mark.e2e

DOCUMENT = Path(__file__).parents[2] / "openapi.json"
PACKAGE = "backdrop_api"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("generated")
    config = root / "config.yaml"
    config.write_text(f"package_name_override: {PACKAGE}\nproject_name_override: backdrop-api\n")
    bin_dir = Path(sys.executable).parent  # the generator formats its output with ruff
    run = subprocess.run(
        [
            str(bin_dir / "openapi-python-client"), "generate",
            "--path", str(DOCUMENT),
            "--config", str(config),
            "--meta", "none",
            "--output-path", str(root / PACKAGE),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
        check=False,
    )  # fmt: skip
    sys.path.insert(0, str(root))
    try:
        yield run.stdout + run.stderr, root
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_the_generator_warns_of_nothing(generated: tuple[str, Path]) -> None:
    output, root = generated
    assert output.strip().splitlines() == [f"Generating {root / PACKAGE}"], output
    # One module per tag, one function per operationId.
    modules = {
        p.relative_to(root / PACKAGE / "api").as_posix()
        for p in (root / PACKAGE / "api").rglob("*.py")
    }
    assert {
        "generations/create_generation.py",
        "generations/get_generation.py",
        "generations/list_generations.py",
        "generations/cancel_generation.py",
        "uploads/create_upload.py",
        "batches/create_batch.py",
    } <= modules


def test_the_generated_client_runs_a_job_to_its_end(
    generated: tuple[str, Path], stack: Local
) -> None:
    models: Any = _module("models")
    client = _module("client").Client(
        base_url=stack.ready["api_url"],
        headers={"x-api-key": stack.ready["api_key"]},
        timeout=httpx.Timeout(30),
        raise_on_unexpected_status=True,
    )
    photo = sample()

    ticket = _module("api.uploads.create_upload").sync(
        client=client,
        body=models.UploadRequest(
            content_type=models.UploadRequestContentType.IMAGEPNG, content_length=len(photo)
        ),
    )
    assert isinstance(ticket, models.UploadTicket), ticket
    sent = httpx.post(
        ticket.upload.url,
        data=ticket.upload.fields.to_dict(),
        files={"file": ("mug.png", photo, "image/png")},
    )
    assert sent.status_code in (200, 201, 204), sent.text

    job = _module("api.generations.create_generation").sync(
        client=client,
        body=models.GenerationRequest(image_key=ticket.image_key, count=2, prompt="a marble desk"),
    )
    assert isinstance(job, models.GenerationView), job
    get = _module("api.generations.get_generation")
    deadline = time.monotonic() + 60
    while job.status.value not in TERMINAL and time.monotonic() < deadline:
        time.sleep(0.25)
        job = get.sync(job.id, client=client)
    assert job.status == models.JobStatus.SUCCEEDED, job.to_dict()
    assert len(job.results) == 2
    for result in job.results:
        assert httpx.get(result.url).content[:3] == b"\xff\xd8\xff"  # JPEG, the default

    # An error answers the one error shape, as a model.
    missing = get.sync("0" * 32, client=client)
    assert isinstance(missing, models.ErrorBody)
    assert missing.error.code == "not_found"
