"""Who is asking: the owner of the request's API key."""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from backdrop.api.errors import ApiError
from backdrop.domain import key_owner


def caller(event: APIGatewayProxyEvent) -> str:
    """Whose jobs the request may make and see: the owner of its API key (domain.key_owner).
    API Gateway names the key on every route that needs one; a request without (a route
    deployed without the key requirement) is refused rather than shown every key's jobs."""
    key_id = event.request_context.identity.api_key_id
    try:
        return key_owner(key_id or "")
    except ValueError:
        raise ApiError("forbidden", "send a valid API key in the x-api-key header") from None
