"""The API function: one Powertools resolver per container (routes from the modules beside
this one, the error shape, CORS from the function's settings), and the OpenAPI document
(served, and committed as openapi.json)."""

from __future__ import annotations

import copy
import json
import re
import threading
from contextlib import AbstractContextManager, nullcontext
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aws_lambda_powertools.event_handler as event_handler
from aws_lambda_powertools.event_handler import (
    APIGatewayRestResolver,
    CORSConfig,
    Response,
    content_types,
)

from backdrop.api import batches, cancel, console, create, errors, read, reviews, usage
from backdrop.api.container import Api, current, serving
from backdrop.api.idempotency import Idempotency
from backdrop.batches.store import BatchStore
from backdrop.config import ApiSettings
from backdrop.contracts.exclusive import exactly_one_of
from backdrop.contracts.requests import IMAGE_FIELDS
from backdrop.contracts.typed import text_values
from backdrop.jobs import JobStore
from backdrop.runtime import Wiring

if TYPE_CHECKING:  # typing only: the module costs a cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

TITLE = "backdrop"
VERSION = "1.0.0"
DESCRIPTION = (
    "AI-generated backgrounds for product photos. Every route needs the API key in the "
    'x-api-key header. Errors have one shape: {"error": {"code", "message", "details", '
    '"request_id"}}.'
)


def resolver(origins: list[str]) -> APIGatewayRestResolver:
    """The routes, the error shape and CORS, as one resolver."""
    origins = origins or ["*"]
    app = APIGatewayRestResolver(
        enable_validation=True,
        cors=CORSConfig(
            allow_origin=origins[0],
            extra_origins=origins[1:],
            allow_headers=["Idempotency-Key", "x-api-key"],
            expose_headers=["Location", "x-amzn-RequestId"],
            max_age=600,
        ),
    )
    errors.register(app)
    app.use([errors.known_query_only])
    for module in (create, read, cancel, reviews, batches, usage, console):
        app.include_router(module.router)
    app.get("/v1/openapi.json", include_in_schema=False)(openapi_json)
    app.get("/v1/docs", include_in_schema=False)(docs)
    return app


def api(settings: ApiSettings) -> Api:
    return Api(
        settings,
        JobStore(settings),
        BatchStore(settings),
        Idempotency(settings.idempotency_table),
        resolver(settings.cors_origins),
    )


WIRING = Wiring(ApiSettings, api)


# Powertools keeps the event being resolved on its router class, for the whole process: on
# AWS a container resolves one request at a time, and so does the local stack, which runs
# every request in one process.
_RESOLVING = threading.Lock()


def handle(api: Api, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with _RESOLVING, serving(api), _typed_as_sent(event):
        return api.resolver.resolve(_controls_quoted(event), context)


def _typed_as_sent(event: dict[str, Any]) -> AbstractContextManager[None]:
    # A form's fields are text by nature; a JSON body's numbers and booleans must be typed.
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    form = (headers.get("content-type") or "").lower().startswith("multipart/form-data")
    return text_values() if form else nullcontext()


def _controls_quoted(event: dict[str, Any]) -> dict[str, Any]:
    # API Gateway hands over the decoded path, and a route's pattern ends in `$`, which
    # matches before a final newline: `/v1/generations/%0A` would be the list. Control
    # characters are quoted back, so such a path names an id no job has.
    path = event.get("path") or ""
    quoted = _CONTROL.sub(lambda match: f"%{ord(match.group()):02X}", path)
    return event if quoted == path else {**event, "path": quoted}


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@lru_cache(maxsize=4)  # a container's, and the command's
def openapi_document(app: APIGatewayRestResolver | None = None) -> dict[str, Any]:
    """The API's OpenAPI document, from the routes and models of `app` (the container's;
    a resolver of its own for `backdrop openapi`), plus the multipart form of
    POST /v1/generations that Powertools cannot describe on its own."""
    # OpenAPI's own models are the largest import of the API: only the document needs them.
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, Server

    schema = (app or resolver(["*"])).get_openapi_schema(
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
    form["title"] = "GenerationForm"  # a generator names its model after the title
    form["properties"].pop("image_base64", None)
    form["properties"]["image"] = {
        "type": "string",
        "format": "binary",
        "description": "The photo file (at most 4 MB; larger ones by POST /v1/uploads).",
    }
    form.update(exactly_one_of(*(name for name in IMAGE_FIELDS if name != "image_base64")))
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


def openapi_json() -> dict[str, Any]:
    return openapi_document(current().resolver)


def docs() -> Response[str]:
    # Powertools' own Swagger UI page and assets, fed our document (with its multipart form).
    from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html

    assets = Path(event_handler.__file__).parent / "openapi" / "swagger_ui"
    page = generate_swagger_html(
        json.dumps(openapi_document(current().resolver)).replace("</", "<\\/"),
        (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (assets / "swagger-ui.min.css").read_text(encoding="utf-8"),
        "",
        None,
        True,
    )
    return Response(status_code=200, content_type=content_types.TEXT_HTML, body=page)
