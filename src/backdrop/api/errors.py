"""The one error shape every 4xx/5xx answer has:
{"error": {"code", "message", "details", "request_id"}}."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from backdrop import error_codes
from backdrop.batches.store import BatchNotFound
from backdrop.contracts.decisions import DECISION_TAG, DECISIONS
from backdrop.domain import Refused
from backdrop.jobs import JobNotFound
from backdrop.observability import logger

# RequestValidationError kinds meaning "cannot read the body", not "a field is wrong".
_UNREADABLE = {
    "json_invalid": "the body is not valid JSON",
    "multipart_invalid": "the multipart body cannot be read",
}


class ApiError(Exception):
    """An answer other than success, raised anywhere under a route, at its code's status
    (error_codes.py)."""

    def __init__(self, code: str, message: str, details: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = HTTPStatus(error_codes.get(code).status or HTTPStatus.UNPROCESSABLE_ENTITY)
        self.code = code
        self.message = message
        self.details = details or []

    @classmethod
    def refused(cls, refused: Refused) -> ApiError:
        """Work refused before it started, naming each field at fault."""
        message = _REFUSALS.get(refused.code, refused.message)
        return cls(
            refused.code,
            message,
            [{"field": p.field, "reason": p.reason} for p in refused.problems],
        )


# The one message for refusals whose details say the rest.
_REFUSALS = {"unsupported_option": "the provider cannot honour every option asked for"}


def known_query_only(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """Refuse a query parameter the route does not take: a misspelt filter
    (`?stauts=failed`) would otherwise answer everything, as if it were not there."""
    route = app.context["_route"]  # the route being called, as Powertools' validation has it
    known = {param.alias for param in route.dependant.query_params}
    unknown = sorted(set(app.current_event.query_string_parameters or {}) - known)
    if unknown:
        reason = f"not a parameter of this route (it takes: {', '.join(sorted(known)) or 'none'})"
        raise ApiError(
            "invalid_request",
            "the request is invalid",
            [{"field": name, "reason": reason} for name in unknown],
        )
    return next_middleware(app)


def register(app: APIGatewayRestResolver) -> None:
    """Install the handlers that turn every failure into the one error shape."""

    def answer(error: ApiError) -> Response[Any]:
        body = {
            "code": error.code,
            "message": error.message,
            "details": error.details,
            "request_id": app.current_event.request_context.request_id,
        }
        return Response(
            status_code=error.status.value,
            content_type=content_types.APPLICATION_JSON,
            body={"error": body},
        )

    @app.exception_handler(ApiError)  # type: ignore[untyped-decorator]
    def _api_error(exc: ApiError) -> Response[Any]:
        return answer(exc)

    @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
    def _invalid_request(exc: RequestValidationError) -> Response[Any]:
        for problem in exc.errors():
            if problem["type"] in _UNREADABLE:
                code = "malformed_json" if problem["type"] == "json_invalid" else "malformed_body"
                return answer(ApiError(code, _UNREADABLE[problem["type"]]))
        details = [
            {"field": _field(problem["loc"], problem["type"]), "reason": _reason(problem["msg"])}
            for problem in exc.errors()
        ]
        return answer(ApiError("invalid_request", "the request is invalid", details))

    for kind, error in _ANSWERS.items():
        app.exception_handler(kind)(lambda exc, error=error: answer(error))

    @app.exception_handler(ValueError)  # type: ignore[untyped-decorator]
    def _value_error(exc: ValueError) -> Response[Any]:
        # Powertools' body readers raise these bare: bytes that are not UTF-8, and a
        # multipart body whose Content-Type has no boundary to split it by.
        if isinstance(exc, UnicodeDecodeError):
            return answer(ApiError("malformed_json", "the body is not UTF-8 JSON"))
        content_type = app.current_event.headers.get("content-type") or ""
        if content_type.startswith("multipart/form-data") and "boundary=" not in content_type:
            return answer(ApiError("malformed_body", "the multipart body has no boundary"))
        return _internal(exc)

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def _unhandled(exc: Exception) -> Response[Any]:
        return _internal(exc)

    def _internal(exc: Exception) -> Response[Any]:
        # Logged whole, answered with nothing of it: a 5xx never shows internals.
        logger.exception("unhandled error in the API")
        return answer(
            ApiError(
                "internal_error",
                "something went wrong on our side; retry, or report the request id",
            )
        )


# Failures whose answer is always the same.
_ANSWERS: dict[type[Exception], ApiError] = {
    RequestUnsupportedContentType: ApiError(
        "unsupported_media_type", "send application/json or multipart/form-data"
    ),
    IdempotencyValidationError: ApiError(
        "idempotency_key_reused",
        "this Idempotency-Key was used with a different request in the last 24 hours",
        [{"field": "Idempotency-Key", "reason": "already used with another body"}],
    ),
    IdempotencyAlreadyInProgressError: ApiError(
        "request_in_progress",
        "a request with this Idempotency-Key is still being handled; retry shortly",
    ),
    JobNotFound: ApiError("not_found", "no generation has this id"),
    BatchNotFound: ApiError("not_found", "no batch has this id"),
    NotFoundError: ApiError("not_found", "no such route"),
}


def _field(location: tuple[Any, ...], kind: str = "") -> str:
    # ("body", "guidance", "scale") -> "guidance.scale"; headers and queries by name. A body
    # told apart by a tag (a review's decision) has the tag in the location: not a field.
    if kind in _UNKNOWN_TAG:
        return DECISION_TAG
    parts = [str(part) for part in location[1:]]
    if len(parts) > 1 and parts[0] in DECISIONS:
        parts = parts[1:]
    return ".".join(parts) or str(location[0])


_UNKNOWN_TAG = ("union_tag_invalid", "union_tag_not_found")


def _reason(message: str) -> str:
    return message.removeprefix("Value error, ")
