"""The one decorator the batch workflow's task handlers are: logger, parsed input, the
container's settings and stores, and a JSON answer for the state machine."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from backdrop.batches.store import BatchStore
from backdrop.config import Settings, get_settings
from backdrop.jobs import JobStore
from backdrop.observability import logger

if TYPE_CHECKING:  # typing only: the module costs a cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext


In = TypeVar("In", bound=BaseModel)
Logic = Callable[..., BaseModel | None]


@cache
def _stores() -> tuple[Settings, JobStore, BatchStore]:
    settings = get_settings()  # read, and so checked, once per container
    return settings, JobStore(settings), BatchStore(settings)


def batch_task(
    model: type[In], logic: Logic
) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any] | None]:
    """`handler = batch_task(Input, logic)`: `logic(input, settings=, jobs=, batches=)`."""
    _stores()  # a bad setting fails the cold start, not the first item

    @logger.inject_lambda_context
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any] | None:
        # A malformed input is the state machine's bug: it fails the task loudly.
        task_input = model.model_validate(event)
        logger.append_keys(batch_id=getattr(task_input, "batch_id", None))
        settings, jobs, batches = _stores()
        answer = logic(task_input, settings=settings, jobs=jobs, batches=batches)
        return None if answer is None else answer.model_dump(mode="json")

    return handler
