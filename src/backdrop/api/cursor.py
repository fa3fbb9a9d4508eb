"""Paging cursors of GET /v1/generations: an opaque, URL-safe token for a position in the
listing (a jobs.position: a creation time and a job id). A checksum makes an edited or
truncated cursor fail loudly instead of silently starting somewhere else; it is no secret,
and needs none: a cursor names only a place in time, never whose jobs are listed (that is
the API key asking, every time), so even a forged one shows nothing the key may not list."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from backdrop.api.errors import ApiError
from backdrop.domain import Refused
from backdrop.jobs import POSITION_PATTERN

_VERSION = "1"


class InvalidCursor(ValueError):
    """Not a cursor this API issued."""


def encode(position: str) -> str:
    payload = f"{_VERSION}.{position}.{_checksum(position)}"
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode(cursor: str) -> str:
    """The position a cursor names; InvalidCursor for anything `encode` did not make."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except ValueError:  # bad base64 or UTF-8, or characters outside ASCII
        raise InvalidCursor("not a cursor from this API; start again without one") from None
    version, _, rest = payload.partition(".")
    position, _, checksum = rest.rpartition(".")
    if (
        version != _VERSION
        or not re.fullmatch(POSITION_PATTERN, position)
        or not hmac.compare_digest(checksum, _checksum(position))
    ):
        raise InvalidCursor("not a cursor from this API; start again without one")
    return position


def _checksum(position: str) -> str:
    return hashlib.sha256(f"backdrop-cursor-{_VERSION}:{position}".encode()).hexdigest()[:12]


def position_of(cursor: str | None) -> str | None:
    """The position a listing's `cursor` query names (None without one); a 422 naming
    `cursor` for anything `encode` did not make."""
    if cursor is None:
        return None
    try:
        return decode(cursor)
    except InvalidCursor as exc:
        raise ApiError.refused(Refused.field("cursor", str(exc))) from None
