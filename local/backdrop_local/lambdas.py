"""Run Lambda invocations in-process: moto's Lambda (without Docker) answers every invoke
with a canned reply, so its one invoke method is routed to our real handlers here.

Handlers are imported on first use; `reset()` makes each one's next invocation a cold
start (backdrop.runtime: its settings read from the environment again, its collaborators
and the AWS clients made again).
"""

from __future__ import annotations

import importlib
import json
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto.awslambda_simple.models import LambdaSimpleBackend

from backdrop import aws
from backdrop.runtime import Function
from backdrop_local.iam import enforce

Handler = Callable[[Any, Any], Any]
_loaded: dict[str, Handler] = {}


@dataclass
class LocalContext:
    """The parts of Lambda's context object that Powertools reads."""

    function_name: str
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    invoked_function_arn: str = ""
    aws_request_id: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _handler(path: str) -> Handler:
    if path not in _loaded:
        module_name, _, attribute = path.rpartition(".")
        _loaded[path] = getattr(importlib.import_module(module_name), attribute)
    return _loaded[path]


def invoke(
    self: LambdaSimpleBackend,
    function_name: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: Any,
) -> bytes:
    function = self.get_function(function_name, qualifier)
    event = json.loads(body) if body else {}
    context = LocalContext(
        function_name=function.function_name,
        invoked_function_arn=function.function_arn,
        aws_request_id=str(uuid.uuid4()),
    )
    try:
        # As Lambda runs it: with the function's own role, nothing more.
        with enforce.acting_as(function.role, function.function_name):
            result = _handler(str(function.handler))(event, context)
    except Exception as exc:
        # What Lambda's Python runtime answers for an unhandled exception; Step Functions
        # reads errorType as the error name its Retry and Catch match on.
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps(
            {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_tb(exc.__traceback__),
            }
        ).encode()
    return json.dumps(result).encode()


def install() -> None:
    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]
    enforce.install()


def reset() -> None:
    """The next invoke of every function is a cold start."""
    for handler in _loaded.values():
        if isinstance(handler, Function):
            handler.reset()
    aws.reset()
