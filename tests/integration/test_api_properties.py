"""Property-based, in process: requests drawn from openapi.json, and requests that break it,
sent to the API function as API Gateway would. Whatever the draw, no answer is a 5xx; and a
request whose body, query or path breaks the schema is refused with a 4xx. (The same
document also drives schemathesis against the running local stack: tests/e2e.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core import NotSet

from tests.integration.conftest import Stack
from tests.integration.test_api import _call

SCHEMA = schemathesis.openapi.from_path(Path(__file__).parents[2] / "openapi.json")
# What the function itself checks; the key (a header) is API Gateway's to refuse.
CHECKED_BY_THE_FUNCTION = {"body", "query", "path"}
OPERATIONS = [
    (path, method.upper())
    for path, operations in json.loads(SCHEMA.raw_schema and json.dumps(SCHEMA.raw_schema))[
        "paths"
    ].items()
    for method in operations
]


def _invalid_for_the_function(case: schemathesis.Case) -> bool:
    return any(
        str(getattr(kind, "value", kind)) in CHECKED_BY_THE_FUNCTION
        and info.mode == GenerationMode.NEGATIVE
        for kind, info in case.meta.components.items()
    )


def _send(stack: Stack, case: schemathesis.Case) -> int:
    body: Any = None
    if not isinstance(case.body, NotSet):
        body = case.body if isinstance(case.body, bytes) else json.dumps(case.body)
    status, _, _ = _call(
        stack,
        body,
        path=unquote(case.formatted_path),  # API Gateway hands the function the decoded path
        method=case.method.upper(),
        headers={str(k): str(v) for k, v in (case.headers or {}).items()},
        query={str(k): str(v) for k, v in (case.query or {}).items()} or None,
        content_type=case.media_type or "application/json",
    )
    return status


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_drawn_requests_never_fail_on_our_side_and_broken_ones_are_refused(
    stack: Stack, path: str, method: str
) -> None:
    operation = SCHEMA[path][method]
    # JSON bodies only: a drawn multipart form has no file a schema can describe.
    drawn = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE, media_type="application/json"),
        operation.as_strategy(GenerationMode.NEGATIVE, media_type="application/json"),
    )

    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,  # the same draws every run: a failure here is a regression
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(drawn)
    def check(case: schemathesis.Case) -> None:
        status = _send(stack, case)
        assert status < 500, case.as_curl_command()
        if _invalid_for_the_function(case):
            assert 400 <= status < 500, (status, case.as_curl_command())

    check()
