"""The committed OpenAPI document is the one the code serves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_the_document_is_valid_openapi_3_1_and_the_validator_can_refuse_it() -> None:
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    document = json.loads(COMMITTED.read_text())
    assert document["openapi"].startswith("3.1")
    validate(document)
    # What the document once had: a response header with no schema.
    broken = json.loads(COMMITTED.read_text())
    headers = broken["paths"]["/v1/generations"]["post"]["responses"]["202"]["headers"]
    del headers["Location"]["schema"]
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


OPERATIONS = {
    ("post", "/v1/generations"): ("createGeneration", "generations"),
    ("get", "/v1/generations"): ("listGenerations", "generations"),
    ("get", "/v1/generations/{job_id}"): ("getGeneration", "generations"),
    ("post", "/v1/generations/{job_id}/cancel"): ("cancelGeneration", "generations"),
    ("post", "/v1/generations/{job_id}/review"): ("reviewGeneration", "generations"),
    ("post", "/v1/uploads"): ("createUpload", "uploads"),
    ("post", "/v1/batches"): ("createBatch", "batches"),
    ("get", "/v1/batches"): ("listBatches", "batches"),
    ("get", "/v1/batches/{batch_id}"): ("getBatch", "batches"),
    ("post", "/v1/batches/{batch_id}/cancel"): ("cancelBatch", "batches"),
    ("post", "/v1/batches/{batch_id}/retry"): ("retryBatch", "batches"),
    ("get", "/v1/usage"): ("getUsage", "usage"),
}


def test_every_operation_has_its_stable_operation_id_and_one_tag() -> None:
    # Generated clients name their functions and modules after these: renaming one breaks
    # every client built on the document.
    document = json.loads(COMMITTED.read_text())
    found = {
        (method, path): (operation.get("operationId"), operation.get("tags"))
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    assert found == {key: (op, [tag]) for key, (op, tag) in OPERATIONS.items()}


def test_no_two_schemas_share_a_title() -> None:
    # A generator names its models by title: two alike and one of them is lost.
    schemas = json.loads(COMMITTED.read_text())["components"]["schemas"]
    titles = [schema.get("title", name) for name, schema in schemas.items()]
    assert sorted(titles) == sorted(set(titles))


def test_the_one_source_rules_are_in_the_document() -> None:
    schemas = json.loads(COMMITTED.read_text())["components"]["schemas"]
    assert schemas["GenerationRequest"]["x-exactly-one-of"] == [
        "image_url",
        "image_key",
        "image_base64",
    ]
    assert schemas["GenerationForm"]["x-exactly-one-of"] == ["image_url", "image_key", "image"]
    assert schemas["BatchRequest"]["x-exactly-one-of"] == ["prefix", "manifest_key"]
    assert schemas["Guidance"]["x-exactly-one-of"] == ["image_url", "image_key"]
    assert "exactly one of image_url" in schemas["GenerationRequest"]["description"]
