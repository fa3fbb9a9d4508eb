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
remaining-requests figure below the bucket's count lowers it. An account out of credits (a
402, or a balance of 0) stops new work until credits come back (the balance check, or an
operator, resumes it); polls of accepted jobs go on, as they cost no credits. A missing or
unreadable item is recreated; DynamoDB throttling the table, or too many writers at once, is
a short wait, never a failed job.

The rules (Governor) see the buckets through stores.BucketStore: DynamoBuckets here,
tests/fakes.py's MemoryBuckets in tests.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from backdrop import aws
from backdrop.observability import logger
from backdrop.providers.base import Mode, ProviderSpec
from backdrop.stores import ANY, NO_ITEM, Bucket, BucketStore, Expected, StoreBusy

# A job's polls, learned per provider: the share of the limit new work leaves them. Polls
# take precedence over new work at the bucket whatever the share; the least share (2 %) is
# headroom for calls the lane does not count (a retry of a provider that was down), so new
# work seldom finds its turn without a token; and small, since jobs that never poll leave
# it unused, of a limit that is paid for. Turns are kept to the fraction of a second
# (provider_tasks.SLEEP_BELOW_SECONDS), so rounding needs none.
_POLL_SHARE_BOUNDS = (0.02, 0.8)
_SMOOTHING = 0.1  # weight of one finished job in the running average of polls per job
_RECENT = 40  # job durations kept per provider, for the poll schedule
# A provider's reset time is trusted within these bounds (seconds); anything else is clamped.
_PAUSE_BOUNDS = (1.0, 300.0)
_DEFAULT_PAUSE = 5.0  # a 429 that says nothing about when to come back
_CREDITS_WAIT_MAX = 900.0  # seconds between looks of work waiting for credits, at most
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

    @classmethod
    def of(cls, spec: ProviderSpec) -> Limit:
        """A provider's limit, from its settings: every caller of the governor uses this."""
        settings = spec.settings()
        return cls(
            per_minute=settings.requests_per_minute,
            burst=settings.burst,
            polled=spec.mode is Mode.ASYNC,
            # A provider asked to hold submits answers most jobs there: few polls to expect.
            expected_polls=0.0 if settings.submit_wait_seconds else 1.0,
        )


@dataclass(frozen=True)
class Grant:
    """`granted` tokens are the caller's. If `wait` > 0 the caller comes back after it: for
    paid work with its tokens already taken (`granted` > 0), for new work to ask again
    (queueing again for a turn if `requeue`: the account was out of credits)."""

    granted: int
    wait: float
    requeue: bool = False


@dataclass(frozen=True)
class Turn:
    """New work's place in the queue: its turn comes in `wait` seconds. Not `reserved` when
    the governor was too busy to give it one: it asks again after the wait."""

    wait: float
    reserved: bool = True


class QueueDeadlinePassed(Exception):
    """New work's turn would come after its deadline; nothing was reserved. With
    `credits_out_since`, because the account has been out of credits since then."""

    def __init__(
        self, turn_at: float, deadline: float, credits_out_since: float | None = None
    ) -> None:
        super().__init__(f"its turn would come {turn_at - deadline:.0f} s after its deadline")
        self.turn_at = turn_at
        self.deadline = deadline
        self.credits_out_since = credits_out_since


@dataclass(frozen=True)
class Forecast:
    """New work's wait at a provider: for the turns already given out, and until `calls`
    more would have had theirs; and whether the account is out of credits (no turn comes
    until it is topped up)."""

    ahead_seconds: float
    seconds: float
    out_of_credits: bool


@dataclass(frozen=True)
class Credits:
    """A provider's account as the governor knows it: out of credits since when (None: it
    has credits), and the balance that resumes it."""

    out_since: float | None
    needed: float


def _new_bucket(limit: Limit, now: float) -> Bucket:
    return Bucket(float(limit.burst), now, 0.0, now, limit.expected_polls, 0)


