"""The documentation: its generated pages are what the generator writes now (errors from
backdrop/error_codes.py, configuration from template.yaml, the API from openapi.json), and
every page on disk is in the site's nav (mkdocs.yml), so none is built unreachable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from backdrop.error_codes import CATALOGUE
from backdrop_local import docs_tables

DOCS = docs_tables.ROOT / "docs"


@pytest.mark.parametrize(
    "page", sorted(docs_tables.pages()), ids=lambda page: page.relative_to(DOCS).as_posix()
)
def test_each_generated_page_is_what_the_generator_writes(page: Path) -> None:
    assert page.exists(), f"{page.relative_to(docs_tables.ROOT)} is missing: run `make docs-tables`"
    assert page.read_text() == docs_tables.pages()[page], (
        f"{page.relative_to(docs_tables.ROOT)} differs from what it is generated from: "
        "run `make docs-tables`"
    )


def test_the_generated_pages_cover_every_code_parameter_and_operation() -> None:
    errors = docs_tables.errors_page()
    for code in CATALOGUE:
        assert f"`{code.name}`" in errors, code.name
    configuration = docs_tables.configuration_page()
    for name in docs_tables.parameters():
        assert f"| `{name}` |" in configuration, name
    api = docs_tables.api_page()
    for path, item in docs_tables.load_openapi()["paths"].items():
        for method in item:
            if method in docs_tables.METHODS:
                assert f"### `{method.upper()} {path}`" in api, (method, path)


def test_operations_without_id_or_tag_are_listed_under_default() -> None:
    document = {
        "info": {"title": "t", "version": "1"},
        "paths": {"/x": {"get": {"responses": {"200": {"description": "ok"}}}}},
    }
    page = docs_tables.api_page(document)
    assert "## default" in page
    assert "### `GET /x`" in page
    assert "Operation id" not in page


def _nav_pages(nav: list[object]) -> set[str]:
    pages: set[str] = set()
    for entry in nav:
        values = entry.values() if isinstance(entry, dict) else [entry]
        for value in values:
            pages |= _nav_pages(value) if isinstance(value, list) else {str(value)}
    return pages


def test_every_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    text = (docs_tables.ROOT / "mkdocs.yml").read_text()
    # The one Python tag mkdocs.yml uses (superfences' mermaid fence) read as nothing.
    config = yaml.safe_load(re.sub(r"!!python/name:\S+", "null", text))
    nav = _nav_pages(config["nav"])
    on_disk = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert on_disk == nav


def test_every_snippet_is_included_by_a_page_and_exists() -> None:
    included = set()
    for page in DOCS.rglob("*.md"):
        included |= set(re.findall(r'^--8<-- "([^"]+)"$', page.read_text(), re.MULTILINE))
    snippets = {
        p.relative_to(docs_tables.ROOT).as_posix()
        for p in (DOCS / "snippets").iterdir()
        if p.suffix in {".py", ".sh"}
    }
    assert included == snippets
