"""HTTPS API function: the resolver and its routes are in backdrop.api."""

from aws_lambda_powertools.logging import correlation_paths

from backdrop.api.app import WIRING, handle
from backdrop.runtime import Function

handler = Function(WIRING, handle, correlation_id_path=correlation_paths.API_GATEWAY_REST)
