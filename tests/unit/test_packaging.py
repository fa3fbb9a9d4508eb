"""What `sam build` packages: our code alone in each function, reachable from a handler and
free of anything dev-only; third-party code pinned, with hashes, in the layer."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from backdrop_local.template import Template
from tests.conftest import ROOT

TEMPLATE = Template().body
CODE_URI = ROOT / TEMPLATE["Globals"]["Function"]["CodeUri"]
# Imported only by the local stack and the tests; never shipped to Lambda.
DEV_ONLY = {"moto", "werkzeug", "yaml", "backdrop_local", "respx", "pytest", "tests"}
LOCK = ROOT / "dependencies" / "requirements.txt"
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath", "urllib3"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in CODE_URI.rglob("*.py"):
        parts = path.relative_to(CODE_URI).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: Path) -> set[str]:
    """Every module `path` imports, anywhere in it (lazy imports inside functions too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return names


def test_the_functions_code_is_our_package_alone() -> None:
    entries = {p.name for p in CODE_URI.iterdir() if p.name != "__pycache__"}
    # No requirements.txt: sam would install the dependencies into every function again.
    assert entries == {"backdrop"}


def test_no_deployed_module_imports_dev_only_code() -> None:
    offenders = {
        (name, imported)
        for name, path in _modules().items()
        for imported in _imports(name, path)
        if imported.split(".")[0] in DEV_ONLY
    }
    assert offenders == set()


def test_every_deployed_module_is_reachable_from_a_handler() -> None:
    modules = _modules()
    handlers = {
        props["Handler"].rpartition(".")[0]
        for resource in TEMPLATE["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
        for props in [resource["Properties"]]
    }
    assert handlers <= set(modules), handlers - set(modules)
    reached: set[str] = set()
    pending = list(handlers)
    while pending:
        name = pending.pop()
        if name in reached:
            continue
        reached.add(name)
        # Importing a.b.c runs a/__init__ and a/b/__init__ too.
        parents = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        pending += [m for m in _imports(name, modules[name]) | parents if m in modules]
    assert set(modules) - reached == set()


def _locked() -> dict[str, tuple[Version, int]]:
    """Pinned name -> (version, number of hashes)."""
    text = LOCK.read_text().replace("\\\n", " ")
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip() if not line.lstrip().startswith("--") else line
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", line.strip())
        if match:
            name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
            pins[name] = (Version(match.group(2)), line.count("--hash=sha256:"))
    return pins


def test_runtime_dependencies_are_pinned_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _locked()
    for dependency in map(Requirement, project["dependencies"]):
        name = dependency.name.lower()
        if name in RUNTIME_PROVIDED:
            assert name not in pins, f"{name} comes with the Lambda runtime"
            continue
        assert name in pins, f"{name} is not in {LOCK.name}: run make lock"
        version, _ = pins[name]
        assert version in dependency.specifier, f"{name}=={version} is outside {dependency}"
    assert all(hashes > 0 for _, hashes in pins.values())
    assert RUNTIME_PROVIDED.isdisjoint(pins)


def test_every_function_uses_the_dependencies_layer() -> None:
    layer = TEMPLATE["Resources"]["DependenciesLayer"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert (ROOT / layer["Properties"]["ContentUri"] / "Makefile").is_file()
    assert TEMPLATE["Globals"]["Function"]["Layers"] == [{"Ref": "DependenciesLayer"}]
