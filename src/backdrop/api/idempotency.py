"""Idempotency-Key for the routes that start work (generations, batches): Powertools
idempotency over DynamoDB. A retry within 24 h with the same key and body gets the first
answer back; the same key with another body is refused (errors.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from aws_lambda_powertools.event_handler.openapi.params import Header
from pydantic import BaseModel

if TYPE_CHECKING:  # typing only: the module costs a cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

IDEMPOTENCY_SECONDS = 24 * 3600

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Retry safely: the same key and body within 24 h answer the first one.",
    ),
]

Answer = TypeVar("Answer", bound=BaseModel)


class Idempotency:
    """Idempotency-Key claims in one DynamoDB table, kept by the API's container: a runner
    per answer model, built (and Powertools' idempotency imported) on the first request
    that has an Idempotency-Key."""

    def __init__(self, table: str) -> None:
        self._table = table
        self._runners: dict[type[BaseModel], tuple[Any, Any]] = {}

    def once(
        self,
        *,
        key: str,
        scope: str,
        owner: str,
        request: dict[str, Any],
        model: type[Answer],
        start: Callable[[], Answer],
        context: LambdaContext,
    ) -> Answer:
        """`start()` once per (API key, `scope`, Idempotency-Key), its answer kept 24 h.
        `request` is what must match for a retry (the body as given)."""
        # A claim names the key by its bare id, and a generation's by the key alone: the
        # form every release has written, so a retry across a deploy finds its first answer.
        caller = owner.removeprefix("key:")
        name = key if scope == "generations" else f"{scope}:{key}"
        if model not in self._runners:
            self._runners[model] = _runner(model, self._table)
        run, config = self._runners[model]
        # Lets an interrupted request's key be retried once this invocation's time is up.
        config.register_lambda_context(context)
        claim = {"key": f"{caller}:{name}", "request": request}
        return run(claim=claim, start=start)  # type: ignore[no-any-return]


def _runner(model: type[BaseModel], table: str) -> tuple[Any, Any]:
    """The idempotent runner for answers of `model`, and its config."""
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )
    from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import (
        PydanticSerializer,
    )

    def run(*, claim: dict[str, Any], start: Callable[[], BaseModel]) -> BaseModel:
        return start()

    config = IdempotencyConfig(
        event_key_jmespath="key",
        payload_validation_jmespath="request",
        expires_after_seconds=IDEMPOTENCY_SECONDS,
    )
    runner = idempotent_function(
        data_keyword_argument="claim",
        config=config,
        persistence_store=DynamoDBPersistenceLayer(table_name=table),
        output_serializer=PydanticSerializer(model),
    )(run)
    return runner, config
