"""Daily image allowances: how many images one API key (ImagesPerKeyPerDay) and the stack's
own work, inbox and events (StackImagesPerDay), may ask for in a UTC day; 0 is no limit.
Each is a counter in the jobs table (an item `allowance#<scope>#<day>` that no index reads,
kept two days), charged in the same transaction as the job it counts (jobs.create's
`also`), so a job is counted once, when it is created, and a refused one not at all."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from backdrop import aws
from backdrop.domain import STACK_OWNER, Problem, Refused

_PREFIX = "allowance#"
_KEPT = timedelta(days=2)  # past its day, a counter is only history: TTL removes it


@dataclass(frozen=True)
class Allowance:
    """One scope's daily allowance: whose (an API key's owner, or the stack), how many
    images a day, and the parameter that sets it (named in refusals)."""

    scope: str
    per_day: int
    parameter: str

    def item_id(self, now: datetime) -> str:
        return f"{_PREFIX}{self.scope}#{now.astimezone(UTC).date().isoformat()}"


class Exhausted(Refused):
    """The job would take its scope past the day's allowance: nothing was recorded."""


def exhausted(allowance: Allowance, used: int, asked: int, now: datetime) -> Exhausted:
    """The refusal, saying the limit, the count used and when it resets."""
    whose = "the stack's inbox and events" if allowance.scope == STACK_OWNER else "this API key"
    resets = resets_at(now).strftime("%Y-%m-%dT%H:%M:%SZ")
    message = (
        f"{whose} may ask for {allowance.per_day} images a day ({allowance.parameter}); "
        f"{used} are used today and this asks for {asked}; the count resets at {resets}"
    )
    return Exhausted("image_quota_exceeded", message, (Problem("count", message),))


def resets_at(now: datetime) -> datetime:
    """When a day's allowance starts again: the next midnight, UTC."""
    tomorrow = now.astimezone(UTC).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time(), UTC)


def of(owner: str, *, per_key: int, per_stack: int) -> Allowance | None:
    """The allowance an owner's new jobs count against, if that scope has one."""
    if owner == STACK_OWNER:
        return Allowance(STACK_OWNER, per_stack, "StackImagesPerDay") if per_stack else None
    return Allowance(owner, per_key, "ImagesPerKeyPerDay") if per_key else None


def charge(table: str, allowance: Allowance, images: int, now: datetime) -> dict[str, Any]:
    """The transaction item that counts `images` against the day's allowance, on condition
    that they fit. Exhausted at once (nothing to write) if they never could."""
    if images > allowance.per_day:
        raise exhausted(allowance, used(table, allowance, now), images, now)
    expires = int((resets_at(now) + _KEPT).timestamp())
    return {
        "Update": {
            "TableName": table,
            "Key": {"id": {"S": allowance.item_id(now)}},
            "UpdateExpression": "ADD images :n SET expires_at = if_not_exists(expires_at, :ttl)",
            "ConditionExpression": "attribute_not_exists(images) OR images <= :room",
            "ExpressionAttributeValues": {
                ":n": {"N": str(images)},
                ":room": {"N": str(allowance.per_day - images)},
                ":ttl": {"N": str(expires)},
            },
        }
    }


def used(table: str, allowance: Allowance, now: datetime) -> int:
    """Images counted against the allowance today."""
    item = (
        aws.client("dynamodb")
        .get_item(TableName=table, Key={"id": {"S": allowance.item_id(now)}}, ConsistentRead=True)
        .get("Item", {})
    )
    return int(item.get("images", {}).get("N", "0"))
