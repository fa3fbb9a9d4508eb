"""The API as one Powertools resolver: routes from the modules beside this one, the error
shape, CORS, and the OpenAPI document (served, and committed as openapi.json)."""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import aws_lambda_powertools.event_handler as event_handler
from aws_lambda_powertools.event_handler import (
    APIGatewayRestResolver,
    CORSConfig,
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.openapi.models import (
    APIKey,
    APIKeyIn,
    Server,
)

from backdrop.api import batches, cancel, create, errors, read
from backdrop.config import get_settings

TITLE = "backdrop"
VERSION = "1.0.0"
DESCRIPTION = (
    "AI-generated backgrounds for product photos. Every route needs the API key in the "
    'x-api-key header. Errors have one shape: {"error": {"code", "message", "details", '
    '"request_id"}}.'
)

_origins = get_settings().cors_origins or ["*"]
app = APIGatewayRestResolver(
    enable_validation=True,
    cors=CORSConfig(
        allow_origin=_origins[0],
        extra_origins=_origins[1:],
        allow_headers=["Idempotency-Key", "x-api-key"],
        expose_headers=["Location", "x-amzn-RequestId"],
        max_age=600,
    ),
)
errors.register(app)
app.include_router(create.router)
app.include_router(read.router)
app.include_router(cancel.router)
app.include_router(batches.router)


@cache
def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document, from the routes and models (Powertools), plus the
    multipart form of POST /v1/generations that Powertools cannot describe on its own."""
    schema = app.get_openapi_schema(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        servers=[Server(url="/")],
        security_schemes={"apiKey": APIKey(name="x-api-key", in_=APIKeyIn.header)},
        security=[{"apiKey": []}],
    )
    document: dict[str, Any] = json.loads(schema.model_dump_json(by_alias=True, exclude_none=True))
    body = document["paths"]["/v1/generations"]["post"]["requestBody"]["content"]
    json_schema = body["application/json"]["schema"]
    form = copy.deepcopy(document["components"]["schemas"]["GenerationRequest"])
    form["properties"].pop("image_base64", None)
    form["properties"]["image"] = {
        "type": "string",
        "format": "binary",
        "description": "The photo file (at most 4 MB; larger ones by POST /v1/uploads).",
    }
    for name in ("guidance", "metadata"):
        form["properties"][name] = {"type": "string", "description": "JSON text."}
    document["components"]["schemas"]["GenerationForm"] = form
    body["multipart/form-data"] = {"schema": {"$ref": "#/components/schemas/GenerationForm"}}
    body["application/json"]["schema"] = json_schema
    _drop_unused_schemas(document)
    return document


def _drop_unused_schemas(document: dict[str, Any]) -> None:
    # Powertools adds its own validation-error schemas; our routes answer ErrorBody instead.
    schemas = document["components"]["schemas"]
    used: set[str] = set()
    pending = [json.dumps(document["paths"])]
    while pending:
        for name in re.findall(r"#/components/schemas/(\w+)", pending.pop()):
            if name not in used:
                used.add(name)
                pending.append(json.dumps(schemas[name]))
    for name in set(schemas) - used:
        del schemas[name]


@app.get("/v1/openapi.json", include_in_schema=False)
def openapi_json() -> dict[str, Any]:
    return openapi_document()


@app.get("/v1/docs", include_in_schema=False)
def docs() -> Response[str]:
    # Powertools' own Swagger UI page and assets, fed our document (with its multipart form).
    from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html

    assets = Path(event_handler.__file__).parent / "openapi" / "swagger_ui"
    page = generate_swagger_html(
        json.dumps(openapi_document()).replace("</", "<\\/"),
        (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (assets / "swagger-ui.min.css").read_text(encoding="utf-8"),
        "",
        None,
        True,
    )
    return Response(status_code=200, content_type=content_types.TEXT_HTML, body=page)
