"""The one decorator every workflow task handler is: logger, parsed input, the container's
settings and job store, and a JSON answer for the state machine."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, wraps
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from backdrop import telemetry
from backdrop.config import get_settings
from backdrop.observability import logger
from backdrop.providers.errors import ProviderError
from backdrop.workflow.deps import Deps
from backdrop.workflow.messages import TaskInput

if TYPE_CHECKING:  # typing only: the module costs a cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

In = TypeVar("In", bound=TaskInput)
LambdaHandler = Callable[[dict[str, Any], "LambdaContext"], Any]


@cache
def deps() -> Deps:
    # Settings are read, and so checked, once per container.
    return Deps.of(get_settings())


def task(
    model: type[In],
) -> Callable[[Callable[[In, Deps], BaseModel | None]], LambdaHandler]:
    """`handler = task(Input)(logic)`: `logic(parsed input, deps)` is the whole task."""

    def decorate(logic: Callable[[In, Deps], BaseModel | None]) -> LambdaHandler:
        deps()  # a bad setting fails the cold start, not the first job

        @logger.inject_lambda_context
        @wraps(logic)
        def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any] | None:
            # A malformed input is the state machine's bug: it fails the task loudly.
            task_input = model.model_validate(event)
            logger.append_keys(job_id=task_input.job_id)
            try:
                answer = logic(task_input, deps())
            except ProviderError as exc:
                telemetry.provider_error(exc.provider, exc.code)  # then the workflow decides
                raise
            return None if answer is None else answer.model_dump(mode="json")

        return handler

    return decorate
