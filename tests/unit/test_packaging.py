"""What `sam build` packages must be what the code needs."""

from __future__ import annotations

import tomllib

from tests.conftest import ROOT


def test_lambda_requirements_mirror_the_runtime_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = (ROOT / "src" / "requirements.txt").read_text().splitlines()
    packaged = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    # boto3 is part of the Lambda Python runtime.
    assert packaged == {d for d in project["dependencies"] if not d.startswith("boto3")}
