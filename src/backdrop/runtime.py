"""One container per Lambda function. A handler is a `Function`: its `Wiring` (the settings
model it reads, and how its collaborators are made from them) and what one invocation
does with them (`run`). The collaborators are made at the first invocation of a Lambda
container and reused by the next ones; nothing is built at import. The local stack, which
runs every function in one process, makes fresh ones with `reset()`: its cold start."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from backdrop import config
from backdrop.observability import logger

if TYPE_CHECKING:  # typing only: the module costs a cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

C = TypeVar("C")
S = TypeVar("S", bound=BaseModel)
Run = Callable[[C, dict[str, Any], "LambdaContext"], Any]


@dataclass(frozen=True)
class Wiring(Generic[S, C]):
    """A function's settings model, and how its collaborators are made from the settings."""

    settings: type[S]
    make: Callable[[S], C]

    def build(self, environ: Mapping[str, str]) -> C:
        return self.make(config.read(self.settings, environ))


class Function(Generic[C]):
    """A Lambda handler: `handler = Function(wiring, run)`."""

    def __init__(
        self, wiring: Wiring[Any, C], run: Run[C], *, correlation_id_path: str | None = None
    ) -> None:
        self.wiring = wiring
        self.run = run
        self._container: C | None = None
        self._lock = threading.Lock()  # the local stack invokes from several threads

        @logger.inject_lambda_context(correlation_id_path=correlation_id_path)
        def invoke(event: dict[str, Any], context: LambdaContext) -> Any:
            return run(self.container(), event, context)

        self._invoke = invoke

    def __call__(self, event: dict[str, Any], context: LambdaContext) -> Any:
        return self._invoke(event, context)

    def container(self) -> C:
        """This container's collaborators, made from the environment on first use."""
        with self._lock:
            if self._container is None:
                self._container = self.wiring.build(os.environ)
            return self._container

    def reset(self) -> None:
        """Forget the collaborators: the next invocation is a cold start."""
        with self._lock:
            self._container = None
