"""The SQS-fed functions' shape: each record handled on its own, a failed one returned to
the queue (Powertools' partial batch response), the others done."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)

from backdrop.config import JobSettings
from backdrop.jobs import JobStore
from backdrop.runtime import Function, Wiring

if TYPE_CHECKING:  # typing only: the module costs a cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

C = TypeVar("C")
S = TypeVar("S", bound=JobSettings)
RecordHandler = Callable[..., None]


@dataclass(frozen=True)
class Starter(Generic[S]):
    """What a function that starts jobs works with (the inbox's, the events')."""

    settings: S
    jobs: JobStore


def starter(settings: S) -> Starter[S]:
    return Starter(settings, JobStore(settings))


def sqs_function(
    wiring: Wiring[Any, C],
    record_handler: Callable[[C], RecordHandler],
    **processor: Any,
) -> Function[C]:
    """`handler = sqs_function(wiring, record_handler)`: `record_handler(container)` is what
    one record does; `processor` are BatchProcessor's options (its model, ...)."""

    def run(container: C, event: dict[str, Any], context: LambdaContext) -> Any:
        return process_partial_response(
            event=event,
            record_handler=record_handler(container),
            processor=BatchProcessor(event_type=EventType.SQS, **processor),
            context=context,
        )

    return Function(wiring, run)
