"""The RFC 7240 `Prefer` header, as Picsart's gateway reads it on a submission.

Two preferences matter: `respond-async` (answer 202 with the inference id) and `wait=N`
(hold the request up to N seconds for the result). Following RFC 7240 section 2, names
compare case-insensitively, spaces around tokens and `=` are tolerated, a value may be
quoted, parameters after `;` and unknown preferences are ignored, and only the first
instance of a repeated preference counts. A `wait` that is not a whole number of seconds
of at least 1 is ignored; one above Picsart's reported 600 s is capped at 600, and
`Preference-Applied` then says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MAX_WAIT_SECONDS = 600


@dataclass(frozen=True)
class Preferences:
    respond_async: bool = False
    wait: int | None = None  # seconds, 1..MAX_WAIT_SECONDS


def parse_prefer(headers: Iterable[str]) -> Preferences:
    """The preferences of every `Prefer` header of a request (several may be sent)."""
    respond_async = False
    wait: int | None = None
    seen: set[str] = set()
    for header in headers:
        for preference in header.split(","):
            token = preference.partition(";")[0]
            name, _, value = (part.strip() for part in token.partition("="))
            name = name.lower()
            if not name or name in seen:
                continue
            seen.add(name)
            if name == "respond-async":
                respond_async = True
            elif name == "wait":
                wait = _seconds(value.strip('"'))
    return Preferences(respond_async=respond_async, wait=wait)


def _seconds(text: str) -> int | None:
    # isascii: str.isdigit also accepts digits such as "²" that int() refuses.
    if not (text.isascii() and text.isdigit()):
        return None
    seconds = int(text)
    return min(seconds, MAX_WAIT_SECONDS) if seconds >= 1 else None
