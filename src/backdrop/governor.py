"""One rate governor per provider, shared by every function and execution: a token bucket
in DynamoDB (one item per provider, read and written back with a version check), refilled
at the provider's limit. Every provider call takes a token first. Lambdas never sleep long
on it: a call that must wait is told how long, and the workflow's Wait state sleeps it (a
wait under a second, the task: workflow/provider_tasks.py).

Two kinds of callers, in this order of priority:
- **Paid work** (polls of jobs the provider has accepted) always gets a token, if need be
  one not refilled yet: it is told to wait until that token exists, and then goes without
  asking again. A paid job is never starved by new work and never fails for throttling.
- **New work** (submissions, synchronous generations) first reserves its turn on a lane
  that runs slower than the bucket by the share that polls need (learned per provider
  from the polls its jobs made), so each waiting job wakes once, at its own slot, rather
  than all of them together; at its turn it takes tokens only while the bucket has them.

The provider's own signals win: a 429 pauses the whole bucket until its reset time, and a
remaining-requests figure below the bucket's count lowers it. A missing or unreadable item
is recreated; DynamoDB throttling the table, or too many writers at once, is a short wait,
never a failed job.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from backdrop import aws
from backdrop.observability import logger

# A job's polls, learned per provider: the share of the limit new work leaves them. Polls
# take precedence over new work at the bucket whatever the share; the least share (2 %) is
# headroom for calls the lane does not count (a retry of a provider that was down), so new
# work seldom finds its turn without a token. Turns are kept to the fraction of a second
# (provider_tasks.SLEEP_BELOW_SECONDS), so rounding needs none; 5 % left jobs that never
# poll at 95 % of a limit that is paid for (bench/batch.py, 1,000 images at 300/min: 230 to
# 235 s at 5 %, 224 s at 2 %).
_POLL_SHARE_BOUNDS = (0.02, 0.8)
_SMOOTHING = 0.1  # weight of one finished job in the running average of polls per job
_RECENT = 40  # job durations kept per provider, for the poll schedule
# A provider's reset time is trusted within these bounds (seconds); anything else is clamped.
_PAUSE_BOUNDS = (1.0, 300.0)
_DEFAULT_PAUSE = 5.0  # a 429 that says nothing about when to come back
_WRITE_ATTEMPTS = 10
_COLLISION_BACKOFF = 0.01  # seconds, times the attempt, jittered: writers spread out
_BUSY_WAIT = (1.0, 3.0)  # the table is busy: come back after a jittered second or two
T = TypeVar("T")
_THROTTLED_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
}


@dataclass(frozen=True)
class Limit:
    """A provider's limit: requests per minute, and how many may go at once after a lull."""

    per_minute: int
    burst: int
    polled: bool = True  # False for synchronous providers: nothing to reserve for polls
    # Polls a job is expected to need before any has finished (learned after that).
    expected_polls: float = 1.0

    @property
    def per_second(self) -> float:
        return self.per_minute / 60.0


@dataclass(frozen=True)
class Grant:
    """`granted` tokens are the caller's. If `wait` > 0 the caller comes back after it: for
    paid work with its tokens already taken (`granted` > 0), for new work to ask again."""

    granted: int
    wait: float


@dataclass(frozen=True)
class Turn:
    """New work's place in the queue: its turn comes in `wait` seconds. Not `reserved` when
    the governor was too busy to give it one: it asks again after the wait."""

    wait: float
    reserved: bool = True


class _Busy(Exception):
    """Too many writers at once, or DynamoDB throttling the table: come back shortly."""


class QueueDeadlinePassed(Exception):
    """New work's turn would come after its deadline; nothing was reserved."""

    def __init__(self, turn_at: float, deadline: float) -> None:
        super().__init__(f"its turn would come {turn_at - deadline:.0f} s after its deadline")
        self.turn_at = turn_at
        self.deadline = deadline


# What a write expects to find: no item yet, any item (replacing an unreadable one), or the
# version it read.
_NO_ITEM = "none"
_ANY = "any"
_Expected = int | str
_FIELDS = ("tokens", "updated", "paused_until", "next_turn", "polls_per_job")


