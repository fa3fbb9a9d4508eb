"""The committed OpenAPI document is the one the code serves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

COMMITTED = Path(__file__).parents[2] / "openapi.json"


def test_openapi_json_matches_the_code() -> None:
    # A fresh process: the document must not depend on what other tests loaded.
    printed = subprocess.run(
        [sys.executable, "-m", "backdrop_local.cli", "openapi"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(printed) == json.loads(COMMITTED.read_text()), (
        "openapi.json is out of date: run `make openapi` and commit it"
    )


def test_every_operation_documents_the_error_shape_and_needs_the_key() -> None:
    document = json.loads(COMMITTED.read_text())
    assert document["security"] == [{"apiKey": []}]
    assert document["components"]["securitySchemes"]["apiKey"]["name"] == "x-api-key"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            errors = {code: r for code, r in operation["responses"].items() if code >= "400"}
            assert {"403", "422", "429", "500"} <= set(errors), (path, method)
            for answer in errors.values():
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, method)


def test_generations_take_json_and_multipart() -> None:
    document = json.loads(COMMITTED.read_text())
    content = document["paths"]["/v1/generations"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "multipart/form-data"}
    form = document["components"]["schemas"]["GenerationForm"]["properties"]
    assert form["image"] == {
        "type": "string",
        "format": "binary",
        "description": form["image"]["description"],
    }
    assert "image_base64" not in form
