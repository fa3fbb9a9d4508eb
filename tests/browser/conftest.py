"""A real browser for the review console's tests: Debian's Chromium, driven by Playwright
(which cannot fetch its own build here). Without either, the tests skip, unless
BACKDROP_REQUIRE_BROWSER=1 (CI) makes that a failure."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:  # the module may be missing: the fixture says so
    from playwright.sync_api import Browser

REASON = "no Chromium: apt-get install chromium; pip install playwright"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives a real Chromium through Playwright")


def _unavailable(why: str) -> NoReturn:
    message = f"{REASON} ({why})"
    if os.environ.get("BACKDROP_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message, allow_module_level=True)


def needs_playwright() -> None:
    """For a test module to call before it imports playwright: skip it (or fail) with the
    reason, rather than fail to collect."""
    if importlib.util.find_spec("playwright") is None:
        _unavailable("the playwright module is not installed")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        _unavailable("the playwright module is not installed")
    executable = os.environ.get("BACKDROP_CHROMIUM") or shutil.which("chromium")
    if not executable:
        _unavailable("no chromium on PATH, and BACKDROP_CHROMIUM is not set")
    with sync_playwright() as playwright:
        try:
            # Root in a container has no user namespaces for Chromium's sandbox.
            launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        except Error as error:
            _unavailable(f"{executable} did not start: {error.message.splitlines()[0]}")
        yield launched
        launched.close()