@dataclass
class _Bucket:
    tokens: float
    updated: float
    paused_until: float
    next_turn: float
    polls_per_job: float
    version: int
    recent: list[float] = field(default_factory=list)

    @classmethod
    def new(cls, limit: Limit, now: float) -> _Bucket:
        return cls(float(limit.burst), now, 0.0, now, limit.expected_polls, 0)

    def refill(self, limit: Limit, now: float) -> None:
        if now > self.updated:
            self.tokens = min(limit.burst, self.tokens + (now - self.updated) * limit.per_second)
            self.updated = now

    def lane_rate(self, limit: Limit) -> float:
        """New work's share of the limit: what the polls its jobs will make leave over."""
        if not limit.polled:
            return limit.per_second
        share = self.polls_per_job / (1 + self.polls_per_job)
        low, high = _POLL_SHARE_BOUNDS
        return limit.per_second * (1 - min(high, max(low, share)))


class Governor:
    def __init__(self, table: str, clock: Any = time.time) -> None:
        self._table = table
        self._clock = clock

    # -- what callers do ---------------------------------------------------------------

    def take_paid(self, provider: str, limit: Limit, count: int = 1) -> Grant:
        """Tokens for work the provider has accepted: always granted, the wait (if any) is
        until they exist. The caller waits, then goes without asking again."""

        def change(bucket: _Bucket, now: float) -> Grant:
            paused = bucket.paused_until - now
            if paused > 0:
                return Grant(0, paused)  # nothing taken: the provider said stop
            bucket.tokens -= count
            return Grant(count, max(0.0, -bucket.tokens / limit.per_second))

        return self._granted(provider, limit, change)

    def take_new(self, provider: str, limit: Limit, count: int = 1) -> Grant:
        """Up to `count` tokens for new work, only while the bucket has them: paid work's
        debt is repaid first. The wait says when the next one will be there."""

        def change(bucket: _Bucket, now: float) -> Grant:
            paused = bucket.paused_until - now
            if paused > 0:
                return Grant(0, paused)
            granted = max(0, min(count, math.floor(bucket.tokens)))
            bucket.tokens -= granted
            if granted == count:
                return Grant(granted, 0.0)
            return Grant(granted, (1 - bucket.tokens) / limit.per_second)

        return self._granted(provider, limit, change)

    def queue(self, provider: str, limit: Limit, count: int, deadline: float) -> Turn:
        """Reserve new work's turn for `count` calls on the provider's lane. Raises
        QueueDeadlinePassed, reserving nothing, if the turn would come after `deadline`."""

        def change(bucket: _Bucket, now: float) -> Turn:
            at = max(now, bucket.next_turn, bucket.paused_until)
            if at > deadline:
                raise QueueDeadlinePassed(at, deadline)
            bucket.next_turn = at + count / bucket.lane_rate(limit)
            return Turn(wait=at - now)

        try:
            return self._update(provider, limit, change)
        except _Busy:
            return Turn(wait=_busy_wait(), reserved=False)

    def pause(self, provider: str, limit: Limit, seconds: float | None) -> float:
        """The provider answered 429: nobody calls it until its reset time (clamped).
        Returns the pause applied."""
        pause = _clamp(seconds)

        def change(bucket: _Bucket, now: float) -> None:
            bucket.paused_until = max(bucket.paused_until, now + pause)
            bucket.tokens = min(bucket.tokens, 0.0)

        logger.warning("provider rate limit hit", extra={"provider": provider, "pause": pause})
        with suppress(_Busy):  # the caller waits its pause whether or not it was recorded
            self._update(provider, limit, change)
        return pause

    def observe(self, provider: str, limit: Limit, available: int | None) -> None:
        """The provider says how many requests it has left: fewer than we think lowers ours
        (the bucket never holds more than `burst`, so only a figure below it can)."""
        if available is None or available < 0 or available >= limit.burst:
            return

        def change(bucket: _Bucket, now: float) -> None:
            bucket.tokens = min(bucket.tokens, float(available))

        with suppress(_Busy):  # a hint: the next one will do
            self._update(provider, limit, change)

    def record_job(self, provider: str, limit: Limit, seconds: float, polls: int) -> None:
        """A job of this provider finished `seconds` after it was submitted, after `polls`
        polls: learn the poll share, and keep the time for the poll schedule."""

        def change(bucket: _Bucket, now: float) -> None:
            bucket.polls_per_job += _SMOOTHING * (max(0, polls) - bucket.polls_per_job)
            bucket.recent = [*bucket.recent, max(0.0, seconds)][-_RECENT:]

        with suppress(_Busy):  # one job's figures: the averages do without them
            self._update(provider, limit, change)

    def recent(self, provider: str) -> list[float]:
        """How long this provider's latest jobs took, oldest first (may be empty)."""
        item = (
            aws.client("dynamodb")
            .get_item(TableName=self._table, Key={"provider": {"S": provider}})
            .get("Item", {})
        )
        return _durations(item)

    # -- the item ----------------------------------------------------------------------

    def _granted(
        self, provider: str, limit: Limit, change: Callable[[_Bucket, float], Grant]
    ) -> Grant:
        try:
            return self._update(provider, limit, change)
        except _Busy:
            return Grant(0, _busy_wait())

    def _update(self, provider: str, limit: Limit, change: Callable[[_Bucket, float], T]) -> T:
        """Read the bucket, apply `change`, write it back if nobody else did meanwhile.
        Raises _Busy when that does not succeed in a few tries, or DynamoDB throttles."""
        for attempt in range(_WRITE_ATTEMPTS):
            if attempt:  # another writer won: step aside a few milliseconds, not seconds
                time.sleep(random.uniform(0, _COLLISION_BACKOFF * attempt))
            now = self._clock()
            try:
                bucket, expected = self._read(provider, limit, now)
                bucket.refill(limit, now)
                answer = change(bucket, now)
                if self._write(provider, bucket, expected):
                    return answer
            except ClientError as exc:
                if exc.response["Error"]["Code"] not in _THROTTLED_CODES:
                    raise
                logger.warning("rate governor table throttled", extra={"provider": provider})
                raise _Busy from exc
        logger.warning("rate governor contended", extra={"provider": provider})
        raise _Busy

    def _read(self, provider: str, limit: Limit, now: float) -> tuple[_Bucket, _Expected]:
        """The bucket, and what the write must find: no item, this version, or anything
        (an unreadable item is replaced whatever it holds)."""
        answer = aws.client("dynamodb").get_item(
            TableName=self._table, Key={"provider": {"S": provider}}, ConsistentRead=True
        )
        item = answer.get("Item")
        if item is None:
            return _Bucket.new(limit, now), _NO_ITEM
        try:
            bucket = _Bucket(
                **{name: float(item[name]["N"]) for name in _FIELDS},
                version=int(item["version"]["N"]),
                recent=_durations(item),
            )
            if not all(math.isfinite(getattr(bucket, name)) for name in _FIELDS):
                raise ValueError("not a finite number")
        except (KeyError, ValueError, TypeError):
            logger.warning("rate governor item unreadable: recreated", extra={"item": item})
            return _Bucket.new(limit, now), _ANY
        # A limit lowered by a deploy takes effect at once.
        bucket.tokens = min(bucket.tokens, float(limit.burst))
        return bucket, bucket.version

    def _write(self, provider: str, bucket: _Bucket, expected: _Expected) -> bool:
        values = {name: getattr(bucket, name) for name in _FIELDS}
        item: dict[str, Any] = {"provider": {"S": provider}}
        item |= {k: {"N": _number(v)} for k, v in values.items()}
        item["version"] = {"N": str(bucket.version + 1)}
        item["recent"] = {"L": [{"N": _number(v)} for v in bucket.recent]}
        condition: dict[str, Any] = {}
        if expected == _NO_ITEM:
            condition = {"ConditionExpression": "attribute_not_exists(provider)"}
        elif expected != _ANY:
            condition = {
                "ConditionExpression": "#v = :v",
                "ExpressionAttributeNames": {"#v": "version"},
                "ExpressionAttributeValues": {":v": {"N": str(expected)}},
            }
        try:
            aws.client("dynamodb").put_item(TableName=self._table, Item=item, **condition)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False  # someone else wrote first: read again
            raise
        return True


def _durations(item: dict[str, Any]) -> list[float]:
    try:
        return [float(v["N"]) for v in item.get("recent", {}).get("L", [])]
    except (KeyError, ValueError, TypeError):
        return []


def _busy_wait() -> float:
    return random.uniform(*_BUSY_WAIT)


def _number(value: float) -> str:
    return str(Decimal(repr(float(value))))


def _clamp(seconds: float | None) -> float:
    """A provider's reset time: seconds from now, or an epoch time; never negative or absurd."""
    if seconds is None or not math.isfinite(seconds):
        return _DEFAULT_PAUSE
    if seconds > 1_000_000_000:  # an epoch time, not a duration
        seconds -= time.time()
    low, high = _PAUSE_BOUNDS
    return min(high, max(low, seconds))
