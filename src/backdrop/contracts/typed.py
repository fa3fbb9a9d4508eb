"""Numbers and booleans, strict where the source has types and parsed where it is text.

A JSON body must send `3` and `true`, never `"3"`, nor `true` for a number: a client that
does is told at once rather than having its value guessed. A multipart form, a CSV
manifest row or an object's S3 metadata can only hold text, so values validated inside
`text_values()` may be written as text ("3", "true") and are parsed as pydantic would.
Records read back from DynamoDB hold their numbers as Decimal, no client's doing: those
are taken as the numbers they are."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Strict, TypeAdapter, ValidationError

_FROM_TEXT: ContextVar[bool] = ContextVar("values_from_text", default=False)


@contextmanager
def text_values() -> Iterator[None]:
    """Validate values that came from text (see the module's docstring)."""
    token = _FROM_TEXT.set(True)
    try:
        yield
    finally:
        _FROM_TEXT.reset(token)


def _parsed_from_text(kind: type) -> Callable[[Any], Any]:
    lax: TypeAdapter[Any] = TypeAdapter(kind)

    def parse(value: Any) -> Any:
        if isinstance(value, Decimal) or (isinstance(value, str) and _FROM_TEXT.get()):
            try:
                return lax.validate_python(value.strip() if isinstance(value, str) else value)
            except ValidationError:
                return value  # refused below, with the strict type's own reason
        return value

    return parse


Int = Annotated[int, Strict(), BeforeValidator(_parsed_from_text(int))]
# A JSON integer is a number too.
Number = Annotated[float, Strict(), BeforeValidator(_parsed_from_text(float))]
Bool = Annotated[bool, Strict(), BeforeValidator(_parsed_from_text(bool))]
