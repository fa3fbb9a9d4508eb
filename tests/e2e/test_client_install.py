"""The command-line client installed on its own, as a user of a deployed stack would (`pip
install ./client` into a fresh virtual environment): it brings httpx and Pillow and nothing
of the service or the local stack, offers only the client commands, and runs a job to its
end against the local stack."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from PIL import Image

from tests.e2e.conftest import Local, sample

pytestmark = pytest.mark.e2e

CLIENT = Path(__file__).resolve().parents[2] / "client"
# What must never come with the client: the service, the local stack and theirs.
FORBIDDEN = {"backdrop", "backdrop-local", "moto", "werkzeug", "boto3", "botocore", "pydantic"}


def _uv() -> list[str]:
    """uv from the dev environment (next to this Python), else `python -m uv`."""
    found = shutil.which("uv", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "uv"]


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    # Nothing of the dev environment leaks in: no VIRTUAL_ENV for uv to pick instead.
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=240, env=env, check=False
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="session")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with only the client installed (once per session)."""
    venv = tmp_path_factory.mktemp("client-venv") / "venv"
    _run([*_uv(), "venv", str(venv), "--python", sys.executable])
    python = str(venv / "bin" / "python")
    # Built anew from the checkout, never a build uv cached from older sources.
    fresh = ["--reinstall-package", "backdrop-client"]
    _run([*_uv(), "pip", "install", "--python", python, *fresh, str(CLIENT)])
    return venv


def test_the_venv_holds_the_client_httpx_pillow_and_their_dependencies_alone(
    client_venv: Path,
) -> None:
    python = str(client_venv / "bin" / "python")
    frozen = _run([*_uv(), "pip", "freeze", "--python", python]).stdout
    # One line each: "name==version", or "name @ file:///..." for the client itself.
    names = (line.split("==")[0].split(" @ ")[0] for line in frozen.splitlines() if line)
    installed = {canonicalize_name(name) for name in names}
    # What backdrop-client requires, and what those require, as that venv's metadata says.
    requires = json.loads(
        _run(
            [
                python,
                "-c",
                "import importlib.metadata as m, json; print(json.dumps("
                "{d.metadata['Name']: d.requires or [] for d in m.distributions()}))",
            ]
        ).stdout
    )
    requires = {canonicalize_name(name): value for name, value in requires.items()}
    needed, todo = set(), ["backdrop-client"]
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        for text in requires.get(name, []):
            requirement = Requirement(text)
            # The same interpreter as this one: its markers evaluate alike here.
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))

    assert {"backdrop-client", "httpx", "pillow"} <= installed
    assert installed == needed, f"installed beyond the client's needs: {installed - needed}"
    assert not installed & FORBIDDEN


def test_help_lists_the_client_commands_only(client_venv: Path) -> None:
    result = _run([str(client_venv / "bin" / "backdrop"), "--help"])

    assert "{generate,jobs,cancel,batch,usage}" in result.stdout
    # The commands listed, one a line: none of the local stack's (local, demo, emulator...).
    listed = re.findall(r"^    (\w+) ", result.stdout, re.MULTILINE)
    assert listed == ["generate", "jobs", "cancel", "batch", "usage"]


def test_importing_the_client_loads_nothing_of_the_service_or_the_stack(
    client_venv: Path,
) -> None:
    check = (
        "import backdrop_client.cli, sys; "
        "assert not any(m.split('.')[0] in "
        "{'moto','werkzeug','boto3','backdrop','backdrop_local'} for m in sys.modules), "
        "sorted(sys.modules)"
    )
    _run([str(client_venv / "bin" / "python"), "-c", check])


def test_the_installed_client_runs_a_job_to_its_end(
    client_venv: Path, stack: Local, tmp_path: Path
) -> None:
    photo = tmp_path / "mug.png"
    photo.write_bytes(sample("mug"))
    env = {key: value for key, value in os.environ.items() if not key.startswith("BACKDROP_API_")}
    env |= {"BACKDROP_API_URL": stack.ready["api_url"], "BACKDROP_API_KEY": stack.ready["api_key"]}

    command = [str(client_venv / "bin" / "backdrop"), "generate", str(photo)]
    result = subprocess.run(
        [*command, "--prompt", "on oak", "--count", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    paths = [tmp_path / line for line in result.stdout.splitlines()]
    assert len(paths) == 2
    (job_id,) = {path.parent.name for path in paths}
    for path in paths:
        assert path.parent == tmp_path / "backdrop-results" / job_id
        with Image.open(path) as image:
            assert image.format == "JPEG"
    job = stack.api.get(f"/v1/generations/{job_id}").json()
    assert job["status"] == "succeeded"
    assert job["request"]["prompt"] == "on oak"
