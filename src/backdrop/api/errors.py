"""The one error shape every 4xx/5xx answer has: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from backdrop.jobs import JobNotFound
from backdrop.observability import logger


class ApiError(Exception):
    """An answer other than success, raised anywhere under a route."""

    def __init__(
        self,
        status: HTTPStatus,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def field_error(field: str, reason: str, code: str = "invalid_request") -> ApiError:
    """A 422 about one field of the request."""
    return ApiError(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        code,
        "the request is invalid",
        [{"field": field, "reason": reason}],
    )


def error_response(
    status: HTTPStatus, code: str, message: str, details: list[dict[str, Any]] | None = None
) -> Response[Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body={"error": body},
    )


def register(app: APIGatewayRestResolver) -> None:
    """Install the handlers that turn every failure into the one error shape."""

    @app.exception_handler(ApiError)  # type: ignore[untyped-decorator]
    def _api_error(exc: ApiError) -> Response[Any]:
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
    def _invalid_request(exc: RequestValidationError) -> Response[Any]:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            return error_response(
                HTTPStatus.BAD_REQUEST, "malformed_json", "the body is not valid JSON"
            )
        details = [
            {"field": ".".join(str(p) for p in e["loc"][1:]) or "body", "reason": e["msg"]}
            for e in exc.errors()
        ]
        return error_response(
            HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_request", "the request is invalid", details
        )

    @app.exception_handler(JobNotFound)  # type: ignore[untyped-decorator]
    def _not_found(exc: JobNotFound) -> Response[Any]:
        return error_response(HTTPStatus.NOT_FOUND, "not_found", "no generation has this id")

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def _internal(exc: Exception) -> Response[Any]:
        # Logged whole, answered with nothing of it: a 5xx never shows internals.
        logger.exception("unhandled error in the API")
        return error_response(
            HTTPStatus.INTERNAL_SERVER_ERROR,
            "internal_error",
            "something went wrong on our side; retry, or report the request id",
        )
