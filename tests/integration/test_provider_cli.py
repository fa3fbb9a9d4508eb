"""`backdrop provider status|resume`: the governor's pauses as an operator reads them, and
lifting an out-of-credits pause by hand, on the stack's table (moto)."""

from __future__ import annotations

import argparse
import io
import json
import os
from pathlib import Path

import pytest

from backdrop.governor import DynamoBuckets, Governor, Limit
from backdrop_local import cli, provider_cli
from tests.integration.conftest import Stack


def _run(stack: Stack, monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[int, str, str]:
    table = stack.cloud.environment["GOVERNOR_TABLE"]
    monkeypatch.setattr(provider_cli, "_governor_table", lambda args: table)
    parser = argparse.ArgumentParser()
    provider_cli.add_commands(parser.add_subparsers(dest="command"))
    out, err = io.StringIO(), io.StringIO()
    code = provider_cli.run(parser.parse_args(["provider", *argv]), out, err)
    return code, out.getvalue(), err.getvalue()


def test_status_shows_a_pause_and_resume_lifts_it(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    governor = Governor(DynamoBuckets(stack.cloud.environment["GOVERNOR_TABLE"]))
    governor.out_of_credits("picsart", Limit(60, 2), 3)

    code, out, _ = _run(stack, monkeypatch, "status")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("picsart: out of credits since 20")
    assert "resumes at a balance of 3" in lines[0]
    assert lines[1] == "photoroom: not called yet"

    assert _run(stack, monkeypatch, "resume", "picsart")[:2] == (
        0,
        "picsart: resumed: new work goes again\n",
    )
    assert governor.credits("picsart").out_since is None
    assert _run(stack, monkeypatch, "status")[1].splitlines()[0] == "picsart: calling"
    assert "was not out of credits" in _run(stack, monkeypatch, "resume", "picsart")[1]


def test_resume_of_an_unknown_provider_names_the_providers(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = _run(stack, monkeypatch, "resume", "dalle")
    assert (code, out) == (2, "")
    assert err == (
        "backdrop provider resume: unknown provider 'dalle'; the providers are: "
        "picsart, photoroom\n"
    )


def test_a_missing_ready_file_says_how_to_start_a_stack(tmp_path: Path) -> None:
    code = cli.main(["provider", "status", "--ready-file", str(tmp_path / "none.json")])
    assert code == 2


def test_the_ready_file_points_the_command_at_the_local_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready = tmp_path / "ready.json"
    endpoint = "http://127.0.0.1:4566"
    ready.write_text(
        json.dumps({"aws_endpoint_url": endpoint, "region": "us-east-1", "governor_table": "g"})
    )
    # Set first, so the test's end restores each as it was (the command changes them).
    for name in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID"):
        monkeypatch.setenv(name, "before")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "before")
    args = argparse.Namespace(stack_name=None, ready_file=ready, region=None)

    assert provider_cli._governor_table(args) == "g"
    assert os.environ["AWS_ENDPOINT_URL"] == endpoint
