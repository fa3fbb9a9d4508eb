"""What a release carries: the Serverless Application Repository metadata in template.yaml
is complete and valid, the files it names exist, one version is named everywhere
(pyproject.toml, the template, the newest CHANGELOG entry), and samconfig.toml's
environments deploy what the template takes."""

from __future__ import annotations

import re
import shlex
import tomllib
from typing import Any

import pytest

from backdrop_local.template import Template
from tests.conftest import ROOT

SEMVER = r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?"
# Every field `sam publish` and a public application need.
REQUIRED = (
    "Name",
    "Description",
    "Author",
    "SpdxLicenseId",
    "LicenseUrl",
    "ReadmeUrl",
    "Labels",
    "HomePageUrl",
    "SemanticVersion",
    "SourceCodeUrl",
)


@pytest.fixture(scope="module")
def application() -> dict[str, Any]:
    return Template().body["Metadata"]["AWS::ServerlessRepo::Application"]  # type: ignore[no-any-return]


def _project() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]  # type: ignore[no-any-return]


def _newest_changelog_entry() -> tuple[str, str]:
    """The version and date of the first released entry ([Unreleased] skipped)."""
    for line in (ROOT / "CHANGELOG.md").read_text().splitlines():
        match = re.fullmatch(r"## \[(?P<version>[^\]]+)\](?: - (?P<date>\S+))?", line.strip())
        if match and match["version"].lower() != "unreleased":
            return match["version"], match["date"] or ""
    raise AssertionError("CHANGELOG.md has no released entry")


def test_every_field_the_repository_needs_is_there(application: dict[str, Any]) -> None:
    missing = [name for name in REQUIRED if not application.get(name)]
    assert not missing, f"AWS::ServerlessRepo::Application lacks {missing}"


def test_the_fields_follow_the_repository_s_rules(application: dict[str, Any]) -> None:
    assert re.fullmatch(r"[A-Za-z0-9-]{1,140}", application["Name"])
    assert 1 <= len(application["Description"]) <= 256
    assert re.fullmatch(r"[A-Za-z0-9-]{1,127}", application["Author"])
    labels = application["Labels"]
    assert 1 <= len(labels) <= 10
    assert all(re.fullmatch(r"[A-Za-z0-9+\-_:/@]{1,127}", label) for label in labels)
    assert re.fullmatch(SEMVER, application["SemanticVersion"])
    for url in ("HomePageUrl", "SourceCodeUrl"):
        assert application[url].startswith("https://")


def test_the_files_it_names_exist(application: dict[str, Any]) -> None:
    for field in ("LicenseUrl", "ReadmeUrl"):
        path = ROOT / application[field]
        assert path.is_file(), f"{field}: {path} does not exist"
        assert path.read_text().strip()


def test_the_license_is_the_one_pyproject_declares(application: dict[str, Any]) -> None:
    assert application["SpdxLicenseId"] == _project()["license"]
    license_text = (ROOT / application["LicenseUrl"]).read_text()
    assert license_text.startswith(f"{application['SpdxLicenseId']} License")


def test_one_version_everywhere(application: dict[str, Any]) -> None:
    version, date = _newest_changelog_entry()

    assert application["SemanticVersion"] == _project()["version"]
    assert version == _project()["version"]
    client = tomllib.loads((ROOT / "client" / "pyproject.toml").read_text())["project"]
    assert client["version"] == _project()["version"], "client/pyproject.toml's version"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", date), "the newest entry needs its date"


def _samconfig() -> dict[str, Any]:
    return tomllib.loads((ROOT / "samconfig.toml").read_text())


@pytest.mark.parametrize(
    ("environment", "stack"), [("default", "backdrop"), ("dev", "backdrop-dev")]
)
def test_each_sam_environment_names_its_stack_and_what_deploying_needs(
    environment: str, stack: str
) -> None:
    config = _samconfig()[environment]

    assert config["global"]["parameters"]["stack_name"] == stack
    deploy = config["deploy"]["parameters"]
    # SAM policy templates make IAM roles (no custom names, no nested applications).
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True
    assert deploy["confirm_changeset"] is (environment == "default")


@pytest.mark.parametrize("environment", ["default", "dev"])
def test_parameter_overrides_are_parameters_the_template_accepts(environment: str) -> None:
    overrides = _samconfig()[environment]["deploy"]["parameters"].get("parameter_overrides", "")
    parameters = Template().body["Parameters"]

    for pair in shlex.split(overrides):
        name, _, value = pair.partition("=")
        assert name in parameters, f"{environment}: {name} is not a template parameter"
        spec = parameters[name]
        if "AllowedValues" in spec:
            assert value in [str(v) for v in spec["AllowedValues"]], pair
        if spec["Type"] == "Number":
            assert spec.get("MinValue", float("-inf")) <= float(value), pair
            assert float(value) <= spec.get("MaxValue", float("inf")), pair