def _credits_wait(every: float, paused_for: float) -> float:
    """How long work waiting for credits sleeps before it looks again: about as often as the
    balance is checked, and less often the longer the account stays empty (each look costs
    state transitions, and a backlog may wait hours), jittered so a resumed provider is not
    met by every job at once."""
    return random.uniform(0.5, 1.0) * max(every, min(paused_for, _CREDITS_WAIT_MAX))


def _refill(bucket: Bucket, limit: Limit, now: float) -> None:
    if now > bucket.updated:
        bucket.tokens = min(limit.burst, bucket.tokens + (now - bucket.updated) * limit.per_second)
        bucket.updated = now


def _lane_rate(bucket: Bucket, limit: Limit) -> float:
    """New work's share of the limit: what the polls its jobs will make leave over."""
    if not limit.polled:
        return limit.per_second
    share = bucket.polls_per_job / (1 + bucket.polls_per_job)
    low, high = _POLL_SHARE_BOUNDS
    return limit.per_second * (1 - min(high, max(low, share)))


class Governor:
    """The one copy of the governor's rules, over any BucketStore: DynamoBuckets(table) in
    the functions, MemoryBuckets() (tests/fakes.py) in tests."""

    def __init__(
        self,
        buckets: BucketStore,
        *,
        clock: Callable[[], float] = time.time,
        credits_wait: float = 60.0,
    ) -> None:
        self._buckets = buckets
        self._clock = clock
        # How often work waiting for credits looks again (about the balance check's rate).
        self._credits_wait = credits_wait

    # -- what callers do ---------------------------------------------------------------

    def take_paid(self, provider: str, limit: Limit, count: int = 1) -> Grant:
        """Tokens for work the provider has accepted: always granted, the wait (if any) is
        until they exist. The caller waits, then goes without asking again."""

        def change(bucket: Bucket, now: float) -> Grant:
            paused = bucket.paused_until - now
            if paused > 0:
                return Grant(0, paused)  # nothing taken: the provider said stop
            bucket.tokens -= count
            return Grant(count, max(0.0, -bucket.tokens / limit.per_second))

        return self._granted(provider, limit, change)

    def take_new(self, provider: str, limit: Limit, count: int = 1) -> Grant:
        """Up to `count` tokens for new work, only while the bucket has them: paid work's
        debt is repaid first. The wait says when the next one will be there."""

        def change(bucket: Bucket, now: float) -> Grant:
            if bucket.credits_out_since:
                wait = _credits_wait(self._credits_wait, now - bucket.credits_out_since)
                return Grant(0, wait, requeue=True)
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
        QueueDeadlinePassed, reserving nothing, if the turn would come after `deadline`.
        While the account is out of credits nothing is reserved: the caller looks again
        later, until its deadline."""

        def change(bucket: Bucket, now: float) -> Turn:
            if bucket.credits_out_since:
                if now > deadline:
                    raise QueueDeadlinePassed(now, deadline, bucket.credits_out_since)
                wait = _credits_wait(self._credits_wait, now - bucket.credits_out_since)
                wait = min(wait, deadline - now + 1)
                return Turn(wait=wait, reserved=False)
            at = max(now, bucket.next_turn, bucket.paused_until)
            if at > deadline:
                raise QueueDeadlinePassed(at, deadline)
            bucket.next_turn = at + count / _lane_rate(bucket, limit)
            return Turn(wait=at - now)

        try:
            return self._update(provider, limit, change)
        except StoreBusy:
            return Turn(wait=_busy_wait(), reserved=False)

    def pause(self, provider: str, limit: Limit, seconds: float | None) -> float:
        """The provider answered 429: nobody calls it until its reset time (clamped).
        Returns the pause applied."""
        pause = _clamp(seconds)

        def change(bucket: Bucket, now: float) -> None:
            bucket.paused_until = max(bucket.paused_until, now + pause)
            bucket.tokens = min(bucket.tokens, 0.0)

        logger.warning("provider rate limit hit", extra={"provider": provider, "pause": pause})
        with suppress(StoreBusy):  # the caller waits its pause whether or not it was recorded
            self._update(provider, limit, change)
        return pause

    def out_of_credits(self, provider: str, limit: Limit, needed: float) -> None:
        """The provider said its account cannot pay for a call needing `needed` credits (a
        402, or a balance of 0): new work stops until credits return (`resume`)."""

        def change(bucket: Bucket, now: float) -> bool:
            first = not bucket.credits_out_since
            if first:
                bucket.credits_out_since = now
                bucket.credits_needed = needed
            else:  # the smallest call waiting decides: it goes first once credits are back
                bucket.credits_needed = min(bucket.credits_needed, needed)
            return first

        try:
            first = self._update(provider, limit, change)
        except StoreBusy:  # the next refusal records it
            return
        if first:
            logger.warning("provider out of credits", extra={"provider": provider})

    def resume(self, provider: str, limit: Limit) -> bool:
        """Credits are back: new work goes again. False if the account was not paused.
        May raise StoreBusy (the balance check and an operator try again)."""

        def change(bucket: Bucket, now: float) -> bool:
            paused = bool(bucket.credits_out_since)
            bucket.credits_out_since = bucket.credits_needed = 0.0
            return paused

        resumed = self._update(provider, limit, change)
        if resumed:
            logger.info("provider resumed: credits are back", extra={"provider": provider})
        return resumed

    def credits(self, provider: str) -> Credits:
        """What the governor knows of the provider's account (read only)."""
        bucket, _ = self._buckets.read(provider)
        if bucket is None or not bucket.credits_out_since:
            return Credits(None, 0.0)
        return Credits(bucket.credits_out_since, bucket.credits_needed)

    def observe(self, provider: str, limit: Limit, available: int | None) -> None:
        """The provider says how many requests it has left: fewer than we think lowers ours
        (the bucket never holds more than `burst`, so only a figure below it can)."""
        if available is None or available < 0 or available >= limit.burst:
            return

        def change(bucket: Bucket, now: float) -> None:
            bucket.tokens = min(bucket.tokens, float(available))

        with suppress(StoreBusy):  # a hint: the next one will do
            self._update(provider, limit, change)

    def record_job(self, provider: str, limit: Limit, seconds: float, polls: int) -> None:
        """A job of this provider finished `seconds` after it was submitted, after `polls`
        polls: learn the poll share, and keep the time for the poll schedule."""

        def change(bucket: Bucket, now: float) -> None:
            bucket.polls_per_job += _SMOOTHING * (max(0, polls) - bucket.polls_per_job)
            bucket.recent = [*bucket.recent, max(0.0, seconds)][-_RECENT:]

        with suppress(StoreBusy):  # one job's figures: the averages do without them
            self._update(provider, limit, change)

    def recent(self, provider: str) -> list[float]:
        """How long this provider's latest jobs took, oldest first (may be empty)."""
        return self._buckets.recent(provider)

    def forecast(self, provider: str, limit: Limit, calls: int) -> Forecast:
        """When `calls` more calls of new work, queued now, would have had their turns
        (read only): after the turns already given out, at the lane's rate."""
        now = self._clock()
        bucket, _ = self._buckets.read(provider)
        bucket = bucket or _new_bucket(limit, now)
        ahead = max(0.0, bucket.next_turn - now, bucket.paused_until - now)
        return Forecast(
            ahead_seconds=ahead,
            seconds=ahead + calls / _lane_rate(bucket, limit),
            out_of_credits=bool(bucket.credits_out_since),
        )

    # -- the bucket --------------------------------------------------------------------

    def _granted(
        self, provider: str, limit: Limit, change: Callable[[Bucket, float], Grant]
    ) -> Grant:
        try:
            return self._update(provider, limit, change)
        except StoreBusy:
            return Grant(0, _busy_wait())

    def _update(self, provider: str, limit: Limit, change: Callable[[Bucket, float], T]) -> T:
        """Read the bucket, apply `change`, write it back if nobody else did meanwhile.
        Raises StoreBusy when that does not succeed in a few tries, or the store is busy."""
        for attempt in range(_WRITE_ATTEMPTS):
            if attempt:  # another writer won: step aside a few milliseconds, not seconds
                time.sleep(random.uniform(0, _COLLISION_BACKOFF * attempt))
            now = self._clock()
            bucket, expected = self._buckets.read(provider)
            if bucket is None:  # none yet, or unreadable: a full one
                bucket = _new_bucket(limit, now)
            else:  # a limit lowered by a deploy takes effect at once
                bucket.tokens = min(bucket.tokens, float(limit.burst))
            _refill(bucket, limit, now)
            answer = change(bucket, now)
            if self._buckets.write(provider, bucket, expected):
                return answer
        logger.warning("rate governor contended", extra={"provider": provider})
        raise StoreBusy


