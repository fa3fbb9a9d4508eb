"""How a workflow failure reads on the job: our own errors by their code and message,
Step Functions' by a fixed text, anything else as an internal error that leaks nothing."""

from __future__ import annotations

import json

from backdrop import error_codes
from backdrop.domain import JobError
from backdrop.observability import logger
from backdrop.providers import errors

# Errors raised by the state machine itself rather than by our code: a fixed message each
# (their causes are Step Functions' words, not ours), their codes the catalogue's.
_STATES_MESSAGES = {
    "States.Timeout": "a workflow step ran past its time limit",
    "Sandbox.Timedout": "a workflow step's function ran past its time limit",
}
_STATES_ERRORS = {
    error: (error_codes.for_error_type(error).name, message)
    for error, message in _STATES_MESSAGES.items()
}
# Ours (the catalogue's codes too, by class name): their messages are shown.
_KNOWN = {cls.__name__: cls.code for cls in errors.ProviderError.__subclasses__()}


def error_from_failure(error: str, cause: str | None) -> JobError:
    """Turn the `Error`/`Cause` that a Catch hands over into the job's code and message.
    Only our own errors' messages are shown; anything else is logged, not leaked."""
    if error in _KNOWN:
        message = _cause_message(cause) or error
        return JobError(code=_KNOWN[error], message=message)
    if error in _STATES_ERRORS:
        code, message = _STATES_ERRORS[error]
        return JobError(code=code, message=message)
    logger.error("unexpected workflow failure", extra={"error": error, "cause": cause})
    return JobError(code="internal_error", message="the generation failed for an internal reason")


def _cause_message(cause: str | None) -> str | None:
    if not cause:
        return None
    try:
        payload = json.loads(cause)
    except ValueError:
        return cause[:500]
    message = payload.get("errorMessage") if isinstance(payload, dict) else None
    return str(message)[:500] if message else None
