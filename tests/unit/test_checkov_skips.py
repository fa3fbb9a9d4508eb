"""Every checkov skip in template.yaml names one check and says why. checkov itself accepts
a skip without a comment (it prints "No comment provided"), so this is where that fails."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest

from backdrop_local.template import TEMPLATE_PATH, Template

PATH = TEMPLATE_PATH
TEMPLATE = Template(PATH)
CHECK_ID = re.compile(r"CKV2?_AWS_\d+")
SKIPS: list[tuple[str, Any]] = [
    (logical_id, skip)
    for logical_id, resource in TEMPLATE.resources.items()
    for skip in (resource.get("Metadata") or {}).get("checkov", {}).get("skip", [])
]


def test_the_template_has_skips() -> None:
    # The parametrized test below passes vacuously if the skips move or are misspelt.
    assert SKIPS


@pytest.mark.parametrize(
    ("logical_id", "skip"), SKIPS, ids=[f"{r}:{s.get('id')}" for r, s in SKIPS]
)
def test_each_skip_names_a_check_and_gives_a_reason(logical_id: str, skip: Any) -> None:
    assert isinstance(skip, dict), skip
    assert set(skip) == {"id", "comment"}, skip
    assert CHECK_ID.fullmatch(str(skip["id"])), skip["id"]
    comment = str(skip["comment"]).strip()
    assert len(comment.split()) >= 6, f"{logical_id} {skip['id']}: say why, in a sentence"


def test_no_check_is_skipped_twice_on_one_resource() -> None:
    counts = Counter((logical_id, skip["id"]) for logical_id, skip in SKIPS)
    assert [key for key, n in counts.items() if n > 1] == []


def test_skips_live_only_in_resource_metadata() -> None:
    # checkov also honours `# checkov:skip=ID:reason` comments and a `bridgecrew:` metadata
    # key, and the CLI's --skip-check: none of them would be reviewed with the resource.
    text = PATH.read_text()
    assert "checkov:skip" not in text
    assert not any("bridgecrew" in (r.get("Metadata") or {}) for r in TEMPLATE.resources.values())


def test_lint_runs_checkov_on_the_template_with_no_skip_from_the_command_line() -> None:
    makefile = (PATH.parent / "Makefile").read_text()
    (command,) = [line for line in makefile.splitlines() if "$(CHECKOV) -f" in line]
    assert "template.yaml" in command
    assert "--skip-check" not in command
    assert "--soft-fail" not in command
