"""The layers of src/backdrop, as `make lint` holds them (pyproject.toml's import-linter
contracts), and what each function loads on a cold start."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from backdrop_local.template import FunctionSpec, Template

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _layered() -> list[str]:
    (layers,) = (c["layers"] for c in CONTRACTS["contracts"] if c["type"] == "layers")
    return [name.strip() for layer in layers for name in layer.replace("|", ":").split(":")]


def _deployed_modules() -> list[str]:
    src = ROOT / "src"
    names = []
    for path in (src / "backdrop").rglob("*.py"):
        parts = path.relative_to(src).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(names)


def test_every_deployed_module_is_in_a_layer() -> None:
    # A module in no layer would escape the contract: every arrow from it is allowed.
    layered = _layered()
    packages = {"backdrop", "backdrop.batches"}  # their __init__ holds no code
    unplaced = [
        name
        for name in _deployed_modules()
        if name not in packages and not any(_within(name, layer) for layer in layered)
    ]
    assert unplaced == []


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree / "src"), str(tree / "local")])}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(ROOT / "pyproject.toml")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "src" / "backdrop", tmp_path / "src" / "backdrop")
    shutil.copytree(ROOT / "local" / "backdrop_local", tmp_path / "local" / "backdrop_local")
    return tmp_path


def _add_import(tree: Path, module: str, line: str) -> None:
    path = tree / "src" / Path(*module.split(".")).with_suffix(".py")
    path.write_text(path.read_text() + f"\n{line}\n")


def test_the_code_as_it_is_keeps_every_contract(tree: Path) -> None:
    answer = _lint_imports(tree)
    assert answer.returncode == 0, answer.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # An arrow pointing up: the batches' data access reaching for the API.
        ("backdrop.batches.store", "import backdrop.api.errors", "backdrop.batches.store"),
        # The contracts reaching for logic.
        ("backdrop.contracts.views", "import backdrop.plan", "backdrop.contracts.views"),
        # A workflow task loading the API's routes.
        ("backdrop.handlers.submit", "import backdrop.api.app", "backdrop.handlers.submit"),
        # Deployed code importing the local stack.
        ("backdrop.storage", "import backdrop_local.cloud", "backdrop.storage"),
    ],
)
def test_an_import_against_the_layers_fails_the_lint(
    tree: Path, module: str, line: str, broken: str
) -> None:
    _add_import(tree, module, line)
    answer = _lint_imports(tree)
    assert answer.returncode != 0
    assert "BROKEN" in answer.stdout
    assert f"{broken} -> " in answer.stdout


# What no function but the one named loads: the modules a cold start would pay for in vain.
ONLY = {
    "aws_lambda_powertools.event_handler": {"ApiFunction"},
    "backdrop.api": {"ApiFunction"},
    "backdrop.plan": {"ApiFunction", "InboxFunction", "RequestFunction", "BatchItemFunction"},
    "backdrop.batches.start": {"ApiFunction"},
    "backdrop.webhooks": {"WebhookFunction"},
    "backdrop.contracts.views": {"ApiFunction", "WebhookFunction"},
    "aws_lambda_powertools.utilities.idempotency": {"ApiFunction"},
    # Powertools' batch loads these when pydantic came first (handlers/sqs.py).
    "aws_lambda_powertools.utilities.parser.models.kafka": set(),
    # Provider clients and httpx come with the first call out, not the cold start.
    "httpx": set(),
    "backdrop.providers.picsart": set(),
    "backdrop.providers.photoroom": set(),
}

CHILD = """\
import importlib, json, sys
module, attribute = sys.argv[1].rsplit(".", 1)
getattr(importlib.import_module(module), attribute).container()
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("spec", Template().functions(), ids=lambda spec: spec.logical_id)
def test_a_function_loads_only_what_it_uses(spec: FunctionSpec) -> None:
    # The function's own environment, as AWS gives it: the template's defaults, a stand-in
    # for each resource's name.
    defaults = Template().parameter_defaults()
    env = {"PATH": os.environ["PATH"], "AWS_DEFAULT_REGION": "us-east-1"}
    for key, value in spec.environment.items():
        ref = value.get("Ref") if isinstance(value, dict) else None
        env[key] = defaults.get(ref, "resource-name") if ref else str(value)
    answer = subprocess.run(
        [sys.executable, "-c", CHILD, spec.handler],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = json.loads(answer.stdout)
    wasted = [
        prefix
        for prefix, functions in ONLY.items()
        if spec.logical_id not in functions and any(_within(name, prefix) for name in loaded)
    ]
    assert wasted == [], f"{spec.logical_id} loads {wasted}"