_FIELDS = ("tokens", "updated", "paused_until", "next_turn", "polls_per_job")
# Added since the first release: an item written before has none, and has credits.
_OPTIONAL_FIELDS = ("credits_out_since", "credits_needed")


class DynamoBuckets:
    """The buckets in a DynamoDB table, one item per provider, each write conditional on
    the version read. DynamoDB throttling the table is StoreBusy."""

    def __init__(self, table: str) -> None:
        self._table = table

    def read(self, provider: str) -> tuple[Bucket | None, Expected]:
        try:
            answer = aws.client("dynamodb").get_item(
                TableName=self._table, Key={"provider": {"S": provider}}, ConsistentRead=True
            )
        except ClientError as exc:
            _busy_if_throttled(exc, provider)
            raise
        item = answer.get("Item")
        if item is None:
            return None, NO_ITEM
        try:
            bucket = Bucket(
                **{name: float(item[name]["N"]) for name in _FIELDS},
                **{name: float(item[name]["N"]) for name in _OPTIONAL_FIELDS if name in item},
                version=int(item["version"]["N"]),
                recent=_durations(item),
            )
            if not all(math.isfinite(getattr(bucket, n)) for n in _FIELDS + _OPTIONAL_FIELDS):
                raise ValueError("not a finite number")
        except (KeyError, ValueError, TypeError):
            # Replaced by a write whatever it holds: an item nobody can use blocks nobody.
            logger.warning("rate governor item unreadable: recreated", extra={"item": item})
            return None, ANY
        return bucket, bucket.version

    def write(self, provider: str, bucket: Bucket, expected: Expected) -> bool:
        values = {name: getattr(bucket, name) for name in _FIELDS + _OPTIONAL_FIELDS}
        item: dict[str, Any] = {"provider": {"S": provider}}
        item |= {k: {"N": _number(v)} for k, v in values.items()}
        item["version"] = {"N": str(bucket.version + 1)}
        item["recent"] = {"L": [{"N": _number(v)} for v in bucket.recent]}
        condition: dict[str, Any] = {}
        if expected == NO_ITEM:
            condition = {"ConditionExpression": "attribute_not_exists(provider)"}
        elif expected != ANY:
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
            _busy_if_throttled(exc, provider)
            raise
        return True

    def recent(self, provider: str) -> list[float]:
        item = (
            aws.client("dynamodb")
            .get_item(TableName=self._table, Key={"provider": {"S": provider}})
            .get("Item", {})
        )
        return _durations(item)


def _busy_if_throttled(exc: ClientError, provider: str) -> None:
    if exc.response["Error"]["Code"] in _THROTTLED_CODES:
        logger.warning("rate governor table throttled", extra={"provider": provider})
        raise StoreBusy from exc


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
