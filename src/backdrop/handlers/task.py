"""The one decorator every workflow task handler is: logger, tracer, parsed input, the
container's settings and job store, and a JSON answer for the state machine."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, wraps
from typing import Any, TypeVar

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from backdrop.config import get_settings
from backdrop.jobs import JobStore
from backdrop.observability import logger, tracer
from backdrop.workflow.deps import Deps
from backdrop.workflow.messages import TaskInput

In = TypeVar("In", bound=TaskInput)
LambdaHandler = Callable[[dict[str, Any], LambdaContext], Any]


@cache
def deps() -> Deps:
    # Settings are read, and so checked, once per container.
    settings = get_settings()
    return Deps(settings=settings, jobs=JobStore(settings))


def task(
    model: type[In],
) -> Callable[[Callable[[In, Deps], BaseModel | None]], LambdaHandler]:
    """`handler = task(Input)(logic)`: `logic(parsed input, deps)` is the whole task."""

    def decorate(logic: Callable[[In, Deps], BaseModel | None]) -> LambdaHandler:
        deps()  # a bad setting fails the cold start, not the first job

        @logger.inject_lambda_context
        @tracer.capture_lambda_handler
        @event_parser(model=model)
        @wraps(logic)
        def handler(event: In, context: LambdaContext) -> dict[str, Any] | None:
            logger.append_keys(job_id=event.job_id)
            answer = logic(event, deps())
            return None if answer is None else answer.model_dump(mode="json")

        return handler

    return decorate
