"""HTTPS API function: the resolver and its routes are in backdrop.api."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from backdrop.api.app import app
from backdrop.api.create import idempotency
from backdrop.observability import logger, tracer


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Lets an interrupted request's Idempotency-Key be retried once this invocation's time is up.
    idempotency.register_lambda_context(context)
    return app.resolve(event, context)
