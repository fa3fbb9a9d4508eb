"""One webhook message to one URL: the message (built once, so every retry sends the same
id and the same bytes), one attempt through the fetch guards, and when to try again.

The schedule is the Standard Webhooks spec's example: after the first attempt, retries
5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h later (about three days in all),
each with up to 10 % jitter; a `Retry-After` from the receiver, if longer, is honoured."""

from __future__ import annotations

import concurrent.futures
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cache

from pydantic import BaseModel, Field

from backdrop import fetch_guard
from backdrop.webhooks import signing

RETRY_DELAYS = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
TIMEOUT_SECONDS = 15.0
# A receiver's Retry-After is honoured up to a day (a longer one waits a day).
MAX_RETRY_AFTER_SECONDS = 86400


class Delivery(BaseModel):
    """One message on its way to one URL: what the retry messages on the queue carry."""

    message_id: str  # webhook-id: the same on every attempt
    url: str
    body: str  # the exact bytes signed and sent
    job_id: str
    own: bool  # the job's own webhook_url (its state is shown on the job), not the stack's
    attempt: int = Field(default=0, ge=0)  # attempts made so far
    not_before: float = 0.0  # epoch seconds: not to be tried earlier


@dataclass(frozen=True)
class Outcome:
    """How one attempt went: `delivered` (a 2xx), or not, and whether to try again."""

    delivered: bool
    retry: bool  # worth another attempt (if any are left)
    status_code: int | None
    reason: str
    retry_after: float | None = None


def attempt(delivery: Delivery, signing_keys: list[bytes], *, allow_private: bool) -> Outcome:
    """POST the message once: no redirect followed (a 3xx is a failure), the answer's body
    never read, and at most TIMEOUT_SECONDS in all, however slowly the receiver answers (a
    watchdog: httpx's timeouts are per read, which a trickle of bytes never trips)."""
    timestamp = int(time.time())
    headers = signing.headers(signing_keys, delivery.message_id, timestamp, delivery.body)
    call = _pool().submit(_post, delivery, headers, allow_private)
    try:
        return call.result(timeout=TIMEOUT_SECONDS + 1)
    except concurrent.futures.TimeoutError:
        return Outcome(False, True, None, f"no answer within {TIMEOUT_SECONDS:.0f} s")


@cache
def _pool() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook")


def _post(delivery: Delivery, headers: dict[str, str], allow_private: bool) -> Outcome:
    import httpx

    client = fetch_guard.guarded_client(timeout=TIMEOUT_SECONDS, allow_loopback=allow_private)
    try:
        with client.stream(
            "POST", delivery.url, content=delivery.body.encode(), headers=headers
        ) as answer:
            code = answer.status_code  # the status line and headers only
            retry_after = _retry_after(answer.headers)
    except fetch_guard.FetchBlocked as exc:
        # The name now resolves somewhere it must not: never sent, and not tried again.
        return Outcome(False, False, None, f"blocked: {exc.reason}")
    except httpx.HTTPError as exc:
        return Outcome(False, True, None, f"no answer ({type(exc).__name__})")
    if 200 <= code < 300:
        return Outcome(True, False, code, "delivered")
    if code == 410:
        return Outcome(False, False, code, "410 Gone: the receiver asked for no more")
    return Outcome(False, True, code, f"answered {code}", retry_after)


def _retry_after(headers: object) -> float | None:
    value = getattr(headers, "get", lambda _: None)("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(0.0, min(seconds, MAX_RETRY_AFTER_SECONDS))


def next_delay(attempts: int, retry_after: float | None) -> float:
    """Seconds until the next attempt, after `attempts` attempts (1 or more)."""
    planned = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
    jittered = planned * (1 + random.uniform(0, 0.1))  # jitter, not a secret
    return max(jittered, retry_after or 0.0)


def message_id(job_id: str, status: str) -> str:
    """Stable for one outcome of one job: a re-announced outcome is the same message."""
    return f"msg_{job_id}_{status}"


def now() -> datetime:
    return datetime.now(UTC)
