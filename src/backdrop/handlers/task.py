"""The one decorator every workflow task handler is (the generation's and the batch's):
parsed input, the container's collaborators, and a JSON answer for the state machine."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from backdrop import telemetry
from backdrop.observability import logger
from backdrop.providers.errors import ProviderError
from backdrop.runtime import Function, Wiring

if TYPE_CHECKING:  # typing only: the module costs a cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

In = TypeVar("In", bound=BaseModel)
C = TypeVar("C")
_KEYS = ("job_id", "batch_id")  # the log keys a task's input may name


def task(
    model: type[In], logic: Callable[[In, C], BaseModel | None], wiring: Wiring[Any, C]
) -> Function[C]:
    """`handler = task(Input, logic, wiring)`: `logic(parsed input, container)` is the whole
    task, the container made by `wiring` once per Lambda container."""

    def run(container: C, event: dict[str, Any], context: LambdaContext) -> dict[str, Any] | None:
        # A malformed input is the state machine's bug: it fails the task loudly.
        task_input = model.model_validate(event)
        logger.append_keys(
            **{key: getattr(task_input, key) for key in _KEYS if key in model.model_fields}
        )
        try:
            answer = logic(task_input, container)
        except ProviderError as exc:
            telemetry.provider_error(exc.provider, exc.code)  # then the workflow decides
            raise
        return None if answer is None else answer.model_dump(mode="json")

    return Function(wiring, run)
