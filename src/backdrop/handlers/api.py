"""HTTPS API function: the routes live in backdrop.api, one module per group."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from backdrop.api import create, errors, read
from backdrop.observability import logger, tracer

app = APIGatewayRestResolver(enable_validation=True)
errors.register(app)
app.include_router(create.router)
app.include_router(read.router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
