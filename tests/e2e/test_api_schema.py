"""Schemathesis against the local stack's API, from the committed openapi.json: whatever
the schema allows (and much it does not), no answer is a 5xx and every answer matches it."""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from tests.e2e.conftest import Local

schema = schemathesis.openapi.from_path(Path(__file__).parents[2] / "openapi.json")

# What the schema can promise. Accepting every schema-valid body cannot be: an image_key
# must name a real upload, and a photo must be a real image, which no schema can say.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@schema.parametrize()
# Derandomized: the same cases every run (a random draw can reach a multipart case that
# schemathesis itself cannot generate, "Unsupported type: 'Binary'").
@settings(max_examples=50, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_to_its_schema(case: schemathesis.Case, local: Local) -> None:
    case.call_and_validate(
        base_url=local.ready["api_url"],
        headers={"x-api-key": local.ready["api_key"]},
        checks=CHECKS,
    )
