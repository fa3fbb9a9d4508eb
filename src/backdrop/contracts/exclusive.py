"""`domain.exactly_one` in the OpenAPI document, as an extension a tool can read.

Not as `oneOf`: a generated client then replaces the model by one class per branch, each
holding one field and none of the others (openapi-python-client), which loses the request
itself. The rule is in the model's description for people, and here for tools."""

from __future__ import annotations

from typing import Any


def exactly_one_of(*fields: str) -> dict[str, Any]:
    """Exactly one of `fields` is present and not null."""
    return {"x-exactly-one-of": list(fields)}
